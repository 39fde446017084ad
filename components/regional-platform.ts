import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { PlatformSettings } from '../regions/settings';
import type { ToggleState } from '../regions/role';
import { Alerts } from './alerts';
import { ControlTable } from './control-table';
import { PlatformEventBus } from './event-bus';
import { DataLake } from './data-lake';
import { DeadLetterQueue } from './dead-letter-queue';
import { DbtFunctions } from './dbt-functions';
import { DownstreamElt, downstreamArn, downstreamTimeoutSeconds } from './downstream-elt';
import { CrossRegionForwarding, DownstreamTrigger } from './downstream-trigger';
import { HandlerFunction } from './handler-function';
import { accountContext, type AccountContext } from './naming';
import { Observability } from './observability';
import { Snowflake } from './snowflake';
import { UpstreamEtl } from './upstream-etl';
import { WorkflowSchedule } from './workflow-schedule';
import { iamRoleName } from './naming';
import { DbtApp } from '../k8s/dbt-app';
import { DbtImage } from '../k8s/dbt-image';

/** A schedule or rule whose state follows the region's role; listed in the `failover` output. */
export interface RoleToggle {
  readonly kind: 'schedule' | 'rule';
  readonly name: pulumi.Input<string>;
  readonly state: ToggleState;
}

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

/** Stack names follow the region convention: prod-east is us-east-1, prod-west is us-west-1. */
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

export function defaultStackFor(settings: PlatformSettings): (region: string) => string {
  // The stack naming used by this project: prod-east / prod-west; anything else keeps this stack's prefix.
  const prefix = settings.stack.replace(/-(east|west)$/, '');
  return (region: string) => `${prefix}-${region.split('-')[1]}`;
}

/**
 * Everything one region runs. Built identically in both regions; only `settings.role` values
 * differ between the active and the passive one.
 */
export class RegionalPlatform extends pulumi.ComponentResource {
  readonly account: AccountContext;
  readonly alerts: Alerts;
  readonly bus: PlatformEventBus;
  readonly controlTable: ControlTable;
  readonly lake: DataLake;
  readonly snowflake: Snowflake;
  readonly batchContext: HandlerFunction;
  readonly upstreams: UpstreamEtl[];
  readonly dbtImage: DbtImage;
  readonly dbtApp: DbtApp;
  readonly dbtFunctions: DbtFunctions;
  readonly downstreams: DownstreamElt[];
  readonly toggles: RoleToggle[] = [];
  readonly failover: pulumi.Output<FailoverOutput>;

