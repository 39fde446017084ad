import { strict as assert } from 'assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { STACK_REGION, type StackName } from '../contracts/regions';
import { ROOT, runProgram, TEST_SECRETS, type ProgramRun } from '../local/program';
import { ACCOUNT_ID, type RecordedResource } from '../local/pulumi-mocks';

/**
 * Issue G, "Least privilege, proved". Every IAM role the program creates (both stacks, every trigger
 * mode) is matched to an entry of EXPECTATIONS below and its recorded inline policy is run through
 * iam-simulate: each action its job needs is Allowed on the exact ARN the program computed, and the
 * same action on a neighbouring resource (another pipeline, the peer region, another bucket or
 * prefix), plus a sample of dangerous actions, is denied. A role with no entry fails the suite.
 *
 * Re-run: `npx mocha tests/least-privilege.test.ts` (the counts are printed at the end).
 */

const STACKS: readonly StackName[] = ['prod-east', 'prod-west'];
/** undefined = the stacks' configured default (rule-direct); the others add or change roles. */
const MODES = [
  undefined,
  'rule-lambda',
  'rule-intermediate-sfn',
  'schedule-poll',
  'upstream-direct',
] as const;
type Mode = (typeof MODES)[number];
const PEER: Record<StackName, StackName> = { 'prod-east': 'prod-west', 'prod-west': 'prod-east' };
const OTHER_ACCOUNT = '999999999999';

type Result = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';
type Statement = {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, any>;
  Principal?: any;
  NotAction?: unknown;
  NotResource?: unknown;
};
type PolicyDoc = { Version: string; Statement: Statement[] };
const list = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

// ---------------------------------------------------------------------------------------------
// Resource "*" allow-list: actions AWS only authorises on "*" (no resource-level permissions).
// ---------------------------------------------------------------------------------------------
const STAR_ALLOWED: Record<string, string> = {
  // X-Ray has no resource-level permissions for trace upload or sampling (Lambda active tracing,
  // Step Functions tracing).
  'xray:PutTraceSegments': 'X-Ray: no resource-level permissions',
  'xray:PutTelemetryRecords': 'X-Ray: no resource-level permissions',
  'xray:GetSamplingRules': 'X-Ray: no resource-level permissions',
  'xray:GetSamplingTargets': 'X-Ray: no resource-level permissions',
  // Step Functions logging uses CloudWatch Logs vended log delivery; AWS documents these actions
  // with Resource "*" (the delivery APIs are not resource-scoped).
  'logs:CreateLogDelivery': 'Step Functions log delivery (vended logs) requires "*"',
  'logs:GetLogDelivery': 'Step Functions log delivery (vended logs) requires "*"',
  'logs:UpdateLogDelivery': 'Step Functions log delivery (vended logs) requires "*"',
  'logs:DeleteLogDelivery': 'Step Functions log delivery (vended logs) requires "*"',
  'logs:ListLogDeliveries': 'Step Functions log delivery (vended logs) requires "*"',
  'logs:PutResourcePolicy':
    'Step Functions log delivery writes the log group resource policy; "*" per AWS docs',
  'logs:DescribeResourcePolicies': 'Step Functions log delivery (vended logs) requires "*"',
  'logs:DescribeLogGroups': 'Step Functions log delivery (vended logs) requires "*"',
  // Lambda in a VPC: Lambda creates/deletes ENIs in the function's subnets; EC2 ENI actions are not
  // resource-scopable at create time (same as the AWSLambdaVPCAccessExecutionRole managed policy).
  'ec2:CreateNetworkInterface': 'Lambda VPC ENIs (AWSLambdaVPCAccessExecutionRole uses "*")',
  'ec2:DescribeNetworkInterfaces': 'Describe* has no resource-level permissions',
  'ec2:DeleteNetworkInterface': 'Lambda VPC ENIs (AWSLambdaVPCAccessExecutionRole uses "*")',
  'ec2:AssignPrivateIpAddresses': 'Lambda VPC ENIs (AWSLambdaVPCAccessExecutionRole uses "*")',
  'ec2:UnassignPrivateIpAddresses': 'Lambda VPC ENIs (AWSLambdaVPCAccessExecutionRole uses "*")',
  // PutMetricData has no resource-level permissions; allowed only with a cloudwatch:namespace condition.
  'cloudwatch:PutMetricData': 'no resource-level permissions; must carry a cloudwatch:namespace condition',
  // Task-token callbacks: no resource types in the Service Authorization Reference (the token names
  // the execution); held to the role's own region by an aws:RequestedRegion condition.
  'states:SendTaskSuccess': 'callback: no resource-level permissions; must carry aws:RequestedRegion',
  'states:SendTaskFailure': 'callback: no resource-level permissions; must carry aws:RequestedRegion',
  'states:SendTaskHeartbeat': 'callback: no resource-level permissions; must carry aws:RequestedRegion',
};
const STAR_NEEDS_CONDITION: Record<string, string> = {
  'cloudwatch:PutMetricData': 'cloudwatch:namespace',
  'states:SendTaskSuccess': 'aws:RequestedRegion',
  'states:SendTaskFailure': 'aws:RequestedRegion',
  'states:SendTaskHeartbeat': 'aws:RequestedRegion',
};

// ---------------------------------------------------------------------------------------------
// The ARNs a run computed, looked up from its recorded resources.
// ---------------------------------------------------------------------------------------------
interface Ctx {
  stack: StackName;
  mode: Mode;
  region: string;
  run: ProgramRun;
  peer: Ctx | undefined;
  pipelines: string[];
  sm(name: string): string;
  fn(name: string): string;
  queue(prefix: string): string;
  table: string;
  /** This region's dbt run registry (the app's own table). */
  runsTable: string;
  index: string;
  bus: string;
  defaultBus: string;
  topic: string;
  dataKey: string;
  alertsKey: string;
  lake: string;
  artifacts: string;
  snowflakeSecret: string;
  tokenSecret: string;
  guidewireBucket: string;
  guidewirePrefix: string;
  glueJob(pipeline: string, job: string): string;
  gluConnection: string;
  logStream(fn: string): string;
  /** Key ARN → its key policy and the service it may be used through (kms:ViaService). */
  keys: Map<string, { policy: PolicyDoc; via: string }>;
}

function byName(
  run: ProgramRun,
  type: string,
  pred: (r: RecordedResource) => boolean,
  what: string,
): RecordedResource {
  const found = run.ofType(type).filter(pred);
  assert.equal(
    found.length,
    1,
    `${run.ofType(type).length} ${type}: expected exactly one ${what}, found ${found.map((r) => r.state.name).join(', ')}`,
  );
  return found[0];
}

