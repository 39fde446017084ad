import * as assert from 'node:assert/strict';
import {
  FUNCTION_ALARM_METRICS,
  RULE_ALARM_METRICS,
  SCHEDULER_ALARM_METRICS,
  WORKFLOW_ALARM_METRICS,
} from '../components/observability';
import { runProgram } from '../local/program';

describe('observability under mocks', () => {
  for (const mode of ['rule-direct', 'rule-lambda', 'rule-intermediate-sfn', 'schedule-poll'] as const) {
    it(`${mode}: every workflow, function and rule has its alarms, all to the alerts topic`, async () => {
      const run = await runProgram({ stack: 'prod-east', config: { defaultTriggerMode: mode } });
      assert.equal(run.error, undefined);
      const alarms = run.ofType('aws:cloudwatch/metricAlarm:MetricAlarm');
      const topic = run.one('aws:sns/topic:Topic').state.arn;
      for (const a of alarms) assert.deepEqual(a.inputs.alarmActions, [topic], a.name);
      const has = (namespace: string, metric: string, key: string, value: string) =>
        alarms.some(
          (a) =>
            a.inputs.namespace === namespace &&
            a.inputs.metricName === metric &&
            a.inputs.dimensions?.[key] === value,
        );

      const machines = run.ofType('aws:sfn/stateMachine:StateMachine');
      assert.ok(machines.length >= 6);
      for (const sm of machines) {
        for (const metric of WORKFLOW_ALARM_METRICS)
          assert.ok(
            has('AWS/States', metric, 'StateMachineArn', sm.state.arn),
            `${sm.inputs.name} ${metric}`,
          );
      }
      const functions = run.ofType('aws:lambda/function:Function');
      for (const fn of functions) {
        for (const metric of FUNCTION_ALARM_METRICS)
          assert.ok(has('AWS/Lambda', metric, 'FunctionName', fn.state.name), `${fn.inputs.name} ${metric}`);
      }
      const rules = run.ofType('aws:cloudwatch/eventRule:EventRule');
      assert.ok(rules.length >= 1);
      for (const rule of rules) {
        for (const metric of RULE_ALARM_METRICS)
          assert.ok(has('AWS/Events', metric, 'RuleName', rule.inputs.name), `${rule.inputs.name} ${metric}`);
      }
      for (const metric of SCHEDULER_ALARM_METRICS)
        assert.ok(has('AWS/Scheduler', metric, 'ScheduleGroup', 'etl-platform'), metric);
    });
  }

  it('one dashboard per region, a row of widgets per pipeline, role-free', async () => {
    for (const stack of ['prod-east', 'prod-west'] as const) {
      const active = await runProgram({ stack, activeRegion: 'us-east-1' });
      const passive = await runProgram({ stack, activeRegion: 'us-west-1' });
      const dashboard = active.one('aws:cloudwatch/dashboard:Dashboard');
      const region = stack === 'prod-east' ? 'us-east-1' : 'us-west-1';
      assert.equal(dashboard.inputs.dashboardName, `etl-platform-${region}`);
      const body = JSON.parse(dashboard.inputs.dashboardBody);
      const titles = body.widgets.map((w: any) => w.properties.title);
      for (const p of ['policycenter', 'claimcenter', 'billingcenter']) {
        for (const what of ['batches per day', 'downstream duration (dbt)', 'failures', 'DLQ depth'])
          assert.ok(titles.includes(`${p}: ${what}`), `${p}: ${what}`);
      }
      assert.ok(titles.some((t: string) => t.startsWith('upstream→downstream lag')));
      assert.equal(
        passive.one('aws:cloudwatch/dashboard:Dashboard').inputs.dashboardBody,
        dashboard.inputs.dashboardBody,
      );
    }
  });
});

