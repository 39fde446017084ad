/**
 * The trigger-mode registry (components/triggers/registry.ts): every configurable mode has a
 * builder, the tools list the registry's modes, and whatever a builder declares is wired into the
 * platform (upstream, dashboard, alarms) through what it returns. These checks hold for every
 * registered mode, so a new mode gets them without editing this file; its own expectations go in
 * tests/trigger-modes.test.ts.
 */
import { strict as assert } from 'assert';
import { TRIGGER_BUILDERS, TRIGGER_MODE_NAMES } from '../components/triggers/registry';
import { TRIGGER_MODES } from '../contracts/trigger-modes';
import { TRIGGER_MODES_UNDER_TEST } from '../twin/scenarios';
import { runProgram, type ProgramRun } from '../local/program';

const PIPELINES = ['policycenter', 'claimcenter', 'billingcenter'];

/** The same options as tests/trigger-modes.test.ts, so a full run shares the program runs. */
function programFor(mode: string): Promise<ProgramRun> {
  return runProgram({
    stack: 'prod-east',
    activeRegion: 'us-east-1',
    config: mode === 'rule-direct' ? undefined : { defaultTriggerMode: mode },
  });
}

/** The pipeline's trigger declared it: its logical name is under `etl-<pipeline>-trigger`. */
const declaredByTrigger = (pipeline: string, logicalName: string) =>
  logicalName.startsWith(`etl-${pipeline}-trigger-`);

describe('trigger-mode registry', function () {
  this.timeout(300_000);

  it("registers every mode the config accepts, in the config's order; the twin runs exactly these", () => {
    assert.deepEqual(TRIGGER_MODE_NAMES, [...TRIGGER_MODES]);
    assert.deepEqual([...TRIGGER_MODES_UNDER_TEST], [...TRIGGER_MODE_NAMES]);
  });

  it("every mode's latency sentence cites AWS's documentation (the generated comparison quotes it)", () => {
    for (const mode of TRIGGER_MODE_NAMES) {
      const sentence = TRIGGER_BUILDERS[mode].latency({ pollExpression: 'rate(7 minutes)' });
      assert.match(sentence, /\]\(https:\/\/docs\.aws\.amazon\.com\//, mode);
    }
    assert.match(
      TRIGGER_BUILDERS['schedule-poll'].latency({ pollExpression: 'rate(7 minutes)' }),
      /rate\(7 minutes\)/,
    );
  });

  for (const mode of TRIGGER_MODE_NAMES) {
    describe(mode, () => {
      let run: ProgramRun;
      before(async () => {
        run = await programFor(mode);
        if (run.error) throw run.error;
      });

      const starts = TRIGGER_BUILDERS[mode].upstreamStartsDownstream;
      it(`the upstream ${starts ? 'starts' : 'does not start'} the downstream itself, as the builder says`, () => {
        for (const pipeline of PIPELINES) {
          const upstream = run
            .ofType('aws:sfn/stateMachine:StateMachine')
            .find((s) => s.inputs.name === `etl-${pipeline}-upstream`);
          assert.ok(upstream, pipeline);
          const states = JSON.parse(upstream.inputs.definition).States as Record<
            string,
            { Resource?: string }
          >;
          const startsExecution = Object.values(states).some(
            (s) => s.Resource === 'arn:aws:states:::states:startExecution',
          );
          assert.equal(startsExecution, starts, pipeline);
        }
      });

      it("every DLQ the mode declares is on its pipeline's dashboard row", () => {
        const body = JSON.parse(run.one('aws:cloudwatch/dashboard:Dashboard').inputs.dashboardBody);
        for (const pipeline of PIPELINES) {
          const widget = body.widgets.find(
            (w: { properties: { title: string } }) => w.properties.title === `${pipeline}: DLQ depth`,
          );
          const shown = new Set(widget.properties.metrics.map((m: string[]) => m[3]));
          const declared = run
            .ofType('aws:sqs/queue:Queue')
            .filter((q) => declaredByTrigger(pipeline, q.name))
            .map((q) => q.state.name as string);
          // Every async hop has a DLQ (design decision 6): only a mode with no hop of its own has none.
          assert.equal(declared.length > 0, !starts, `${pipeline}: DLQs declared by the trigger`);
          for (const queue of declared)
            assert.ok(shown.has(queue), `${pipeline}: ${queue} is not on the dashboard`);
        }
      });

      it('every workflow and function the mode declares is alarmed', () => {
        const alarmed = new Set(
          run
            .ofType('aws:cloudwatch/metricAlarm:MetricAlarm')
            .flatMap((a) => [a.inputs.dimensions?.StateMachineArn, a.inputs.dimensions?.FunctionName]),
        );
        for (const pipeline of PIPELINES) {
          for (const machine of run
            .ofType('aws:sfn/stateMachine:StateMachine')
            .filter((s) => declaredByTrigger(pipeline, s.name)))
            assert.ok(alarmed.has(machine.state.arn), `${machine.inputs.name} has no alarm`);
          for (const fn of run
            .ofType('aws:lambda/function:Function')
            .filter((f) => declaredByTrigger(pipeline, f.name)))
            assert.ok(alarmed.has(fn.state.name), `${fn.inputs.name} has no alarm`);
        }
      });
    });
  }
});