function makeCtx(stack: StackName, mode: Mode, run: ProgramRun, peer?: Ctx): Ctx {
  const region = STACK_REGION[stack];
  const arnByName = (type: string, name: string) =>
    byName(run, type, (r) => r.state.name === name, name).state.arn as string;
  const bucket = (part: string) =>
    byName(run, 'aws:s3/bucket:Bucket', (r) => String(r.state.bucket).includes(part), part).state
      .arn as string;
  const key = (part: string) =>
    byName(run, 'aws:kms/key:Key', (r) => r.name.includes(part), part).state.arn as string;
  const secret = (part: string) =>
    run.ofType('aws:secretsmanager/secret:Secret').find((r) => r.state.name === part)?.state.arn as
      string | undefined;
  const firstJob = run.ofType('aws:glue/job:Job')[0];
  const args = firstJob?.inputs.defaultArguments ?? {};
  return {
    stack,
    mode,
    region,
    run,
    peer,
    pipelines: run
      .ofType('aws:sfn/stateMachine:StateMachine')
      .map((s) => /^etl-(.+)-upstream$/.exec(s.state.name)?.[1])
      .filter((x): x is string => !!x),
    sm: (name) => arnByName('aws:sfn/stateMachine:StateMachine', name),
    fn: (name) => arnByName('aws:lambda/function:Function', name),
    queue: (prefix) =>
      byName(
        run,
        'aws:sqs/queue:Queue',
        (r) => String(r.state.name).startsWith(`etl-${prefix}-queue-`),
        prefix,
      ).state.arn,
    // The global table is declared by the home stack; the other stack uses its replica (same name).
    table: `arn:aws:dynamodb:${region}:${ACCOUNT_ID}:table/${run.outputs.controlTableName}`,
    runsTable: `arn:aws:dynamodb:${region}:${ACCOUNT_ID}:table/${run.one('aws:dynamodb/table:Table', 'dbt-runs').inputs.name}`,
    index: `arn:aws:dynamodb:${region}:${ACCOUNT_ID}:table/${run.outputs.controlTableName}/index/byPipelineStatus`,
    bus: arnByName('aws:cloudwatch/eventBus:EventBus', 'etl-platform'),
    defaultBus: `arn:aws:events:${region}:${ACCOUNT_ID}:event-bus/default`,
    topic: byName(run, 'aws:sns/topic:Topic', (r) => r.name.includes('alerts'), 'alerts topic').state.arn,
    dataKey: key('etl-data-key'),
    alertsKey: key('etl-alerts-key'),
    lake: bucket('etl-lake-'),
    artifacts: bucket('artifacts'),
    // Concrete ARNs matching the `-??????` patterns the policies use (Secrets Manager's suffix).
    snowflakeSecret:
      secret('etl-platform/snowflake') ??
      `arn:aws:secretsmanager:${region}:${ACCOUNT_ID}:secret:etl-platform/snowflake-Ab12Cd`,
    tokenSecret:
      secret('etl-platform/dbt-api-token') ??
      `arn:aws:secretsmanager:${region}:${ACCOUNT_ID}:secret:etl-platform/dbt-api-token-Ab12Cd`,
    guidewireBucket: `arn:aws:s3:::${args['--source_bucket']}`,
    guidewirePrefix: String(args['--source_prefix'] ?? '').replace(/\/?$/, '/'),
    glueJob: (pipeline, job) => arnByName('aws:glue/job:Job', `etl-${pipeline}-${job}`),
    gluConnection: byName(run, 'aws:glue/connection:Connection', () => true, 'Snowflake connection').state
      .arn,
    logStream: (fn) =>
      `arn:aws:logs:${region}:${ACCOUNT_ID}:log-group:/aws/lambda/${fn}:log-stream:2025/01/01/[$LATEST]abc`,
    keys: new Map(
      run.ofType('aws:kms/key:Key').map((k) => {
        const policy = JSON.parse(k.inputs.policy) as PolicyDoc;
        const via = list<string>(
          policy.Statement.find((st) => st.Sid === 'AccountUsesKeyThroughServices')?.Condition
            ?.StringEquals?.['kms:ViaService'],
        )[0];
        return [k.state.arn as string, { policy, via }];
      }),
    ),
  };
}

// ---------------------------------------------------------------------------------------------
// Expectations, keyed by role-name pattern. Each role must match exactly one.
// ---------------------------------------------------------------------------------------------
/** [action, resource ARN, extra context keys] */
type Check = [string, string, Record<string, string | string[]>?];
interface Expectation {
  /** Documentation name of the role (docs/security.md uses the same). */
  readonly name: string;
  readonly pattern: RegExp;
  readonly trust: string;
  readonly allowed: (c: Ctx, p: string, other: string) => Check[];
  readonly denied: (c: Ctx, p: string, other: string) => Check[];
}

const lambdaBasics = (c: Ctx, fn: string): Check[] => [
  ['logs:PutLogEvents', c.logStream(fn)],
  ['logs:CreateLogStream', c.logStream(fn)],
  ['xray:PutTraceSegments', '*'],
];
const sfnBasics: Check[] = [
  ['logs:CreateLogDelivery', '*'],
  ['xray:PutTraceSegments', '*'],
];
const peerOf = (c: Ctx): Ctx => {
  assert.ok(c.peer, 'peer context');
  return c.peer;
};

