import { strict as assert } from 'assert';
import { ExactlyOnceWorld } from '../twin/exactly-once';
import { EXACTLY_ONCE_SCENARIOS } from '../twin/exactly-once-scenarios';

/**
 * Issue I, "Twin and tests": one scenario per defect D1–D9 plus the partition case, in a world close
 * to production (twin/exactly-once.ts): a DynamoDB replica per region with async last-writer-wins
 * replication, two real dbt app pods per region behind a round-robin proxy, callbacks into
 * aws-local-stepfunctions through a local Step Functions endpoint, ONE shared warehouse with the sink
 * fence, the program's downstream definitions and the real handlers. Every check reads the
 * warehouse's CONTROL.BUILDS or the app's own run records. One world serves all scenarios.
 */
describe('exactly-once scenarios (replicas, real pods, shared warehouse)', function () {
  this.timeout(120_000);
  let world: ExactlyOnceWorld;

  before(async () => {
    world = await ExactlyOnceWorld.start();
  });
  after(async () => {
    await world?.stop();
  });

  for (const [name, scenario] of Object.entries(EXACTLY_ONCE_SCENARIOS)) {
    it(`${name}: ${scenario.describe}`, async () => {
      const report = await scenario.run(world);
      const failed = report.checks.filter((c) => !c.ok);
      assert.ok(report.checks.length > 0, 'a scenario without checks');
      assert.deepEqual(
        failed.map((c) => `${c.what}: ${c.detail}`),
        [],
      );
    });
  }

  it('pods: a SIGKILLed pod is skipped by the proxy and restarts on its port; a SIGTERMed idle pod drains and exits', async () => {
    const pods = world.region('us-west-1').pods;
    const health = async () =>
      (await fetch(`${pods.url}/healthz`, { headers: { connection: 'close' } })).status;
    await pods.kill(0, 'SIGKILL');
    assert.equal(pods.pods[0].alive, false);
    assert.deepEqual(
      [await health(), await health(), await health()],
      [200, 200, 200],
      'the survivor answers every request',
    );
    await pods.restart(0);
    const before = pods.proxy.routed.length;
    for (let i = 0; i < 4; i++) assert.equal(await health(), 200);
    assert.equal(new Set(pods.proxy.routed.slice(before)).size, 2, 'both pods serve again');
    await pods.kill(1, 'SIGTERM');
    assert.equal(pods.pods[1].alive, false, 'gunicorn exited after draining');
    await pods.restart(1);
    assert.equal(await health(), 200);
  });
});