  constructor(name: string, settings: PlatformSettings, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:index:RegionalPlatform', name, {}, opts);
    const parent = { parent: this };
    this.account = accountContext(parent);

    this.alerts = new Alerts(
      `${name}-alerts`,
      { email: settings.alertEmail, account: this.account, region: settings.region },
      parent,
    );

    this.bus = new PlatformEventBus(
      `${name}-events`,
      {
        busName: settings.eventBusName,
        eventSource: settings.eventSource,
        archiveRetentionDays: settings.archiveRetentionDays,
        account: this.account,
      },
      parent,
    );

    this.snowflake = new Snowflake(
      `${name}-snowflake`,
      {
        credentials: settings.secrets.snowflakeCredentials,
        region: settings.region,
        peerRegion: settings.role.peerRegion,
        isHome: settings.role.isHome,
        account: this.account,
      },
      parent,
    );
    this.controlTable = new ControlTable(
      `${name}-control`,
      {
        tableName: settings.controlTableName,
        region: settings.region,
        isHome: settings.role.isHome,
        peerRegion: settings.role.peerRegion,
        activeRegion: settings.activeRegion,
        stack: settings.stack,
        account: this.account,
        logRetentionDays: settings.logRetentionDays,
        snowflakeSecret: { name: this.snowflake.secretName, arnPattern: this.snowflake.secretArnPattern },
        fenceDependsOn: this.snowflake.secretReady,
      },
      parent,
    );

    this.lake = new DataLake(
      `${name}-data`,
      {
        region: settings.region,
        peerRegion: settings.role.peerRegion,
        account: this.account,
        replicateToPeer: settings.lakeReplication,
        tags: { ...settings.tags },
      },
      parent,
    );
    // Shared by every workflow: the batch id and lease times (ASL has no date arithmetic).
    this.batchContext = new HandlerFunction(
      `${name}-batch-context`,
      {
        handler: 'batch-context',
        purpose: 'batch-context',
        region: settings.region,
        statements: [],
        logRetentionDays: settings.logRetentionDays,
      },
      parent,
    );
    const scheduleGroup = new aws.scheduler.ScheduleGroup(
      `${name}-schedules`,
      { name: 'etl-platform' },
      parent,
    );

    this.upstreams = settings.pipelines.map(
      (pipeline) =>
        new UpstreamEtl(
          `${name}-${pipeline.name}-upstream`,
          {
            pipeline,
            downstreamArn:
              pipeline.triggerMode === 'upstream-direct'
                ? downstreamArn(this.account, settings.region, pipeline.name)
                : undefined,
            shared: {
              region: settings.region,
              account: this.account,
              eventSource: settings.eventSource,
              logLevel: settings.workflowLogLevel,
              logRetentionDays: settings.logRetentionDays,
              scheduleState: settings.role.scheduleState,
              scheduleRetry: settings.scheduleRetry,
              scheduleGroupName: scheduleGroup.name,
              controlTable: { name: this.controlTable.tableName, arn: this.controlTable.tableArn },
              batchContextFunctionArn: this.batchContext.arn,
              lake: { bucket: this.lake.lake.name, arn: this.lake.lake.arn, kmsKeyArn: this.lake.key.arn },
              artifacts: { bucket: this.lake.artifacts.name, arn: this.lake.artifacts.arn },
              scripts: {
                cdaToLake: this.lake.scriptLocations['cda_to_lake.py'],
                lakeToSnowflake: this.lake.scriptLocations['lake_to_snowflake.py'],
                logic: this.lake.scriptLocations['cda_logic.py'],
              },
              guidewire: settings.guidewire,
              snowflake: {
                connectionName: this.snowflake.connectionName,
                connectionArn: this.snowflake.connectionArn,
                secretArnPattern: this.snowflake.secretArnPattern,
              },
              bus: { name: this.bus.busName, arn: this.bus.busArn },
              alerts: { topicArn: this.alerts.topicArn, keyArn: this.alerts.key.arn },
              tags: { ...settings.tags },
            },
          },
          parent,
        ),
    );
    for (const upstream of this.upstreams) {
      this.toggles.push({
        kind: 'schedule',
        name: upstream.scheduleName,
        state: settings.role.scheduleState,
      });
    }

    this.dbtImage = new DbtImage(
      `${name}-dbt-image`,
      {
        isHome: settings.role.isHome,
        replicate: settings.dbt.ecrReplication,
        peerRegion: settings.role.peerRegion,
        accountId: this.account.accountId,
      },
      parent,
    );
    this.dbtApp = new DbtApp(
      `${name}-dbt`,
      {
        clusterName: settings.eksClusterName,
        region: settings.region,
        namespace: settings.dbt.namespace,
        image: pulumi.interpolate`${this.dbtImage.repositoryUrl}:${settings.dbt.imageTag}`,
        replicas: settings.role.dbtReplicas,
        apiToken: settings.secrets.dbtApiToken,
        snowflakeSecret: { name: this.snowflake.secretName, arnPattern: this.snowflake.secretArnPattern },
        controlTable: { name: this.controlTable.tableName, arn: this.controlTable.tableArn },
        lambdaCidrs: settings.network.subnetIds.map(
          (id) => aws.ec2.getSubnetOutput({ id }, parent).cidrBlock,
        ),
        loadBalancerSubnetIds: settings.network.subnetIds,
        account: this.account,
        tags: { ...settings.tags },
        tls: settings.dbt.tls
          ? { hostedZoneId: settings.dbt.tls.hostedZoneId, ...settings.dbt.tls.endpoints[settings.region] }
          : undefined,
      },
      parent,
    );

    this.dbtFunctions = new DbtFunctions(
      `${name}-dbt-functions`,
      {
        region: settings.region,
        apiToken: settings.secrets.dbtApiToken,
        apiUrl: this.dbtApp.apiUrl,
        allowPlainHttp: settings.dbt.tls === undefined,
        controlTable: { name: this.controlTable.tableName, arn: this.controlTable.tableArn },
        network: settings.network,
        logRetentionDays: settings.logRetentionDays,
        tags: { ...settings.tags },
      },
      parent,
    );

    const triggers: DownstreamTrigger[] = [];
    this.downstreams = settings.pipelines.map((pipeline) => {
      const tags = { ...settings.tags, pipeline: pipeline.name };
      const downstream = new DownstreamElt(
        `${name}-${pipeline.name}-downstream`,
        {
          pipeline,
          shared: {
            region: settings.region,
            account: this.account,
            eventSource: settings.eventSource,
            logLevel: settings.workflowLogLevel,
            logRetentionDays: settings.logRetentionDays,
            controlTable: { name: this.controlTable.tableName, arn: this.controlTable.tableArn },
            functions: {
              batchContext: this.batchContext.arn,
              checkConsistency: this.dbtFunctions.checkConsistency.arn,
              startDbtRun: this.dbtFunctions.startDbtRun.arn,
              getDbtRun: this.dbtFunctions.getDbtRun.arn,
            },
            bus: { arn: this.bus.busArn },
            alerts: { topicArn: this.alerts.topicArn, keyArn: this.alerts.key.arn },
            dbt: settings.dbt,
            tags,
          },
        },
        parent,
      );
      const trigger = new DownstreamTrigger(
        `${name}-${pipeline.name}-trigger`,
        {
          pipeline: pipeline.name,
          mode: pipeline.triggerMode,
          region: settings.region,
          account: this.account,
          eventSource: settings.eventSource,
          bus: { name: this.bus.busName, arn: this.bus.busArn },
          downstreamArn: downstream.workflow.arn,
          ruleState: settings.role.ruleState,
          scheduleState: settings.role.scheduleState,
          scheduleRetry: settings.scheduleRetry,
          scheduleGroupName: scheduleGroup.name,
          options: settings.triggerOptions,
          controlTable: { name: this.controlTable.tableName, arn: this.controlTable.tableArn },
          alertKeyArn: this.alerts.key.arn,
          logLevel: settings.workflowLogLevel,
          retry: settings.triggerRetry,
          lambdaAsync: settings.lambdaAsync,
          alarmTopicArn: this.alerts.topicArn,
          logRetentionDays: settings.logRetentionDays,
          tags,
        },
        parent,
      );
      this.toggles.push(...trigger.toggles);
      triggers.push(trigger);
      return downstream;
    });

    const forwarding = new CrossRegionForwarding(
      `${name}-forwarding`,
      {
        region: settings.region,
        peerRegion: settings.role.peerRegion,
        account: this.account,
        eventSource: settings.eventSource,
        busName: settings.eventBusName,
        ruleState: settings.role.ruleState,
        alarmTopicArn: this.alerts.topicArn,
        tags: { ...settings.tags },
      },
      parent,
    );
    this.toggles.push({ kind: 'rule', name: forwarding.ruleName, state: settings.role.ruleState });

    // Scheduler invokes Lambda asynchronously: no retries (the next tick re-checks everything), and a
    // failed tick lands in its own alarmed DLQ rather than vanishing.
    const watchdogDlq = new DeadLetterQueue(
      `${name}-watchdog-async-dlq`,
      {
        purpose: 'lateness watchdog failed ticks',
        alarmTopicArn: this.alerts.topicArn,
        tags: { ...settings.tags },
      },
      parent,
    );
    // The lateness watchdog: one cheap Lambda tick, ENABLED only where schedules run (docs/watchdog.md).
    const watchdog = new HandlerFunction(
      `${name}-watchdog`,
      {
        handler: 'watchdog',
        purpose: 'watchdog',
        region: settings.region,
        logRetentionDays: settings.logRetentionDays,
        timeoutSeconds: 60,
        environment: {
          CONTROL_TABLE_NAME: this.controlTable.tableName,
          PIPELINES_JSON: pulumi.jsonStringify(
            settings.pipelines.map((pipeline, i) => ({
              name: pipeline.name,
              expression: pipeline.schedule.expression,
              timezone: pipeline.schedule.timezone,
              graceMinutes: settings.watchdog.graceMinutes + pipeline.schedule.flexibleWindowMinutes,
              downstreamArn: this.downstreams[i].workflow.arn,
            })),
          ),
          LOST_TRIGGER_MINUTES: String(settings.watchdog.lostTriggerMinutes),
          // The downstream execution's own bound: a claim CLAIMED longer than that is stuck.
          MAX_DOWNSTREAM_MINUTES: String(Math.ceil(downstreamTimeoutSeconds(settings.dbt) / 60)),
          ALERTS_TOPIC_ARN: this.alerts.topicArn,
          EVENT_SOURCE: settings.eventSource,
        },
        statements: [
          {
            Sid: 'ControlRecords',
            Effect: 'Allow',
            Action: ['dynamodb:BatchGetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
            Resource: [this.controlTable.tableArn],
          },
          {
            Sid: 'StatusIndexAndHistory',
            Effect: 'Allow',
            Action: ['dynamodb:Query'],
            Resource: [this.controlTable.statusIndexArn, this.controlTable.tableArn],
          },
          {
            Sid: 'StartLostDownstreams',
            Effect: 'Allow',
            Action: ['states:StartExecution'],
            Resource: this.downstreams.map((d) => d.workflow.arn),
          },
          { Sid: 'Alerts', Effect: 'Allow', Action: ['sns:Publish'], Resource: [this.alerts.topicArn] },
          {
            Sid: 'AlertsKey',
            Effect: 'Allow',
            Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
            Resource: [this.alerts.key.arn],
          },
          // The on-failure destination is written with the function's own role.
          {
            Sid: 'OnFailureDestination',
            Effect: 'Allow',
            Action: ['sqs:SendMessage'],
            Resource: [watchdogDlq.arn],
          },
        ],
        tags: { ...settings.tags },
      },
      parent,
    );
    new aws.lambda.FunctionEventInvokeConfig(
      `${name}-watchdog-async`,
      {
        functionName: watchdog.name,
        maximumRetryAttempts: 0,
        maximumEventAgeInSeconds: 60 * settings.watchdog.rateMinutes,
        destinationConfig: { onFailure: { destination: watchdogDlq.arn } },
      },
      parent,
    );
    new WorkflowSchedule(
      `${name}-watchdog-schedule`,
      {
        scheduleName: 'lateness-watchdog',
        groupName: scheduleGroup.name,
        description: 'Late upstream batches, lost triggers and overrunning downstream runs',
        expression:
          settings.watchdog.rateMinutes === 1
            ? 'rate(1 minute)'
            : `rate(${settings.watchdog.rateMinutes} minutes)`,
        timezone: 'UTC',
        flexibleWindowMinutes: 0,
        state: settings.role.scheduleState,
        targetArn: watchdog.arn,
        targetAction: 'lambda:InvokeFunction',
        input: JSON.stringify({ scheduledTime: '<aws.scheduler.scheduled-time>' }),
        retry: { maximumRetryAttempts: 0, maximumEventAgeSeconds: 60 * settings.watchdog.rateMinutes },
        roleName: iamRoleName('sched-watchdog', settings.region),
        accountId: this.account.accountId,
        alarmTopicArn: this.alerts.topicArn,
        tags: { ...settings.tags },
      },
      parent,
    );
    this.toggles.push({ kind: 'schedule', name: 'lateness-watchdog', state: settings.role.scheduleState });

    const triggerWorkflows = triggers.flatMap((t) => t.workflows);
    new Observability(
      `${name}-observability`,
      {
        region: settings.region,
        alarmTopicArn: this.alerts.topicArn,
        workflows: [
          ...this.upstreams.map((u) => u.workflow),
          ...this.downstreams.map((d) => d.workflow),
          ...triggerWorkflows,
        ].map((w) => ({
          label: w.purpose,
          arn: w.arn,
        })),
        functions: [
          this.controlTable.fenceWriter,
          this.batchContext,
          this.dbtFunctions.checkConsistency,
          this.dbtFunctions.startDbtRun,
          this.dbtFunctions.getDbtRun,
          watchdog,
          ...triggers.flatMap((t) => t.functions),
        ].map((f) => ({ label: f.purpose, name: f.name })),
        rules: [...triggers.flatMap((t) => t.ruleNames), forwarding.ruleName].map((rule) => ({
          name: rule,
          busName: this.bus.busName,
        })),
        scheduleGroupName: scheduleGroup.name,
        pipelines: settings.pipelines.map((pipeline, i) => ({
          name: pipeline.name,
          upstreamArn: this.upstreams[i].workflow.arn,
          downstreamArn: this.downstreams[i].workflow.arn,
          dlqNames: [this.upstreams[i].dlq.queue.name, ...triggers[i].dlqNames],
        })),
        tags: { ...settings.tags },
      },
      parent,
    );

    // Last: every component above has registered its toggles.
    const { role } = settings;
    this.failover = pulumi
      .all([
        this.controlTable.fenceEpoch,
        pulumi.all(this.toggles.map((t) => pulumi.all([t.kind, t.name, t.state]))),
      ])
      .apply(([epoch, toggles]) => ({
        stack: settings.stack,
        region: role.region,
        role: role.role,
        activeRegion: role.activeRegion,
        peerRegion: role.peerRegion,
        homeRegion: role.homeRegion,
        fence: { activeRegion: role.activeRegion, epoch },
        toggles: toggles.map(([kind, name, state]) => ({ kind, name, state })),
        runbook: runbook(settings, defaultStackFor(settings)),
      }));

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
