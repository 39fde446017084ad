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
});
