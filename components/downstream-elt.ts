import * as pulumi from '@pulumi/pulumi';
import type { PipelineSettings } from '../regions/settings';
import {
  downstreamTimeoutSeconds,
  downstreamWorkflow,
  type DownstreamDbtSettings,
} from '../state-machines/downstream';
import { type AccountContext, downstreamWorkflowName } from '../contracts/naming';
import { pipelineTags } from './naming';
import { Workflow } from './workflow';

/** What every pipeline's downstream shares in the region. */
export interface DownstreamSharedRefs {
  /** This stack's region. */
  readonly region: string;
  /** Account and partition of the deploying credentials. */
  readonly account: AccountContext;
  /** The `source` of the events the downstream publishes and accepts. */
  readonly eventSource: string;
  /** Step Functions log level of the downstream workflows. */
  readonly logLevel: 'ERROR' | 'ALL';
  /** Retention of the workflows' log groups. */
  readonly logRetentionDays: number;
  /** The control table: fence, claim, pipeline lock, run records. */
  readonly controlTable: { readonly name: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  /** The region's shared functions the downstream calls. */
  readonly functions: {
    readonly batchContext: pulumi.Input<string>;
    readonly checkConsistency: pulumi.Input<string>;
    readonly startDbtRun: pulumi.Input<string>;
    readonly getDbtRun: pulumi.Input<string>;
  };
  /** The platform bus the downstream publishes its outcome on. */
  readonly bus: { readonly arn: pulumi.Input<string> };
  /** The alerts topic and its key. */
  readonly alerts: { readonly topicArn: pulumi.Input<string>; readonly keyArn: pulumi.Input<string> };
  /** The config's `dbt` settings (docs/config.md); the workflow waits for the app's callback. */
  readonly dbt: Readonly<DownstreamDbtSettings>;
  /** The platform's tags; each pipeline adds `pipeline`. */
  readonly tags: Record<string, string>;
}

/** Lock wait + replication wait + one dbt wait per allowed attempt + bookkeeping (state-machines/downstream.ts). */
export { downstreamTimeoutSeconds } from '../state-machines/downstream';

/** The deterministic ARN, so triggers (and the upstream's last state) can name it before it exists. */
export function downstreamArn(
  account: AccountContext,
  region: string,
  pipeline: string,
): pulumi.Output<string> {
  return pulumi.interpolate`arn:${account.partition}:states:${region}:${account.accountId}:stateMachine:${downstreamWorkflowName(pipeline)}`;
}

export interface DownstreamEltArgs {
  /** The pipeline's settings: expected tables and dbt selection. */
  readonly pipeline: PipelineSettings;
  /** What every pipeline's downstream shares in the region. */
  readonly shared: DownstreamSharedRefs;
}

/**
 * One pipeline's downstream workflow. One per pipeline keeps IAM and the pipeline lock per
 * pipeline; its first states are the listener any trigger mode delivers to (see docs/downstream.md).
 */
export class DownstreamElt extends pulumi.ComponentResource {
  readonly workflow: Workflow;

  constructor(name: string, args: DownstreamEltArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:downstream:DownstreamElt', name, {}, opts);
    const { pipeline, shared } = args;
    const { definition, statements } = downstreamWorkflow({
      region: shared.region,
      eventSource: shared.eventSource,
      pipeline: { name: pipeline.name, expectedTables: [...pipeline.tables], dbtSelect: pipeline.dbtSelect },
      controlTable: shared.controlTable,
      functions: {
        batchContext: { arn: shared.functions.batchContext },
        checkConsistency: { arn: shared.functions.checkConsistency },
        startDbtRun: { arn: shared.functions.startDbtRun },
        getDbtRun: { arn: shared.functions.getDbtRun },
      },
      bus: shared.bus,
      alerts: { arn: shared.alerts.topicArn, kmsKeyArn: shared.alerts.keyArn },
      dbt: {
        maxRunMinutes: shared.dbt.maxRunMinutes,
        maxQueueMinutes: shared.dbt.maxQueueMinutes,
        heartbeatSeconds: shared.dbt.heartbeatSeconds,
        maxLostRetries: shared.dbt.maxLostRetries,
        lockWaitMinutes: shared.dbt.lockWaitMinutes,
        lockLeaseMinutes: shared.dbt.lockLeaseMinutes,
        replicationWaitMinutes: shared.dbt.replicationWaitMinutes,
      },
      timeoutSeconds: downstreamTimeoutSeconds(shared.dbt),
    });
    this.workflow = new Workflow(
      `${name}-workflow`,
      {
        definition,
        statements,
        purpose: `${pipeline.name}-downstream`,
        region: shared.region,
        logLevel: shared.logLevel,
        logRetentionDays: shared.logRetentionDays,
        tags: pipelineTags(shared.tags, pipeline.name),
      },
      { parent: this },
    );
    this.registerOutputs({ arn: this.workflow.arn });
  }
}
