import { strict as assert } from 'assert';
import { VirtualClock, firings, isDue } from '../local/platform/clock';
import { DeliveryError, EventBus, Queue, type BusEvent } from '../local/platform/bus';
import type { ExtractedRule } from '../local/extract';
import { Twin } from '../local/platform/twin';

const SRC = 'com.example-insurer.etl-platform';
const DLQ_ARN = 'arn:aws:sqs:us-east-1:123456789012:rule-dlq';

function bus(
  rules: ExtractedRule[],
  deliver: (arn: string, ev: BusEvent) => Promise<void> | void,
  archive = true,
) {
  const clock = new VirtualClock('2026-11-27T07:00:00Z');
  const pending: Promise<unknown>[] = [];
  const dlq = new Queue(DLQ_ARN, 'rule-dlq');
  const b = new EventBus(
    'us-east-1',
    'etl-platform',
    'arn:aws:events:us-east-1:123456789012:event-bus/etl-platform',
    '123456789012',
    rules,
    archive ? { source: [SRC] } : undefined,
    {
      clock,
      deliver: async (t, ev) => deliver(t.arn, ev),
      queue: (arn) => (arn === DLQ_ARN ? dlq : undefined),
      track: (p) => pending.push(p),
      log: () => undefined,
    },
  );
  const idle = async () => {
    while (pending.length) await pending.shift();
  };
  return { b, clock, dlq, idle };
}

function rule(
  name: string,
  state: 'ENABLED' | 'DISABLED',
  retry = { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 },
  dlq: string | null = DLQ_ARN,
): ExtractedRule {
  return {
    name,
    arn: `arn:aws:events:us-east-1:123456789012:rule/etl-platform/${name}`,
    busName: 'etl-platform',
    pattern: { source: [SRC], 'detail-type': ['UpstreamBatchSucceeded'] },
    state,
    targets: [
      {
        arn: `arn:aws:states:us-east-1:123456789012:stateMachine:${name}`,
        retryPolicy: retry,
        ...(dlq ? { dlqArn: dlq } : {}),
      },
    ],
  };
}

const entry = (detailType = 'UpstreamBatchSucceeded') => ({
  Source: SRC,
  DetailType: detailType,
  Detail: JSON.stringify({ batchId: 'p-20261127T070000Z' }),
});

