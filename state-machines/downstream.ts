import type * as pulumi from '@pulumi/pulumi';
import type { BooleanExpression, Catcher, PayloadTemplate, Retrier, StateMachineDefinition } from './asl';
import type { PolicyStatement } from './policy';
import {
  CONDITIONAL_CHECK_FAILED,
  backoff,
  choice,
  dynamoDeleteItem,
  dynamoGetItem,
  dynamoPutItem,
  dynamoUpdateItem,
  eventsPutEvents,
  fail,
  lambdaInvoke,
  pass,
  RETRYABLE,
  snsPublish,
  succeed,
  wait,
  workflow,
  type StatesInput,
  type TaskOptions,
  type TaskResult,
} from './tasks';

/**
 * The downstream workflow: UpstreamBatchSucceeded → fence → claim → pipeline lock → consistency
 * check → dbt run (adaptive poll) → SUCCEEDED record, watermark, lock release, event.
 *
 * ONE workflow per pipeline (decision, docs/downstream.md): the pipeline's expected tables and
 * dbt selector are constants in its definition, malformed or foreign events are refused before
 * anything is written, and the execution name (= batch id) is unique per state machine.
 *
 * JSONPath only (the local engine ignores JSONata) and no `$$.State.*` (not provided locally).
 */

export const UPSTREAM_DETAIL_TYPE = 'UpstreamBatchSucceeded';
export const SUPPORTED_SCHEMA_VERSION = '1.0';
export const DOWNSTREAM_SUCCEEDED = 'DownstreamRunSucceeded';
export const DOWNSTREAM_FAILED = 'DownstreamRunFailed';

/** Error names the workflow itself raises (Fail states). */
export const WORKFLOW_ERRORS = {
  InvalidTriggerEvent: 'InvalidTriggerEvent',
  DataInconsistencyError: 'DataInconsistencyError',
  PipelineLockTimeout: 'PipelineLockTimeout',
  DbtRunTimeout: 'DbtRunTimeout',
  UnexpectedDbtStatus: 'UnexpectedDbtStatus',
  EventPublishFailed: 'EventPublishFailed',
} as const;

/** Lambda error names (handlers/lib/errors.ts) that are retried; the others never are. */
export const RETRIED_HANDLER_ERRORS = ['DbtApiUnavailable'] as const;
export const NEVER_RETRIED_HANDLER_ERRORS = ['DbtRunFailed', 'DbtApiRejected', 'InvalidInput', 'MissingConfiguration'] as const;

type Arn = pulumi.Input<string>;

export interface DownstreamPipeline {
  /** Pipeline name, e.g. `policycenter` (the batch id's prefix). */
  name: string;
  /** Tables whose SUCCEEDED load records the consistency check requires. */
  expectedTables: string[];
  /** dbt `--select`; omitted → the dbt app's default selection. */
  dbtSelect?: string;
}

export interface DownstreamWorkflowRefs {
  /** The region this stack runs in; compared with the fence's `activeRegion`. */
  region: string;
  /** `source` of the events this workflow accepts (EventBridge envelope) and publishes. */
  eventSource: string;
  pipeline: DownstreamPipeline;
  controlTable: { name: pulumi.Input<string>; arn: Arn };
  functions: {
    batchContext: { arn: Arn };
    checkConsistency: { arn: Arn };
    startDbtRun: { arn: Arn };
    getDbtRun: { arn: Arn };
  };
  bus: { arn: Arn };
  alerts: { arn: Arn; kmsKeyArn?: Arn };
  dbt: {
    pollInitialSeconds: number;
    pollMaxSeconds: number;
    maxRunMinutes: number;
    lockWaitMinutes: number;
    /** First wait while another batch holds the pipeline lock (default 30 s), doubling... */
    lockWaitInitialSeconds?: number;
    /** ...up to this cap (default 300 s). */
    lockWaitMaxSeconds?: number;
  };
  /** Execution timeout; also the lock lease, so a lock never outlives its holder's execution. */
  timeoutSeconds: number;
}

export interface DownstreamWorkflow {
  definition: StateMachineDefinition;
  statements: PolicyStatement[];
}

const PIPELINE_NAME = /^[a-z][a-z0-9-]{0,22}[a-z0-9]$/;

/** A Standard execution fails, uncatchably, past 25,000 history events. */
export const MAX_HISTORY_EVENTS = 25_000;
/** One poll or lock-wait round: Wait, Pass, Choices and a Lambda task's five events. */
export const HISTORY_EVENTS_PER_ROUND = 20;

/** Poll and lock-wait rounds in the worst case the settings allow (plus the ramp-up rounds). */
export function worstCasePollingRounds(dbt: { maxRunMinutes: number; pollMaxSeconds: number; lockWaitMinutes: number; lockWaitMaxSeconds?: number }): number {
  return (
    Math.ceil((dbt.maxRunMinutes * 60) / Math.max(1, dbt.pollMaxSeconds)) +
    Math.ceil((dbt.lockWaitMinutes * 60) / Math.max(1, dbt.lockWaitMaxSeconds ?? 300)) +
    20
  );
}