const EXPECTATIONS: readonly Expectation[] = [
  {
    name: 'etl-lake-replication-<region>',
    pattern: /^etl-lake-replication-(?<region>[a-z0-9-]+)$/,
    trust: 's3.amazonaws.com',
    allowed: (c) => [
      ['s3:GetReplicationConfiguration', c.lake],
      ['s3:ListBucket', c.lake],
      ['s3:GetObjectVersionForReplication', `${c.lake}/raw/policycenter/part-0.parquet`],
      ['s3:ReplicateObject', `${peerOf(c).lake}/raw/policycenter/part-0.parquet`],
      ['s3:ReplicateDelete', `${peerOf(c).lake}/raw/policycenter/part-0.parquet`],
      ['kms:Decrypt', c.dataKey],
      ['kms:GenerateDataKey', peerOf(c).dataKey, { 'kms:ResourceAliases': ['alias/etl-lake'] }],
    ],
    denied: (c) => [
      ['s3:ReplicateObject', `${c.lake}/raw/policycenter/part-0.parquet`], // wrong direction
      ['s3:GetObjectVersionForReplication', `${c.artifacts}/glue/cda_to_lake.py`], // another bucket
      ['s3:PutObject', `${peerOf(c).lake}/raw/policycenter/part-0.parquet`],
      ['s3:GetObject', `${c.lake}/raw/policycenter/part-0.parquet`],
      ['kms:GenerateDataKey', peerOf(c).alertsKey, { 'kms:ResourceAliases': ['alias/etl-alerts'] }],
      ['kms:Decrypt', c.alertsKey],
      ['kms:Decrypt', peerOf(c).dataKey, { 'kms:ResourceAliases': ['alias/etl-lake'] }],
    ],
  },
  {
    name: 'etl-batch-context-<region>',
    pattern: /^etl-batch-context-(?<region>[a-z0-9-]+)$/,
    trust: 'lambda.amazonaws.com',
    allowed: (c) => lambdaBasics(c, 'etl-batch-context'),
    denied: (c) => [
      ['logs:PutLogEvents', c.logStream('etl-watchdog')],
      ['dynamodb:GetItem', c.table],
      ['s3:GetObject', `${c.lake}/_runs/policycenter/x.json`],
    ],
  },
  {
    name: 'etl-glue-<pipeline>-<region>',
    pattern: /^etl-glue-(?<p>[a-z0-9]+)-(?<region>[a-z0-9-]+)$/,
    trust: 'glue.amazonaws.com',
    allowed: (c, p) => [
      ['s3:GetObject', `${c.guidewireBucket}/${c.guidewirePrefix}${p}/manifest.json`],
      ['s3:ListBucket', c.guidewireBucket, { 's3:prefix': `${c.guidewirePrefix}${p}/` }],
      ['s3:PutObject', `${c.lake}/raw/${p}/policy/part-0.parquet`],
      ['s3:GetObject', `${c.lake}/_runs/${p}/batch-1.json`],
      ['s3:DeleteObject', `${c.lake}/raw/${p}/policy/part-0.parquet`],
      ['s3:ListBucket', c.lake, { 's3:prefix': `raw/${p}/` }],
      ['kms:GenerateDataKey', c.dataKey],
      ['kms:Decrypt', c.dataKey],
      ['s3:GetObject', `${c.artifacts}/glue/cda_to_lake.py`],
      ['s3:PutObject', `${c.artifacts}/tmp/${p}/spark-temp/x`],
      ['secretsmanager:GetSecretValue', c.snowflakeSecret],
      ['glue:GetConnection', c.gluConnection],
      [
        'logs:PutLogEvents',
        `arn:aws:logs:${c.region}:${ACCOUNT_ID}:log-group:/aws-glue/jobs/output:log-stream:jr_1`,
      ],
      ['cloudwatch:PutMetricData', '*', { 'cloudwatch:namespace': 'Glue' }],
    ],
    denied: (c, p, other) => [
      ['s3:PutObject', `${c.lake}/raw/${other}/policy/part-0.parquet`], // another pipeline's prefix
      ['s3:GetObject', `${c.lake}/raw/${other}/policy/part-0.parquet`],
      ['s3:PutObject', `${c.lake}/curated/${p}/x.parquet`], // another prefix of the lake
      ['s3:ListBucket', c.lake, { 's3:prefix': `raw/${other}/` }],
      ['s3:ListBucket', c.lake, { 's3:prefix': '' }],
      ['s3:PutObject', `${peerOf(c).lake}/raw/${p}/policy/part-0.parquet`], // peer region's lake
      ['s3:PutObject', `${c.artifacts}/glue/cda_to_lake.py`], // the shared job scripts are read-only
      ['s3:PutObject', `${c.artifacts}/tmp/${other}/x`],
      ['s3:PutObject', `${c.guidewireBucket}/${c.guidewirePrefix}${p}/x`], // Guidewire's bucket is read-only
      ['s3:GetObject', `${c.guidewireBucket}/other/${p}/x`],
      ['secretsmanager:GetSecretValue', c.tokenSecret],
      ['secretsmanager:GetSecretValue', peerOf(c).snowflakeSecret],
      ['glue:GetConnection', `arn:aws:glue:${c.region}:${ACCOUNT_ID}:connection/other`],
      ['cloudwatch:PutMetricData', '*', { 'cloudwatch:namespace': 'ETL/Platform' }],
      ['kms:Decrypt', c.alertsKey],
      ['glue:StartJobRun', c.glueJob(p, 'cda-to-lake')],
    ],
  },
  {
    name: 'etl-watchdog-<region>',
    pattern: /^etl-watchdog-(?!alerts-)(?<region>[a-z0-9-]+)$/,
    trust: 'lambda.amazonaws.com',
    allowed: (c) => [
      ...lambdaBasics(c, 'etl-watchdog'),
      ['dynamodb:BatchGetItem', c.table],
      ['dynamodb:PutItem', c.table],
      ['dynamodb:DeleteItem', c.table],
      ['dynamodb:Query', c.index],
      ['dynamodb:Query', c.table],
      ...c.pipelines.map((p): Check => ['states:StartExecution', c.sm(`etl-${p}-downstream`)]),
      // Its alerts: the alert workflow publishes them; the function itself has no SNS or KMS.
      ['states:StartExecution', c.sm('etl-watchdog-alerts')],
    ],
    denied: (c, p) => [
      ['states:StartExecution', c.sm(`etl-${p}-upstream`)],
      ['states:StartExecution', peerOf(c).sm(`etl-${p}-downstream`)],
      ['states:StartExecution', peerOf(c).sm('etl-watchdog-alerts')],
      [
        'states:StopExecution',
        `arn:aws:states:${c.region}:${ACCOUNT_ID}:execution:etl-watchdog-alerts:alert-x`,
      ],
      ['dynamodb:PutItem', peerOf(c).table],
      ['dynamodb:UpdateItem', c.table],
      ['sns:Publish', c.topic],
      ['sns:Publish', peerOf(c).topic],
      ['kms:GenerateDataKey', c.alertsKey],
      ['kms:Decrypt', c.dataKey],
    ],
  },
  {
    name: 'etl-watchdog-alerts-<region> (Step Functions)',
    pattern: /^etl-watchdog-alerts-(?<region>[a-z0-9-]+)$/,
    trust: 'states.amazonaws.com',
    allowed: (c) => [
      ...sfnBasics,
      ['sns:Publish', c.topic],
      ['kms:GenerateDataKey', c.alertsKey],
      ['kms:Decrypt', c.alertsKey],
    ],
    denied: (c, p) => [
      ['sns:Publish', peerOf(c).topic],
      ['sns:Publish', `arn:aws:sns:${c.region}:${ACCOUNT_ID}:other-topic`],
      ['kms:GenerateDataKey', peerOf(c).alertsKey],
      ['kms:Decrypt', c.dataKey],
      ['states:StartExecution', c.sm('etl-watchdog-alerts')],
      ['states:StartExecution', c.sm(`etl-${p}-downstream`)],
      ['lambda:InvokeFunction', c.fn('etl-watchdog')],
      ['dynamodb:PutItem', c.table],
    ],
  },
  {
    name: 'etl-<pipeline>-upstream-<region> (Step Functions)',
    pattern: /^etl-(?<p>[a-z0-9]+)-upstream-(?<region>[a-z0-9-]+)$/,
    trust: 'states.amazonaws.com',
    allowed: (c, p) => [
      ...sfnBasics,
      ['dynamodb:PutItem', c.table],
      ['dynamodb:UpdateItem', c.table],
      ['dynamodb:GetItem', c.table],
      ['dynamodb:DeleteItem', c.table],
      ['events:PutEvents', c.bus],
      ['glue:StartJobRun', c.glueJob(p, 'cda-to-lake')],
      ['glue:StartJobRun', c.glueJob(p, 'lake-to-snowflake')],
      ['glue:GetJobRun', c.glueJob(p, 'cda-to-lake')],
      ['lambda:InvokeFunction', c.fn('etl-batch-context')],
      ['s3:GetObject', `${c.lake}/_runs/${p}/batch-1.json`],
      ['kms:Decrypt', c.dataKey],
      ['sns:Publish', c.topic],
      ['kms:GenerateDataKey', c.alertsKey],
      // upstream-direct: the upstream starts its own downstream itself.
      ...(c.mode === 'upstream-direct'
        ? [['states:StartExecution', c.sm(`etl-${p}-downstream`)] as Check]
        : []),
    ],
    denied: (c, p, other) => [
      ['glue:StartJobRun', c.glueJob(other, 'cda-to-lake')],
      ['glue:StartJobRun', peerOf(c).glueJob(p, 'cda-to-lake')],
      ['events:PutEvents', peerOf(c).bus],
      ['events:PutEvents', c.defaultBus],
      ['s3:GetObject', `${c.lake}/_runs/${other}/batch-1.json`],
      ['s3:GetObject', `${c.lake}/raw/${p}/policy/part-0.parquet`],
      ['lambda:InvokeFunction', c.fn('etl-start-dbt-run')],
      ['states:StartExecution', c.sm(`etl-${other}-downstream`)],
      ...(c.mode === 'upstream-direct'
        ? []
        : [['states:StartExecution', c.sm(`etl-${p}-downstream`)] as Check]),
      ['dynamodb:PutItem', peerOf(c).table],
      ['dynamodb:Scan', c.table],
    ],
  },
  {
    name: 'etl-<pipeline>-downstream-<region> (Step Functions)',
    pattern: /^etl-(?<p>[a-z0-9]+)-downstream-(?<region>[a-z0-9-]+)$/,
    trust: 'states.amazonaws.com',
    allowed: (c) => [
      ...sfnBasics,
      ...['etl-batch-context', 'etl-check-consistency', 'etl-start-dbt-run', 'etl-get-dbt-run'].map(
        (f): Check => ['lambda:InvokeFunction', c.fn(f)],
      ),
      ['dynamodb:PutItem', c.table],
      ['dynamodb:UpdateItem', c.table],
      ['events:PutEvents', c.bus],
      ['sns:Publish', c.topic],
      ['kms:GenerateDataKey', c.alertsKey],
    ],
    denied: (c, p) => [
      ['lambda:InvokeFunction', c.fn('etl-watchdog')],
      ['lambda:InvokeFunction', c.fn('etl-fence-writer')],
      ['lambda:InvokeFunction', peerOf(c).fn('etl-start-dbt-run')],
      ['events:PutEvents', peerOf(c).bus],
      ['states:StartExecution', c.sm(`etl-${p}-downstream`)],
      ['glue:StartJobRun', c.glueJob(p, 'cda-to-lake')],
      ['secretsmanager:GetSecretValue', c.tokenSecret],
      ['dynamodb:UpdateItem', peerOf(c).table],
    ],
  },
  {
    name: 'etl-check-consistency-<region>',
    pattern: /^etl-check-consistency-(?<region>[a-z0-9-]+)$/,
    trust: 'lambda.amazonaws.com',
    allowed: (c) => [
      ...lambdaBasics(c, 'etl-check-consistency'),
      ['dynamodb:GetItem', c.table],
      ['dynamodb:Query', c.table],
    ],
    denied: (c) => [
      ['dynamodb:PutItem', c.table],
      ['dynamodb:UpdateItem', c.table],
      ['dynamodb:GetItem', peerOf(c).table],
      ['logs:PutLogEvents', c.logStream('etl-watchdog')],
    ],
  },
  ...(['etl-start-dbt-run', 'etl-get-dbt-run'] as const).map((fn): Expectation => ({
    name: `${fn}-<region>`,
    pattern: new RegExp(`^${fn}-(?<region>[a-z0-9-]+)$`),
    trust: 'lambda.amazonaws.com',
    allowed: (c) => [
      ...lambdaBasics(c, fn),
      ['secretsmanager:GetSecretValue', c.tokenSecret],
      ['ec2:CreateNetworkInterface', '*'],
      ['ec2:DescribeNetworkInterfaces', '*'],
    ],
    denied: (c) => [
      ['secretsmanager:GetSecretValue', c.snowflakeSecret],
      ['secretsmanager:GetSecretValue', peerOf(c).tokenSecret],
      ['logs:PutLogEvents', c.logStream('etl-watchdog')],
      ['dynamodb:GetItem', c.table],
    ],
  })),
  {
    name: 'etl-forward-events-<region>',
    pattern: /^etl-forward-events-(?<region>[a-z0-9-]+)$/,
    trust: 'events.amazonaws.com',
    allowed: (c) => [['events:PutEvents', peerOf(c).bus]],
    denied: (c) => [
      ['events:PutEvents', c.bus],
      ['events:PutEvents', peerOf(c).defaultBus],
    ],
  },
  {
    name: 'etl-sched-watchdog-<region> (Scheduler)',
    pattern: /^etl-sched-watchdog-(?<region>[a-z0-9-]+)$/,
    trust: 'scheduler.amazonaws.com',
    allowed: (c) => [
      ['lambda:InvokeFunction', c.fn('etl-watchdog')],
      ['sqs:SendMessage', c.queue('watchdog-schedule-dlq')],
    ],
    denied: (c, p) => [
      ['lambda:InvokeFunction', c.fn('etl-fence-writer')],
      ['lambda:InvokeFunction', peerOf(c).fn('etl-watchdog')],
      ['sqs:SendMessage', c.queue(`${p}-upstream-schedule-dlq`)],
      ['states:StartExecution', c.sm(`etl-${p}-upstream`)],
    ],
  },
  {
    name: 'etl-sched-<pipeline>-<region> (Scheduler)',
    pattern: /^etl-sched-(?<p>(?!watchdog-)[a-z0-9]+)-(?<region>[a-z0-9-]+)$/,
    trust: 'scheduler.amazonaws.com',
    allowed: (c, p) => [
      ['states:StartExecution', c.sm(`etl-${p}-upstream`)],
      ['sqs:SendMessage', c.queue(`${p}-upstream-schedule-dlq`)],
    ],
    denied: (c, p, other) => [
      ['states:StartExecution', c.sm(`etl-${other}-upstream`)],
      ['states:StartExecution', c.sm(`etl-${p}-downstream`)],
      ['states:StartExecution', peerOf(c).sm(`etl-${p}-upstream`)],
      ['sqs:SendMessage', c.queue(`${other}-upstream-schedule-dlq`)],
    ],
  },
  {
    name: 'etl-trigger-<pipeline>-<region> (EventBridge rule target)',
    pattern: /^etl-trigger-(?<p>[a-z0-9]+)-(?<region>[a-z0-9-]+)$/,
    trust: 'events.amazonaws.com',
    // rule-intermediate-sfn: the rule starts the pipeline's trigger machine, never the downstream itself.
    allowed: (c, p) => [
      [
        'states:StartExecution',
        c.sm(c.mode === 'rule-intermediate-sfn' ? `etl-${p}-trigger-sfn` : `etl-${p}-downstream`),
      ],
    ],
    denied: (c, p, other) => [
      ['states:StartExecution', c.sm(`etl-${other}-downstream`)],
      ['states:StartExecution', peerOf(c).sm(`etl-${p}-downstream`)],
      ['states:StartExecution', c.sm(`etl-${p}-upstream`)],
      ...(c.mode === 'rule-intermediate-sfn'
        ? [
            ['states:StartExecution', c.sm(`etl-${p}-downstream`)] as Check,
            ['states:StartExecution', c.sm(`etl-${other}-trigger-sfn`)] as Check,
          ]
        : []),
    ],
  },
  {
    name: 'etl-dbt-app-<region> (IRSA)',
    pattern: /^etl-dbt-app-(?<region>[a-z0-9-]+)$/,
    trust: 'federated:oidc-provider/oidc.eks',
    allowed: (c) => [
      ['secretsmanager:GetSecretValue', c.snowflakeSecret],
      ['dynamodb:PutItem', c.runsTable],
      ['dynamodb:UpdateItem', c.runsTable],
      ['dynamodb:GetItem', c.runsTable],
      ['dynamodb:Query', `${c.runsTable}/index/byStatus`],
      ['states:SendTaskSuccess', '*', { 'aws:RequestedRegion': c.region }],
      ['states:SendTaskFailure', '*', { 'aws:RequestedRegion': c.region }],
      ['states:SendTaskHeartbeat', '*', { 'aws:RequestedRegion': c.region }],
      // Lease renewal: the lease attributes of a pipeline's lock, nothing else.
      [
        'dynamodb:UpdateItem',
        c.table,
        {
          'dynamodb:LeadingKeys': [`PIPELINE#${c.pipelines[0]}`],
          'dynamodb:Attributes': ['pk', 'sk', 'executionArn', 'leaseExpiresAt', 'leaseRenewedAt'],
        },
      ],
    ],
    denied: (c) => [
      [
        'dynamodb:UpdateItem',
        c.table,
        { 'dynamodb:LeadingKeys': ['FENCE'], 'dynamodb:Attributes': ['pk', 'sk', 'leaseExpiresAt'] },
      ],
      [
        'dynamodb:UpdateItem',
        c.table,
        {
          'dynamodb:LeadingKeys': [`PIPELINE#${c.pipelines[0]}`],
          'dynamodb:Attributes': ['pk', 'sk', 'status'],
        },
      ],
      [
        'dynamodb:UpdateItem',
        c.table,
        {
          'dynamodb:LeadingKeys': [`PIPELINE#${c.pipelines[0]}`],
          'dynamodb:Attributes': ['pk', 'sk', 'leaseExpiresAt'],
          'dynamodb:ReturnValues': 'ALL_NEW',
        },
      ],
      [
        'dynamodb:UpdateItem',
        peerOf(c).table,
        {
          'dynamodb:LeadingKeys': [`PIPELINE#${c.pipelines[0]}`],
          'dynamodb:Attributes': ['pk', 'sk', 'leaseExpiresAt'],
        },
      ],
      ['dynamodb:DeleteItem', c.table, { 'dynamodb:LeadingKeys': [`PIPELINE#${c.pipelines[0]}`] }],
      ['secretsmanager:GetSecretValue', c.tokenSecret],
      ['states:SendTaskSuccess', '*', { 'aws:RequestedRegion': peerOf(c).region }],
      ['states:StartExecution', c.sm(`etl-${c.pipelines[0]}-downstream`)],
      ['dynamodb:DeleteItem', c.runsTable],
      ['dynamodb:Scan', c.runsTable],
      ['dynamodb:PutItem', c.table],
      ['dynamodb:GetItem', peerOf(c).runsTable],
      ['secretsmanager:GetSecretValue', peerOf(c).snowflakeSecret],
      ['secretsmanager:PutSecretValue', c.snowflakeSecret],
      ['s3:GetObject', `${c.lake}/raw/policycenter/part-0.parquet`],
    ],
  },
  {
    name: 'etl-fence-writer-<region>',
    pattern: /^etl-fence-writer-(?<region>[a-z0-9-]+)$/,
    trust: 'lambda.amazonaws.com',
    allowed: (c) => [
      ...lambdaBasics(c, 'etl-fence-writer'),
      ['dynamodb:UpdateItem', c.table, { 'dynamodb:LeadingKeys': ['FENCE'] }],
      ['dynamodb:GetItem', c.table, { 'dynamodb:LeadingKeys': ['FENCE'] }],
      ['secretsmanager:GetSecretValue', c.snowflakeSecret], // the warehouse fence (SQL API key pair)
    ],
    denied: (c, p) => [
      ['secretsmanager:GetSecretValue', peerOf(c).snowflakeSecret],
      ['secretsmanager:GetSecretValue', c.tokenSecret],
      ['secretsmanager:PutSecretValue', c.snowflakeSecret],
      ['dynamodb:UpdateItem', c.table, { 'dynamodb:LeadingKeys': [`PIPELINE#${p}`] }], // any item but the fence
      ['dynamodb:UpdateItem', c.table, { 'dynamodb:LeadingKeys': ['FENCE', `PIPELINE#${p}`] }],
      ['dynamodb:PutItem', c.table, { 'dynamodb:LeadingKeys': ['FENCE'] }],
      ['dynamodb:DeleteItem', c.table, { 'dynamodb:LeadingKeys': ['FENCE'] }],
      ['dynamodb:UpdateItem', peerOf(c).table, { 'dynamodb:LeadingKeys': ['FENCE'] }],
    ],
  },
  {
    name: 'etl-start-ds-<pipeline>-<region> (rule-lambda)',
    pattern: /^etl-start-ds-(?<p>[a-z0-9]+)-(?<region>[a-z0-9-]+)$/,
    trust: 'lambda.amazonaws.com',
    allowed: (c, p) => [
      ...lambdaBasics(c, `etl-start-ds-${p}`),
      ['states:StartExecution', c.sm(`etl-${p}-downstream`)],
      ['sqs:SendMessage', c.queue(`${p}-trigger-async-dlq`)],
    ],
    denied: (c, p, other) => [
      ['states:StartExecution', c.sm(`etl-${other}-downstream`)],
      ['states:StartExecution', peerOf(c).sm(`etl-${p}-downstream`)],
      ['sqs:SendMessage', c.queue(`${other}-trigger-async-dlq`)],
      ['logs:PutLogEvents', c.logStream(`etl-start-ds-${other}`)],
    ],
  },
  {
    name: 'etl-<pipeline>-trigger-sfn-<region> (rule-intermediate-sfn)',
    pattern: /^etl-(?<p>[a-z0-9]+)-trigger-sfn-(?<region>[a-z0-9-]+)$/,
    trust: 'states.amazonaws.com',
    allowed: (c, p) => [
      ...sfnBasics,
      ['states:StartExecution', c.sm(`etl-${p}-downstream`)],
      [
        'states:DescribeExecution',
        `arn:aws:states:${c.region}:${ACCOUNT_ID}:execution:etl-${p}-downstream:batch-1`,
      ],
      [
        'states:StopExecution',
        `arn:aws:states:${c.region}:${ACCOUNT_ID}:execution:etl-${p}-downstream:batch-1`,
      ],
      // .sync integration: Step Functions manages this one rule itself.
      [
        'events:PutRule',
        `arn:aws:events:${c.region}:${ACCOUNT_ID}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule`,
      ],
      ['sns:Publish', c.topic],
      ['kms:GenerateDataKey', c.alertsKey],
    ],
    denied: (c, p, other) => [
      ['states:StartExecution', c.sm(`etl-${other}-downstream`)],
      [
        'states:StopExecution',
        `arn:aws:states:${c.region}:${ACCOUNT_ID}:execution:etl-${other}-downstream:batch-1`,
      ],
      [
        'events:PutRule',
        `arn:aws:events:${c.region}:${ACCOUNT_ID}:rule/etl-platform/${p}-downstream-trigger`,
      ],
      [
        'events:PutTargets',
        `arn:aws:events:${c.region}:${ACCOUNT_ID}:rule/etl-platform/forward-to-${peerOf(c).region}`,
      ],
      ['states:StartExecution', peerOf(c).sm(`etl-${p}-downstream`)],
    ],
  },
  {
    name: 'etl-<pipeline>-poller-<region> (schedule-poll)',
    pattern: /^etl-(?<p>[a-z0-9]+)-poller-(?<region>[a-z0-9-]+)$/,
    trust: 'states.amazonaws.com',
    allowed: (c, p) => [
      ...sfnBasics,
      ['dynamodb:GetItem', c.table],
      ['dynamodb:Query', c.index],
      ['states:StartExecution', c.sm(`etl-${p}-downstream`)],
    ],
    denied: (c, p, other) => [
      ['dynamodb:PutItem', c.table],
      ['dynamodb:UpdateItem', c.table],
      ['dynamodb:Query', peerOf(c).index],
      ['states:StartExecution', c.sm(`etl-${other}-downstream`)],
      ['states:StartExecution', c.sm(`etl-${p}-upstream`)],
    ],
  },
  {
    name: 'etl-poll-<pipeline>-<region> (Scheduler, schedule-poll)',
    pattern: /^etl-poll-(?<p>[a-z0-9]+)-(?<region>[a-z0-9-]+)$/,
    trust: 'scheduler.amazonaws.com',
    allowed: (c, p) => [
      ['states:StartExecution', c.sm(`etl-${p}-poller`)],
      ['sqs:SendMessage', c.queue(`${p}-trigger-poll-dlq`)],
    ],
    denied: (c, p, other) => [
      ['states:StartExecution', c.sm(`etl-${p}-downstream`)],
      ['states:StartExecution', c.sm(`etl-${other}-poller`)],
      ['sqs:SendMessage', c.queue(`${other}-trigger-poll-dlq`)],
    ],
  },
];