describe('lateness watchdog wiring', () => {
  it('a rate schedule invokes the watchdog, ENABLED only in the active region, with its env and scoped IAM', async () => {
    for (const [stack, active, state] of [
      ['prod-east', 'us-east-1', 'ENABLED'],
      ['prod-east', 'us-west-1', 'DISABLED'],
      ['prod-west', 'us-east-1', 'DISABLED'],
    ] as const) {
      const run = await runProgram({ stack, activeRegion: active });
      const schedule = run
        .ofType('aws:scheduler/schedule:Schedule')
        .find((s) => s.inputs.name === 'lateness-watchdog')!;
      const fn = run.one('aws:lambda/function:Function', 'watchdog-fn');
      assert.equal(schedule.inputs.state, state);
      assert.equal(schedule.inputs.scheduleExpression, 'rate(5 minutes)');
      assert.equal(schedule.inputs.target.arn, fn.state.arn);
      const env = fn.inputs.environment.variables;
      const pipelines = JSON.parse(env.PIPELINES_JSON);
      assert.deepEqual(
        pipelines.map((p: any) => [p.name, p.expression, p.timezone, p.graceMinutes]),
        [
          ['policycenter', 'cron(0 7 * * ? *)', 'UTC', 55],
          ['claimcenter', 'cron(30 7 * * ? *)', 'UTC', 55],
          ['billingcenter', 'cron(0 8 * * ? *)', 'UTC', 55],
        ],
      );
      // The downstream execution's own bound (lock wait 60 + replication wait 5 + 2 min + 2 × (60 + 240 + 10) + 15 min).
      assert.equal(env.MAX_DOWNSTREAM_MINUTES, '702');
      const policy = JSON.parse(
        run.one('aws:iam/rolePolicy:RolePolicy', 'etl-watchdog-policy').inputs.policy,
      );
      const start = policy.Statement.find((s: any) => s.Sid === 'StartLostDownstreams');
      assert.deepEqual(
        start.Resource,
        pipelines.map((p: any) => p.downstreamArn),
      );
      const asyncConfig = run.one(
        'aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig',
        'watchdog-async',
      );
      const dlq = run.one('aws:sqs/queue:Queue', 'watchdog-async-dlq');
      assert.equal(asyncConfig.inputs.maximumRetryAttempts, 0);
      assert.equal(asyncConfig.inputs.destinationConfig.onFailure.destination, dlq.state.arn);
      const invoke = JSON.parse(
        run.one('aws:iam/rolePolicy:RolePolicy', 'watchdog-schedule-policy').inputs.policy,
      );
      assert.deepEqual(invoke.Statement[0].Action, ['lambda:InvokeFunction']);
      assert.deepEqual(invoke.Statement[0].Resource, [fn.state.arn]);
    }
  });

  it('alerts leave through the alert workflow: env, StartExecution on it alone, its publish task, its role and its alarm', async () => {
    const run = await runProgram({ stack: 'prod-west', activeRegion: 'us-east-1' });
    const topic = run.one('aws:sns/topic:Topic').state.arn;
    const key = run.one('aws:kms/key:Key', 'etl-alerts-key').state.arn;
    const machine = run
      .ofType('aws:sfn/stateMachine:StateMachine')
      .find((sm) => sm.inputs.name === 'etl-watchdog-alerts')!;
    assert.ok(machine, 'etl-watchdog-alerts is declared');
    assert.equal(machine.inputs.type, 'STANDARD');
    const publish = JSON.parse(machine.inputs.definition).States.PublishAlert;
    assert.equal(publish.Resource, 'arn:aws:states:::sns:publish');
    assert.equal(publish.Parameters.TopicArn, topic);

    const env = run.one('aws:lambda/function:Function', 'watchdog-fn').inputs.environment.variables;
    assert.equal(env.ALERTS_STATE_MACHINE_ARN, machine.state.arn);
    assert.equal(env.ALERTS_TOPIC_ARN, undefined);
    const fnPolicy = JSON.parse(
      run.one('aws:iam/rolePolicy:RolePolicy', 'etl-watchdog-policy').inputs.policy,
    );
    assert.deepEqual(
      fnPolicy.Statement.find((s: any) => s.Sid === 'Alerts'),
      { Sid: 'Alerts', Effect: 'Allow', Action: ['states:StartExecution'], Resource: [machine.state.arn] },
    );
    const fnActions = fnPolicy.Statement.flatMap((s: any) => s.Action);
    assert.ok(!fnActions.some((a: string) => a.startsWith('sns:') || a.startsWith('kms:')), fnActions.join());

    const role = run
      .ofType('aws:iam/role:Role')
      .find((r) => r.state.name === 'etl-watchdog-alerts-us-west-1')!;
    assert.equal(machine.inputs.roleArn, role.state.arn);
    const rolePolicy = run
      .ofType('aws:iam/rolePolicy:RolePolicy')
      .find((p) => p.inputs.role === role.state.name)!;
    const grants = JSON.parse(rolePolicy.inputs.policy)
      .Statement.filter((s: any) => !s.Resource.includes('*'))
      .map((s: any) => [s.Action, s.Resource]);
    assert.deepEqual(grants, [
      [['kms:Decrypt', 'kms:GenerateDataKey'], [key]],
      [['sns:Publish'], [topic]],
    ]);

    const failed = run
      .ofType('aws:cloudwatch/metricAlarm:MetricAlarm')
      .filter(
        (a) =>
          a.inputs.namespace === 'AWS/States' &&
          a.inputs.metricName === 'ExecutionsFailed' &&
          a.inputs.dimensions?.StateMachineArn === machine.state.arn,
      );
    assert.equal(failed.length, 1);
    assert.deepEqual(failed[0].inputs.alarmActions, [topic]);
    assert.equal(failed[0].inputs.threshold, 1);
  });
});