function validateRefs(refs: DownstreamWorkflowRefs): void {
  const problems: string[] = [];
  const { dbt } = refs;
  if (!PIPELINE_NAME.test(refs.pipeline.name)) problems.push(`pipeline.name "${refs.pipeline.name}" is not a pipeline name`);
  if (refs.pipeline.expectedTables.length === 0) problems.push('pipeline.expectedTables is empty');
  const positive = (name: string, v: number | undefined) => {
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) problems.push(`${name} = ${v} must be a positive integer`);
  };
  const rounds = worstCasePollingRounds(dbt);
  if (rounds * HISTORY_EVENTS_PER_ROUND > MAX_HISTORY_EVENTS) {
    problems.push(`dbt.maxRunMinutes/pollMaxSeconds and lockWaitMinutes allow ~${rounds} polling rounds (~${rounds * HISTORY_EVENTS_PER_ROUND} history events, over Step Functions' 25,000): raise pollMaxSeconds`);
  }
  positive('dbt.pollInitialSeconds', dbt.pollInitialSeconds);
  positive('dbt.pollMaxSeconds', dbt.pollMaxSeconds);
  positive('dbt.maxRunMinutes', dbt.maxRunMinutes);
  positive('dbt.lockWaitMinutes', dbt.lockWaitMinutes);
  positive('dbt.lockWaitInitialSeconds', dbt.lockWaitInitialSeconds);
  positive('dbt.lockWaitMaxSeconds', dbt.lockWaitMaxSeconds);
  positive('timeoutSeconds', refs.timeoutSeconds);
  if (dbt.pollMaxSeconds < dbt.pollInitialSeconds) problems.push('dbt.pollMaxSeconds is below dbt.pollInitialSeconds');
  if (refs.timeoutSeconds < (dbt.maxRunMinutes + dbt.lockWaitMinutes) * 60) {
    problems.push(
      `timeoutSeconds = ${refs.timeoutSeconds} is shorter than maxRunMinutes + lockWaitMinutes (${(dbt.maxRunMinutes + dbt.lockWaitMinutes) * 60} s): ` +
        'an execution timeout cannot be caught, so it would leave the claim CLAIMED and the lock held',
    );
  }
  if (problems.length > 0) throw new Error(`downstreamWorkflow: ${problems.join('; ')}`);
}

// ---------------------------------------------------------------- retry policy

/** Lambda service errors and throttling (AWS-side, never the function's own error). */
const LAMBDA_SERVICE_RETRY = backoff([...RETRYABLE.lambda], { IntervalSeconds: 2, MaxAttempts: 4, MaxDelaySeconds: 30 });
/** The dbt API is down/slow/throttling (5xx, 429, timeout): retry with backoff and full jitter. */
const DBT_UNAVAILABLE_RETRY = backoff([...RETRIED_HANDLER_ERRORS], { IntervalSeconds: 5, MaxAttempts: 5, MaxDelaySeconds: 60 });
/** DynamoDB throttling surfacing from inside check-consistency (SDK error names). */
const CONSISTENCY_DDB_RETRY = backoff(
  ['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded', 'InternalServerError'],
  { IntervalSeconds: 2, MaxAttempts: 4 },
);

/**
 * lambda:invoke with the exact function ARN as the only IAM resource: the workflow invokes
 * unqualified ARNs, so the toolkit's `:*` (versions/aliases) grant is not needed.
 */
function invoke(
  fn: { arn: Arn },
  opts: TaskOptions & { payload: PayloadTemplate; retry: Retrier[] },
): TaskResult {
  const result = lambdaInvoke(fn, opts);
  return { state: result.state, statements: [{ Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [fn.arn] }] };
}

const CONDITION_FAILED = CONDITIONAL_CHECK_FAILED;

// ---------------------------------------------------------------- the definition

