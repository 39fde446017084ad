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
      assert.deepEqual(failed.map((c) => `${c.what}: ${c.detail}`), []);
    });
  }
});
