import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { REGION_STACK, STACKS } from '../contracts/regions';
import type { PlatformSettings } from '../regions/settings';
import type { ToggleState } from '../regions/role';
import { DbtApp } from '../k8s/dbt-app';
import { DbtImage } from '../k8s/dbt-image';
import { Alerts } from './alerts';
import { ControlTable } from './control-table';
import { downstreamTimeoutSeconds } from './downstream-elt';
import { CrossRegionForwarding } from './downstream-trigger';
import { PlatformEventBus } from './event-bus';
import { HandlerFunction } from './handler-function';
import { LatenessWatchdog } from './lateness-watchdog';
import { Observability, type ObservabilityArgs } from './observability';
import { PipelineStack } from './pipeline-stack';
import { declareSharedParts, pipelineSharedRefs, type SharedParts } from './shared-parts';
import type { RoleToggle } from './triggers/types';

export type { RoleToggle } from './triggers/types';

export interface FailoverOutput {
  readonly stack: string;
  readonly region: string;
  readonly role: string;
  readonly activeRegion: string;
  readonly peerRegion: string;
  readonly homeRegion: string;
  readonly fence: { readonly activeRegion: string; readonly epoch: number };
  readonly toggles: ReadonlyArray<{ kind: string; name: string; state: ToggleState }>;
  readonly runbook: string;
}

/** The failover and failback commands, with each region's stack from `stackFor`. */
export function runbook(settings: PlatformSettings, stackFor: (region: string) => string): string {
  const { activeRegion, regions } = settings;
  const standby = regions.find((r) => r !== activeRegion) ?? activeRegion;
  const flip = (to: string) =>
    [
      ...regions.map((r) => `pulumi config set activeRegion ${to} -s ${stackFor(r)}`),
      `pulumi up -s ${stackFor(to)}        # new active region first: fence, schedules, rules`,
      `pulumi up -s ${stackFor(to === activeRegion ? standby : activeRegion)}        # skip if that region is unreachable; run it when it is back`,
    ].join('\n');
  return [
    `Active region: ${activeRegion}. Standby: ${standby}.`,
    `Fail over to ${standby}:`,
    flip(standby),
    `Fail back to ${activeRegion}:`,
    flip(activeRegion),
    "Then replay the gap from the new active region's archive (docs/runbooks/failover.md).",
  ].join('\n');
}

/**
 * The stack deploying a region: a committed stack names its peers by the map in contracts/regions.ts;
 * a region outside the map, or a stack outside it, follows the convention `<prefix>-<east|west>`.
 */
export function defaultStackFor(settings: PlatformSettings): (region: string) => string {
  const known: Readonly<Record<string, string>> = (STACKS as readonly string[]).includes(settings.stack)
    ? REGION_STACK
    : {};
  const prefix = settings.stack.replace(/-(east|west)$/, '');
  return (region: string) => known[region] ?? `${prefix}-${region.split('-')[1]}`;
}

/** The dashboard and alarms: every workflow, function, rule and pipeline the region declared. */
export function observabilityArgs(
  settings: PlatformSettings,
  shared: SharedParts,
  pipelines: readonly PipelineStack[],
  extra: {
    readonly forwardingRuleName: string;
    readonly watchdog: HandlerFunction;
    readonly watchdogAlerts: { readonly purpose: string; readonly arn: pulumi.Input<string> };
  },
): ObservabilityArgs {
  const triggers = pipelines.map((p) => p.trigger);
  return {
    region: settings.region,
    alarmTopicArn: shared.alerts.topicArn,
    workflows: [
      ...pipelines.map((p) => p.upstream.workflow),
      ...pipelines.map((p) => p.downstream.workflow),
      ...triggers.flatMap((t) => t.workflows),
      extra.watchdogAlerts,
    ].map((w) => ({ label: w.purpose, arn: w.arn })),
    functions: [
      shared.controlTable.fenceWriter,
      shared.batchContext,
      shared.dbtFunctions.checkConsistency,
      shared.dbtFunctions.startDbtRun,
      shared.dbtFunctions.getDbtRun,
      extra.watchdog,
      ...triggers.flatMap((t) => t.functions),
    ].map((f) => ({ label: f.purpose, name: f.name })),
    rules: [...triggers.flatMap((t) => t.ruleNames), extra.forwardingRuleName].map((rule) => ({
      name: rule,
      busName: shared.bus.busName,
    })),
    scheduleGroupName: shared.scheduleGroupName,
    pipelines: pipelines.map((p) => ({
      name: p.settings.name,
      upstreamArn: p.upstream.workflow.arn,
      downstreamArn: p.downstream.workflow.arn,
      dlqNames: [p.upstream.dlq.queue.name, ...p.trigger.dlqNames],
    })),
    tags: settings.tags,
  };
}

