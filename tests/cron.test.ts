import * as assert from 'node:assert/strict';
import {
  lastFireTime,
  localToInstants,
  parseSchedule,
  previousFireTimes,
  skippedFireTimes,
} from '../contracts/cron';

const iso = (dates: Date[]) => dates.map((d) => d.toISOString().replace('.000Z', 'Z'));
const NY = 'America/New_York';

describe('cron evaluator (contracts/cron.ts)', () => {
  describe('daily cron(0 2 * * ? *) in America/New_York across DST', () => {
    // 2026: DST starts Sunday 8 March (02:00 → 03:00), ends Sunday 1 November (02:00 → 01:00).
    it('spring forward: 07:00Z before, 06:00Z after, and no fire on the day 02:00 does not exist', () => {
      const fires = previousFireTimes('cron(0 2 * * ? *)', NY, new Date('2026-03-10T12:00:00Z'), 4);
      assert.deepEqual(iso(fires), [
        '2026-03-10T06:00:00Z',
        '2026-03-09T06:00:00Z',
        '2026-03-07T07:00:00Z',
        '2026-03-06T07:00:00Z',
      ]);
    });

    it('fall back: 06:00Z before, 07:00Z after, one fire on the changeover day', () => {
      const fires = previousFireTimes('cron(0 2 * * ? *)', NY, new Date('2026-11-03T12:00:00Z'), 4);
      assert.deepEqual(iso(fires), [
        '2026-11-03T07:00:00Z',
        '2026-11-02T07:00:00Z',
        '2026-11-01T07:00:00Z',
        '2026-10-31T06:00:00Z',
      ]);
    });

    it('an ambiguous local time (01:30 on fall-back day) fires once, at its first occurrence', () => {
      const fires = previousFireTimes('cron(30 1 * * ? *)', NY, new Date('2026-11-02T12:00:00Z'), 3);
      assert.deepEqual(iso(fires), ['2026-11-02T06:30:00Z', '2026-11-01T05:30:00Z', '2026-10-31T05:30:00Z']);
      assert.deepEqual(
        localToInstants({ year: 2026, month: 11, day: 1, hour: 1, minute: 30 }, NY).map((t) =>
          new Date(t).toISOString(),
        ),
        ['2026-11-01T05:30:00.000Z', '2026-11-01T06:30:00.000Z'],
      );
    });
  });

  it('cron(30 2 * * ? *) skips the spring-forward day (02:30 does not exist)', () => {
    const fires = previousFireTimes('cron(30 2 * * ? *)', NY, new Date('2026-03-09T12:00:00Z'), 3);
    assert.deepEqual(iso(fires), ['2026-03-09T06:30:00Z', '2026-03-07T07:30:00Z', '2026-03-06T07:30:00Z']);
    assert.deepEqual(localToInstants({ year: 2026, month: 3, day: 8, hour: 2, minute: 30 }, NY), []);
  });

  it('cron(0/15 * * * ? *): every quarter hour, a fire at exactly `before` counts', () => {
    assert.deepEqual(
      iso(previousFireTimes('cron(0/15 * * * ? *)', 'UTC', new Date('2026-11-27T02:07:30Z'), 3)),
      ['2026-11-27T02:00:00Z', '2026-11-27T01:45:00Z', '2026-11-27T01:30:00Z'],
    );
    assert.equal(
      lastFireTime('cron(0/15 * * * ? *)', 'UTC', new Date('2026-11-27T02:15:00Z'))?.toISOString(),
      '2026-11-27T02:15:00.000Z',
    );
    assert.equal(
      lastFireTime('cron(*/20 * * * ? *)', 'UTC', new Date('2026-11-27T02:59:00Z'))?.toISOString(),
      '2026-11-27T02:40:00.000Z',
    );
  });

  it('weekday list cron(0 6 ? * MON-FRI *) skips the weekend (and equals 2-6)', () => {
    // 2026-11-30 is a Monday.
    const before = new Date('2026-11-30T12:00:00Z');
    const fires = previousFireTimes('cron(0 6 ? * MON-FRI *)', 'Europe/London', before, 3);
    assert.deepEqual(iso(fires), ['2026-11-30T06:00:00Z', '2026-11-27T06:00:00Z', '2026-11-26T06:00:00Z']);
    assert.deepEqual(iso(previousFireTimes('cron(0 6 ? * 2-6 *)', 'Europe/London', before, 3)), iso(fires));
    assert.deepEqual(iso(previousFireTimes('cron(0 6 ? * MON,WED *)', 'UTC', before, 3)), [
      '2026-11-30T06:00:00Z',
      '2026-11-25T06:00:00Z',
      '2026-11-23T06:00:00Z',
    ]);
  });

  it('L, nL, n#k and nW', () => {
    const before = new Date('2026-03-15T00:00:00Z');
    assert.deepEqual(iso(previousFireTimes('cron(0 0 L * ? *)', 'UTC', before, 3)), [
      '2026-02-28T00:00:00Z',
      '2026-01-31T00:00:00Z',
      '2025-12-31T00:00:00Z',
    ]);
    // Last Friday of the month.
    assert.deepEqual(iso(previousFireTimes('cron(0 0 ? * 6L *)', 'UTC', before, 2)), [
      '2026-02-27T00:00:00Z',
      '2026-01-30T00:00:00Z',
    ]);
    // First Monday of the month.
    assert.deepEqual(iso(previousFireTimes('cron(0 0 ? * MON#1 *)', 'UTC', before, 2)), [
      '2026-03-02T00:00:00Z',
      '2026-02-02T00:00:00Z',
    ]);
    // 15 March 2026 is a Sunday → Monday 16; 15 February is a Sunday too.
    assert.deepEqual(
      iso(previousFireTimes('cron(0 0 15W * ? *)', 'UTC', new Date('2026-03-25T00:00:00Z'), 3)),
      ['2026-03-16T00:00:00Z', '2026-02-16T00:00:00Z', '2026-01-15T00:00:00Z'],
    );
    // Last weekday: 28 Feb 2026 is a Saturday → Friday 27.
    assert.deepEqual(iso(previousFireTimes('cron(0 0 LW * ? *)', 'UTC', before, 1)), [
      '2026-02-27T00:00:00Z',
    ]);
  });

  it('month names, year field and a sparse expression (29 February)', () => {
    assert.deepEqual(
      iso(previousFireTimes('cron(0 0 29 FEB ? *)', 'UTC', new Date('2026-03-01T00:00:00Z'), 2)),
      ['2024-02-29T00:00:00Z', '2020-02-29T00:00:00Z'],
    );
    assert.deepEqual(
      previousFireTimes('cron(0 0 1 1 ? 2030)', 'UTC', new Date('2026-03-01T00:00:00Z'), 1),
      [],
    );
  });

  it('rate(6 hours): fixed period from the anchor, time zone irrelevant', () => {
    const anchor = { anchor: new Date('2026-01-01T01:00:00Z') };
    assert.deepEqual(
      iso(previousFireTimes('rate(6 hours)', NY, new Date('2026-11-27T13:00:00Z'), 3, anchor)),
      ['2026-11-27T13:00:00Z', '2026-11-27T07:00:00Z', '2026-11-27T01:00:00Z'],
    );
    assert.equal(
      lastFireTime('rate(1 day)', 'UTC', new Date('2026-11-27T00:59:00Z'), anchor)?.toISOString(),
      '2026-11-26T01:00:00.000Z',
    );
    assert.throws(() => previousFireTimes('rate(6 hours)', 'UTC', new Date(), 1), /pass an anchor/);
  });

  it('invalid and unsupported forms throw InvalidScheduleExpression with the reason', () => {
    const cases: Array<[string, RegExp]> = [
      ['cron(0 2 * * *)', /needs 6 fields/],
      ['cron(0 2 * * * *)', /exactly one of day-of-month and day-of-week/],
      ['cron(0 2 ? * ? *)', /exactly one of day-of-month and day-of-week/],
      ['cron(60 2 * * ? *)', /minutes field has "60"/],
      ['cron(0 24 * * ? *)', /hours field has "24"/],
      ['cron(0 2 * FOO ? *)', /month field has "FOO"/],
      ['cron(0 22-2 * * ? *)', /wraps around, which is not supported/],
      ['cron(0 2 ? * FRI-MON *)', /wraps around/],
      ['cron(0 2 L-3 * ? *)', /day-of-month form "L-3" is not supported/],
      ['cron(0 2 ? * MON#6 *)', /must be 1-5/],
      ['cron(0 2 ? * 1/2 *)', /day-of-week form "1\/2" is not supported/],
      ['cron(0/0 2 * * ? *)', /invalid step/],
      ['rate(0 minutes)', /at least 1/],
      ['rate(1 hours)', /use "1 hour"/],
      ['rate(5 hour)', /use "5 hours"/],
      ['rate(2 weeks)', /rate\(\) takes/],
      ['at(2026-11-27T02:00:00)', /one-time at\(\)/],
      ['0 2 * * ?', /neither cron/],
    ];
    for (const [expression, message] of cases) {
      assert.throws(
        () => parseSchedule(expression),
        (e: Error) =>
          e.name === 'InvalidScheduleExpression' && message.test(e.message) && e.message.includes(expression),
        expression,
      );
    }
    assert.throws(
      () => previousFireTimes('cron(0 2 * * ? *)', 'Mars/Olympus', new Date(), 1),
      /not an IANA time zone/,
    );
  });

  describe('skippedFireTimes: local fire times inside a spring-forward gap', () => {
    const from = new Date('2026-01-01T00:00:00Z');

    it('finds each spring-forward day of the window, for every expression asking the same zone', () => {
      // Asked twice for the zone: the second answer comes from the cached gaps and must still
      // depend on the expression.
      assert.deepEqual(skippedFireTimes('cron(30 2 * * ? *)', NY, from, 2), [
        { date: '2026-03-08', time: '02:30', gap: ['02:00', '03:00'] },
        { date: '2027-03-14', time: '02:30', gap: ['02:00', '03:00'] },
      ]);
      assert.deepEqual(skippedFireTimes('cron(0 3 * * ? *)', NY, from, 2), []);
      assert.deepEqual(skippedFireTimes('cron(15 2 ? * MON-FRI *)', NY, from, 2), []); // gaps fall on Sundays
      assert.deepEqual(
        skippedFireTimes('cron(0,45 2 ? * SUN *)', NY, from, 1).map((s) => `${s.date} ${s.time}`),
        ['2026-03-08 02:00', '2026-03-08 02:45'],
      );
    });

    it("uses each zone's own rules, and none for UTC or rate()", () => {
      assert.deepEqual(skippedFireTimes('cron(30 1 * * ? *)', 'Europe/London', from, 1), [
        { date: '2026-03-29', time: '01:30', gap: ['01:00', '02:00'] },
      ]);
      assert.deepEqual(skippedFireTimes('cron(30 2 * * ? *)', 'Europe/London', from, 1), []);
      assert.deepEqual(skippedFireTimes('cron(30 2 * * ? *)', 'UTC', from, 5), []);
      assert.deepEqual(skippedFireTimes('rate(1 hour)', NY, from, 5), []);
      assert.throws(
        () => skippedFireTimes('cron(0 2 * * ? *)', 'Mars/Olympus', from),
        /not an IANA time zone/,
      );
    });
  });
});