/** Dangerous actions no role may perform, checked for every role. */
const DANGEROUS = (c: Ctx): Check[] => [
  ['iam:PassRole', `arn:aws:iam::${ACCOUNT_ID}:role/etl-admin`],
  ['iam:PassRole', `arn:aws:iam::${ACCOUNT_ID}:role/etl-glue-policycenter-${c.region}`],
  ['s3:DeleteBucket', c.lake],
  ['s3:PutBucketPolicy', c.lake],
  ['dynamodb:DeleteTable', c.table],
  ['kms:ScheduleKeyDeletion', c.dataKey],
  ['kms:PutKeyPolicy', c.alertsKey],
  ['states:DeleteStateMachine', c.sm(`etl-${c.pipelines[0]}-downstream`)],
  ['states:UpdateStateMachine', c.sm(`etl-${c.pipelines[0]}-upstream`)],
  ['lambda:UpdateFunctionCode', c.fn('etl-fence-writer')],
  [
    'events:PutRule',
    `arn:aws:events:${c.region}:${ACCOUNT_ID}:rule/etl-platform/policycenter-downstream-trigger`,
  ],
  ['secretsmanager:PutSecretValue', c.snowflakeSecret],
];

// ---------------------------------------------------------------------------------------------
// Simulation
// ---------------------------------------------------------------------------------------------
const counts = {
  rolesProved: new Set<string>(),
  policiesProved: 0,
  allowed: 0,
  denied: 0,
  resourcePolicy: 0,
  starStatements: 0,
};

