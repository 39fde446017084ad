import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { IamStatement } from '../contracts/iam';
import type { PipelineSettings } from '../regions/settings';
import type { ToggleState } from '../regions/role';
import { upstreamWorkflow } from '../state-machines/upstream';
import type { DeadLetterQueue } from './dead-letter-queue';
import { type AccountContext, iamRoleName, platformName, upstreamScheduleName } from '../contracts/naming';
import { pipelineTags } from './naming';
import { Workflow } from './workflow';
import { WorkflowSchedule } from './workflow-schedule';
import { identityPolicyJson, serviceRole } from './service-role';

/** What every pipeline's upstream shares in the region. */
export interface UpstreamSharedRefs {
  /** This stack's region. */
  readonly region: string;
  /** Account and partition of the deploying credentials. */
  readonly account: AccountContext;
  /** The `source` of the events the upstream publishes. */
  readonly eventSource: string;
  /** Step Functions log level of the upstream workflows. */
  readonly logLevel: 'ERROR' | 'ALL';
  /** Retention of the workflows' log groups. */
  readonly logRetentionDays: number;
  /** State of the upstream schedules: ENABLED only in the active region. */
  readonly scheduleState: ToggleState;
  /** Retry policy of the schedules' targets (config `scheduleRetry`). */
  readonly scheduleRetry: { readonly maximumRetryAttempts: number; readonly maximumEventAgeSeconds: number };
  /** The region's Scheduler schedule group. */
  readonly scheduleGroupName: pulumi.Input<string>;
  /** The control table: batch and table records, the upstream lock, the fence. */
  readonly controlTable: { readonly name: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  /** The batch-context function (batch id and lease times). */
  readonly batchContextFunctionArn: pulumi.Input<string>;
  /** The lake bucket the Glue jobs write, and its key. */
  readonly lake: {
    readonly bucket: pulumi.Input<string>;
    readonly arn: pulumi.Input<string>;
    readonly kmsKeyArn: pulumi.Input<string>;
  };
  /** The artifacts bucket: Glue scripts and temporary directories. */
  readonly artifacts: { readonly bucket: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  /** S3 locations of the Glue scripts. */
  readonly scripts: {
    readonly cdaToLake: pulumi.Input<string>;
    readonly lakeToSnowflake: pulumi.Input<string>;
    readonly logic: pulumi.Input<string>;
  };
  /** Guidewire's CDA bucket and prefix (config `guidewire`). */
  readonly guidewire: { readonly bucketName: string; readonly prefix: string };
  /** The Glue Snowflake connection and the secret it reads. */
  readonly snowflake: {
    readonly connectionName: pulumi.Input<string>;
    readonly connectionArn: pulumi.Input<string>;
    readonly secretArnPattern: pulumi.Input<string>;
  };
  /** The platform bus the upstream publishes `UpstreamBatchSucceeded` on. */
  readonly bus: { readonly name: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  /** The alerts topic and its key. */
  readonly alerts: { readonly topicArn: pulumi.Input<string>; readonly keyArn: pulumi.Input<string> };
  /** The platform's tags; each pipeline adds `pipeline`. */
  readonly tags: Record<string, string>;
}

export interface UpstreamEtlArgs {
  /** The pipeline's settings: tables, schedule, Glue sizing. */
  readonly pipeline: PipelineSettings;
  /** What every pipeline's upstream shares in the region. */
  readonly shared: UpstreamSharedRefs;
  /**
   * Set when the trigger mode has the upstream start the downstream (`upstream-direct`): the
   * upstream's last state starts this workflow.
   * @default none (the upstream only publishes its event)
   */
  readonly downstreamArn?: pulumi.Input<string>;
}

/**
 * Worst case for one batch: every wave of `maxConcurrency` tables runs both jobs to their timeout,
 * plus slack for the bookkeeping states. Also the upstream lock's lease.
 */
export function upstreamTimeoutSeconds(pipeline: PipelineSettings): number {
  const waves = Math.ceil(pipeline.tables.length / pipeline.maxConcurrency);
  return (2 * pipeline.glue.timeoutMinutes * waves + 30) * 60;
}

/** Glue job role: read the Guidewire prefix, read/write the pipeline's lake prefixes, read the one secret. */
export function glueJobStatements(pipeline: string, refs: UpstreamSharedRefs): IamStatement[] {
  const { partition, accountId } = refs.account;
  const gwArn = pulumi.interpolate`arn:${partition}:s3:::${refs.guidewire.bucketName}`;
  const gwPrefix = refs.guidewire.prefix ? `${refs.guidewire.prefix.replace(/\/$/, '')}/` : '';
  return [
    {
      Sid: 'ReadGuidewireCda',
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: [pulumi.interpolate`${gwArn}/${gwPrefix}*`],
    },
    {
      Sid: 'ListGuidewireCda',
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: [gwArn],
      Condition: { StringLike: { 's3:prefix': [`${gwPrefix}*`] } },
    },
    {
      Sid: 'WriteLakePipelinePrefixes',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      Resource: [
        pulumi.interpolate`${refs.lake.arn}/raw/${pipeline}/*`,
        pulumi.interpolate`${refs.lake.arn}/_runs/${pipeline}/*`,
      ],
    },
    {
      Sid: 'ListLakePipelinePrefixes',
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: [refs.lake.arn],
      // Spark and Hadoop also list the prefix itself (with and without the slash) to test existence.
      Condition: {
        StringLike: {
          's3:prefix': [`raw/${pipeline}`, `raw/${pipeline}/*`, `_runs/${pipeline}`, `_runs/${pipeline}/*`],
        },
      },
    },
    {
      Sid: 'LakeKey',
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Resource: [refs.lake.kmsKeyArn],
    },
    // Scripts are shared by every pipeline's jobs and uploaded by Pulumi: the jobs only read them
    // (write access would let one pipeline's job rewrite another pipeline's code).
    {
      Sid: 'ReadScripts',
      Effect: 'Allow',
      Action: ['s3:GetObject'],
      Resource: [pulumi.interpolate`${refs.artifacts.arn}/glue/*`],
    },
    {
      Sid: 'OwnTempDir',
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      Resource: [pulumi.interpolate`${refs.artifacts.arn}/tmp/${pipeline}/*`],
    },
    {
      Sid: 'SnowflakeSecret',
      Effect: 'Allow',
      Action: ['secretsmanager:GetSecretValue'],
      Resource: [refs.snowflake.secretArnPattern],
    },
    {
      Sid: 'SnowflakeConnection',
      Effect: 'Allow',
      Action: ['glue:GetConnection'],
      Resource: [
        refs.snowflake.connectionArn,
        pulumi.interpolate`arn:${partition}:glue:${refs.region}:${accountId}:catalog`,
      ],
    },
    {
      Sid: 'ContinuousLogging',
      Effect: 'Allow',
      Action: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents', 'logs:AssociateKmsKey'],
      Resource: [
        pulumi.interpolate`arn:${partition}:logs:${refs.region}:${accountId}:log-group:/aws-glue/jobs/*`,
      ],
    },
    // PutMetricData has no resource-level permissions; AWS requires "*", narrowed by namespace.
    {
      Sid: 'JobMetrics',
      Effect: 'Allow',
      Action: ['cloudwatch:PutMetricData'],
      Resource: ['*'],
      Condition: { StringEquals: { 'cloudwatch:namespace': 'Glue' } },
    },
  ];
}

/**
 * One pipeline's upstream: the two Glue jobs, the upstream workflow and its EventBridge Scheduler
 * schedule (ENABLED only in the active region) with a retry policy and a DLQ.
 */
export class UpstreamEtl extends pulumi.ComponentResource {
  readonly workflow: Workflow;
  readonly schedule: aws.scheduler.Schedule;
  readonly scheduleName: string;
  readonly dlq: DeadLetterQueue;

  constructor(name: string, args: UpstreamEtlArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:upstream:UpstreamEtl', name, {}, opts);
    const { pipeline, shared } = args;
    const tags = pipelineTags(shared.tags, pipeline.name);
    const { partition, accountId } = shared.account;

    const { role: glueRole } = serviceRole(
      `${name}-glue`,
      {
        roleName: iamRoleName(`glue-${pipeline.name}`, shared.region),
        service: 'glue.amazonaws.com',
        policy: identityPolicyJson(glueJobStatements(pipeline.name, shared)),
        tags,
      },
      { parent: this },
    );

    const common = {
      roleArn: glueRole.arn,
      glueVersion: '4.0',
      workerType: pipeline.glue.workerType,
      numberOfWorkers: pipeline.glue.numberOfWorkers,
      timeout: pipeline.glue.timeoutMinutes,
      // The per-table runs of one batch run side by side; batches never overlap (upstream lock).
      executionProperty: { maxConcurrentRuns: pipeline.maxConcurrency },
      tags,
    };
    const commonArguments = {
      // Incrementality comes from the control table's watermark, passed per run; bookmarks
      // (per job, not per table argument) would skip data on reruns. See glue/README.md.
      '--job-bookmark-option': 'job-bookmark-disable',
      '--enable-continuous-cloudwatch-log': 'true',
      '--enable-metrics': 'true',
      '--extra-py-files': shared.scripts.logic,
      '--TempDir': pulumi.interpolate`s3://${shared.artifacts.bucket}/tmp/${pipeline.name}/`,
      '--pipeline': pipeline.name,
      '--lake_bucket': shared.lake.bucket,
    };
    const jobName = {
      cdaToLake: platformName(`${pipeline.name}-cda-to-lake`),
      lakeToSnowflake: platformName(`${pipeline.name}-lake-to-snowflake`),
    };
    const cdaToLake = new aws.glue.Job(
      `${name}-cda-to-lake`,
      {
        ...common,
        name: jobName.cdaToLake,
        description: `Guidewire CDA → lake raw zone (${pipeline.name})`,
        command: { name: 'glueetl', pythonVersion: '3', scriptLocation: shared.scripts.cdaToLake },
        defaultArguments: {
          ...commonArguments,
          '--source_bucket': shared.guidewire.bucketName,
          '--source_prefix': shared.guidewire.prefix,
        },
      },
      { parent: this },
    );
    const lakeToSnowflake = new aws.glue.Job(
      `${name}-lake-to-snowflake`,
      {
        ...common,
        name: jobName.lakeToSnowflake,
        description: `Lake → Snowflake base layer (${pipeline.name})`,
        command: { name: 'glueetl', pythonVersion: '3', scriptLocation: shared.scripts.lakeToSnowflake },
        connections: [shared.snowflake.connectionName],
        defaultArguments: { ...commonArguments, '--snowflake_connection': shared.snowflake.connectionName },
      },
      { parent: this },
    );
    const jobArn = (jobName: string) =>
      pulumi.interpolate`arn:${partition}:glue:${shared.region}:${accountId}:job/${jobName}`;

    const { definition, statements } = upstreamWorkflow({
      pipeline: pipeline.name,
      tables: [...pipeline.tables],
      maxConcurrency: pipeline.maxConcurrency,
      eventSource: shared.eventSource,
      region: shared.region,
      timeoutSeconds: upstreamTimeoutSeconds(pipeline),
      controlTable: shared.controlTable,
      batchContextFunction: { arn: shared.batchContextFunctionArn },
      glueJobs: {
        cdaToLake: { name: cdaToLake.name, arn: jobArn(jobName.cdaToLake) },
        lakeToSnowflake: { name: lakeToSnowflake.name, arn: jobArn(jobName.lakeToSnowflake) },
      },
      lake: { bucket: shared.lake.bucket, arn: shared.lake.arn, kmsKeyArn: shared.lake.kmsKeyArn },
      source: { bucket: shared.guidewire.bucketName, prefix: shared.guidewire.prefix },
      snowflakeConnectionName: shared.snowflake.connectionName,
      bus: shared.bus,
      alerts: { arn: shared.alerts.topicArn, kmsKeyArn: shared.alerts.keyArn },
      downstream: args.downstreamArn ? { arn: args.downstreamArn } : undefined,
    });
    this.workflow = new Workflow(
      `${name}-workflow`,
      {
        definition,
        statements,
        purpose: `${pipeline.name}-upstream`,
        region: shared.region,
        logLevel: shared.logLevel,
        logRetentionDays: shared.logRetentionDays,
        tags,
      },
      { parent: this },
    );

    this.scheduleName = upstreamScheduleName(pipeline.name);
    const schedule = new WorkflowSchedule(
      `${name}-schedule`,
      {
        scheduleName: this.scheduleName,
        groupName: shared.scheduleGroupName,
        description: `Starts the ${pipeline.name} upstream batch`,
        expression: pipeline.schedule.expression,
        timezone: pipeline.schedule.timezone,
        flexibleWindowMinutes: pipeline.schedule.flexibleWindowMinutes,
        state: shared.scheduleState,
        targetArn: this.workflow.arn,
        // The scheduled time, not the per-attempt execution id, is the batch's idempotency key.
        input: JSON.stringify({ pipeline: pipeline.name, scheduledTime: '<aws.scheduler.scheduled-time>' }),
        retry: shared.scheduleRetry,
        roleName: iamRoleName(`sched-${pipeline.name}`, shared.region),
        accountId,
        alarmTopicArn: shared.alerts.topicArn,
        tags,
      },
      { parent: this },
    );
    this.schedule = schedule.schedule;
    this.dlq = schedule.dlq;
    this.registerOutputs({ targetArn: this.workflow.arn, scheduleName: this.scheduleName });
  }
}
