import { strict as assert } from 'node:assert';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { Twin } from '../local/platform/twin';

/**
 * The real watchdog handler in the local twin: its alert reaches the twin's SNS only through the
 * extracted alert workflow (StartExecution → etl-watchdog-alerts → sns:publish), and a repeated
 * tick does not alert twice.
 */
describe('watchdog alerts in the twin', function () {
  this.timeout(180_000);
  let twin: Twin;

  before(async () => {
    twin = await Twin.start({ activeRegion: 'us-east-1', watchdog: true });
  });
  after(async () => {
    await twin?.close();
  });

  it('a missing fence is alerted through the alert workflow, once per tick even when the tick is retried', async () => {
    const east = twin.region('us-east-1');
    // A missing fence alerts on every tick, whatever the time: the one alert the twin's virtual
    // time cannot confuse (docs/local-twin.md: records carry wall-clock times).
    await twin
      .documentView('us-east-1')
      .send(
        new DeleteCommand({ TableName: east.model.controlTableName, Key: { pk: 'FENCE', sk: 'ACTIVE' } }),
      );
    const schedule = east.schedules.find((s) => s.name === 'lateness-watchdog')!;
    assert.equal(schedule.state, 'ENABLED');
    const at = Date.parse('2026-11-27T06:05:00Z');

    await twin.fireSchedule(east, schedule, at);
    await twin.idle();
    await twin.fireSchedule(east, schedule, at); // the same tick again (a retried invocation)
    await twin.idle();

    assert.equal(twin.alerts.length, 1);
    assert.equal(twin.alerts[0].region, 'us-east-1');
    assert.match(twin.alerts[0].subject, /fence missing or invalid/);
    const runs = twin.executions().filter((e) => e.stateMachine === 'etl-watchdog-alerts');
    assert.deepEqual(
      runs.map((e) => [e.region, e.name, e.status]),
      [['us-east-1', 'alert-fence-20261127T060500Z', 'SUCCEEDED']],
    );
    assert.ok(
      twin.timeline.some((t) => t.component === 'etl-watchdog-alerts' && t.text.startsWith('ALERT ')),
      'the alert workflow published it',
    );
    assert.deepEqual(twin.dlqMessages(), [], 'the repeated tick succeeded (already published)');

    await twin.fireSchedule(east, schedule, at + 5 * 60_000);
    await twin.idle();
    assert.equal(twin.alerts.length, 2, 'the next tick alerts again');
  });
});
