import type * as pulumi from '@pulumi/pulumi';
import type { AccountContext } from '../../contracts/naming';
import type { TriggerMode } from '../../contracts/trigger-modes';
import type { ToggleState } from '../../regions/role';
import type { HandlerFunction } from '../handler-function';
import type { Workflow } from '../workflow';

/** A retry policy of an EventBridge target or a Scheduler schedule. */
export interface TargetRetry {
  /** Retries after the first attempt (0-185). */
  readonly maximumRetryAttempts: number;
  /** How long an undelivered event is retried before it goes to the DLQ (60-86400 s). */
  readonly maximumEventAgeSeconds: number;
}

/** Everything a trigger mode may need; each mode reads only its part. */
export interface DownstreamTriggerArgs {
  /** The pipeline whose downstream this trigger starts; names the trigger's rule, schedule and roles. */
  readonly pipeline: string;
  /** Which builder declares the trigger (`defaultTriggerMode` or the pipeline's `triggerMode`). */
  readonly mode: TriggerMode;
  /** This stack's region; appended to IAM role names and used in ARNs. */
  readonly region: string;
  /** Account and partition of the deploying credentials. */
  readonly account: AccountContext;
  /** The platform events' `source`, matched by the trigger rule. */
  readonly eventSource: string;
  /** The platform event bus the trigger rule listens on. */
  readonly bus: { readonly name: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  /** The pipeline's downstream workflow: what every mode eventually starts. */
  readonly downstreamArn: pulumi.Input<string>;
  /** State of the trigger rule: ENABLED only in the active region. */
  readonly ruleState: ToggleState;
  /** State of the poll schedule (schedule-poll): ENABLED only in the active region. */
  readonly scheduleState: ToggleState;
  /** Retry policy of the poll schedule's target (config `scheduleRetry`). */
  readonly scheduleRetry: TargetRetry;
  /** The region's Scheduler schedule group. */
  readonly scheduleGroupName: pulumi.Input<string>;
  /** Mode-specific settings (config `triggerOptions`). */
  readonly options: {
    /** schedule-poll: the poll schedule's expression, e.g. `rate(5 minutes)`. */
    readonly pollExpression: string;
    /** schedule-poll: the most batches one poll starts. */
    readonly pollBatchLimit: number;
    /** rule-intermediate-sfn: starts of the downstream before the intermediate gives up and alerts. */
    readonly intermediateMaxAttempts: number;
    /** rule-intermediate-sfn: wait between those starts. */
    readonly intermediateRetryWaitSeconds: number;
  };
  /** The control table: the poller reads the upstream records from it. */
  readonly controlTable: { readonly name: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  /** KMS key of the alerts topic, for workflows that publish alerts. */
  readonly alertKeyArn: pulumi.Input<string>;
  /** Step Functions log level of the mode's own workflows. */
  readonly logLevel: 'ERROR' | 'ALL';
  /** Retry policy of the trigger rule's target (config `triggerRetry`). */
  readonly retry: TargetRetry;
  /** rule-lambda: the starter's asynchronous invocation retries (config `lambdaAsync`). */
  readonly lambdaAsync: TargetRetry;
  /** Topic for DLQ alarms and the intermediate workflow's alerts. */
  readonly alarmTopicArn: pulumi.Input<string>;
  /** Retention of the mode's log groups. */
  readonly logRetentionDays: number;
  /** Tags on the mode's resources (the platform's tags plus `pipeline`). */
  readonly tags: Record<string, string>;
}

/** A rule or schedule whose state follows the region's role; listed in the `failover` output. */
export interface RoleToggle {
  readonly kind: 'rule' | 'schedule';
  readonly name: string;
  readonly state: ToggleState;
}

/** What a mode declared, for the `failover` output, alarms and the dashboard. */
export interface TriggerParts {
  /** Rules and schedules whose state follows the role. */
  readonly toggles: readonly RoleToggle[];
  /** The mode's own workflows (alarmed like every workflow). */
  readonly workflows: readonly Workflow[];
  /** The mode's own functions (alarmed like every function). */
  readonly functions: readonly HandlerFunction[];
  /** Its dead-letter queues, shown on the pipeline's dashboard row. */
  readonly dlqNames: readonly pulumi.Output<string>[];
}

/** A mode that declares nothing of its own. */
export const NO_TRIGGER_PARTS: TriggerParts = { toggles: [], workflows: [], functions: [], dlqNames: [] };

/**
 * One trigger mode: how the downstream workflow is started when the upstream batch succeeds. Every
 * mode may deliver twice; the downstream's fence, claim and lock make the dbt run exactly once.
 */
export interface TriggerBuilder {
  /**
   * The upstream workflow's last state starts the downstream itself, so the upstream is given the
   * downstream's ARN.
   */
  readonly upstreamStartsDownstream: boolean;
  /**
   * The start latency the mode adds, as one Markdown sentence citing AWS's documentation, for the
   * generated comparison (npm run compare-triggers); `pollExpression` is the deployed poll schedule's.
   */
  latency(deployed: { readonly pollExpression?: string }): string;
  /**
   * Declares the mode's resources as children of `parent`, each named `${name}-<part>`, and
   * returns what it declared.
   */
  build(name: string, args: DownstreamTriggerArgs, parent: pulumi.Resource): TriggerParts;
}