describe('twin engines', () => {
  describe('bus', () => {
    it('delivers to ENABLED rules whose pattern matches, never to DISABLED ones', async () => {
      const got: string[] = [];
      const { b, idle } = bus(
        [rule('on', 'ENABLED'), rule('off', 'DISABLED')],
        (arn) => void got.push(arn.split(':').pop()!),
      );
      b.putEvents([entry(), entry('Other')]);
      await idle();
      assert.deepEqual(got, ['on']);
      b.rule('off').state = 'ENABLED';
      b.putEvents([entry()]);
      await idle();
      assert.deepEqual(got.sort(), ['off', 'on', 'on']);
    });

    it('retries per the target policy, then sends to the DLQ with RULE_ARN, TARGET_ARN, ERROR_CODE', async () => {
      let calls = 0;
      const { b, dlq, idle } = bus([rule('r', 'ENABLED')], () => {
        calls++;
        throw new DeliveryError('ThrottlingException', 'slow down');
      });
      b.putEvents([entry()]);
      await idle();
      assert.equal(calls, 3); // 1 + maximumRetryAttempts 2
      assert.equal(dlq.messages.length, 1);
      assert.deepEqual(
        [
          dlq.messages[0].attributes.RULE_ARN.split('/').pop(),
          dlq.messages[0].attributes.TARGET_ARN.split(':').pop(),
          dlq.messages[0].attributes.ERROR_CODE,
        ],
        ['r', 'r', 'ThrottlingException'],
      );
      assert.equal(JSON.parse(dlq.messages[0].body)['detail-type'], 'UpstreamBatchSucceeded');
    });

    it('stops retrying at the maximum event age, and a non-retryable error goes straight to the DLQ', async () => {
      let calls = 0;
      const { b, dlq, idle } = bus(
        [rule('r', 'ENABLED', { maximumRetryAttempts: 185, maximumEventAgeInSeconds: 60 })],
        () => {
          calls++;
          throw new DeliveryError('ThrottlingException', 'slow down');
        },
      );
      b.putEvents([entry()]);
      await idle();
      assert.ok(calls > 1 && calls < 10, `calls=${calls}`); // backoff 2,4,8,16,32 s: 5 retries fit 60 s
      assert.equal(dlq.messages.length, 1);
      calls = 0;
      const nr = bus([rule('r', 'ENABLED')], () => {
        calls++;
        throw new DeliveryError('ResourceNotFoundException', 'gone', false);
      });
      nr.b.putEvents([entry()]);
      await nr.idle();
      assert.deepEqual([calls, nr.dlq.messages.length], [1, 1]);
    });

    it('without a DLQ a failed event is dropped and recorded as DROPPED', async () => {
      const { b, idle } = bus(
        [rule('r', 'ENABLED', { maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 }, null)],
        () => {
          throw new DeliveryError('X', 'x');
        },
      );
      b.putEvents([entry()]);
      await idle();
      assert.equal(b.deliveries[0].outcome, 'DROPPED');
    });

    it('archives matching events and replays exactly a time window, marked with replay-name, not re-archived', async () => {
      const got: BusEvent[] = [];
      const { b, clock, idle } = bus([rule('r', 'ENABLED')], (_a, ev) => void got.push(ev));
      b.putEvents([entry()]);
      clock.tick(60_000);
      const t1 = clock.now();
      b.putEvents([entry(), { Source: 'someone.else', DetailType: 'UpstreamBatchSucceeded', Detail: '{}' }]);
      clock.tick(60_000);
      b.putEvents([entry()]);
      await idle();
      assert.equal(b.archive.length, 3); // the foreign source is not archived
      got.length = 0;
      assert.equal(b.replay('w', t1, t1 + 1000), 1);
      await idle();
      assert.equal(got.length, 1);
      assert.equal(got[0]['replay-name'], 'w');
      assert.equal(b.archive.length, 3);
    });

    it('refuses malformed entries per entry (FailedEntryCount) and everything while dark', () => {
      const { b } = bus([], () => undefined);
      const res = b.putEvents([
        entry(),
        { Source: SRC, DetailType: 'X', Detail: '{not json' },
        { Source: SRC, DetailType: 'X', Detail: JSON.stringify({ p: 'x'.repeat(262_200) }) },
      ]);
      assert.equal(res.FailedEntryCount, 2);
      assert.deepEqual(
        res.Entries.map((e) => e.ErrorCode),
        [undefined, 'MalformedDetail', 'EntryTooLarge'],
      );
      b.up = false;
      assert.throws(() => b.putEvents([entry()]), /unreachable/);
    });
  });

  describe('scheduler clock', () => {
    it('fires cron(0 2 * * ? *) America/New_York once a day at 07:00Z in November (EST)', () => {
      const from = Date.parse('2026-11-27T00:00:00Z');
      assert.deepEqual(
        firings('cron(0 2 * * ? *)', 'America/New_York', from, from + 86_400_000).map((t) =>
          new Date(t).toISOString(),
        ),
        ['2026-11-27T07:00:00.000Z'],
      );
      assert.ok(isDue('cron(0/15 * * * ? *)', Date.parse('2026-11-27T07:45:00Z')));
      assert.ok(!isDue('cron(0 2 ? * MON-FRI *)', Date.parse('2026-11-28T07:00:00Z'), 'America/New_York')); // a Saturday
    });

    it('skips the nonexistent local time in spring and runs the ambiguous one once in autumn', () => {
      const spring = Date.parse('2027-03-14T00:00:00Z');
      assert.deepEqual(firings('cron(30 2 * * ? *)', 'America/New_York', spring, spring + 86_400_000), []);
      const autumn = Date.parse('2026-11-01T00:00:00Z');
      assert.equal(firings('cron(30 1 * * ? *)', 'America/New_York', autumn, autumn + 86_400_000).length, 1);
    });

    it('rate(1 hour) fires 24 times in a virtual day, computed in milliseconds', () => {
      const t0 = Date.now();
      const from = Date.parse('2026-11-27T00:00:00Z');
      assert.equal(firings('rate(1 hour)', 'UTC', from, from + 86_400_000).length, 24);
      assert.ok(Date.now() - t0 < 500);
    });
  });

  describe('twin services', function () {
    this.timeout(60_000);
    let twin: Twin;
    before(async () => {
      twin = await Twin.start({});
    });
    after(async () => {
      await twin.close();
    });

    it('execution names are unique per region + state machine, idempotent for the same input while RUNNING', async () => {
      const east = twin.region('us-east-1');
      const west = twin.region('us-west-1');
      const down = east.machineByName('policycenter-downstream');
      const up = east.machineByName('policycenter-upstream');
      const input = JSON.stringify({
        rerun: { pipeline: 'policycenter', batchId: 'policycenter-20261101T070000Z' },
      });
      const a = east.startExecution({ stateMachineArn: down.arn, name: 'n1', input });
      assert.equal(east.startExecution({ stateMachineArn: down.arn, name: 'n1', input }), a); // same name + input while RUNNING
      assert.throws(() => east.startExecution({ stateMachineArn: down.arn, name: 'n1', input: '{}' }), {
        name: 'ExecutionAlreadyExists',
      });
      await a.done;
      assert.throws(() => east.startExecution({ stateMachineArn: down.arn, name: 'n1', input }), {
        name: 'ExecutionAlreadyExists',
      }); // closed
      const otherMachine = east.startExecution({ stateMachineArn: up.arn, name: 'n1', input: '{}' });
      const otherRegion = west.startExecution({
        stateMachineArn: west.machineByName('policycenter-downstream').arn,
        name: 'n1',
        input,
      });
      await Promise.all([otherMachine.done, otherRegion.done]);
      assert.notEqual(otherRegion.arn, a.arn);
      assert.throws(() => east.startExecution({ stateMachineArn: down.arn, name: 'has space' }), {
        name: 'InvalidName',
      });
      assert.throws(() => east.startExecution({ stateMachineArn: down.arn, name: 'x'.repeat(81) }), {
        name: 'InvalidName',
      });
      assert.throws(() => east.startExecution({ stateMachineArn: `${down.arn}-nope` }), {
        name: 'StateMachineDoesNotExist',
      });
    });

    it('a Wait state moves virtual time by its Seconds (30 s when it reads them from the input)', async () => {
      const east = twin.region('us-east-1');
      const arn = 'arn:aws:states:us-east-1:123456789012:stateMachine:wait-probe';
      east.machines.set(arn, {
        name: 'wait-probe',
        arn,
        region: 'us-east-1',
        definition: {
          StartAt: 'Fixed',
          States: {
            Fixed: { Type: 'Wait', Seconds: 600, Next: 'FromInput' },
            FromInput: { Type: 'Wait', SecondsPath: '$.seconds', Next: 'Done' },
            Done: { Type: 'Succeed' },
          },
        },
      });
      const before = twin.clock.now();
      const record = east.startExecution({ stateMachineArn: arn, name: 'wait-1', input: '{"seconds":1}' });
      await record.done;
      assert.equal(record.status, 'SUCCEEDED');
      assert.equal(twin.clock.now() - before, (600 + 30) * 1000);
    });

    it('advancing a virtual day fires each ENABLED schedule once (active region) and no DISABLED one', async () => {
      const before = new Set(twin.executions());
      const t0 = Date.now();
      await twin.advance(24 * 3_600_000);
      const ups = twin
        .executions()
        .filter((e) => !before.has(e))
        .filter((e) => e.stateMachine.endsWith('-upstream'));
      assert.deepEqual(ups.map((e) => `${e.region} ${e.stateMachine}`).sort(), [
        'us-east-1 etl-billingcenter-upstream',
        'us-east-1 etl-claimcenter-upstream',
        'us-east-1 etl-policycenter-upstream',
      ]);
      assert.ok(Date.now() - t0 < 20_000, `a virtual day took ${Date.now() - t0} ms`);
    });
  });
});
