import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { PlatformSettings } from '../regions/settings';
import { DbtApp } from '../k8s/dbt-app';
import { DbtImage } from '../k8s/dbt-image';
import { Alerts } from './alerts';
import { ControlTable } from './control-table';
import { DataLake } from './data-lake';
import { DbtFunctions } from './dbt-functions';
import { PlatformEventBus } from './event-bus';
import { HandlerFunction } from './handler-function';
import { type AccountContext, DEFAULT_NAMES } from '../contracts/naming';
import { accountContext } from './naming';
import type { PipelineStackArgs } from './pipeline-stack';
import { Snowflake } from './snowflake';

/** The region's parts that every pipeline shares, declared once by `RegionalPlatform`. */
export interface SharedParts {
  readonly account: AccountContext;
  readonly alerts: Alerts;
  readonly bus: PlatformEventBus;
  readonly snowflake: Snowflake;
  readonly controlTable: ControlTable;
  readonly lake: DataLake;
  /** Shared by every workflow: the batch id and lease times (ASL has no date arithmetic). */
  readonly batchContext: HandlerFunction;
  readonly scheduleGroupName: pulumi.Output<string>;
  readonly dbtImage: DbtImage;
  readonly dbtApp: DbtApp;
  readonly dbtFunctions: DbtFunctions;
}

/** Alerts, events, Snowflake, the control table, the lake, the batch-context function, the schedule group. */
function declareFoundation(
  name: string,
  settings: PlatformSettings,
  platform: pulumi.ComponentResource,
): Omit<SharedParts, 'dbtImage' | 'dbtApp' | 'dbtFunctions'> {
  const parent = { parent: platform };
  const { region, role, tags } = settings;
  const account = accountContext(parent);
  const alerts = new Alerts(`${name}-alerts`, { email: settings.alertEmail, account, region }, parent);
  const bus = new PlatformEventBus(
    `${name}-events`,
    {
      busName: settings.eventBusName,
      eventSource: settings.eventSource,
      archiveRetentionDays: settings.archiveRetentionDays,
      account,
    },
    parent,
  );
  const snowflake = new Snowflake(
    `${name}-snowflake`,
    {
      credentials: settings.secrets.snowflakeCredentials,
      region,
      peerRegion: role.peerRegion,
      isHome: role.isHome,
      account,
    },
    parent,
  );
  const controlTable = new ControlTable(
    `${name}-control`,
    {
      tableName: settings.controlTableName,
      region,
      isHome: role.isHome,
      peerRegion: role.peerRegion,
      activeRegion: settings.activeRegion,
      stack: settings.stack,
      account,
      logRetentionDays: settings.logRetentionDays,
      snowflakeSecret: { name: snowflake.secretName, arnPattern: snowflake.secretArnPattern },
      fenceDependsOn: snowflake.secretReady,
    },
    parent,
  );
  const lake = new DataLake(
    `${name}-data`,
    { region, peerRegion: role.peerRegion, account, replicateToPeer: settings.lakeReplication, tags },
    parent,
  );
  const batchContext = new HandlerFunction(
    `${name}-batch-context`,
    {
      handler: 'batch-context',
      purpose: 'batch-context',
      region,
      statements: [],
      logRetentionDays: settings.logRetentionDays,
    },
    parent,
  );
  const scheduleGroup = new aws.scheduler.ScheduleGroup(
    `${name}-schedules`,
    { name: DEFAULT_NAMES.scheduleGroup },
    parent,
  );
  return {
    account,
    alerts,
    bus,
    snowflake,
    controlTable,
    lake,
    batchContext,
    scheduleGroupName: scheduleGroup.name,
  };
}

