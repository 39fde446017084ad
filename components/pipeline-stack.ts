import * as pulumi from '@pulumi/pulumi';
import type { PipelineSettings } from '../regions/settings';
import { insertedParentOptions } from './aliases';
import { DownstreamElt, downstreamArn, type DownstreamSharedRefs } from './downstream-elt';
import { DownstreamTrigger } from './downstream-trigger';
import { pipelineTags } from './naming';
import { TRIGGER_BUILDERS } from './triggers/registry';
import type { DownstreamTriggerArgs, RoleToggle } from './triggers/types';
import { UpstreamEtl, type UpstreamSharedRefs } from './upstream-etl';

/** What every pipeline's trigger shares in the region: the trigger's args less the pipeline's own. */
export type TriggerSharedRefs = Omit<DownstreamTriggerArgs, 'pipeline' | 'mode' | 'downstreamArn'>;

export interface PipelineStackArgs {
  /** The pipeline's settings: tables, schedule, trigger mode, dbt selection. */
  readonly pipeline: PipelineSettings;
  /** What every pipeline's upstream shares in the region. */
  readonly upstream: UpstreamSharedRefs;
  /** What every pipeline's downstream shares in the region. */
  readonly downstream: DownstreamSharedRefs;
  /** What every pipeline's trigger shares in the region; its `tags` are the platform's. */
  readonly trigger: TriggerSharedRefs;
}

/**
 * One pipeline, end to end: its upstream (Glue jobs, workflow, schedule), its downstream workflow
 * and the trigger between them, by the pipeline's trigger mode (components/triggers/registry.ts).
 */
export class PipelineStack extends pulumi.ComponentResource {
  readonly settings: PipelineSettings;
  readonly upstream: UpstreamEtl;
  readonly downstream: DownstreamElt;
  readonly trigger: DownstreamTrigger;
  /** The upstream schedule, for the `failover` output (its state follows the role). */
  readonly scheduleToggle: RoleToggle;

  constructor(name: string, args: PipelineStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:pipeline:PipelineStack', name, {}, opts);
    // The three parts were the platform's own children before this component existed.
    const child = insertedParentOptions(this, opts?.parent);
    const { pipeline } = args;
    this.settings = pipeline;
    const { account, region } = args.upstream;

    this.upstream = new UpstreamEtl(
      `${name}-upstream`,
      {
        pipeline,
        shared: args.upstream,
        downstreamArn: TRIGGER_BUILDERS[pipeline.triggerMode].upstreamStartsDownstream
          ? downstreamArn(account, region, pipeline.name)
          : undefined,
      },
      child,
    );
    this.scheduleToggle = {
      kind: 'schedule',
      name: this.upstream.scheduleName,
      state: args.upstream.scheduleState,
    };
    this.downstream = new DownstreamElt(`${name}-downstream`, { pipeline, shared: args.downstream }, child);
    this.trigger = new DownstreamTrigger(
      `${name}-trigger`,
      {
        ...args.trigger,
        pipeline: pipeline.name,
        mode: pipeline.triggerMode,
        downstreamArn: this.downstream.workflow.arn,
        tags: pipelineTags(args.trigger.tags, pipeline.name),
      },
      child,
    );
    this.registerOutputs({
      upstreamArn: this.upstream.workflow.arn,
      downstreamArn: this.downstream.workflow.arn,
    });
  }
}
