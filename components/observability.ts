import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { PLATFORM_METRIC_NAMESPACE, TRIGGER_LAG_METRIC } from '../contracts/metrics';
import { knownMetric, type MetricName } from './metric-names';

/** Step Functions metrics that mean something did not finish as it should. */
export const WORKFLOW_ALARM_METRICS: ReadonlyArray<MetricName<'AWS/States'>> = [
  'ExecutionsFailed',
  'ExecutionsTimedOut',
  'ExecutionThrottled',
  'ExecutionsAborted',
];
export const FUNCTION_ALARM_METRICS: ReadonlyArray<MetricName<'AWS/Lambda'>> = ['Errors', 'Throttles'];
/** A DLQ'd delivery, and one that could not even reach the DLQ (the event is then gone). */
export const RULE_ALARM_METRICS: ReadonlyArray<MetricName<'AWS/Events'>> = [
  'FailedInvocations',
  'InvocationsSentToDlq',
  'InvocationsFailedToBeSentToDlq',
];
export const SCHEDULER_ALARM_METRICS: ReadonlyArray<MetricName<'AWS/Scheduler'>> = [
  'TargetErrorCount',
  'InvocationDroppedCount',
];

export interface ObservedPipeline {
  readonly name: string;
  readonly upstreamArn: pulumi.Input<string>;
  readonly downstreamArn: pulumi.Input<string>;
  readonly dlqNames: pulumi.Input<string>[];
}

export interface ObservabilityArgs {
  /** This stack's region: the dashboard's metrics region. */
  readonly region: string;
  /** Topic every alarm notifies. */
  readonly alarmTopicArn: pulumi.Input<string>;
  /** Every workflow in the region, by a short label used in alarm names. */
  readonly workflows: ReadonlyArray<{ readonly label: string; readonly arn: pulumi.Input<string> }>;
  /** Every function in the region, by a short label used in alarm names. */
  readonly functions: ReadonlyArray<{ readonly label: string; readonly name: pulumi.Input<string> }>;
  /** Every rule in the region and its bus: alarmed on failed and dropped invocations. */
  readonly rules: ReadonlyArray<{ readonly name: string; readonly busName: pulumi.Input<string> }>;
  /** The region's schedule group: alarmed on failed schedule targets. */
  readonly scheduleGroupName: pulumi.Input<string>;
  /** One dashboard row per pipeline. */
  readonly pipelines: readonly ObservedPipeline[];
  /** Tags on the alarms and the dashboard. */
  readonly tags: Record<string, string>;
}

/** The dashboard body: per pipeline, batches, upstream→downstream lag, dbt duration, failures, DLQ depth. */
export function dashboardBody(
  region: string,
  pipelines: ReadonlyArray<{ name: string; upstreamArn: string; downstreamArn: string; dlqNames: string[] }>,
) {
  const widgets: object[] = [];
  pipelines.forEach((p, row) => {
    const y = row * 6;
    const metric = (title: string, x: number, metrics: unknown[][], stat: string, period: number) => ({
      type: 'metric',
      x,
      y,
      width: 6,
      height: 6,
      properties: {
        title: `${p.name}: ${title}`,
        region,
        view: 'timeSeries',
        stacked: false,
        stat,
        period,
        metrics,
      },
    });
    widgets.push(
      metric(
        'batches per day',
        0,
        [
          [
            'AWS/States',
            knownMetric('AWS/States', 'ExecutionsSucceeded'),
            'StateMachineArn',
            p.upstreamArn,
            { label: 'upstream' },
          ],
          [
            'AWS/States',
            knownMetric('AWS/States', 'ExecutionsSucceeded'),
            'StateMachineArn',
            p.downstreamArn,
            { label: 'downstream' },
          ],
        ],
        'Sum',
        86_400,
      ),
      // The downstream's duration is the dbt build plus the lock wait; the lag is measured by the
      // watchdog and the control records (etl-ops status), which CloudWatch cannot join.
      metric(
        'downstream duration (dbt)',
        6,
        [
          [
            'AWS/States',
            knownMetric('AWS/States', 'ExecutionTime'),
            'StateMachineArn',
            p.downstreamArn,
            { stat: 'p90' },
          ],
        ],
        'Average',
        3_600,
      ),
      metric(
        'failures',
        12,
        [
          [
            'AWS/States',
            knownMetric('AWS/States', 'ExecutionsFailed'),
            'StateMachineArn',
            p.upstreamArn,
            { label: 'upstream failed' },
          ],
          [
            'AWS/States',
            knownMetric('AWS/States', 'ExecutionsFailed'),
            'StateMachineArn',
            p.downstreamArn,
            { label: 'downstream failed' },
          ],
          [
            'AWS/States',
            knownMetric('AWS/States', 'ExecutionsTimedOut'),
            'StateMachineArn',
            p.downstreamArn,
            { label: 'downstream timed out' },
          ],
        ],
        'Sum',
        3_600,
      ),
      metric(
        'DLQ depth',
        18,
        p.dlqNames.map((q) => [
          'AWS/SQS',
          knownMetric('AWS/SQS', 'ApproximateNumberOfMessagesVisible'),
          'QueueName',
          q,
        ]),
        'Maximum',
        300,
      ),
    );
  });
  widgets.push({
    type: 'metric',
    x: 0,
    y: pipelines.length * 6,
    width: 24,
    height: 6,
    properties: {
      title: 'upstream→downstream lag: upstream completion to downstream start (seconds)',
      region,
      view: 'timeSeries',
      stat: 'Maximum',
      period: 3_600,
      metrics: pipelines.map((p) => [
        PLATFORM_METRIC_NAMESPACE,
        TRIGGER_LAG_METRIC.name,
        TRIGGER_LAG_METRIC.dimension,
        p.name,
      ]),
    },
  });
  return { widgets };
}

