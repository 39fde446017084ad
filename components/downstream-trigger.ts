import * as pulumi from '@pulumi/pulumi';
import type { ToggleState } from '../regions/role';
import type { HandlerFunction } from './handler-function';
import { type AccountContext, forwardRuleName, iamRoleName } from '../contracts/naming';
import { TRIGGER_BUILDERS } from './triggers/registry';
import { eventsRole, forwardPattern, RuleWithTarget } from './triggers/rule-with-target';
import type { DownstreamTriggerArgs, RoleToggle } from './triggers/types';
import type { Workflow } from './workflow';

export type { DownstreamTriggerArgs } from './triggers/types';

/**
 * Starts a pipeline's downstream workflow when its upstream batch succeeds, by the configured mode
 * (components/triggers/registry.ts). Every mode may deliver twice: the downstream workflow's fence,
 * claim and lock make it exactly once. Declares only the resources of its own mode.
 */
export class DownstreamTrigger extends pulumi.ComponentResource {
  /** Rules and schedules whose state follows the role, for the `failover` output. */
  readonly toggles: readonly RoleToggle[];
  /** What this mode declared, for alarms and the dashboard. */
  readonly workflows: readonly Workflow[];
  readonly functions: readonly HandlerFunction[];
  readonly ruleNames: readonly string[];
  readonly dlqNames: readonly pulumi.Output<string>[];

  constructor(name: string, args: DownstreamTriggerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:triggers:DownstreamTrigger', name, {}, opts);
    const parts = TRIGGER_BUILDERS[args.mode].build(name, args, this);
    this.toggles = parts.toggles;
    this.workflows = parts.workflows;
    this.functions = parts.functions;
    this.dlqNames = parts.dlqNames;
    this.ruleNames = parts.toggles.filter((t) => t.kind === 'rule').map((t) => t.name);
    this.registerOutputs({});
  }
}

export interface ForwardingArgs {
  /** This stack's region: the forwarded events' origin. */
  readonly region: string;
  /** The region whose bus (same name) receives the events. */
  readonly peerRegion: string;
  /** Account and partition of the deploying credentials. */
  readonly account: AccountContext;
  /** The platform events' `source`. */
  readonly eventSource: string;
  /** The platform bus's name, the same in both regions. */
  readonly busName: string;
  /** ENABLED only in the active region. */
  readonly ruleState: ToggleState;
  /** Topic that receives the forwarding DLQ's depth alarm. */
  readonly alarmTopicArn: pulumi.Input<string>;
  /** Tags on the rule, role and DLQ. */
  readonly tags: Record<string, string>;
}

/**
 * Always-on forwarding of this region's platform events to the peer region's bus (same name), so
 * the standby's archive holds everything the active region saw and a replay after failover
 * re-delivers the gap. ENABLED only in the active region.
 */
export class CrossRegionForwarding extends pulumi.ComponentResource {
  readonly ruleName: string;
  readonly dlqName: pulumi.Output<string>;

  constructor(name: string, args: ForwardingArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:triggers:CrossRegionForwarding', name, {}, opts);
    const { partition, accountId } = args.account;
    const peerBusArn = pulumi.interpolate`arn:${partition}:events:${args.peerRegion}:${accountId}:event-bus/${args.busName}`;
    this.ruleName = forwardRuleName(args.peerRegion);
    const role = eventsRole(
      `${name}-events`,
      {
        roleName: iamRoleName('forward-events', args.region),
        accountId,
        action: 'events:PutEvents',
        resources: [peerBusArn],
        tags: args.tags,
      },
      { parent: this },
    );
    const forward = new RuleWithTarget(
      `${name}-forward`,
      {
        busName: args.busName,
        ruleName: this.ruleName,
        description: `Forwards this region's platform events to ${args.peerRegion}`,
        pattern: forwardPattern(args.eventSource, args.region),
        state: args.ruleState,
        targetArn: peerBusArn,
        roleArn: role.arn,
        // No retry policy: the target is an event bus (see RuleTargetArgs.retry). The DLQ stays.
        alarmTopicArn: args.alarmTopicArn,
        ruleArn: pulumi.interpolate`arn:${partition}:events:${args.region}:${accountId}:rule/${args.busName}/${this.ruleName}`,
        tags: args.tags,
      },
      { parent: this },
    );
    this.dlqName = forward.dlq.queue.name;
    this.registerOutputs({});
  }
}
