import { strict as assert } from 'assert';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { TRIGGER_MODES, type TriggerMode } from '../contracts/trigger-modes';
import { STACK_REGION, type StackName } from '../contracts/regions';
import { runProgram, type ProgramRun } from '../local/program';
import { ACCOUNT_ID } from '../local/pulumi-mocks';

const PIPELINES = ['policycenter', 'claimcenter', 'billingcenter'];
const REGIONS = ['us-east-1', 'us-west-1'];
const BASE_FUNCTIONS = [
  'etl-batch-context',
  'etl-check-consistency',
  'etl-fence-writer',
  'etl-get-dbt-run',
  'etl-start-dbt-run',
  'etl-watchdog',
];

const sm = (region: string, name: string) => `arn:aws:states:${region}:${ACCOUNT_ID}:stateMachine:${name}`;
const bus = (region: string, name = 'etl-platform') =>
  `arn:aws:events:${region}:${ACCOUNT_ID}:event-bus/${name}`;
const sorted = (xs: Iterable<string>) => [...xs].sort();

/** rule-direct is the stacks' configured default: the same cache key as the other suites' runs. */
function programFor(stack: StackName, activeRegion: string, mode: TriggerMode): Promise<ProgramRun> {
  return runProgram({
    stack,
    activeRegion,
    config: mode === 'rule-direct' ? undefined : { defaultTriggerMode: mode },
  });
}

function expected(mode: TriggerMode, region: string) {
  const peer = REGIONS.find((r) => r !== region) as string;
  const ruleModes: TriggerMode[] = ['rule-direct', 'rule-lambda', 'rule-intermediate-sfn'];
  const triggerRules = ruleModes.includes(mode) ? PIPELINES.map((p) => `${p}-downstream-trigger`) : [];
  const targetOf = (p: string) =>
    mode === 'rule-direct'
      ? sm(region, `etl-${p}-downstream`)
      : mode === 'rule-lambda'
        ? `arn:aws:lambda:${region}:${ACCOUNT_ID}:function:etl-start-ds-${p}`
        : sm(region, `etl-${p}-trigger-sfn`);
  return {
    peer,
    rules: sorted([...triggerRules, `forward-to-${peer}`]),
    targets: new Map<string, string>([
      ...(triggerRules.length
        ? PIPELINES.map((p): [string, string] => [`${p}-downstream-trigger`, targetOf(p)])
        : []),
      [`forward-to-${peer}`, bus(peer)],
    ]),
    schedules: sorted([
      'lateness-watchdog',
      ...PIPELINES.map((p) => `${p}-upstream`),
      ...(mode === 'schedule-poll' ? PIPELINES.map((p) => `${p}-downstream-poll`) : []),
    ]),
    functions: sorted([
      ...BASE_FUNCTIONS,
      ...(mode === 'rule-lambda' ? PIPELINES.map((p) => `etl-start-ds-${p}`) : []),
    ]),
    machines: sorted([
      ...PIPELINES.flatMap((p) => [
        `etl-${p}-upstream`,
        `etl-${p}-downstream`,
        ...(mode === 'rule-intermediate-sfn' ? [`etl-${p}-trigger-sfn`] : []),
        ...(mode === 'schedule-poll' ? [`etl-${p}-poller`] : []),
      ]),
      // The watchdog's alert workflow, in every mode.
      'etl-watchdog-alerts',
    ]),
  };
}

function policyOf(
  run: ProgramRun,
  roleName: string,
): { Statement: Array<{ Effect: string; Action: string[]; Resource: string[] }> } {
  const policies = run.ofType('aws:iam/rolePolicy:RolePolicy').filter((p) => p.inputs.role === roleName);
  assert.equal(policies.length, 1, `one inline policy on ${roleName}`);
  return JSON.parse(policies[0].inputs.policy);
}