/** The `failover` stack output: where the fence points, what each toggle is, how to flip them. */
export function failoverOutput(
  settings: PlatformSettings,
  fenceEpoch: pulumi.Output<number>,
  toggles: readonly RoleToggle[],
): pulumi.Output<FailoverOutput> {
  const { role } = settings;
  return pulumi
    .all([fenceEpoch, pulumi.all(toggles.map((t) => pulumi.all([t.kind, t.name, t.state])))])
    .apply(([epoch, resolved]) => ({
      stack: settings.stack,
      region: role.region,
      role: role.role,
      activeRegion: role.activeRegion,
      peerRegion: role.peerRegion,
      homeRegion: role.homeRegion,
      fence: { activeRegion: role.activeRegion, epoch },
      toggles: resolved.map(([kind, name, state]) => ({ kind, name, state })),
      runbook: runbook(settings, defaultStackFor(settings)),
    }));
}

/**
 * Everything one region runs. Built identically in both regions; only `settings.role` values
 * differ between the active and the passive one. It declares the shared parts once, then one
 * `PipelineStack` per pipeline, the cross-region forwarding, the `LatenessWatchdog` and the
 * dashboard.
 */
export class RegionalPlatform extends pulumi.ComponentResource {
  readonly shared: SharedParts;
  readonly alerts: Alerts;
  readonly bus: PlatformEventBus;
  readonly controlTable: ControlTable;
  readonly dbtImage: DbtImage;
  readonly dbtApp: DbtApp;
  readonly pipelines: readonly PipelineStack[];
  readonly watchdog: LatenessWatchdog;
  /** Schedules and rules whose state follows the role, in the order the `failover` output lists them. */
  readonly toggles: readonly RoleToggle[];
  readonly failover: pulumi.Output<FailoverOutput>;

  constructor(name: string, settings: PlatformSettings, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:index:RegionalPlatform', name, {}, opts);
    const parent = { parent: this };
    const shared = declareSharedParts(name, settings, this);
    this.shared = shared;
    this.alerts = shared.alerts;
    this.bus = shared.bus;
    this.controlTable = shared.controlTable;
    this.dbtImage = shared.dbtImage;
    this.dbtApp = shared.dbtApp;

    const refs = pipelineSharedRefs(settings, shared);
    this.pipelines = settings.pipelines.map(
      (pipeline) => new PipelineStack(`${name}-${pipeline.name}`, { pipeline, ...refs }, parent),
    );
    const forwarding = new CrossRegionForwarding(
      `${name}-forwarding`,
      {
        region: settings.region,
        peerRegion: settings.role.peerRegion,
        account: shared.account,
        eventSource: settings.eventSource,
        busName: settings.eventBusName,
        ruleState: settings.role.ruleState,
        alarmTopicArn: shared.alerts.topicArn,
        tags: settings.tags,
      },
      parent,
    );
    this.watchdog = new LatenessWatchdog(
      `${name}-watchdog`,
      {
        region: settings.region,
        account: shared.account,
        pipelines: this.pipelines.map((p) => ({
          settings: p.settings,
          downstreamArn: p.downstream.workflow.arn,
        })),
        watchdog: settings.watchdog,
        maxDownstreamSeconds: downstreamTimeoutSeconds(settings.dbt),
        controlTable: {
          name: shared.controlTable.tableName,
          arn: shared.controlTable.tableArn,
          statusIndexArn: shared.controlTable.statusIndexArn,
        },
        alerts: { topicArn: shared.alerts.topicArn, keyArn: shared.alerts.key.arn },
        workflowLogLevel: settings.workflowLogLevel,
        eventSource: settings.eventSource,
        scheduleGroupName: shared.scheduleGroupName,
        scheduleState: settings.role.scheduleState,
        logRetentionDays: settings.logRetentionDays,
        tags: settings.tags,
      },
      parent,
    );
    new Observability(
      `${name}-observability`,
      observabilityArgs(settings, shared, this.pipelines, {
        forwardingRuleName: forwarding.ruleName,
        watchdog: this.watchdog.function,
        watchdogAlerts: this.watchdog.alertWorkflow,
      }),
      parent,
    );

    // Last: every part above has declared its toggles.
    this.toggles = [
      ...this.pipelines.map((p) => p.scheduleToggle),
      ...this.pipelines.flatMap((p) => p.trigger.toggles),
      { kind: 'rule', name: forwarding.ruleName, state: settings.role.ruleState },
      this.watchdog.toggle,
    ];
    this.failover = failoverOutput(settings, shared.controlTable.fenceEpoch, this.toggles);
    this.registerOutputs({ failover: this.failover, dbtApiUrl: this.dbtApp.apiUrl });
  }
}

/** The explicit provider every resource uses: this stack's region and the common tags. */
export function regionalProvider(settings: PlatformSettings): aws.Provider {
  return new aws.Provider(`aws-${settings.region}`, {
    region: settings.region as aws.Region,
    defaultTags: { tags: { ...settings.tags } },
  });
}