export function downstreamWorkflow(refs: DownstreamWorkflowRefs): DownstreamWorkflow {
  validateRefs(refs);
  const p = refs.pipeline.name;
  const table = refs.controlTable;
  const { dbt } = refs;
  const lockWaitInitial = dbt.lockWaitInitialSeconds ?? 30;
  const lockWaitMax = dbt.lockWaitMaxSeconds ?? 300;
  const lockWaitSeconds = dbt.lockWaitMinutes * 60;
  const maxRunSeconds = dbt.maxRunMinutes * 60;

  const pk = { S: `PIPELINE#${p}` };
  const downstreamKey = { pk, sk: { 'S.$': "States.Format('BATCH#{}#DOWNSTREAM', $.batchId)" } };
  const lockKey = { pk, sk: { S: 'LOCK#DOWNSTREAM' } };
  const gsi1pk = (status: string) => ({ S: `PIPELINE#${p}#DOWNSTREAM#${status}` });
  const n = (path: string) => ({ 'N.$': `States.Format('{}', ${path})` });
  const s = (path: string) => ({ 'S.$': path });
  const execArn = { 'S.$': '$$.Execution.Id' };
  const batchIdPattern = `${p}-*T*Z`;
  // A batch id of a longer pipeline name sharing our prefix ("policycenter-x-2026...") has a second hyphen.
  const otherPipelinePattern = `${p}-*-*`;
  // IsString first: a non-string batch id (e.g. a number) must end InvalidTriggerEvent, not
  // fail StringMatches with an unnamed runtime error.
  const batchIdOk = (path: string): BooleanExpression[] => [
    { Variable: path, IsString: true },
    { Variable: path, StringMatches: batchIdPattern },
    { Not: { Variable: path, StringMatches: otherPipelinePattern } },
  ];

  /** What every trigger is normalised into (plus loop counters). */
  const normalised = (batchIdPath: string, rerun: boolean, reasonPath?: string): PayloadTemplate => ({
    pipeline: p,
    'batchId.$': batchIdPath,
    rerun,
    ...(reasonPath ? { 'rerunReason.$': reasonPath } : {}),
    lockWait: { waitSeconds: lockWaitInitial, elapsedSeconds: 0 },
    poll: { waitSeconds: dbt.pollInitialSeconds, elapsedSeconds: 0 },
  });

  const batchContext = (next: string, catchTo: string, extraCatch: { ErrorEquals: string[]; Next: string; ResultPath: string }[] = []) =>
    invoke(refs.functions.batchContext, {
      next,
      payload: { pipeline: p, 'batchId.$': '$.batchId', leaseSeconds: refs.timeoutSeconds },
      resultSelector: {
        'now.$': '$.Payload.now',
        'nowIso.$': '$.Payload.nowIso',
        'leaseExpiresAt.$': '$.Payload.leaseExpiresAt',
        'recordExpiresAt.$': '$.Payload.recordExpiresAt',
      },
      resultPath: '$.ctx',
      retry: [LAMBDA_SERVICE_RETRY],
      catch: [...extraCatch, { ErrorEquals: ['States.ALL'], Next: catchTo, ResultPath: '$.error' }],
    });

  const claimValues = (rerun: boolean): PayloadTemplate => ({
    ':p': { S: p },
    ':b': s('$.batchId'),
    ':claimed': { S: 'CLAIMED' },
    ':zero': { N: '0' },
    ':one': { N: '1' },
    ':region': { S: refs.region },
    // fenceEpoch is N; the GetItem result already holds its string form.
    ':epoch': { 'N.$': '$.fenceItem.Item.epoch.N' },
    ':exec': execArn,
    ':now': s('$.ctx.nowIso'),
    ':exp': n('$.ctx.recordExpiresAt'),
    ':gsi1pk': gsi1pk('CLAIMED'),
    ...(rerun ? { ':failed': { S: 'FAILED' }, ':reason': s('$.rerunReason') } : {}),
  });
  const claimUpdate = (rerun: boolean) =>
    'SET pipeline = :p, batchId = :b, #status = :claimed, attempt = if_not_exists(attempt, :zero) + :one, ' +
    '#region = :region, fenceEpoch = :epoch, executionArn = :exec, startedAt = :now, expiresAt = :exp, ' +
    `gsi1pk = :gsi1pk, gsi1sk = :b${rerun ? ', rerunReason = :reason' : ''} ` +
    'REMOVE #error, #cause, completedAt, dbtRunId, dbtStartedAt, dbtFinishedAt';
  const claimNames = { '#status': 'status', '#region': 'region', '#error': 'error', '#cause': 'cause' };
  const claim = (rerun: boolean) =>
    dynamoUpdateItem(
      table,
      {
        Key: downstreamKey,
        UpdateExpression: claimUpdate(rerun),
        ConditionExpression: rerun ? 'attribute_not_exists(pk) OR #status = :failed' : 'attribute_not_exists(pk)',
        ExpressionAttributeNames: claimNames,
        ExpressionAttributeValues: claimValues(rerun),
        ReturnValues: 'ALL_NEW',
      },
      {
        next: 'AcquirePipelineLock',
        resultSelector: { 'attempt.$': 'States.StringToJson($.Attributes.attempt.N)' },
        resultPath: '$.claim',
        catch: [
          { ErrorEquals: [CONDITION_FAILED], Next: 'DuplicateResult', ResultPath: '$.claimError' },
          { ErrorEquals: ['States.ALL'], Next: 'AlertFailure', ResultPath: '$.error' },
        ],
      },
    );

  /** A Pass that sets `$.error` for a workflow-raised error; `keepLock` when the dbt run's fate is unknown. */
  const raise = (error: string, cause: PayloadTemplate, keepLock = false) =>
    pass({
      next: 'RecordFailure',
      parameters: { Error: error, ...cause, ...(keepLock ? { keepLock: true } : {}) },
      resultPath: '$.error',
    });

  const postClaimCatch = { catchTo: 'RecordFailure' } as const;
  /** Once the dbt run exists, an error whose outcome is unknown keeps the lock (see docs). */
  const dbtRunUnknownCatch = (runFailedTo: string): { catch: Catcher[] } => ({
    catch: [
      { ErrorEquals: ['DbtRunFailed'], Next: runFailedTo, ResultPath: '$.error' },
      { ErrorEquals: ['States.ALL'], Next: 'KeepLockOnUnknownRun', ResultPath: '$.error' },
    ],
  });

  const states: StatesInput = {
    // ---- 0. Normalise: any trigger's input → {pipeline, batchId, rerun}
    ClassifyTrigger: choice(
      [
        { Variable: '$.rerun', IsPresent: true, Next: 'CheckRerunShape' },
        { Variable: '$.detail-type', IsPresent: true, Next: 'CheckEnvelope' },
        {
          And: [
            { Variable: '$.detail', IsPresent: true },
            { Variable: '$.AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID', IsPresent: true },
          ],
          Next: 'CheckDetailShape',
        },
      ],
      'InvalidTriggerEvent',
      'EventBridge envelope (rule target or rule-lambda), Step Functions parent, or operator rerun',
    ),
    CheckEnvelope: choice(
      [
        {
          And: [
            { Variable: '$.detail-type', StringEquals: UPSTREAM_DETAIL_TYPE },
            { Variable: '$.source', IsPresent: true },
          ],
          Next: 'CheckSource',
        },
      ],
      'InvalidTriggerEvent',
    ),
    CheckSource: choice([{ Variable: '$.source', StringEquals: refs.eventSource, Next: 'CheckDetailShape' }], 'InvalidTriggerEvent'),
    CheckDetailShape: choice(
      [
        {
          And: [
            { Variable: '$.detail.schemaVersion', IsPresent: true },
            { Variable: '$.detail.pipeline', IsPresent: true },
            { Variable: '$.detail.batchId', IsPresent: true },
          ],
          Next: 'CheckDetail',
        },
      ],
      'InvalidTriggerEvent',
    ),
    CheckDetail: choice(
      [
        {
          And: [
            { Variable: '$.detail.schemaVersion', StringEquals: SUPPORTED_SCHEMA_VERSION },
            { Variable: '$.detail.pipeline', StringEquals: p },
            ...(batchIdOk('$.detail.batchId')),
          ],
          Next: 'FromEvent',
        },
      ],
      'InvalidTriggerEvent',
    ),
    FromEvent: pass({ next: 'BatchContext', parameters: normalised('$.detail.batchId', false) }),
    CheckRerunShape: choice(
      [
        {
          And: [
            { Variable: '$.rerun.pipeline', IsPresent: true },
            { Variable: '$.rerun.batchId', IsPresent: true },
            { Variable: '$.rerun.reason', IsPresent: true },
          ],
          Next: 'CheckRerun',
        },
      ],
      'InvalidTriggerEvent',
    ),
    CheckRerun: choice(
      [
        {
          And: [
            { Variable: '$.rerun.pipeline', StringEquals: p },
            ...(batchIdOk('$.rerun.batchId')),
            { Variable: '$.rerun.reason', IsString: true },
            { Not: { Variable: '$.rerun.reason', StringEquals: '' } },
          ],
          Next: 'FromRerun',
        },
      ],
      'InvalidTriggerEvent',
    ),
    FromRerun: pass({ next: 'BatchContext', parameters: normalised('$.rerun.batchId', true, '$.rerun.reason') }),
    InvalidTriggerEvent: fail({
      error: WORKFLOW_ERRORS.InvalidTriggerEvent,
      cause:
        `Expected an EventBridge "${UPSTREAM_DETAIL_TYPE}" event from ${refs.eventSource} (or its detail from a parent execution) ` +
        `with detail.schemaVersion "${SUPPORTED_SCHEMA_VERSION}", detail.pipeline "${p}" and detail.batchId "${p}-<yyyyMMdd>T<HHmmss>Z", ` +
        `or {"rerun": {"pipeline": "${p}", "batchId", "reason"}}. Nothing was written.`,
    }),

    // now / lease / record expiry (ASL has no date arithmetic). InvalidInput = a bad batch id: still nothing written.
    BatchContext: batchContext('CheckFence', 'AlertFailure', [
      { ErrorEquals: ['InvalidInput'], Next: 'InvalidTriggerEvent', ResultPath: '$.error' },
    ]),

    // ---- 1. The fence (data plane): only the region it names may claim.
    CheckFence: dynamoGetItem(
      table,
      { Key: { pk: { S: 'FENCE' }, sk: { S: 'ACTIVE' } }, ConsistentRead: true },
      { next: 'FenceHasRegion', resultPath: '$.fenceItem', catchTo: 'AlertFailure' },
    ),
    FenceHasRegion: choice(
      [
        {
          And: [
            { Variable: '$.fenceItem.Item.activeRegion.S', IsPresent: true },
            { Variable: '$.fenceItem.Item.epoch.N', IsPresent: true },
          ],
          Next: 'FenceNamesUs',
        },
      ],
      'RecordSkip',
      'No fence item (or one without activeRegion/epoch) = not active',
    ),
    FenceNamesUs: choice(
      [{ Variable: '$.fenceItem.Item.activeRegion.S', StringEquals: refs.region, Next: 'ChooseClaim' }],
      'RecordSkip',
    ),
    // Audit only, under its own sort key: the claim item is never touched by a skipping region.
    RecordSkip: dynamoPutItem(
      table,
      {
        Item: {
          pk,
          sk: { 'S.$': `States.Format('BATCH#{}#SKIP#${refs.region}', $.batchId)` },
          pipeline: { S: p },
          batchId: s('$.batchId'),
          status: { S: 'SKIPPED_NOT_ACTIVE' },
          region: { S: refs.region },
          fenceSeen: { 'S.$': 'States.JsonToString($.fenceItem)' },
          executionArn: execArn,
          skippedAt: s('$.ctx.nowIso'),
          expiresAt: n('$.ctx.recordExpiresAt'),
        },
      },
      {
        next: 'SkipResult',
        resultPath: null,
        // The audit entry is best effort: failing to write it must not turn a skip into a failure.
        catch: [{ ErrorEquals: ['States.ALL'], Next: 'SkipResult', ResultPath: '$.skipAuditError' }],
      },
    ),
    SkipResult: pass({
      next: 'SkippedNotActive',
      parameters: { outcome: 'SKIPPED_NOT_ACTIVE', pipeline: p, 'batchId.$': '$.batchId', region: refs.region },
    }),
    SkippedNotActive: succeed(),

    // ---- 2. The claim (dedupe): one conditional write on BATCH#<id>#DOWNSTREAM.
    ChooseClaim: choice([{ Variable: '$.rerun', BooleanEquals: true, Next: 'ClaimRerun' }], 'ClaimBatch'),
    ClaimBatch: claim(false),
    ClaimRerun: claim(true),
    DuplicateResult: pass({
      next: 'Duplicate',
      parameters: { outcome: 'DUPLICATE', pipeline: p, 'batchId.$': '$.batchId', 'rerun.$': '$.rerun' },
    }),
    Duplicate: succeed(),

    // ---- 3. The pipeline lock: wait with backoff while another batch holds it.
    AcquirePipelineLock: dynamoPutItem(
      table,
      {
        Item: {
          ...lockKey,
          holder: s('$.batchId'),
          executionArn: execArn,
          acquiredAt: s('$.ctx.nowIso'),
          leaseExpiresAt: n('$.ctx.leaseExpiresAt'),
        },
        ConditionExpression: 'attribute_not_exists(pk) OR leaseExpiresAt < :now OR holder = :b',
        ExpressionAttributeValues: { ':now': n('$.ctx.now'), ':b': s('$.batchId') },
      },
      {
        next: 'ConsistencyCheck',
        resultPath: null,
        catch: [
          { ErrorEquals: [CONDITION_FAILED], Next: 'LockHeld', ResultPath: '$.lockError' },
          { ErrorEquals: ['States.ALL'], Next: 'RecordFailure', ResultPath: '$.error' },
        ],
      },
    ),
    LockHeld: choice(
      [{ Variable: '$.lockWait.elapsedSeconds', NumericGreaterThanEquals: lockWaitSeconds, Next: 'PipelineLockTimeout' }],
      'WaitForLock',
    ),
    WaitForLock: wait({ secondsPath: '$.lockWait.waitSeconds' }, 'CountLockWait'),
    CountLockWait: pass({
      next: 'ClampLockWait',
      parameters: {
        'waitSeconds.$': 'States.MathAdd($.lockWait.waitSeconds, $.lockWait.waitSeconds)',
        'elapsedSeconds.$': 'States.MathAdd($.lockWait.elapsedSeconds, $.lockWait.waitSeconds)',
      },
      resultPath: '$.lockWait',
    }),
    ClampLockWait: choice(
      [{ Variable: '$.lockWait.waitSeconds', NumericGreaterThan: lockWaitMax, Next: 'CapLockWait' }],
      'RefreshContext',
    ),
    CapLockWait: pass({ next: 'RefreshContext', result: lockWaitMax, resultPath: '$.lockWait.waitSeconds' }),
    // A fresh `now` for the lease comparison and a lease counted from the actual acquisition.
    RefreshContext: batchContext('AcquirePipelineLock', 'RecordFailure'),
    PipelineLockTimeout: raise(WORKFLOW_ERRORS.PipelineLockTimeout, {
      Cause: `LOCK#DOWNSTREAM of pipeline ${p} was held by another batch for more than ${dbt.lockWaitMinutes} minutes`,
    }),

    // ---- 4. Consistency of the upstream batch (records, table loads, watermark).
    ConsistencyCheck: invoke(refs.functions.checkConsistency, {
      next: 'IsConsistent',
      payload: { pipeline: p, 'batchId.$': '$.batchId', expectedTables: refs.pipeline.expectedTables, 'rerun.$': '$.rerun' },
      resultSelector: { 'consistencyStatus.$': '$.Payload.consistencyStatus', 'reasons.$': '$.Payload.reasons' },
      resultPath: '$.consistency',
      retry: [LAMBDA_SERVICE_RETRY, CONSISTENCY_DDB_RETRY],
      ...postClaimCatch,
    }),
    IsConsistent: choice(
      [{ Variable: '$.consistency.consistencyStatus', StringEquals: 'SUCCESS', Next: 'StartDbtRun' }],
      'DataInconsistent',
      'Anything but SUCCESS (FAILED, or an unexpected value) stops the build',
    ),
    DataInconsistent: raise(WORKFLOW_ERRORS.DataInconsistencyError, { 'Cause.$': 'States.JsonToString($.consistency.reasons)' }),

    // ---- 5. dbt: start (idempotent per batch id + attempt), then poll with a doubling wait.
    StartDbtRun: invoke(refs.functions.startDbtRun, {
      next: 'MarkRunning',
      payload: {
        pipeline: p,
        'batchId.$': '$.batchId',
        command: 'build',
        ...(refs.pipeline.dbtSelect === undefined ? {} : { select: refs.pipeline.dbtSelect }),
        'attempt.$': '$.claim.attempt',
        // The fence this claim was made under: dbt's on-run-start checks it against the warehouse fence.
        fence: { 'region.$': '$.fenceItem.Item.activeRegion.S', 'epoch.$': '$.fenceItem.Item.epoch.N' },
      },
      resultSelector: { 'runId.$': '$.Payload.runId', 'status.$': '$.Payload.status' },
      resultPath: '$.dbt',
      retry: [LAMBDA_SERVICE_RETRY, DBT_UNAVAILABLE_RETRY],
      // A start that failed after retries may still have created the run: keep the lock.
      ...dbtRunUnknownCatch('RecordFailure'),
    }),
    MarkRunning: dynamoUpdateItem(
      table,
      {
        Key: downstreamKey,
        UpdateExpression: 'SET #status = :running, gsi1pk = :gsi1pk, dbtRunId = :run',
        ConditionExpression: 'executionArn = :exec',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':running': { S: 'RUNNING' },
          ':gsi1pk': gsi1pk('RUNNING'),
          ':run': s('$.dbt.runId'),
          ':exec': execArn,
        },
      },
      { next: 'WaitForDbtRun', resultPath: null, catch: [{ ErrorEquals: ['States.ALL'], Next: 'KeepLockOnUnknownRun', ResultPath: '$.error' }] },
    ),
    WaitForDbtRun: wait({ secondsPath: '$.poll.waitSeconds' }, 'CountPoll'),
    CountPoll: pass({
      next: 'ClampPoll',
      parameters: {
        'waitSeconds.$': 'States.MathAdd($.poll.waitSeconds, $.poll.waitSeconds)',
        'elapsedSeconds.$': 'States.MathAdd($.poll.elapsedSeconds, $.poll.waitSeconds)',
      },
      resultPath: '$.poll',
    }),
    ClampPoll: choice([{ Variable: '$.poll.waitSeconds', NumericGreaterThan: dbt.pollMaxSeconds, Next: 'CapPoll' }], 'GetDbtRun'),
    CapPoll: pass({ next: 'GetDbtRun', result: dbt.pollMaxSeconds, resultPath: '$.poll.waitSeconds' }),
    GetDbtRun: invoke(refs.functions.getDbtRun, {
      next: 'DbtRunStatus',
      payload: { 'runId.$': '$.dbt.runId' },
      resultPath: '$.dbtRun',
      resultSelector: {
        'status.$': '$.Payload.status',
        'startedAt.$': '$.Payload.startedAt',
        'finishedAt.$': '$.Payload.finishedAt',
      },
      retry: [LAMBDA_SERVICE_RETRY, DBT_UNAVAILABLE_RETRY],
      // DbtRunFailed: the run is over, so the lock is released. Anything else: fate unknown.
      ...dbtRunUnknownCatch('RecordFailure'),
    }),
    DbtRunStatus: choice(
      [
        { Variable: '$.dbtRun.status', StringEquals: 'SUCCEEDED', Next: 'FinishContext' },
        {
          Or: [
            { Variable: '$.dbtRun.status', StringEquals: 'QUEUED' },
            { Variable: '$.dbtRun.status', StringEquals: 'RUNNING' },
          ],
          Next: 'DbtRunDeadline',
        },
      ],
      'UnexpectedDbtStatus',
    ),
    DbtRunDeadline: choice(
      [{ Variable: '$.poll.elapsedSeconds', NumericGreaterThanEquals: maxRunSeconds, Next: 'DbtRunTimeout' }],
      'WaitForDbtRun',
      'Counts waited seconds only (a lower bound of the real run time)',
    ),
    DbtRunTimeout: raise(
      WORKFLOW_ERRORS.DbtRunTimeout,
      { 'Cause.$': `States.Format('dbt run {} of batch {} still {} after ${dbt.maxRunMinutes} minutes of polling', $.dbt.runId, $.batchId, $.dbtRun.status)` },
      true,
    ),
    UnexpectedDbtStatus: raise(
      WORKFLOW_ERRORS.UnexpectedDbtStatus,
      { 'Cause.$': "States.Format('dbt run {} reported status {}', $.dbt.runId, $.dbtRun.status)" },
      true,
    ),
    KeepLockOnUnknownRun: pass({
      next: 'RecordFailure',
      parameters: { 'Error.$': '$.error.Error', 'Cause.$': '$.error.Cause', keepLock: true },
      resultPath: '$.error',
    }),

    // ---- 6. Success: record, watermark (forward only), release, publish.
    FinishContext: batchContext('MarkSucceeded', 'RecordFailure'),
    MarkSucceeded: dynamoUpdateItem(
      table,
      {
        Key: downstreamKey,
        UpdateExpression:
          'SET #status = :succeeded, gsi1pk = :gsi1pk, dbtRunId = :run, completedAt = :now, dbtStartedAt = :dbtStart, dbtFinishedAt = :dbtEnd',
        ConditionExpression: 'executionArn = :exec',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':succeeded': { S: 'SUCCEEDED' },
          ':gsi1pk': gsi1pk('SUCCEEDED'),
          ':run': s('$.dbt.runId'),
          ':now': s('$.ctx.nowIso'),
          ':dbtStart': { 'S.$': "States.Format('{}', $.dbtRun.startedAt)" },
          ':dbtEnd': { 'S.$': "States.Format('{}', $.dbtRun.finishedAt)" },
          ':exec': execArn,
        },
      },
      { next: 'AdvanceWatermark', resultPath: null, ...postClaimCatch },
    ),
    AdvanceWatermark: dynamoUpdateItem(
      table,
      {
        Key: { pk, sk: { S: 'WATERMARK#DOWNSTREAM' } },
        UpdateExpression: 'SET batchId = :b, updatedAt = :now, executionArn = :exec',
        ConditionExpression: 'attribute_not_exists(batchId) OR batchId < :b',
        ExpressionAttributeValues: { ':b': s('$.batchId'), ':now': s('$.ctx.nowIso'), ':exec': execArn },
      },
      {
        next: 'ReleasePipelineLock',
        resultPath: null,
        catch: [
          // Only forward: an equal or newer watermark stays (a rerun of the watermark batch).
          { ErrorEquals: [CONDITION_FAILED], Next: 'ReleasePipelineLock', ResultPath: '$.watermarkUnchanged' },
          { ErrorEquals: ['States.ALL'], Next: 'RecordFailure', ResultPath: '$.error' },
        ],
      },
    ),
    ReleasePipelineLock: dynamoDeleteItem(
      table,
      { Key: lockKey, ConditionExpression: 'holder = :b', ExpressionAttributeValues: { ':b': s('$.batchId') } },
      {
        next: 'PublishSucceeded',
        resultPath: null,
        // Not holding it any more (lease taken over) is worth a log line, not a failed build.
        catch: [{ ErrorEquals: ['States.ALL'], Next: 'PublishSucceeded', ResultPath: '$.releaseError' }],
      },
    ),
    PublishSucceeded: eventsPutEvents(
      refs.bus,
      [
        {
          Source: refs.eventSource,
          DetailType: DOWNSTREAM_SUCCEEDED,
          Detail: {
            schemaVersion: SUPPORTED_SCHEMA_VERSION,
            pipeline: p,
            'batchId.$': '$.batchId',
            region: refs.region,
            'attempt.$': '$.claim.attempt',
            'dbtRunId.$': '$.dbt.runId',
            'executionArn.$': '$$.Execution.Id',
            'completedAt.$': '$.ctx.nowIso',
          },
        },
      ],
      { next: 'SuccessResult', resultPath: null, catch: [{ ErrorEquals: ['States.ALL'], Next: 'AlertNotPublished', ResultPath: '$.error' }] },
    ),
    SuccessResult: pass({
      next: 'Succeeded',
      parameters: {
        outcome: 'SUCCEEDED',
        pipeline: p,
        'batchId.$': '$.batchId',
        'attempt.$': '$.claim.attempt',
        'dbtRunId.$': '$.dbt.runId',
      },
    }),
    Succeeded: succeed(),
    // The build and its record are done; only the announcement failed.
    AlertNotPublished: snsPublish(
      refs.alerts,
      {
        Subject: `etl-platform: ${DOWNSTREAM_SUCCEEDED} not published (${p})`,
        'Message.$': `States.Format('Batch {} of pipeline ${p} was built (dbt run {}) but the ${DOWNSTREAM_SUCCEEDED} event could not be published: {}: {}. Execution {}', $.batchId, $.dbt.runId, $.error.Error, $.error.Cause, $$.Execution.Id)`,
      },
      { next: 'EventNotPublished', resultPath: null, catch: [{ ErrorEquals: ['States.ALL'], Next: 'EventNotPublished', ResultPath: null }] },
    ),
    EventNotPublished: fail({ error: WORKFLOW_ERRORS.EventPublishFailed, causePath: '$.error.Cause' }),

    // ---- 7. Failure chain: record FAILED, release the lock if held, alert, publish, Fail.
    RecordFailure: dynamoUpdateItem(
      table,
      {
        Key: downstreamKey,
        UpdateExpression: 'SET #status = :failed, gsi1pk = :gsi1pk, #error = :error, #cause = :cause',
        // Ours only: never overwrite a record another execution claimed.
        ConditionExpression: 'executionArn = :exec',
        ExpressionAttributeNames: { '#status': 'status', '#error': 'error', '#cause': 'cause' },
        ExpressionAttributeValues: {
          ':failed': { S: 'FAILED' },
          ':gsi1pk': gsi1pk('FAILED'),
          ':error': { 'S.$': "States.Format('{}', $.error.Error)" },
          ':cause': { 'S.$': "States.Format('{}', $.error.Cause)" },
          ':exec': execArn,
        },
      },
      { next: 'ShouldReleaseLock', resultPath: null, catch: [{ ErrorEquals: ['States.ALL'], Next: 'ShouldReleaseLock', ResultPath: '$.recordFailureError' }] },
    ),
    ShouldReleaseLock: choice(
      [{ Variable: '$.error.keepLock', IsPresent: true, Next: 'AlertFailure' }],
      'ReleaseLockOnFailure',
      'A dbt run that may still be running keeps the lock until its lease expires',
    ),
    ReleaseLockOnFailure: dynamoDeleteItem(
      table,
      // Conditional on holder: a no-op (ConditionalCheckFailed) when this batch never held it.
      { Key: lockKey, ConditionExpression: 'holder = :b', ExpressionAttributeValues: { ':b': s('$.batchId') } },
      { next: 'AlertFailure', resultPath: null, catch: [{ ErrorEquals: ['States.ALL'], Next: 'AlertFailure', ResultPath: '$.releaseError' }] },
    ),
    AlertFailure: snsPublish(
      refs.alerts,
      {
        Subject: `etl-platform: downstream run FAILED (${p})`,
        'Message.$': `States.Format('Downstream run of batch {} (pipeline ${p}, region ${refs.region}) FAILED: {}: {}. Execution {}', $.batchId, $.error.Error, $.error.Cause, $$.Execution.Id)`,
      },
      { next: 'PublishFailure', resultPath: null, catch: [{ ErrorEquals: ['States.ALL'], Next: 'PublishFailure', ResultPath: '$.alertError' }] },
    ),
    PublishFailure: eventsPutEvents(
      refs.bus,
      [
        {
          Source: refs.eventSource,
          DetailType: DOWNSTREAM_FAILED,
          Detail: {
            schemaVersion: SUPPORTED_SCHEMA_VERSION,
            pipeline: p,
            'batchId.$': '$.batchId',
            region: refs.region,
            'error.$': '$.error.Error',
            'cause.$': '$.error.Cause',
            'executionArn.$': '$$.Execution.Id',
          },
        },
      ],
      { next: 'Failed', resultPath: null, catch: [{ ErrorEquals: ['States.ALL'], Next: 'Failed', ResultPath: '$.publishError' }] },
    ),
    Failed: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
  };

  return workflow({
    startAt: 'ClassifyTrigger',
    comment: `Downstream dbt build of pipeline ${p} in ${refs.region}: fence, claim, lock, consistency, dbt, record`,
    timeoutSeconds: refs.timeoutSeconds,
    states,
  });
}