/**
 * CloudWatch alarms (to the alerts topic) for every workflow, function, rule and the schedule
 * group, and one dashboard per region. Alarm names are deterministic and role-free.
 */
export class Observability extends pulumi.ComponentResource {
  readonly alarmNames: pulumi.Output<string>[] = [];

  constructor(name: string, args: ObservabilityArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:observability:Observability', name, {}, opts);
    const alarm = (
      id: string,
      description: string,
      namespace: string,
      metricName: string,
      dimensions: Record<string, pulumi.Input<string>>,
    ) => {
      const created = new aws.cloudwatch.MetricAlarm(
        `${name}-${id}`,
        {
          alarmDescription: description,
          namespace,
          metricName,
          dimensions,
          statistic: 'Sum',
          period: 300,
          evaluationPeriods: 1,
          threshold: 1,
          comparisonOperator: 'GreaterThanOrEqualToThreshold',
          treatMissingData: 'notBreaching',
          alarmActions: [args.alarmTopicArn],
          tags: args.tags,
        },
        { parent: this },
      );
      this.alarmNames.push(created.name);
    };

    for (const wf of args.workflows) {
      for (const metric of WORKFLOW_ALARM_METRICS) {
        alarm(`${wf.label}-${metric}`, `${metric} ≥ 1 on ${wf.label}`, 'AWS/States', metric, {
          StateMachineArn: wf.arn,
        });
      }
    }
    for (const fn of args.functions) {
      for (const metric of FUNCTION_ALARM_METRICS) {
        alarm(`${fn.label}-${metric}`, `${metric} ≥ 1 on function ${fn.label}`, 'AWS/Lambda', metric, {
          FunctionName: fn.name,
        });
      }
    }
    for (const rule of args.rules) {
      for (const metric of RULE_ALARM_METRICS) {
        alarm(`${rule.name}-${metric}`, `${metric} ≥ 1 on rule ${rule.name}`, 'AWS/Events', metric, {
          RuleName: rule.name,
          EventBusName: rule.busName,
        });
      }
    }
    for (const metric of SCHEDULER_ALARM_METRICS) {
      alarm(`schedules-${metric}`, `${metric} ≥ 1 in schedule group`, 'AWS/Scheduler', metric, {
        ScheduleGroup: args.scheduleGroupName,
      });
    }

    new aws.cloudwatch.Dashboard(
      `${name}-dashboard`,
      {
        dashboardName: `etl-platform-${args.region}`,
        dashboardBody: pulumi
          .all(
            args.pipelines.map((p) =>
              pulumi
                .all([p.upstreamArn, p.downstreamArn, pulumi.all(p.dlqNames)])
                .apply(([u, d, q]) => ({ name: p.name, upstreamArn: u, downstreamArn: d, dlqNames: q })),
            ),
          )
          .apply((pipelines) => JSON.stringify(dashboardBody(args.region, pipelines))),
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
