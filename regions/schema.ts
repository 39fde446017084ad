import { z } from 'zod';
import {
  EVENT_AGE_SECONDS,
  FLEXIBLE_WINDOW_MINUTES,
  GLUE_WORKER_TYPES,
  LAMBDA_ASYNC_EVENT_AGE_SECONDS,
  LAMBDA_ASYNC_RETRIES,
  LOG_RETENTION_DAYS,
  RETRY_ATTEMPTS,
} from '../contracts/limits';
import { DEFAULT_NAMES } from '../contracts/naming';
import {
  CDA_TABLE_NAME_PATTERN,
  PIPELINE_NAME_PATTERN,
  PIPELINE_NAME_RULE,
} from '../contracts/pipeline-name';
import { REGION_PATTERN } from '../contracts/regions';
import { TRIGGER_MODES } from '../contracts/trigger-modes';
import { scheduleExpressionProblem, timeZoneProblem } from './schedule-expression';

/**
 * The project's config, as one zod schema. Every message says what is wrong and how to fix it;
 * `formatIssues` in settings.ts prefixes the full key and the value that was given.
 */

const int = (what: string, min: number, max: number, unit = '') =>
  z
    .number({ error: `${what} must be a whole number. Fix: set an integer between ${min} and ${max}${unit}` })
    .int({ error: `${what} must be a whole number. Fix: set an integer between ${min} and ${max}${unit}` })
    .min(min, { error: `${what} is below AWS's minimum of ${min}${unit}. Fix: use ${min}..${max}${unit}` })
    .max(max, { error: `${what} is above AWS's maximum of ${max}${unit}. Fix: use ${min}..${max}${unit}` });

/** A dbt key that no longer means anything: refused with the reason, never silently ignored. */
const pollingGone = (key: string) =>
  z
    .never({
      error: `${key} is no longer used: the downstream workflow waits for the dbt app's callback instead of polling. Fix: remove dbt.${key}; see dbt.heartbeatSeconds and dbt.maxQueueMinutes`,
    })
    .optional();

const region = z
  .string({ error: 'must be a region name. Fix: use a name such as us-east-1' })
  .regex(REGION_PATTERN, {
    error: 'is not an AWS region name. Fix: use a name such as us-east-1 or us-west-1',
  });

const retryPolicy = z
  .object({
    maximumRetryAttempts: int('maximumRetryAttempts', RETRY_ATTEMPTS.min, RETRY_ATTEMPTS.max),
    maximumEventAgeSeconds: int(
      'maximumEventAgeSeconds',
      EVENT_AGE_SECONDS.min,
      EVENT_AGE_SECONDS.max,
      ' seconds',
    ),
  })
  .strict();

const triggerMode = z.enum(TRIGGER_MODES, {
  error: `is not a trigger mode. Fix: use one of ${TRIGGER_MODES.join(', ')}`,
});

const schedule = z
  .object({
    expression: z.string().superRefine((value, ctx) => {
      const problem = scheduleExpressionProblem(value);
      if (problem) {
        ctx.addIssue({
          code: 'custom',
          message: `is not a valid Scheduler expression: ${problem}. Fix: use e.g. "cron(0 2 * * ? *)" or "rate(6 hours)"`,
        });
      }
    }),
    timezone: z
      .string()
      .default('UTC')
      .superRefine((value, ctx) => {
        const problem = timeZoneProblem(value);
        if (problem) {
          ctx.addIssue({ code: 'custom', message: `${problem}. Fix: use e.g. "America/New_York" or "UTC"` });
        }
      }),
    flexibleWindowMinutes: int(
      'flexibleWindowMinutes',
      0,
      FLEXIBLE_WINDOW_MINUTES.max,
      ' minutes (0 turns the window off)',
    ).default(0),
    // Accept a cron that fires in a daylight-saving gap (Scheduler skips that day's run): a warning instead of an error.
    allowDstGap: z
      .boolean({ error: 'must be true or false. Fix: write allowDstGap: true without quotes' })
      .default(false),
  })
  .strict();