function regionOfArn(arn: string, fallback: string): string {
  const parts = arn.split(':');
  return parts.length > 3 && parts[3] ? parts[3] : fallback;
}

async function simulate(args: {
  principal: string;
  action: string;
  resource: string;
  identity: PolicyDoc[];
  resourcePolicy?: PolicyDoc;
  context?: Record<string, string | string[]>;
  region: string;
  resourceAccount?: string;
}): Promise<Result> {
  const principalAccount = args.principal.split(':')[4] || ACCOUNT_ID;
  const result = await runSimulation(
    {
      request: {
        principal: args.principal,
        action: args.action,
        resource: { resource: args.resource, accountId: args.resourceAccount ?? ACCOUNT_ID },
        contextVariables: {
          'aws:RequestedRegion': regionOfArn(args.resource, args.region),
          'aws:SecureTransport': 'true',
          'aws:PrincipalAccount': principalAccount,
          'aws:PrincipalArn': args.principal,
          ...(args.context ?? {}),
        },
      },
      identityPolicies: args.identity.map((policy, i) => ({ name: `policy-${i}`, policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(args.resourcePolicy ? { resourcePolicy: args.resourcePolicy } : {}),
    },
    {},
  );
  if (result.resultType === 'error')
    throw new Error(`simulation error for ${args.action} ${args.resource}: ${JSON.stringify(result.errors)}`);
  return (result as unknown as { overallResult: Result }).overallResult;
}

function rolePolicies(run: ProgramRun, roleName: string): PolicyDoc[] {
  return run
    .ofType('aws:iam/rolePolicy:RolePolicy')
    .filter((p) => p.inputs.role === roleName)
    .map((p) => JSON.parse(p.inputs.policy) as PolicyDoc);
}

const runs = new Map<string, Promise<Ctx>>();
function ctxFor(stack: StackName, mode: Mode): Promise<Ctx> {
  const key = `${stack}/${mode ?? 'default'}`;
  let found = runs.get(key);
  if (!found) {
    found = (async () => {
      const run = await runProgram({ stack, config: mode ? { defaultTriggerMode: mode } : undefined });
      if (run.error) throw run.error;
      const peerRun = await runProgram({
        stack: PEER[stack],
        config: mode ? { defaultTriggerMode: mode } : undefined,
      });
      if (peerRun.error) throw peerRun.error;
      return makeCtx(stack, mode, run, makeCtx(PEER[stack], mode, peerRun));
    })();
    runs.set(key, found);
  }
  return found;
}

async function allRuns(): Promise<Ctx[]> {
  const out: Ctx[] = [];
  for (const stack of STACKS) for (const mode of MODES) out.push(await ctxFor(stack, mode));
  return out;
}

function trustMatches(role: RecordedResource, trust: string): boolean {
  const doc = JSON.parse(role.inputs.assumeRolePolicy) as PolicyDoc;
  return doc.Statement.every((s) => {
    if (trust.startsWith('federated:'))
      return (
        String(s.Principal?.Federated ?? '').includes(trust.slice('federated:'.length)) &&
        s.Action === 'sts:AssumeRoleWithWebIdentity'
      );
    return (
      JSON.stringify(s.Principal) === JSON.stringify({ Service: trust }) && s.Action === 'sts:AssumeRole'
    );
  });
}

describe('least privilege, proved (iam-simulate over every role in both stacks and every trigger mode)', function () {
  this.timeout(120_000);

  before(async () => {
    await allRuns();
  });

  after(() => {
    console.log(
      `\n    least-privilege: ${counts.rolesProved.size} roles proved (${counts.policiesProved} distinct role policies across ${STACKS.length} stacks × ${MODES.length} modes), ` +
        `${counts.allowed} allowed checks, ${counts.denied} denied checks, ${counts.resourcePolicy} resource-policy checks, ${counts.starStatements} "*" statements audited`,
    );
  });

  it('every role matches exactly one expectation, has its trusted principal, and no managed/attached policies', async () => {
    const missing: string[] = [];
    const used = new Set<string>();
    for (const c of await allRuns()) {
      for (const role of c.run.ofType('aws:iam/role:Role')) {
        const name: string = role.state.name;
        const hits = EXPECTATIONS.filter((e) => e.pattern.test(name));
        if (hits.length === 0) missing.push(`${name} (${c.stack}/${c.mode ?? 'default'})`);
        assert.ok(hits.length <= 1, `${name} matches ${hits.map((h) => h.name).join(', ')}`);
        if (hits.length === 1) {
          used.add(hits[0].name);
          assert.ok(
            trustMatches(role, hits[0].trust),
            `${name}: trust policy is not ${hits[0].trust}: ${role.inputs.assumeRolePolicy}`,
          );
          assert.equal(
            hits[0].pattern.exec(name)?.groups?.region,
            c.region,
            `${name} is named for its region`,
          );
        }
        assert.equal(role.inputs.managedPolicyArns, undefined, `${name}: no managed policies`);
        assert.ok(rolePolicies(c.run, name).length >= 1, `${name} has an inline policy`);
      }
      const attachments = c.run.resources.filter((r) =>
        /policyAttachment|iam\/policy:Policy|iam\/user|iam\/group/i.test(r.type),
      );
      assert.deepEqual(
        attachments.map((r) => r.name),
        [],
        'only inline role policies: everything proved here is everything granted',
      );
      const roleNames = new Set(c.run.ofType('aws:iam/role:Role').map((r) => r.state.name));
      for (const p of c.run.ofType('aws:iam/rolePolicy:RolePolicy'))
        assert.ok(roleNames.has(p.inputs.role), `${p.name} is on a declared role`);
    }
    assert.deepEqual(missing, [], 'roles with no least-privilege expectation: add an entry to EXPECTATIONS');
    assert.deepEqual(
      EXPECTATIONS.map((e) => e.name).filter((n) => !used.has(n)),
      [],
      'stale expectations',
    );
  });

  it('every policy statement is Allow with explicit actions; Resource "*" only for the allow-listed actions', async () => {
    for (const c of await allRuns()) {
      for (const p of c.run.ofType('aws:iam/rolePolicy:RolePolicy')) {
        const doc = JSON.parse(p.inputs.policy) as PolicyDoc;
        for (const s of doc.Statement) {
          const where = `${p.inputs.role} ${s.Sid ?? JSON.stringify(s.Action)}`;
          assert.equal(s.Effect, 'Allow', where);
          assert.equal(s.NotAction, undefined, `${where}: no NotAction`);
          assert.equal(s.NotResource, undefined, `${where}: no NotResource`);
          for (const a of list(s.Action)) assert.ok(!a.includes('*'), `${where}: wildcard action ${a}`);
          const resources = list(s.Resource);
          if (resources.includes('*')) {
            counts.starStatements++;
            assert.deepEqual(resources, ['*'], `${where}: "*" is not mixed with ARNs`);
            for (const a of list(s.Action)) {
              assert.ok(STAR_ALLOWED[a], `${where}: ${a} on "*" is not in the allow-list`);
              const key = STAR_NEEDS_CONDITION[a];
              if (key)
                assert.ok(
                  JSON.stringify(s.Condition ?? {}).includes(`"${key}"`),
                  `${where}: ${a} needs a ${key} condition`,
                );
            }
          }
          for (const r of resources) {
            if (r === '*') continue;
            assert.match(r, /^arn:aws:[a-z0-9-]+:([a-z0-9-]*):(\d{12})?:/, `${where}: ${r} is an ARN`);
            const region = r.split(':')[3];
            if (region)
              assert.ok(
                region === c.region ||
                  (p.inputs.role as string).startsWith('etl-lake-replication-') ||
                  (p.inputs.role as string).startsWith('etl-forward-events-'),
                `${where}: ${r} is in this region`,
              );
            const account = r.split(':')[4];
            if (account) assert.equal(account, ACCOUNT_ID, `${where}: ${r} is in this account`);
          }
        }
      }
    }
  });

  for (const exp of EXPECTATIONS) {
    for (const stack of STACKS) {
      it(`${exp.name} · ${stack}: needed actions Allowed on their exact ARNs; neighbours and dangerous actions denied`, async () => {
        const proved = new Set<string>();
        let matched = 0;
        const failures: string[] = [];
        for (const mode of MODES) {
          const c = await ctxFor(stack, mode);
          for (const role of c.run.ofType('aws:iam/role:Role')) {
            const name: string = role.state.name;
            const m = exp.pattern.exec(name);
            if (!m) continue;
            matched++;
            const policies = rolePolicies(c.run, name);
            const key = `${name}\n${JSON.stringify(policies)}`;
            if (proved.has(key)) continue; // same role, same policy in another mode: proved already
            proved.add(key);
            const p = m.groups?.p ?? c.pipelines[0];
            const other = c.pipelines.find((x) => x !== p) as string;
            const principal = role.state.arn as string;
            const run = async (checks: Check[], want: (r: Result) => boolean, label: string) => {
              for (const [action, resource, context] of checks) {
                // KMS: the key policy decides too. Roles use the keys through a service (S3, SNS), as
                // in production, so the request carries that service's kms:ViaService.
                const key = action.startsWith('kms:')
                  ? (c.keys.get(resource) ?? peerOf(c).keys.get(resource))
                  : undefined;
                const kmsContext: Record<string, string> = key
                  ? { 'kms:ViaService': key.via, 'kms:CallerAccount': ACCOUNT_ID }
                  : {};
                const got = await simulate({
                  principal,
                  action,
                  resource,
                  identity: policies,
                  context: { ...kmsContext, ...(context ?? {}) },
                  resourcePolicy: key?.policy,
                  region: c.region,
                });
                if (!want(got))
                  failures.push(
                    `${name} [${c.mode ?? 'default'}] ${action} ${resource} ${context ? JSON.stringify(context) : ''}: ${got}, expected ${label}`,
                  );
                if (label === 'Allowed') counts.allowed++;
                else counts.denied++;
              }
            };
            await run(exp.allowed(c, p, other), (r) => r === 'Allowed', 'Allowed');
            await run([...exp.denied(c, p, other), ...DANGEROUS(c)], (r) => r !== 'Allowed', 'denied');
            counts.rolesProved.add(name);
            counts.policiesProved++;
          }
        }
        assert.ok(matched > 0, `no role matched ${exp.name} in ${stack}`);
        assert.deepEqual(failures, []);
      });
    }
  }

  describe('resource policies', () => {
    it('S3 bucket policies deny non-TLS requests (explicitly), and only those', async () => {
      let buckets = 0;
      for (const stack of STACKS) {
        const c = await ctxFor(stack, undefined);
        const declared = c.run.ofType('aws:s3/bucket:Bucket');
        const policies = c.run.ofType('aws:s3/bucketPolicy:BucketPolicy');
        assert.equal(policies.length, declared.length, `${stack}: every bucket has a policy`);
        for (const bp of policies) {
          buckets++;
          const policy = JSON.parse(bp.inputs.policy) as PolicyDoc;
          // The bucket is named by the policy's own Resource (the mocks' bucket id is not its name).
          const bucketArn = list(policy.Statement[0].Resource).find((r) => !r.endsWith('/*')) as string;
          assert.ok(
            declared.some((b) => b.state.arn === bucketArn),
            `${bucketArn} is a declared bucket`,
          );
          const principal = `arn:aws:iam::${ACCOUNT_ID}:role/etl-reader`;
          const identity: PolicyDoc[] = [
            {
              Version: '2012-10-17',
              Statement: [
                {
                  Effect: 'Allow',
                  Action: ['s3:GetObject', 's3:PutObject', 's3:ListBucket'],
                  Resource: [bucketArn, `${bucketArn}/*`],
                },
              ],
            },
          ];
          for (const [action, resource] of [
            ['s3:GetObject', `${bucketArn}/raw/policycenter/x`],
            ['s3:PutObject', `${bucketArn}/raw/policycenter/x`],
            ['s3:ListBucket', bucketArn],
          ]) {
            const insecure = await simulate({
              principal,
              action,
              resource,
              identity,
              resourcePolicy: policy,
              region: c.region,
              context: { 'aws:SecureTransport': 'false' },
            });
            assert.equal(insecure, 'ExplicitlyDenied', `${bucketArn} ${action} over plain HTTP`);
            const secure = await simulate({
              principal,
              action,
              resource,
              identity,
              resourcePolicy: policy,
              region: c.region,
              context: { 'aws:SecureTransport': 'true' },
            });
            assert.equal(secure, 'Allowed', `${bucketArn} ${action} over TLS`);
            counts.resourcePolicy += 2;
          }
          // The policy grants nothing: a principal with no identity policy gets nothing from it.
          assert.ok(
            policy.Statement.every((s) => s.Effect === 'Deny'),
            `${bucketArn}: bucket policy only denies`,
          );
        }
      }
      assert.ok(buckets >= 4);
    });

    it('the event bus accepts PutEvents from this account (incl. the peer forwarder) and refuses other accounts', async () => {
      for (const stack of STACKS) {
        const c = await ctxFor(stack, undefined);
        const bp = c.run.one('aws:cloudwatch/eventBusPolicy:EventBusPolicy');
        const policy = JSON.parse(bp.inputs.policy) as PolicyDoc;
        const external = `arn:aws:iam::${OTHER_ACCOUNT}:root`;
        const anything: PolicyDoc[] = [
          {
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: 'events:PutEvents', Resource: '*' }],
          },
        ];
        const ext = await simulate({
          principal: external,
          action: 'events:PutEvents',
          resource: c.bus,
          identity: anything,
          resourcePolicy: policy,
          region: c.region,
        });
        assert.equal(ext, 'ExplicitlyDenied', `${stack}: another account`);
        const extRole = await simulate({
          principal: `arn:aws:iam::${OTHER_ACCOUNT}:role/attacker`,
          action: 'events:PutEvents',
          resource: c.bus,
          identity: anything,
          resourcePolicy: policy,
          region: c.region,
        });
        assert.equal(extRole, 'ExplicitlyDenied', `${stack}: a role in another account`);
        const upstream = `etl-${c.pipelines[0]}-upstream-${c.region}`;
        const own = await simulate({
          principal: `arn:aws:iam::${ACCOUNT_ID}:role/${upstream}`,
          action: 'events:PutEvents',
          resource: c.bus,
          identity: rolePolicies(c.run, upstream),
          resourcePolicy: policy,
          region: c.region,
        });
        assert.equal(own, 'Allowed', `${stack}: a role of this account (${upstream})`);
        const peer = peerOf(c);
        const forwarder = `etl-forward-events-${peer.region}`;
        const fwd = await simulate({
          principal: `arn:aws:iam::${ACCOUNT_ID}:role/${forwarder}`,
          action: 'events:PutEvents',
          resource: c.bus,
          identity: rolePolicies(peer.run, forwarder),
          resourcePolicy: policy,
          region: c.region,
        });
        assert.equal(fwd, 'Allowed', `${stack}: the peer region's forwarder`);
        counts.resourcePolicy += 4;
      }
    });

    it('KMS key policies: admin only for the account root, usage only via named services or service principals with aws:SourceAccount, no kms:*', async () => {
      const ADMIN =
        /^kms:(Create\*|Describe\*|Enable\*|List\*|Put\*|Update\*|Revoke\*|Disable\*|Get\*|Delete\*|TagResource|UntagResource|ScheduleKeyDeletion|CancelKeyDeletion|RotateKeyOnDemand)$/;
      const USAGE = /^kms:(Encrypt|Decrypt|ReEncrypt\*|GenerateDataKey\*?|DescribeKey)$/;
      const root = `arn:aws:iam::${ACCOUNT_ID}:root`;
      for (const stack of STACKS) {
        const c = await ctxFor(stack, undefined);
        const keys = c.run.ofType('aws:kms/key:Key');
        assert.ok(keys.length >= 2);
        for (const k of keys) {
          const policy = JSON.parse(k.inputs.policy) as PolicyDoc;
          assert.equal(k.inputs.enableKeyRotation, true, `${k.name} rotates`);
          for (const s of policy.Statement) {
            const where = `${stack} ${k.name} ${s.Sid}`;
            assert.equal(s.Effect, 'Allow', where);
            const actions = list(s.Action);
            assert.ok(!actions.some((a) => a === '*' || a === 'kms:*'), `${where}: no kms:*`);
            assert.notEqual(s.Principal, '*', `${where}: no anonymous principal`);
            if (actions.some((a) => ADMIN.test(a))) {
              assert.deepEqual(
                s.Principal,
                { AWS: root },
                `${where}: admin actions only for the account root`,
              );
              assert.ok(
                actions.every((a) => ADMIN.test(a)),
                `${where}: admin statement carries no usage actions`,
              );
            } else {
              assert.ok(
                actions.every((a) => USAGE.test(a)),
                `${where}: usage actions only`,
              );
              if (s.Principal?.AWS) {
                assert.equal(s.Principal.AWS, root, where);
                const eq = s.Condition?.StringEquals ?? {};
                assert.equal(eq['kms:CallerAccount'], ACCOUNT_ID, `${where}: kms:CallerAccount`);
                const via = list<string>(eq['kms:ViaService']);
                assert.ok(
                  via.length > 0 &&
                    via.every((v) => new RegExp(`^[a-z0-9-]+\\.${c.region}\\.amazonaws\\.com$`).test(v)),
                  `${where}: kms:ViaService names this region's services: ${via}`,
                );
              } else {
                const services = list<string>(s.Principal?.Service);
                assert.ok(
                  services.length > 0 && services.every((x) => /^[a-z0-9-]+\.amazonaws\.com$/.test(x)),
                  `${where}: service principals`,
                );
                assert.equal(
                  s.Condition?.StringEquals?.['aws:SourceAccount'],
                  ACCOUNT_ID,
                  `${where}: aws:SourceAccount`,
                );
              }
            }
          }
          // Simulated: an in-account role with an IAM grant can use the key through the named service
          // only; another account can neither use nor administer it.
          const via = list<string>(
            policy.Statement.find((s) => s.Sid === 'AccountUsesKeyThroughServices')?.Condition
              ?.StringEquals?.['kms:ViaService'],
          )[0];
          const keyArn = k.state.arn as string;
          const role = `arn:aws:iam::${ACCOUNT_ID}:role/etl-user`;
          const grant: PolicyDoc[] = [
            {
              Version: '2012-10-17',
              Statement: [{ Effect: 'Allow', Action: ['kms:Decrypt'], Resource: [keyArn] }],
            },
          ];
          const viaService = await simulate({
            principal: role,
            action: 'kms:Decrypt',
            resource: keyArn,
            identity: grant,
            resourcePolicy: policy,
            region: c.region,
            context: { 'kms:ViaService': via, 'kms:CallerAccount': ACCOUNT_ID },
          });
          assert.equal(viaService, 'Allowed', `${k.name}: Decrypt via ${via}`);
          const direct = await simulate({
            principal: role,
            action: 'kms:Decrypt',
            resource: keyArn,
            identity: grant,
            resourcePolicy: policy,
            region: c.region,
            context: { 'kms:CallerAccount': ACCOUNT_ID },
          });
          assert.notEqual(direct, 'Allowed', `${k.name}: direct Decrypt (not via a service) is refused`);
          const everything: PolicyDoc[] = [
            {
              Version: '2012-10-17',
              Statement: [
                { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:ScheduleKeyDeletion'], Resource: '*' },
              ],
            },
          ];
          for (const action of ['kms:Decrypt', 'kms:ScheduleKeyDeletion']) {
            const ext = await simulate({
              principal: `arn:aws:iam::${OTHER_ACCOUNT}:role/attacker`,
              action,
              resource: keyArn,
              identity: everything,
              resourcePolicy: policy,
              region: c.region,
              context: { 'kms:ViaService': via, 'kms:CallerAccount': OTHER_ACCOUNT },
            });
            assert.notEqual(ext, 'Allowed', `${k.name}: ${action} from another account`);
          }
          counts.resourcePolicy += 4;
        }
      }
    });
  });

  describe('secrets', () => {
    const secretValues = [
      ...Object.values(TEST_SECRETS),
      JSON.parse(TEST_SECRETS.snowflakeCredentials).password as string,
    ];

    function walk(value: unknown, at: string, visit: (path: string, s: string) => void): void {
      if (typeof value === 'string') visit(at, value);
      else if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${at}[${i}]`, visit));
      else if (value && typeof value === 'object')
        for (const [k, v] of Object.entries(value)) walk(v, at ? `${at}.${k}` : k, visit);
    }
    const under = (p: string, root: string) =>
      root === '' || p === root || p.startsWith(`${root}.`) || p.startsWith(`${root}[`);

    it('no secret value appears in plain text in any resource input (outside its secret paths) or any stack output', async () => {
      let hits = 0;
      for (const c of await allRuns()) {
        for (const r of c.run.resources) {
          walk(r.inputs, '', (p, s) => {
            if (!secretValues.some((v) => s.includes(v))) return;
            hits++;
            assert.ok(
              r.secretPaths.some((root) => under(p, root)),
              `${c.stack}/${c.mode ?? 'default'} ${r.type} ${r.name}: ${p} holds a secret value in plain text (secret paths: ${JSON.stringify(r.secretPaths)})`,
            );
          });
        }
        const out = JSON.stringify(c.run.outputs);
        for (const v of secretValues)
          assert.ok(!out.includes(v), `${c.stack}: a secret value appears in the stack outputs`);
      }
      // The secrets do reach their destinations (as secrets): Secrets Manager versions and the K8s Secret.
      assert.ok(hits > 0, 'the test secrets were found somewhere (as secrets)');
    });

    it('the stack files hold no secret values', () => {
      for (const stack of STACKS) {
        const text = fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), 'utf8');
        for (const v of secretValues)
          assert.ok(!text.includes(v), `${stack}: secret value in the stack file`);
        assert.doesNotMatch(
          text,
          /(password|token|credentials)\s*:\s*(?!\s*secure:)\S/i,
          `${stack}: a credential-looking key in plain text`,
        );
      }
    });
  });
});