async function simulate(
  run: ProgramRun,
  roleName: string,
  action: string,
  resource: string,
): Promise<string> {
  const result = await runSimulation(
    {
      request: {
        principal: `arn:aws:iam::${ACCOUNT_ID}:role/${roleName}`,
        action,
        resource: { resource, accountId: ACCOUNT_ID },
        contextVariables: {},
      },
      identityPolicies: [{ name: roleName, policy: policyOf(run, roleName) }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === 'error') throw new Error(`simulation error: ${JSON.stringify(result.errors)}`);
  return (result as { overallResult: string }).overallResult;
}

describe('trigger modes under mocks (every mode × both stacks × both active regions)', function () {
  this.timeout(300_000);

  for (const mode of TRIGGER_MODES) {
    for (const stack of ['prod-east', 'prod-west'] as const) {
      for (const activeRegion of REGIONS) {
        const region = STACK_REGION[stack];
        const role = region === activeRegion ? 'active' : 'passive';
        const want = role === 'active' ? 'ENABLED' : 'DISABLED';
        describe(`${mode} · ${stack} · ${role}`, () => {
          let run: ProgramRun;
          const exp = expected(mode, region);
          before(async () => {
            run = await programFor(stack, activeRegion, mode);
            if (run.error) throw run.error;
          });

          it('declares exactly its own rules, targets, schedules, trigger Lambdas and workflows', () => {
            const rules = run.ofType('aws:cloudwatch/eventRule:EventRule');
            assert.deepEqual(sorted(rules.map((r) => r.state.name)), exp.rules);
            const targets = run.ofType('aws:cloudwatch/eventTarget:EventTarget');
            assert.equal(targets.length, exp.targets.size);
            for (const [rule, arn] of exp.targets) {
              assert.deepEqual(
                targets.filter((t) => t.inputs.rule === rule).map((t) => t.inputs.arn),
                [arn],
                rule,
              );
            }
            assert.deepEqual(
              sorted(run.ofType('aws:scheduler/schedule:Schedule').map((s) => s.inputs.name)),
              exp.schedules,
            );
            assert.deepEqual(
              sorted(run.ofType('aws:lambda/function:Function').map((f) => f.state.name)),
              exp.functions,
            );
            assert.deepEqual(
              sorted(run.ofType('aws:sfn/stateMachine:StateMachine').map((s) => s.state.name)),
              exp.machines,
            );
            // The watchdog's async config is shared; the rest belong to the rule-lambda mode.
            assert.equal(
              run.ofType('aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig').length,
              (mode === 'rule-lambda' ? PIPELINES.length : 0) + 1,
            );
            assert.equal(
              run.ofType('aws:lambda/permission:Permission').length,
              mode === 'rule-lambda' ? PIPELINES.length : 0,
            );
          });

          it(`the upstream ${mode === 'upstream-direct' ? 'ends in StartDownstream naming its downstream' : 'has no StartDownstream state'}`, () => {
            for (const p of PIPELINES) {
              const upstream = run
                .ofType('aws:sfn/stateMachine:StateMachine')
                .find((s) => s.state.name === `etl-${p}-upstream`);
              const states = JSON.parse(upstream?.inputs.definition).States;
              if (mode === 'upstream-direct') {
                assert.equal(states.PublishBatchSucceeded.Next, 'StartDownstream');
                assert.equal(states.StartDownstream.Resource, 'arn:aws:states:::states:startExecution');
                assert.equal(
                  states.StartDownstream.Parameters.StateMachineArn,
                  sm(region, `etl-${p}-downstream`),
                );
                assert.equal(states.StartDownstream.Parameters['Name.$'], '$.ctx.batchId');
              } else {
                assert.equal(states.StartDownstream, undefined);
                assert.equal(states.PublishBatchSucceeded.Next, 'BatchSucceeded');
              }
            }
          });

          it(`every rule and schedule is ${want}, and the failover output lists exactly them with that state`, () => {
            const actual = [
              ...run
                .ofType('aws:cloudwatch/eventRule:EventRule')
                .map((r) => ({ kind: 'rule', name: r.state.name, state: r.inputs.state })),
              ...run
                .ofType('aws:scheduler/schedule:Schedule')
                .map((s) => ({ kind: 'schedule', name: s.inputs.name, state: s.inputs.state })),
            ];
            for (const t of actual) assert.equal(t.state, want, `${t.kind} ${t.name}`);
            const key = (t: { kind: string; name: string }) => `${t.kind}:${t.name}`;
            assert.deepEqual(
              sorted(
                run.outputs.failover.toggles.map(
                  (t: { kind: string; name: string; state: string }) => `${key(t)}=${t.state}`,
                ),
              ),
              sorted(actual.map((t) => `${key(t)}=${t.state}`)),
            );
          });

          it('every target has a DLQ, a retry policy unless it is an event bus, a role unless it is a Lambda; every DLQ has an alarm', () => {
            const queues = new Map(
              run.ofType('aws:sqs/queue:Queue').map((q) => [q.state.arn as string, q.state.name as string]),
            );
            const alarmed = new Set(
              run.ofType('aws:cloudwatch/metricAlarm:MetricAlarm').map((a) => a.inputs.dimensions?.QueueName),
            );
            const dlqs: string[] = [];
            for (const t of run.ofType('aws:cloudwatch/eventTarget:EventTarget')) {
              if (/:event-bus\//.test(String(t.inputs.arn)))
                assert.equal(
                  t.inputs.retryPolicy,
                  undefined,
                  `${t.name}: event-bus targets take no retry policy`,
                );
              else
                assert.ok(
                  t.inputs.retryPolicy?.maximumRetryAttempts >= 0 &&
                    t.inputs.retryPolicy?.maximumEventAgeInSeconds >= 60,
                  `${t.name} retry policy`,
                );
              assert.ok(t.inputs.deadLetterConfig?.arn, `${t.name} DLQ`);
              dlqs.push(t.inputs.deadLetterConfig.arn);
              if (String(t.inputs.arn).includes(':lambda:'))
                assert.equal(t.inputs.roleArn, undefined, `${t.name}: Lambda targets use a permission`);
              else
                assert.match(String(t.inputs.roleArn), /^arn:aws:iam::\d{12}:role\/etl-/, `${t.name} role`);
            }
            for (const s of run.ofType('aws:scheduler/schedule:Schedule')) {
              assert.ok(
                s.inputs.target.retryPolicy && s.inputs.target.deadLetterConfig?.arn,
                `${s.inputs.name}`,
              );
              dlqs.push(s.inputs.target.deadLetterConfig.arn);
            }
            for (const c of run.ofType('aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig')) {
              assert.ok(
                queues.has(c.inputs.destinationConfig?.onFailure?.destination),
                `${c.name}: on-failure destination is a queue`,
              );
              dlqs.push(c.inputs.destinationConfig.onFailure.destination);
            }
            for (const arn of dlqs) {
              assert.ok(queues.has(arn), `${arn} is a declared queue`);
              assert.ok(alarmed.has(queues.get(arn)), `${arn} has a depth alarm`);
            }
          });

          if (mode === 'rule-lambda') {
            it('Lambda permission is scoped to its rule ARN; async failures go to the DLQ', () => {
              for (const p of PIPELINES) {
                const perm = run
                  .ofType('aws:lambda/permission:Permission')
                  .find((x) => x.inputs.function === `etl-start-ds-${p}`);
                assert.equal(perm?.inputs.principal, 'events.amazonaws.com');
                assert.equal(
                  perm?.inputs.sourceArn,
                  `arn:aws:events:${region}:${ACCOUNT_ID}:rule/etl-platform/${p}-downstream-trigger`,
                );
                const cfg = run
                  .ofType('aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig')
                  .find((x) => x.inputs.functionName === `etl-start-ds-${p}`);
                assert.match(cfg?.inputs.destinationConfig.onFailure.destination, /^arn:aws:sqs:/);
              }
            });
          }

          it('IAM (iam-simulate): each trigger principal may start only its own target; forwarding may put only to the peer bus', async () => {
            const p = 'policycenter';
            const other = 'claimcenter';
            const cases: Array<[string, string, string, string]> = []; // role, action, resource, expected
            const own = (name: string) => sm(region, name);
            const principal =
              mode === 'rule-lambda'
                ? `etl-start-ds-${p}-${region}`
                : mode === 'schedule-poll'
                  ? `etl-poll-${p}-${region}`
                  : mode === 'upstream-direct'
                    ? `etl-${p}-upstream-${region}`
                    : `etl-trigger-${p}-${region}`;
            const target =
              mode === 'rule-intermediate-sfn'
                ? `etl-${p}-trigger-sfn`
                : mode === 'schedule-poll'
                  ? `etl-${p}-poller`
                  : `etl-${p}-downstream`;
            cases.push([principal, 'states:StartExecution', own(target), 'Allowed']);
            cases.push([
              principal,
              'states:StartExecution',
              own(`etl-${other}-downstream`),
              'ImplicitlyDenied',
            ]);
            cases.push([principal, 'states:StartExecution', sm(exp.peer, target), 'ImplicitlyDenied']);
            if (target !== `etl-${p}-downstream`)
              cases.push([
                principal,
                'states:StartExecution',
                own(`etl-${p}-downstream`),
                'ImplicitlyDenied',
              ]);
            const forwarder = `etl-forward-events-${region}`;
            cases.push([forwarder, 'events:PutEvents', bus(exp.peer), 'Allowed']);
            cases.push([forwarder, 'events:PutEvents', bus(region), 'ImplicitlyDenied']);
            cases.push([forwarder, 'events:PutEvents', bus(exp.peer, 'default'), 'ImplicitlyDenied']);
            for (const [roleName, action, resource, result] of cases) {
              assert.equal(
                await simulate(run, roleName, action, resource),
                result,
                `${roleName} ${action} ${resource}`,
              );
            }
            // The events roles carry exactly one statement: one action on the exact ARNs.
            if (mode === 'rule-direct' || mode === 'rule-intermediate-sfn') {
              assert.deepEqual(
                policyOf(run, principal).Statement.map((s) => [s.Action, s.Resource]),
                [[['states:StartExecution'], [own(target)]]],
              );
            }
            assert.deepEqual(
              policyOf(run, forwarder).Statement.map((s) => [s.Action, s.Resource]),
              [[['events:PutEvents'], [bus(exp.peer)]]],
            );
          });
        });
      }
    }
  }
});
