import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { HANDLER_ENV } from '../contracts/env';
import type { IamStatement } from '../contracts/iam';
import { type AccountContext, iamRoleName, WATCHDOG_ALERTS_PURPOSE } from '../contracts/naming';
import type { ToggleState } from '../regions/role';
import type { PipelineSettings, PlatformSettings } from '../regions/settings';
import { watchdogAlertWorkflow } from '../state-machines/watchdog-alerts';
import { insertedParentOptions } from './aliases';
import { DeadLetterQueue } from './dead-letter-queue';
import { HandlerFunction } from './handler-function';
import type { RoleToggle } from './triggers/types';
import { Workflow } from './workflow';
import { WorkflowSchedule } from './workflow-schedule';

/** The schedule's physical name, listed in the `failover` output. */
export const WATCHDOG_SCHEDULE_NAME = 'lateness-watchdog';

/** A pipeline as the watchdog checks it. */
export interface WatchedPipeline {
  /** The pipeline's settings (its schedule says when a batch is due). */
  readonly settings: PipelineSettings;
  /** Its downstream workflow, which the watchdog starts for a lost trigger. */
  readonly downstreamArn: pulumi.Input<string>;
}

export interface LatenessWatchdogArgs {
  /** This stack's region; appended to the schedule role's name. */
  readonly region: string;
  /** Account and partition of the deploying credentials. */
  readonly account: AccountContext;
  /** Every pipeline in the region. */
  readonly pipelines: readonly WatchedPipeline[];
  /** The config's `watchdog` settings: tick rate, grace and lost-trigger thresholds. */
  readonly watchdog: PlatformSettings['watchdog'];
  /** The downstream execution's own bound: a claim CLAIMED for longer is stuck. */
  readonly maxDownstreamSeconds: number;
  /** The control table the watchdog reads (records and the status index) and writes (its marks). */
  readonly controlTable: {
    readonly name: pulumi.Input<string>;
    readonly arn: pulumi.Input<string>;
    readonly statusIndexArn: pulumi.Input<string>;
  };
  /**
   * The alerts topic and its KMS key: the watchdog's alert workflow publishes what it finds there,
   * and the alarms of the watchdog's parts notify it.
   */
  readonly alerts: { readonly topicArn: pulumi.Input<string>; readonly keyArn: pulumi.Input<string> };
  /** Step Functions log level of the alert workflow (the platform's `workflowLogLevel`). */
  readonly workflowLogLevel: 'ERROR' | 'ALL';
  /** The platform events' `source`, for the events the watchdog re-publishes. */
  readonly eventSource: string;
  /** The region's Scheduler schedule group. */
  readonly scheduleGroupName: pulumi.Input<string>;
  /** ENABLED only where schedules run (the active region). */
  readonly scheduleState: ToggleState;
  /** Retention of the function's log group. */
  readonly logRetentionDays: number;
  /** Tags on the function, its DLQ and its schedule. */
  readonly tags: Record<string, string>;
}

/** The function's environment (handlers/watchdog.ts reads it); alerts go to the alert workflow. */
export function watchdogEnvironment(
  args: LatenessWatchdogArgs,
  alertWorkflowArn: pulumi.Input<string>,
): Record<string, pulumi.Input<string>> {
  return {
    [HANDLER_ENV.CONTROL_TABLE_NAME]: args.controlTable.name,
    [HANDLER_ENV.PIPELINES_JSON]: pulumi.jsonStringify(
      args.pipelines.map(({ settings, downstreamArn }) => ({
        name: settings.name,
        expression: settings.schedule.expression,
        timezone: settings.schedule.timezone,
        graceMinutes: args.watchdog.graceMinutes + settings.schedule.flexibleWindowMinutes,
        downstreamArn,
      })),
    ),
    [HANDLER_ENV.LOST_TRIGGER_MINUTES]: String(args.watchdog.lostTriggerMinutes),
    [HANDLER_ENV.MAX_DOWNSTREAM_MINUTES]: String(Math.ceil(args.maxDownstreamSeconds / 60)),
    [HANDLER_ENV.ALERTS_STATE_MACHINE_ARN]: alertWorkflowArn,
    [HANDLER_ENV.EVENT_SOURCE]: args.eventSource,
  };
}

/**
 * What the watchdog may do: read and mark control records, start lost downstreams, and start its
 * alert workflow (the workflow's own role publishes to the topic; the function has no SNS or KMS
 * permission).
 */