const tableName = z.string().regex(CDA_TABLE_NAME_PATTERN, {
  error: 'is not a Guidewire CDA table name. Fix: use the lowercase CDA folder name, e.g. pc_policyperiod',
});

const pipeline = z
  .object({
    name: z.string().regex(PIPELINE_NAME_PATTERN, {
      error: `is unusable in AWS resource names. Fix: use ${PIPELINE_NAME_RULE}, e.g. "policycenter"`,
    }),
    tables: z
      .array(tableName)
      .min(1, { error: 'lists no tables. Fix: list the CDA tables this pipeline loads' }),
    schedule,
    maxConcurrency: int('maxConcurrency', 1, 40, ' parallel tables').default(4),
    glue: z
      .object({
        workerType: z
          .enum(GLUE_WORKER_TYPES, {
            error: `is not a Glue worker type. Fix: use one of ${GLUE_WORKER_TYPES.join(', ')}`,
          })
          .default('G.1X'),
        numberOfWorkers: int('numberOfWorkers', 2, 299).default(2),
        timeoutMinutes: int('timeoutMinutes', 1, 2_880, ' minutes').default(120),
      })
      .strict()
      .default({ workerType: 'G.1X', numberOfWorkers: 2, timeoutMinutes: 120 }),
    triggerMode: triggerMode.optional(),
    dbtSelect: z.string().min(1).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    'aws:region': region,
    regions: z
      .array(region, { error: 'must be a list of two regions. Fix: set it to ["us-east-1", "us-west-1"]' })
      .length(2, {
        error:
          'must list exactly two regions (active-passive). Fix: set it to the primary and the standby region, e.g. ["us-east-1", "us-west-1"]',
      }),
    activeRegion: region,
    eksClusters: z.record(z.string(), z.string().min(1), {
      error: `must map each region to its EKS cluster name. Fix: pulumi config set --path 'eksClusters["us-east-1"]' <cluster-name> (and the same for the other region)`,
    }),
    alertEmail: z.email({ error: 'is not an e-mail address. Fix: set the on-call distribution list' }),
    eventSource: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{2,127}$/, {
        error: 'is not a usable event source. Fix: use a reverse-DNS string such as com.example.etl-platform',
      })
      .refine((value) => !value.startsWith('aws.'), {
        error: 'must not start with "aws.". Fix: use your own prefix',
      })
      .default('com.insurer.etl-platform'),
    eventBusName: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,40}$/, {
        // The archive is named `<bus>-archive`, and archive names stop at 48 characters.
        error: 'is not a usable bus name. Fix: 1-40 letters, digits, . _ - (the archive adds "-archive")',
      })
      .default(DEFAULT_NAMES.eventBusName),
    controlTableName: z
      .string()
      .regex(/^[A-Za-z0-9._-]{3,255}$/, {
        error: 'is not a valid DynamoDB table name. Fix: 3-255 of letters, digits, . _ -',
      })
      .default(DEFAULT_NAMES.controlTableName),
    archiveRetentionDays: int('archiveRetentionDays', 0, 3_650, ' days (0 keeps events forever)').default(30),
    logRetentionDays: z
      .number()
      .refine((value) => (LOG_RETENTION_DAYS as readonly number[]).includes(value), {
        error: `is not a CloudWatch Logs retention. Fix: use one of ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(30),
    workflowLogLevel: z
      .enum(['ERROR', 'ALL'], { error: 'is not a workflow log level. Fix: use ERROR or ALL' })
      .default('ERROR'),
    defaultTriggerMode: triggerMode.default('rule-direct'),
    triggerRetry: retryPolicy.default({ maximumRetryAttempts: 24, maximumEventAgeSeconds: 3_600 }),
    scheduleRetry: retryPolicy.default({ maximumRetryAttempts: 3, maximumEventAgeSeconds: 3_600 }),
    triggerOptions: z
      .object({
        pollExpression: z
          .string()
          .superRefine((value, ctx) => {
            const problem = scheduleExpressionProblem(value);
            if (problem)
              ctx.addIssue({
                code: 'custom',
                message: `is not a valid Scheduler expression: ${problem}. Fix: e.g. "rate(15 minutes)"`,
              });
          })
          .default('rate(15 minutes)'),
        pollBatchLimit: int('pollBatchLimit', 1, 100, ' batches per poll').default(10),
        intermediateMaxAttempts: int('intermediateMaxAttempts', 1, 10, ' downstream runs').default(3),
        intermediateRetryWaitSeconds: int('intermediateRetryWaitSeconds', 0, 86_400, ' seconds').default(600),
      })
      .strict()
      .default({
        pollExpression: 'rate(15 minutes)',
        pollBatchLimit: 10,
        intermediateMaxAttempts: 3,
        intermediateRetryWaitSeconds: 600,
      }),
    watchdog: z
      .object({
        rateMinutes: int('rateMinutes', 1, 60, ' minutes').default(5),
        graceMinutes: int('graceMinutes', 0, 1_440, ' minutes').default(45),
        lostTriggerMinutes: int('lostTriggerMinutes', 5, 1_440, ' minutes').default(30),
      })
      .strict()
      .default({ rateMinutes: 5, graceMinutes: 45, lostTriggerMinutes: 30 }),
    lambdaAsync: z
      .object({
        maximumRetryAttempts: int('maximumRetryAttempts', LAMBDA_ASYNC_RETRIES.min, LAMBDA_ASYNC_RETRIES.max),
        maximumEventAgeSeconds: int(
          'maximumEventAgeSeconds',
          LAMBDA_ASYNC_EVENT_AGE_SECONDS.min,
          LAMBDA_ASYNC_EVENT_AGE_SECONDS.max,
          ' seconds',
        ),
      })
      .strict()
      .default({ maximumRetryAttempts: 2, maximumEventAgeSeconds: 3_600 }),
    dbtReplicas: z
      .object({ active: int('active', 1, 20), passive: int('passive', 0, 20) })
      .strict()
      .default({ active: 2, passive: 1 }),
    lakeReplication: z
      .boolean({ error: 'must be true or false. Fix: pulumi config set --type bool lakeReplication true' })
      .default(true),
    guidewire: z
      .object({
        bucketName: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
          error: 'is not an S3 bucket name. Fix: the CDA bucket Guidewire gave you',
        }),
        bucketOwnerAccountId: z.string().regex(/^\d{12}$/, {
          error: 'is not a 12-digit AWS account id. Fix: the Guidewire account that owns the bucket',
        }),
        prefix: z.string().default(''),
      })
      .strict(),
    lambdaNetwork: z.record(
      z.string(),
      z
        .object({
          subnetIds: z
            .array(
              z
                .string()
                .regex(/^subnet-[0-9a-f]{8,17}$/, { error: 'is not a subnet id. Fix: subnet-0123abcd...' }),
            )
            .min(1, { error: 'lists no subnets. Fix: list the private subnets that reach the EKS service' }),
          securityGroupIds: z
            .array(
              z
                .string()
                .regex(/^sg-[0-9a-f]{8,17}$/, { error: 'is not a security group id. Fix: sg-0123abcd...' }),
            )
            .min(1, { error: 'lists no security groups. Fix: list the group allowed into the dbt service' }),
        })
        .strict(),
      { error: 'must map each region to {subnetIds, securityGroupIds}. Fix: see Pulumi.prod-east.yaml' },
    ),
    dbt: z
      .object({
        imageTag: z
          .string()
          .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, { error: 'is not an image tag. Fix: e.g. 1.8.2' }),
        namespace: z
          .string()
          .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, { error: 'is not a Kubernetes namespace name' })
          .default('dbt'),
        // The workflow waits for the dbt app's callback (issue I): nothing polls any more.
        pollInitialSeconds: pollingGone('pollInitialSeconds'),
        pollMaxSeconds: pollingGone('pollMaxSeconds'),
        maxRunMinutes: int('maxRunMinutes', 5, 1_440, ' minutes').default(240),
        maxQueueMinutes: int('maxQueueMinutes', 1, 1_440, ' minutes').default(60),
        heartbeatSeconds: int('heartbeatSeconds', 120, 3_600, ' seconds').default(300),
        maxLostRetries: int('maxLostRetries', 0, 5).default(1),
        lockWaitMinutes: int('lockWaitMinutes', 1, 1_440, ' minutes').default(60),
        lockLeaseMinutes: int('lockLeaseMinutes', 5, 240, ' minutes').default(15),
        replicationWaitMinutes: int('replicationWaitMinutes', 0, 60, ' minutes').default(5),
        tls: z
          .object({
            hostedZoneId: z.string().regex(/^Z[A-Z0-9]{1,31}$/, {
              error:
                'is not a Route 53 hosted zone id. Fix: the private zone the Lambdas resolve, e.g. Z0123456789ABCDEFGHIJ',
            }),
            endpoints: z.record(
              z.string(),
              z
                .object({
                  hostname: z
                    .string()
                    .regex(/^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, {
                      error: 'is not a DNS name. Fix: e.g. dbt-api.use1.dataplatform.example.com',
                    }),
                  certificateArn: z
                    .string()
                    .regex(/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]{36}$/, {
                      error:
                        'is not an ACM certificate ARN. Fix: arn:aws:acm:<region>:<account>:certificate/<uuid>',
                    }),
                })
                .strict(),
              { error: 'must map each region to {hostname, certificateArn}. Fix: see Pulumi.prod-east.yaml' },
            ),
          })
          .strict()
          .optional(),
        allowPlainHttp: z.boolean({ error: 'must be true or false' }).default(false),
        // Account-wide: replaces the home registry's whole replication configuration (docs/config.md).
        ecrReplication: z
          .boolean({
            error:
              "must be true or false. Fix: pulumi config set --path dbt.ecrReplication true (replaces the account's ECR replication rules in the home region; see docs/dbt-app.md)",
          })
          .default(false),
      })
      .strict(),
    pipelines: z
      .array(pipeline, { error: 'must be a list of pipelines. Fix: see Pulumi.prod-east.yaml for the shape' })
      .min(1, { error: 'is empty. Fix: configure at least one pipeline' }),
  })
  .strict();

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type PipelineConfig = ParsedConfig['pipelines'][number];

/** Keys the program reads, in the project's namespace unless they carry their own. */
export const CONFIG_KEYS = Object.keys(configSchema.shape) as Array<keyof typeof configSchema.shape>;

/** Keys whose stored value is a plain string rather than JSON. */
export const STRING_KEYS: ReadonlySet<string> = new Set([
  'aws:region',
  'activeRegion',
  'alertEmail',
  'eventSource',
  'eventBusName',
  'controlTableName',
  'workflowLogLevel',
  'defaultTriggerMode',
]);

/** Fields the Snowflake credentials secret must hold. */
export const SNOWFLAKE_CREDENTIAL_FIELDS = [
  'account',
  'user',
  'password',
  'warehouse',
  'database',
  'role',
] as const;

/** Secrets: never in stack files, set with `pulumi config set --secret`. */
export const SECRET_KEYS = {
  snowflakeCredentials:
    'pulumi config set --secret snowflakeCredentials \'{"account":"...","user":"...","password":"...","warehouse":"...","database":"...","role":"..."}\'',
  dbtApiToken: 'pulumi config set --secret dbtApiToken "$(openssl rand -hex 32)"',
} as const;
export type SecretKey = keyof typeof SECRET_KEYS;