/** The dbt app's image repository, its Deployment on the region's cluster and the Lambdas that call it. */
function declareDbt(
  name: string,
  settings: PlatformSettings,
  foundation: Omit<SharedParts, 'dbtImage' | 'dbtApp' | 'dbtFunctions'>,
  platform: pulumi.ComponentResource,
): SharedParts {
  const parent = { parent: platform };
  const { region, role, tags, dbt } = settings;
  const { account, snowflake, controlTable } = foundation;
  const controlTableRef = { name: controlTable.tableName, arn: controlTable.tableArn };
  const dbtImage = new DbtImage(
    `${name}-dbt-image`,
    {
      isHome: role.isHome,
      replicate: dbt.ecrReplication,
      peerRegion: role.peerRegion,
      accountId: account.accountId,
    },
    parent,
  );
  const dbtApp = new DbtApp(
    `${name}-dbt`,
    {
      clusterName: settings.eksClusterName,
      region,
      namespace: dbt.namespace,
      image: pulumi.interpolate`${dbtImage.repositoryUrl}:${dbt.imageTag}`,
      replicas: role.dbtReplicas,
      apiToken: settings.secrets.dbtApiToken,
      snowflakeSecret: { name: snowflake.secretName, arnPattern: snowflake.secretArnPattern },
      controlTable: controlTableRef,
      lambdaCidrs: settings.network.subnetIds.map((id) => aws.ec2.getSubnetOutput({ id }, parent).cidrBlock),
      loadBalancerSubnetIds: settings.network.subnetIds,
      account,
      tags,
      tls: dbt.tls ? { hostedZoneId: dbt.tls.hostedZoneId, ...dbt.tls.endpoints[region] } : undefined,
    },
    parent,
  );
  const dbtFunctions = new DbtFunctions(
    `${name}-dbt-functions`,
    {
      region,
      apiToken: settings.secrets.dbtApiToken,
      apiUrl: dbtApp.apiUrl,
      allowPlainHttp: dbt.tls === undefined,
      controlTable: controlTableRef,
      network: settings.network,
      logRetentionDays: settings.logRetentionDays,
      tags,
    },
    parent,
  );
  return { ...foundation, dbtImage, dbtApp, dbtFunctions };
}

/** What every pipeline shares in the region, from the settings and the shared parts. */
export function pipelineSharedRefs(
  settings: PlatformSettings,
  shared: SharedParts,
): Omit<PipelineStackArgs, 'pipeline'> {
  const { region, role, tags, eventSource, logRetentionDays } = settings;
  const { account, alerts, bus, controlTable, lake, snowflake, dbtFunctions } = shared;
  const logLevel = settings.workflowLogLevel;
  const controlTableRef = { name: controlTable.tableName, arn: controlTable.tableArn };
  const alertsRef = { topicArn: alerts.topicArn, keyArn: alerts.key.arn };
  return {
    upstream: {
      region,
      account,
      eventSource,
      logLevel,
      logRetentionDays,
      scheduleState: role.scheduleState,
      scheduleRetry: settings.scheduleRetry,
      scheduleGroupName: shared.scheduleGroupName,
      controlTable: controlTableRef,
      batchContextFunctionArn: shared.batchContext.arn,
      lake: { bucket: lake.lake.name, arn: lake.lake.arn, kmsKeyArn: lake.key.arn },
      artifacts: { bucket: lake.artifacts.name, arn: lake.artifacts.arn },
      scripts: {
        cdaToLake: lake.scriptLocations['cda_to_lake.py'],
        lakeToSnowflake: lake.scriptLocations['lake_to_snowflake.py'],
        logic: lake.scriptLocations['cda_logic.py'],
      },
      guidewire: settings.guidewire,
      snowflake: {
        connectionName: snowflake.connectionName,
        connectionArn: snowflake.connectionArn,
        secretArnPattern: snowflake.secretArnPattern,
      },
      bus: { name: bus.busName, arn: bus.busArn },
      alerts: alertsRef,
      tags,
    },
    downstream: {
      region,
      account,
      eventSource,
      logLevel,
      logRetentionDays,
      controlTable: controlTableRef,
      functions: {
        batchContext: shared.batchContext.arn,
        checkConsistency: dbtFunctions.checkConsistency.arn,
        startDbtRun: dbtFunctions.startDbtRun.arn,
        getDbtRun: dbtFunctions.getDbtRun.arn,
      },
      bus: { arn: bus.busArn },
      alerts: alertsRef,
      dbt: settings.dbt,
      tags,
    },
    trigger: {
      region,
      account,
      eventSource,
      bus: { name: bus.busName, arn: bus.busArn },
      ruleState: role.ruleState,
      scheduleState: role.scheduleState,
      scheduleRetry: settings.scheduleRetry,
      scheduleGroupName: shared.scheduleGroupName,
      options: settings.triggerOptions,
      controlTable: controlTableRef,
      alertKeyArn: alerts.key.arn,
      logLevel,
      retry: settings.triggerRetry,
      lambdaAsync: settings.lambdaAsync,
      alarmTopicArn: alerts.topicArn,
      logRetentionDays,
      tags,
    },
  };
}

/**
 * Declares the shared parts as direct children of `platform` (their URNs predate the re-layering,
 * so they stay where they were).
 */
export function declareSharedParts(
  name: string,
  settings: PlatformSettings,
  platform: pulumi.ComponentResource,
): SharedParts {
  return declareDbt(name, settings, declareFoundation(name, settings, platform), platform);
}