export function watchdogStatements(
  args: LatenessWatchdogArgs,
  failureDlqArn: pulumi.Input<string>,
  alertWorkflowArn: pulumi.Input<string>,
): IamStatement[] {
  return [
    {
      Sid: 'ControlRecords',
      Effect: 'Allow',
      Action: ['dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
      Resource: [args.controlTable.arn],
    },
    {
      Sid: 'StatusIndexAndHistory',
      Effect: 'Allow',
      Action: ['dynamodb:Query'],
      Resource: [args.controlTable.statusIndexArn, args.controlTable.arn],
    },
    {
      Sid: 'StartLostDownstreams',
      Effect: 'Allow',
      Action: ['states:StartExecution'],
      Resource: args.pipelines.map((p) => p.downstreamArn),
    },
    { Sid: 'Alerts', Effect: 'Allow', Action: ['states:StartExecution'], Resource: [alertWorkflowArn] },
    // The on-failure destination is written with the function's own role.
    { Sid: 'OnFailureDestination', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: [failureDlqArn] },
  ];
}

/** A Scheduler rate expression for a tick every `minutes`. */
export function rateExpression(minutes: number): string {
  return minutes === 1 ? 'rate(1 minute)' : `rate(${minutes} minutes)`;
}

/**
 * The lateness watchdog (docs/watchdog.md): one cheap Lambda tick that reports late upstream
 * batches, lost triggers and overrunning downstream runs. ENABLED only where schedules run.
 */
export class LatenessWatchdog extends pulumi.ComponentResource {
  readonly function: HandlerFunction;
  /** The workflow that publishes the watchdog's alerts to the alerts topic (alarmed by Observability). */
  readonly alertWorkflow: Workflow;
  /** The tick schedule, for the `failover` output. */
  readonly toggle: RoleToggle;

  constructor(name: string, args: LatenessWatchdogArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:watchdog:LatenessWatchdog', name, {}, opts);
    // These were the platform's own children before this component existed.
    const child = insertedParentOptions(this, opts?.parent);
    const tickSeconds = 60 * args.watchdog.rateMinutes;

    // New with this component (no former parent to alias): the alerts leave the Lambda through it.
    this.alertWorkflow = new Workflow(
      `${name}-alerts`,
      {
        ...watchdogAlertWorkflow({
          alertTopic: { arn: args.alerts.topicArn, kmsKeyArn: args.alerts.keyArn },
        }),
        purpose: WATCHDOG_ALERTS_PURPOSE,
        region: args.region,
        logLevel: args.workflowLogLevel,
        logRetentionDays: args.logRetentionDays,
        tags: args.tags,
      },
      { parent: this },
    );

    // Scheduler invokes Lambda asynchronously: no retries (the next tick re-checks everything), and
    // a failed tick lands in its own alarmed DLQ rather than vanishing.
    const dlq = new DeadLetterQueue(
      `${name}-async-dlq`,
      { purpose: 'lateness watchdog failed ticks', alarmTopicArn: args.alerts.topicArn, tags: args.tags },
      child,
    );
    // Named as the component itself: the function's logical name from before the component existed.
    this.function = new HandlerFunction(
      name,
      {
        handler: 'watchdog',
        purpose: 'watchdog',
        region: args.region,
        logRetentionDays: args.logRetentionDays,
        timeoutSeconds: 60,
        environment: watchdogEnvironment(args, this.alertWorkflow.arn),
        statements: watchdogStatements(args, dlq.arn, this.alertWorkflow.arn),
        tags: args.tags,
      },
      child,
    );
    new aws.lambda.FunctionEventInvokeConfig(
      `${name}-async`,
      {
        functionName: this.function.name,
        maximumRetryAttempts: 0,
        maximumEventAgeInSeconds: tickSeconds,
        destinationConfig: { onFailure: { destination: dlq.arn } },
      },
      child,
    );
    new WorkflowSchedule(
      `${name}-schedule`,
      {
        scheduleName: WATCHDOG_SCHEDULE_NAME,
        groupName: args.scheduleGroupName,
        description: 'Late upstream batches, lost triggers and overrunning downstream runs',
        expression: rateExpression(args.watchdog.rateMinutes),
        timezone: 'UTC',
        flexibleWindowMinutes: 0,
        state: args.scheduleState,
        targetArn: this.function.arn,
        targetAction: 'lambda:InvokeFunction',
        input: JSON.stringify({ scheduledTime: '<aws.scheduler.scheduled-time>' }),
        retry: { maximumRetryAttempts: 0, maximumEventAgeSeconds: tickSeconds },
        roleName: iamRoleName('sched-watchdog', args.region),
        accountId: args.account.accountId,
        alarmTopicArn: args.alerts.topicArn,
        tags: args.tags,
      },
      child,
    );
    this.toggle = { kind: 'schedule', name: WATCHDOG_SCHEDULE_NAME, state: args.scheduleState };
    this.registerOutputs({ functionName: this.function.name, alertWorkflowArn: this.alertWorkflow.arn });
  }
}
