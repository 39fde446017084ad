import type * as pulumi from '@pulumi/pulumi';
import { batchIdGlob } from '../contracts/batch-id';
import {
  batchSk,
  DOWNSTREAM_WATERMARK_SK,
  downstreamSkipSk,
  FENCE_KEY,
  lockSk,
  pipelinePk,
  statusGsiPk,
} from '../contracts/control-table';
import { CALLBACK_ERRORS, ERROR_NAMES, RETRIED_HANDLER_ERRORS, WORKFLOW_ERRORS } from '../contracts/errors';
import {
  DOWNSTREAM_RUN_FAILED,
  DOWNSTREAM_RUN_SUCCEEDED,
  EVENT_SCHEMA_VERSION,
  UPSTREAM_BATCH_SUCCEEDED,
} from '../contracts/events';
import type { IamStatement } from '../contracts/iam';
import { PIPELINE_NAME_PATTERN } from '../contracts/pipeline-name';
import {
  DBT_TASK_MARGIN_SECONDS,
  DEFAULT_REPLICATION_WAIT_MAX_SECONDS,
  HISTORY_EVENTS_PER_ROUND,
  leaseProblem,
  MAX_HISTORY_EVENTS,
} from '../contracts/workflow-limits';
import type {
  BooleanExpression,
  Catcher,
  PassState,
  PayloadTemplate,
  Retrier,
  StateMachineDefinition,
} from './asl';
import { fenceUnchanged, fenceValid, readFenceItem } from './fence';
import { composeFragments, fragment, type Fragment } from './fragment';
import { assertGraph } from './graph';
import {
  CONDITIONAL_CHECK_FAILED,
  backoff,
  choice,
  releaseOwnLock,
  dynamoPutItem,
  dynamoUpdateItem,
  eventsPutEvents,
  fail,
  lambdaInvoke,
  lambdaInvokeWaitForTaskToken,
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
 * The downstream workflow: UpstreamBatchSucceeded → intake → fence → claim → pipeline lock →
 * consistency (waits out replication lag) → fence again → dbt run with a task token (the app calls
 * back; no polling) → fence again → SUCCEEDED record, watermark, lock release, event.
 *
 * Composed of fragments (state-machines/fragment.ts): each function below returns its states, the
 * IAM statements its tasks need, its entries and its exits, and is checked on its own when built;
 * `fragmentsOf` lists them in definition order. Every state name is a constant in `S`. The builder
 * runs checkGraph on the whole and throws on an unreachable or missing state.
 *
 * ONE workflow per pipeline (docs/downstream.md). JSONPath only (the local engine ignores JSONata)
 * and no `$$.State.*` (not provided locally).
 */

/** Failures after which an automatic replay (same event again) may claim the batch anew. */
export const RETRYABLE_FAILURES = [
  WORKFLOW_ERRORS.DataNotReplicated,
  WORKFLOW_ERRORS.FenceMoved,
  CALLBACK_ERRORS.fenced,
] as const;

/** Every state name. Tests, the bench and the twin refer to states through this map. */
export const S = {
  // intake
  classify: 'ClassifyTrigger',
  checkEnvelope: 'CheckEnvelope',
  checkSource: 'CheckSource',
  checkDetailShape: 'CheckDetailShape',
  checkDetail: 'CheckDetail',
  fromEvent: 'FromEvent',
  checkRerunShape: 'CheckRerunShape',
  checkRerun: 'CheckRerun',
  fromRerun: 'FromRerun',
  invalidTrigger: 'InvalidTriggerEvent',
  batchContext: 'BatchContext',
  // fence
  readFence: 'ReadFence',
  fenceRoute: 'FenceRoute',
  fenceMissing: 'FenceMissing',
  recordSkip: 'RecordSkip',
  skipResult: 'SkipResult',
  skipped: 'SkippedNotActive',
  readFenceBeforeStart: 'ReadFenceBeforeStart',
  fenceBeforeStart: 'FenceUnchangedBeforeStart',
  fenceMovedBeforeStart: 'FenceMovedBeforeStart',
  readFenceBeforeSuccess: 'ReadFenceBeforeSuccess',
  fenceBeforeSuccess: 'FenceUnchangedBeforeSuccess',
  fenceMovedBeforeSuccess: 'FenceMovedBeforeSuccess',
  // claim
  claimBatch: 'ClaimBatch',
  claimRerun: 'ClaimRerun',
  duplicateResult: 'DuplicateResult',
  duplicate: 'Duplicate',
  // lock
  acquireLock: 'AcquirePipelineLock',
  lockHeld: 'LockHeld',
  waitForLock: 'WaitForLock',
  countLockWait: 'CountLockWait',
  clampLockWait: 'ClampLockWait',
  capLockWait: 'CapLockWait',
  refreshContext: 'RefreshContext',
  lockTimeout: 'PipelineLockTimeout',
  // consistency
  consistencyCheck: 'ConsistencyCheck',
  isConsistent: 'IsConsistent',
  replicationWaitLeft: 'ReplicationWaitLeft',
  waitForReplication: 'WaitForReplication',
  countReplicationWait: 'CountReplicationWait',
  clampReplicationWait: 'ClampReplicationWait',
  capReplicationWait: 'CapReplicationWait',
  dataNotReplicated: 'DataNotReplicated',
  dataInconsistent: 'DataInconsistent',
  // build
  startDbtRun: 'StartDbtRun',
  runFenced: 'DbtRunFenced',
  keepLockOnRejected: 'KeepLockOnRejectedStart',
  lostOrInterrupted: 'LostOrInterrupted',
  newAttempt: 'NewAttempt',
  countLostRetry: 'CountLostRetry',
  runLost: 'RunLostNoRetriesLeft',
  // reconcile
  reconcile: 'ReconcileRun',
  reconciledStatus: 'ReconciledStatus',
  adoptReconciled: 'AdoptReconciledRun',
  reconciledFailed: 'ReconciledRunFailed',
  runStillActive: 'RunStillActive',
  countRewait: 'CountRewait',
  runTimeout: 'DbtRunTimeout',
  runUnresponsive: 'DbtRunUnresponsive',
  notStarted: 'RunNotStarted',
  countRestart: 'CountRestart',
  neverStarted: 'DbtRunNeverStarted',
  fateUnknown: 'DbtRunFateUnknown',
  unexpectedStatus: 'UnexpectedDbtStatus',
  // success
  finishContext: 'FinishContext',
  markSucceeded: 'MarkSucceeded',
  advanceWatermark: 'AdvanceWatermark',
  releaseLock: 'ReleasePipelineLock',
  publishSucceeded: 'PublishSucceeded',
  successResult: 'SuccessResult',
  succeeded: 'Succeeded',
  alertNotPublished: 'AlertNotPublished',
  eventNotPublished: 'EventNotPublished',
  // failure
  failureDefaults: 'FailureDefaults',
  recordFailure: 'RecordFailure',
  shouldReleaseLock: 'ShouldReleaseLock',
  releaseLockOnFailure: 'ReleaseLockOnFailure',
  alertFailure: 'AlertFailure',
  publishFailure: 'PublishFailure',
  failed: 'Failed',
} as const;
export const DOWNSTREAM_STATES = S;

type Arn = pulumi.Input<string>;

export interface DownstreamPipeline {
  /** Pipeline name, e.g. `policycenter` (the batch id's prefix). */
  name: string;
  /** Tables whose SUCCEEDED load records the consistency check requires. */
  expectedTables: string[];
  /** dbt `--select`; omitted → the dbt app's default selection. */
  dbtSelect?: string;
}

/** dbt and lock settings (config `dbt`, docs/config.md). */
export interface DownstreamDbtSettings {
  /** Bound on RUNNING time, counted from startedAt by the app (v2 deadlines). */
  maxRunMinutes: number;
  /** Bound on QUEUED time, counted from queuedAt by the app (v2 deadlines). @default 60 */
  maxQueueMinutes: number;
  /** StartDbtRun's HeartbeatSeconds; the app heartbeats every 60 s. @default 300 */
  heartbeatSeconds: number;
  /** LOST/INTERRUPTED runs retried as a new attempt, per execution. @default 1 */
  maxLostRetries: number;
  /** How long to wait for another execution's pipeline lock. */
  lockWaitMinutes: number;
  /** Lease of LOCK#DOWNSTREAM; renewed by the app on each heartbeat while the run lives. @default 15 */
  lockLeaseMinutes: number;
  /** Bound of the wait for upstream records that have not replicated yet. @default 5 */
  replicationWaitMinutes: number;
  /** First lock wait (default 30 s), doubling up to lockWaitMaxSeconds (default 300 s). */
  lockWaitInitialSeconds?: number;
  lockWaitMaxSeconds?: number;
  /** First replication wait (default 10 s), doubling up to replicationWaitMaxSeconds (default 120 s). */
  replicationWaitInitialSeconds?: number;
  replicationWaitMaxSeconds?: number;
  /** Re-waits (same attempt, new task token) after heartbeat timeouts or a 404 start. @default 3 */
  maxRewaits?: number;
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
  dbt: DownstreamDbtSettings;
  /** Execution timeout; at least `downstreamTimeoutSeconds(dbt)`. Default: exactly that. */
  timeoutSeconds?: number;
}

export interface DownstreamWorkflow {
  definition: StateMachineDefinition;
  statements: IamStatement[];
}

const defaults = (dbt: DownstreamDbtSettings) => ({
  lockWaitInitial: dbt.lockWaitInitialSeconds ?? 30,
  lockWaitMax: dbt.lockWaitMaxSeconds ?? 300,
  replicationWaitInitial: dbt.replicationWaitInitialSeconds ?? 10,
  replicationWaitMax: dbt.replicationWaitMaxSeconds ?? DEFAULT_REPLICATION_WAIT_MAX_SECONDS,
  maxRewaits: dbt.maxRewaits ?? 3,
});

/** StartDbtRun's TimeoutSeconds: queue bound + run bound + margin (the app enforces both bounds). */
export function dbtTaskTimeoutSeconds(
  dbt: Pick<DownstreamDbtSettings, 'maxQueueMinutes' | 'maxRunMinutes'>,
): number {
  return (dbt.maxQueueMinutes + dbt.maxRunMinutes) * 60 + DBT_TASK_MARGIN_SECONDS;
}

/**
 * The execution timeout: lock wait + replication wait + one dbt wait per allowed attempt + 15 min
 * of bookkeeping. An execution timeout cannot be caught (it would leave the claim CLAIMED), so the
 * builder refuses a shorter one.
 */
export function downstreamTimeoutSeconds(dbt: DownstreamDbtSettings): number {
  const d = defaults(dbt);
  return (
    dbt.lockWaitMinutes * 60 +
    dbt.replicationWaitMinutes * 60 +
    d.replicationWaitMax +
    (1 + dbt.maxLostRetries) * dbtTaskTimeoutSeconds(dbt) +
    900
  );
}

/** Wait rounds (lock + replication) in the worst case the settings allow, plus reconcile rounds. */
export function worstCaseWaitRounds(dbt: DownstreamDbtSettings): number {
  const d = defaults(dbt);
  return (
    Math.ceil((dbt.lockWaitMinutes * 60) / Math.max(1, d.lockWaitMax)) +
    Math.ceil((dbt.replicationWaitMinutes * 60) / Math.max(1, d.replicationWaitMax)) +
    (1 + dbt.maxLostRetries) * (1 + d.maxRewaits) +
    20
  );
}

function validateRefs(refs: DownstreamWorkflowRefs): number {
  const problems: string[] = [];
  const { dbt } = refs;
  if (!PIPELINE_NAME_PATTERN.test(refs.pipeline.name))
    problems.push(`pipeline.name "${refs.pipeline.name}" is not a pipeline name`);
  if (refs.pipeline.expectedTables.length === 0) problems.push('pipeline.expectedTables is empty');
  const whole = (name: string, v: number | undefined, min = 1) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min))
      problems.push(`${name} = ${v} must be an integer >= ${min}`);
  };
  whole('dbt.maxRunMinutes', dbt.maxRunMinutes);
  whole('dbt.maxQueueMinutes', dbt.maxQueueMinutes);
  whole('dbt.heartbeatSeconds', dbt.heartbeatSeconds, 61);
  whole('dbt.maxLostRetries', dbt.maxLostRetries, 0);
  whole('dbt.lockWaitMinutes', dbt.lockWaitMinutes);
  whole('dbt.lockLeaseMinutes', dbt.lockLeaseMinutes);
  whole('dbt.replicationWaitMinutes', dbt.replicationWaitMinutes, 0);
  whole('dbt.lockWaitInitialSeconds', dbt.lockWaitInitialSeconds);
  whole('dbt.lockWaitMaxSeconds', dbt.lockWaitMaxSeconds);
  whole('dbt.replicationWaitInitialSeconds', dbt.replicationWaitInitialSeconds);
  whole('dbt.replicationWaitMaxSeconds', dbt.replicationWaitMaxSeconds);
  whole('dbt.maxRewaits', dbt.maxRewaits, 0);
  const lease = leaseProblem(dbt);
  if (lease) problems.push(`dbt.${lease}`);
  if (dbt.heartbeatSeconds >= dbtTaskTimeoutSeconds(dbt))
    problems.push(`dbt.heartbeatSeconds = ${dbt.heartbeatSeconds} is not below the dbt task timeout`);
  const rounds = worstCaseWaitRounds(dbt);
  if (rounds * HISTORY_EVENTS_PER_ROUND > MAX_HISTORY_EVENTS) {
    problems.push(
      `dbt lock/replication waits allow ~${rounds} rounds (~${rounds * HISTORY_EVENTS_PER_ROUND} history events, over Step Functions' 25,000): raise lockWaitMaxSeconds`,
    );
  }
  const minimum = downstreamTimeoutSeconds(dbt);
  const timeout = refs.timeoutSeconds ?? minimum;
  if (!Number.isInteger(timeout) || timeout < minimum) {
    problems.push(
      `timeoutSeconds = ${timeout} is shorter than the waits it must cover (${minimum} s: lock wait + replication wait + dbt waits + 15 min): ` +
        'an execution timeout cannot be caught, so it would leave the claim CLAIMED and the lock held',
    );
  }
  if (problems.length > 0) throw new Error(`downstreamWorkflow: ${problems.join('; ')}`);
  return timeout;
}

// ---------------------------------------------------------------- retry policy

/** Lambda service errors and throttling (AWS-side, never the function's own error). */
const LAMBDA_SERVICE_RETRY = backoff([...RETRYABLE.lambda], {
  IntervalSeconds: 2,
  MaxAttempts: 4,
  MaxDelaySeconds: 30,
});
/** The dbt API is down/slow/throttling (5xx, 429, timeout): retry with backoff and full jitter. */
const DBT_UNAVAILABLE_RETRY = backoff([...RETRIED_HANDLER_ERRORS], {
  IntervalSeconds: 5,
  MaxAttempts: 5,
  MaxDelaySeconds: 60,
});
/** DynamoDB throttling surfacing from inside check-consistency (SDK error names). */
const CONSISTENCY_DDB_RETRY = backoff(
  [
    'ProvisionedThroughputExceededException',
    'ThrottlingException',
    'RequestLimitExceeded',
    'InternalServerError',
  ],
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
  return {
    state: result.state,
    statements: [{ Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [fn.arn] }],
  };
}

// ---------------------------------------------------------------- shared pieces of the fragments

/** What the fragments share: the refs and this pipeline's control-table keys and settings. */
interface Ctx {
  refs: DownstreamWorkflowRefs;
  p: string;
  table: DownstreamWorkflowRefs['controlTable'];
  pk: { S: string };
  downstreamKey: PayloadTemplate;
  lockKey: PayloadTemplate;
  gsi1pk: (status: string) => { S: string };
  leaseSeconds: number;
  d: ReturnType<typeof defaults>;
}

const n = (path: string) => ({ 'N.$': `States.Format('{}', ${path})` });
const s = (path: string) => ({ 'S.$': path });
const execArn = { 'S.$': '$$.Execution.Id' };

/** A Pass that sets `$.error` for a workflow-raised error and goes to the failure path. */
function raise(
  error: string,
  cause: PayloadTemplate,
  flags: { keepLock?: boolean; retryable?: boolean } = {},
) {
  return pass({
    next: S.failureDefaults,
    parameters: {
      Error: error,
      ...cause,
      ...(flags.keepLock ? { keepLock: true } : {}),
      ...(flags.retryable ? { retryable: true } : {}),
    },
    resultPath: '$.error',
  });
}

function batchContext(c: Ctx, next: string, catchers: Catcher[]): TaskResult {
  return invoke(c.refs.functions.batchContext, {
    next,
    payload: { pipeline: c.p, 'batchId.$': '$.batchId', leaseSeconds: c.leaseSeconds },
    resultSelector: {
      'now.$': '$.Payload.now',
      'nowIso.$': '$.Payload.nowIso',
      'leaseExpiresAt.$': '$.Payload.leaseExpiresAt',
      'recordExpiresAt.$': '$.Payload.recordExpiresAt',
    },
    resultPath: '$.ctx',
    retry: [LAMBDA_SERVICE_RETRY],
    catch: catchers,
  });
}

const readFence = (c: Ctx, next: string, resultPath: string, catchTo: string) =>
  readFenceItem(c.table, { next, resultPath, catchTo });

// ---------------------------------------------------------------- fragments

/** A batch id of this pipeline by its shape; IsString first: a non-string must end InvalidTriggerEvent, not fail StringMatches. */
function batchIdOk(c: Ctx, path: string): BooleanExpression[] {
  const glob = batchIdGlob(c.p);
  return [
    { Variable: path, IsString: true },
    { Variable: path, StringMatches: glob.accept },
    { Not: { Variable: path, StringMatches: glob.reject } },
  ];
}

/** Every trigger's input becomes {pipeline, batchId, rerun[, rerunReason], wait and build counters, error defaults}. */
function normalised(c: Ctx, batchIdPath: string, rerun: boolean, reasonPath?: string): PayloadTemplate {
  return {
    pipeline: c.p,
    'batchId.$': batchIdPath,
    rerun,
    ...(reasonPath ? { 'rerunReason.$': reasonPath } : {}),
    lockWait: { waitSeconds: c.d.lockWaitInitial, elapsedSeconds: 0 },
    replicationWait: { waitSeconds: c.d.replicationWaitInitial, elapsedSeconds: 0 },
    build: { rewaits: 0, lostRetries: 0 },
    defaults: { error: { keepLock: false, retryable: false } },
  };
}

/** Routes any trigger; an EventBridge envelope (rule target or rule-lambda) or a parent's detail → normalised input. */
function triggerIntake(c: Ctx): Fragment {
  const { p, refs } = c;
  const states: StatesInput = {
    [S.classify]: choice(
      [
        { Variable: '$.rerun', IsPresent: true, Next: S.checkRerunShape },
        { Variable: '$.detail-type', IsPresent: true, Next: S.checkEnvelope },
        {
          And: [
            { Variable: '$.detail', IsPresent: true },
            { Variable: '$.AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID', IsPresent: true },
          ],
          Next: S.checkDetailShape,
        },
      ],
      S.invalidTrigger,
      'EventBridge envelope (rule target or rule-lambda), Step Functions parent, or operator rerun',
    ),
    [S.checkEnvelope]: choice(
      [
        {
          And: [
            { Variable: '$.detail-type', StringEquals: UPSTREAM_BATCH_SUCCEEDED },
            { Variable: '$.source', IsPresent: true },
          ],
          Next: S.checkSource,
        },
      ],
      S.invalidTrigger,
    ),
    [S.checkSource]: choice(
      [{ Variable: '$.source', StringEquals: refs.eventSource, Next: S.checkDetailShape }],
      S.invalidTrigger,
    ),
    [S.checkDetailShape]: choice(
      [
        {
          And: [
            { Variable: '$.detail.schemaVersion', IsPresent: true },
            { Variable: '$.detail.pipeline', IsPresent: true },
            { Variable: '$.detail.batchId', IsPresent: true },
          ],
          Next: S.checkDetail,
        },
      ],
      S.invalidTrigger,
    ),
    [S.checkDetail]: choice(
      [
        {
          And: [
            { Variable: '$.detail.schemaVersion', StringEquals: EVENT_SCHEMA_VERSION },
            { Variable: '$.detail.pipeline', StringEquals: p },
            ...batchIdOk(c, '$.detail.batchId'),
          ],
          Next: S.fromEvent,
        },
      ],
      S.invalidTrigger,
    ),
    [S.fromEvent]: pass({ next: S.batchContext, parameters: normalised(c, '$.detail.batchId', false) }),
  };
  return fragment({
    name: 'downstream/triggerIntake',
    entries: [S.classify],
    exits: [S.checkRerunShape, S.invalidTrigger, S.batchContext],
    states,
  });
}

/** An operator rerun `{rerun: {pipeline, batchId, reason}}` → normalised input. */
function rerunIntake(c: Ctx): Fragment {
  const { p } = c;
  const states: StatesInput = {
    [S.checkRerunShape]: choice(
      [
        {
          And: [
            { Variable: '$.rerun.pipeline', IsPresent: true },
            { Variable: '$.rerun.batchId', IsPresent: true },
            { Variable: '$.rerun.reason', IsPresent: true },
          ],
          Next: S.checkRerun,
        },
      ],
      S.invalidTrigger,
    ),
    [S.checkRerun]: choice(
      [
        {
          And: [
            { Variable: '$.rerun.pipeline', StringEquals: p },
            ...batchIdOk(c, '$.rerun.batchId'),
            { Variable: '$.rerun.reason', IsString: true },
            { Not: { Variable: '$.rerun.reason', StringEquals: '' } },
          ],
          Next: S.fromRerun,
        },
      ],
      S.invalidTrigger,
    ),
    [S.fromRerun]: pass({
      next: S.batchContext,
      parameters: normalised(c, '$.rerun.batchId', true, '$.rerun.reason'),
    }),
  };
  return fragment({
    name: 'downstream/rerunIntake',
    entries: [S.checkRerunShape],
    exits: [S.invalidTrigger, S.batchContext],
    states,
  });
}

/** The batch id's calendar check (BatchContext), and the end of every trigger that is not ours. */
function batchIdGate(c: Ctx): Fragment {
  const { p, refs } = c;
  const states: StatesInput = {
    [S.invalidTrigger]: fail({
      error: WORKFLOW_ERRORS.InvalidTriggerEvent,
      cause:
        `Expected an EventBridge "${UPSTREAM_BATCH_SUCCEEDED}" event from ${refs.eventSource} (or its detail from a parent execution) ` +
        `with detail.schemaVersion "${EVENT_SCHEMA_VERSION}", detail.pipeline "${p}" and detail.batchId "${p}-<yyyyMMdd>T<HHmmss>Z" naming a real UTC time, ` +
        `or {"rerun": {"pipeline": "${p}", "batchId", "reason"}}. Nothing was written.`,
    }),
    // The authoritative batch-id check (contracts/batch-id.ts), before any write: InvalidInput → nothing written.
    [S.batchContext]: batchContext(c, S.readFence, [
      { ErrorEquals: [ERROR_NAMES.InvalidInput], Next: S.invalidTrigger, ResultPath: '$.error' },
      { ErrorEquals: ['States.ALL'], Next: S.alertFailure, ResultPath: '$.error' },
    ]),
  };
  return fragment({
    name: 'downstream/batchIdGate',
    entries: [S.batchContext, S.invalidTrigger],
    exits: [S.readFence, S.alertFailure],
    states,
  });
}

/** The fence (data plane) at entry: only the region it names may claim; a missing fence is an error. */
function fenceAtEntry(c: Ctx): Fragment {
  const { p, refs } = c;
  const states: StatesInput = {
    [S.readFence]: readFence(c, S.fenceRoute, '$.fenceItem', S.alertFailure),
    [S.fenceRoute]: choice(
      [
        {
          And: [
            ...fenceValid('$.fenceItem'),
            { Variable: '$.fenceItem.Item.activeRegion.S', StringEquals: refs.region },
            { Variable: '$.rerun', BooleanEquals: true },
          ],
          Next: S.claimRerun,
        },
        {
          And: [
            ...fenceValid('$.fenceItem'),
            { Variable: '$.fenceItem.Item.activeRegion.S', StringEquals: refs.region },
          ],
          Next: S.claimBatch,
        },
        { And: fenceValid('$.fenceItem'), Next: S.recordSkip },
      ],
      S.fenceMissing,
      'A valid fence naming us: claim. A valid fence naming another region: skip (passive). Anything else: FenceMissing.',
    ),
    // Nothing claimed: straight to the alert, never a silent skip (D6).
    [S.fenceMissing]: pass({
      next: S.alertFailure,
      parameters: {
        Error: WORKFLOW_ERRORS.FenceMissing,
        'Cause.$': `States.Format('The fence item ${FENCE_KEY.pk}/${FENCE_KEY.sk} is missing or malformed (needs activeRegion S and epoch N >= 1); found {}. Nothing was claimed. Fix: pulumi up of the active region writes it (docs/fence-and-locks.md)', States.JsonToString($.fenceItem))`,
      },
      resultPath: '$.error',
    }),
    // Audit only, under its own sort key: the claim item is never touched by a skipping region.
    [S.recordSkip]: dynamoPutItem(
      c.table,
      {
        Item: {
          pk: c.pk,
          sk: { 'S.$': `States.Format('${downstreamSkipSk('{}', refs.region)}', $.batchId)` },
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
        next: S.skipResult,
        resultPath: null,
        // The audit entry is best effort: failing to write it must not turn a skip into a failure.
        catch: [{ ErrorEquals: ['States.ALL'], Next: S.skipResult, ResultPath: '$.skipAuditError' }],
      },
    ),
    [S.skipResult]: pass({
      next: S.skipped,
      parameters: {
        outcome: 'SKIPPED_NOT_ACTIVE',
        pipeline: p,
        'batchId.$': '$.batchId',
        region: refs.region,
      },
    }),
    [S.skipped]: succeed(),
  };
  return fragment({
    name: 'downstream/fenceAtEntry',
    entries: [S.readFence],
    exits: [S.claimBatch, S.claimRerun, S.alertFailure],
    states,
  });
}

/** The claim (dedupe): one conditional write on BATCH#<id>#DOWNSTREAM. */
function claim(c: Ctx): Fragment {
  const { p, refs } = c;
  const values = (rerun: boolean): PayloadTemplate => ({
    ':p': { S: p },
    ':b': s('$.batchId'),
    ':claimed': { S: 'CLAIMED' },
    ':zero': { N: '0' },
    ':one': { N: '1' },
    ':region': { S: refs.region },
    ':epoch': { 'N.$': '$.fenceItem.Item.epoch.N' },
    ':exec': execArn,
    ':now': s('$.ctx.nowIso'),
    ':exp': n('$.ctx.recordExpiresAt'),
    ':gsi1pk': c.gsi1pk('CLAIMED'),
    ':failed': { S: 'FAILED' },
    ...(rerun ? { ':reason': s('$.rerunReason') } : { ':true': { BOOL: true } }),
  });
  const update = (rerun: boolean) =>
    'SET pipeline = :p, batchId = :b, #status = :claimed, attempt = if_not_exists(attempt, :zero) + :one, ' +
    '#region = :region, fenceRegion = :region, fenceEpoch = :epoch, executionArn = :exec, startedAt = :now, expiresAt = :exp, ' +
    `gsi1pk = :gsi1pk, gsi1sk = :b${rerun ? ', rerunReason = :reason' : ''} ` +
    'REMOVE #error, #cause, completedAt, dbtRunId, dbtStartedAt, dbtFinishedAt, retryable';
  const write = (rerun: boolean) =>
    dynamoUpdateItem(
      c.table,
      {
        Key: c.downstreamKey,
        UpdateExpression: update(rerun),
        // A replay claims anew only a batch that FAILED for a retryable reason (e.g. DataNotReplicated);
        // an operator rerun may claim any FAILED batch.
        ConditionExpression: rerun
          ? 'attribute_not_exists(pk) OR #status = :failed'
          : 'attribute_not_exists(pk) OR (#status = :failed AND retryable = :true)',
        ExpressionAttributeNames: {
          '#status': 'status',
          '#region': 'region',
          '#error': 'error',
          '#cause': 'cause',
        },
        ExpressionAttributeValues: values(rerun),
        ReturnValues: 'ALL_NEW',
      },
      {
        next: S.acquireLock,
        resultSelector: { 'attempt.$': 'States.StringToJson($.Attributes.attempt.N)' },
        resultPath: '$.claim',
        catch: [
          { ErrorEquals: [CONDITIONAL_CHECK_FAILED], Next: S.duplicateResult, ResultPath: '$.claimError' },
          { ErrorEquals: ['States.ALL'], Next: S.alertFailure, ResultPath: '$.error' },
        ],
      },
    );
  const states: StatesInput = {
    [S.claimBatch]: write(false),
    [S.claimRerun]: write(true),
    [S.duplicateResult]: pass({
      next: S.duplicate,
      parameters: { outcome: 'DUPLICATE', pipeline: p, 'batchId.$': '$.batchId', 'rerun.$': '$.rerun' },
    }),
    [S.duplicate]: succeed(),
  };
  return fragment({
    name: 'downstream/claim',
    entries: [S.claimBatch, S.claimRerun],
    exits: [S.acquireLock, S.alertFailure],
    states,
  });
}

/** The pipeline lock, owned by this execution; waits with backoff while another execution holds it. */
function lock(c: Ctx): Fragment {
  const { dbt } = c.refs;
  const states: StatesInput = {
    [S.acquireLock]: dynamoPutItem(
      c.table,
      {
        Item: {
          ...c.lockKey,
          executionArn: execArn,
          batchId: s('$.batchId'),
          acquiredAt: s('$.ctx.nowIso'),
          leaseExpiresAt: n('$.ctx.leaseExpiresAt'),
        },
        // Free, or the holder's lease ran out (it crashed: a live run's lease is renewed), or ours.
        ConditionExpression: 'attribute_not_exists(pk) OR leaseExpiresAt < :now OR executionArn = :exec',
        ExpressionAttributeValues: { ':now': n('$.ctx.now'), ':exec': execArn },
      },
      {
        next: S.consistencyCheck,
        resultPath: null,
        catch: [
          { ErrorEquals: [CONDITIONAL_CHECK_FAILED], Next: S.lockHeld, ResultPath: '$.lockError' },
          { ErrorEquals: ['States.ALL'], Next: S.failureDefaults, ResultPath: '$.error' },
        ],
      },
    ),
    [S.lockHeld]: choice(
      [
        {
          Variable: '$.lockWait.elapsedSeconds',
          NumericGreaterThanEquals: dbt.lockWaitMinutes * 60,
          Next: S.lockTimeout,
        },
      ],
      S.waitForLock,
    ),
    [S.waitForLock]: wait({ secondsPath: '$.lockWait.waitSeconds' }, S.countLockWait),
    [S.countLockWait]: pass({
      next: S.clampLockWait,
      parameters: {
        'waitSeconds.$': 'States.MathAdd($.lockWait.waitSeconds, $.lockWait.waitSeconds)',
        'elapsedSeconds.$': 'States.MathAdd($.lockWait.elapsedSeconds, $.lockWait.waitSeconds)',
      },
      resultPath: '$.lockWait',
    }),
    [S.clampLockWait]: choice(
      [{ Variable: '$.lockWait.waitSeconds', NumericGreaterThan: c.d.lockWaitMax, Next: S.capLockWait }],
      S.refreshContext,
    ),
    [S.capLockWait]: pass({
      next: S.refreshContext,
      result: c.d.lockWaitMax,
      resultPath: '$.lockWait.waitSeconds',
    }),
    // A fresh `now` for the lease comparison and a lease counted from the actual acquisition.
    [S.refreshContext]: batchContext(c, S.acquireLock, [
      { ErrorEquals: ['States.ALL'], Next: S.failureDefaults, ResultPath: '$.error' },
    ]),
    [S.lockTimeout]: raise(WORKFLOW_ERRORS.PipelineLockTimeout, {
      Cause: `${lockSk('DOWNSTREAM')} of pipeline ${c.p} was held by another execution for more than ${dbt.lockWaitMinutes} minutes`,
    }),
  };
  return fragment({
    name: 'downstream/lock',
    entries: [S.acquireLock],
    exits: [S.consistencyCheck, S.failureDefaults],
    states,
  });
}

/** Upstream records: wait (bounded backoff) while they have not replicated; fail at once when they say FAILED. */
function consistency(c: Ctx): Fragment {
  const { refs } = c;
  const states: StatesInput = {
    [S.consistencyCheck]: invoke(refs.functions.checkConsistency, {
      next: S.isConsistent,
      payload: {
        pipeline: c.p,
        'batchId.$': '$.batchId',
        expectedTables: refs.pipeline.expectedTables,
        'rerun.$': '$.rerun',
      },
      resultSelector: {
        'consistencyStatus.$': '$.Payload.consistencyStatus',
        'reasons.$': '$.Payload.reasons',
      },
      resultPath: '$.consistency',
      retry: [LAMBDA_SERVICE_RETRY, CONSISTENCY_DDB_RETRY],
      catchTo: S.failureDefaults,
    }),
    [S.isConsistent]: choice(
      [
        {
          Variable: '$.consistency.consistencyStatus',
          StringEquals: 'SUCCESS',
          Next: S.readFenceBeforeStart,
        },
        {
          Variable: '$.consistency.consistencyStatus',
          StringEquals: 'NOT_YET_REPLICATED',
          Next: S.replicationWaitLeft,
        },
      ],
      S.dataInconsistent,
      'FAILED (or an unexpected value) stops the build at once',
    ),
    [S.replicationWaitLeft]: choice(
      [
        {
          Variable: '$.replicationWait.elapsedSeconds',
          NumericGreaterThanEquals: refs.dbt.replicationWaitMinutes * 60,
          Next: S.dataNotReplicated,
        },
      ],
      S.waitForReplication,
    ),
    [S.waitForReplication]: wait({ secondsPath: '$.replicationWait.waitSeconds' }, S.countReplicationWait),
    [S.countReplicationWait]: pass({
      next: S.clampReplicationWait,
      parameters: {
        'waitSeconds.$': 'States.MathAdd($.replicationWait.waitSeconds, $.replicationWait.waitSeconds)',
        'elapsedSeconds.$': 'States.MathAdd($.replicationWait.elapsedSeconds, $.replicationWait.waitSeconds)',
      },
      resultPath: '$.replicationWait',
    }),
    [S.clampReplicationWait]: choice(
      [
        {
          Variable: '$.replicationWait.waitSeconds',
          NumericGreaterThan: c.d.replicationWaitMax,
          Next: S.capReplicationWait,
        },
      ],
      S.consistencyCheck,
    ),
    [S.capReplicationWait]: pass({
      next: S.consistencyCheck,
      result: c.d.replicationWaitMax,
      resultPath: '$.replicationWait.waitSeconds',
    }),
    // Retryable: a later replay of the event may claim the batch again (docs/downstream.md).
    [S.dataNotReplicated]: raise(
      WORKFLOW_ERRORS.DataNotReplicated,
      {
        'Cause.$': `States.Format('upstream records still absent after ${refs.dbt.replicationWaitMinutes} minutes of waiting: {}', States.JsonToString($.consistency.reasons))`,
      },
      { retryable: true },
    ),
    [S.dataInconsistent]: raise(WORKFLOW_ERRORS.DataInconsistencyError, {
      'Cause.$': 'States.JsonToString($.consistency.reasons)',
    }),
  };
  return fragment({
    name: 'downstream/consistency',
    entries: [S.consistencyCheck],
    exits: [S.readFenceBeforeStart, S.failureDefaults],
    states,
  });
}

/**
 * A fence re-read (D4): reads FENCE/ACTIVE again and goes on only while it names the claim's region
 * and epoch; otherwise `moved` raises FenceMoved. Used right before starting dbt and right before
 * recording success.
 */
function fenceRecheck(
  c: Ctx,
  name: string,
  states: { read: string; unchanged: string; moved: string },
  onUnchanged: string,
  moved: PassState,
): Fragment {
  return fragment({
    name: `downstream/${name}`,
    entries: [states.read],
    exits: [onUnchanged, S.failureDefaults],
    states: {
      [states.read]: readFence(c, states.unchanged, '$.fenceNow', S.failureDefaults),
      [states.unchanged]: choice(
        [{ ...fenceUnchanged('$.fenceNow', '$.fenceItem.Item'), Next: onUnchanged }],
        states.moved,
      ),
      [states.moved]: moved,
    },
  });
}

/** Nothing was started under the new fence: release the lock; a replay may claim it again. */
function fenceBeforeStart(c: Ctx): Fragment {
  const names = {
    read: S.readFenceBeforeStart,
    unchanged: S.fenceBeforeStart,
    moved: S.fenceMovedBeforeStart,
  };
  const moved = raise(
    WORKFLOW_ERRORS.FenceMoved,
    {
      'Cause.$':
        "States.Format('the fence moved before dbt started: claimed under {} epoch {}, now {}', $.fenceItem.Item.activeRegion.S, $.fenceItem.Item.epoch.N, States.JsonToString($.fenceNow))",
    },
    { retryable: true },
  );
  return fenceRecheck(c, 'fenceBeforeStart', names, S.startDbtRun, moved);
}

/** The build finished under the old epoch: not retryable automatically (an operator checks the warehouse). */
function fenceBeforeSuccess(c: Ctx): Fragment {
  const names = {
    read: S.readFenceBeforeSuccess,
    unchanged: S.fenceBeforeSuccess,
    moved: S.fenceMovedBeforeSuccess,
  };
  const moved = raise(WORKFLOW_ERRORS.FenceMoved, {
    'Cause.$':
      "States.Format('the fence moved while dbt run {} ran: claimed under {} epoch {}, now {}; not recorded as SUCCEEDED and the watermark is unchanged', $.dbtRun.runId, $.fenceItem.Item.activeRegion.S, $.fenceItem.Item.epoch.N, States.JsonToString($.fenceNow))",
  });
  return fenceRecheck(c, 'fenceBeforeSuccess', names, S.finishContext, moved);
}

/** dbt: one waitForTaskToken start per attempt; the app's callback ends the wait (no polling). */
function dbtRun(c: Ctx): Fragment {
  const { refs, p } = c;
  const { dbt } = refs;
  const states: StatesInput = {
    [S.startDbtRun]: lambdaInvokeWaitForTaskToken(refs.functions.startDbtRun, {
      next: S.readFenceBeforeSuccess,
      payload: {
        pipeline: p,
        'batchId.$': '$.batchId',
        command: 'build',
        ...(refs.pipeline.dbtSelect === undefined ? {} : { select: refs.pipeline.dbtSelect }),
        'attempt.$': '$.claim.attempt',
        // The fence this claim was made under: dbt's on-run-start checks it against the warehouse fence.
        fence: { 'region.$': '$.fenceItem.Item.activeRegion.S', 'epoch.$': '$.fenceItem.Item.epoch.N' },
        'taskToken.$': '$$.Task.Token',
        // The app renews this lease on each heartbeat, conditioned on the holder (this execution).
        lease: {
          pk: c.pk.S,
          sk: lockSk('DOWNSTREAM'),
          'holder.$': '$$.Execution.Id',
          seconds: c.leaseSeconds,
        },
        deadlines: { maxQueueMinutes: dbt.maxQueueMinutes, maxRunMinutes: dbt.maxRunMinutes },
      },
      heartbeatSeconds: dbt.heartbeatSeconds,
      timeoutSeconds: dbtTaskTimeoutSeconds(dbt),
      resultPath: '$.dbtRun',
      // Retrying a start is safe: (batchId, attempt) is the app's idempotency key.
      retry: [LAMBDA_SERVICE_RETRY, DBT_UNAVAILABLE_RETRY],
      catch: [
        // The run is over: release the lock.
        {
          ErrorEquals: [CALLBACK_ERRORS.failed, ERROR_NAMES.InvalidInput, ERROR_NAMES.MissingConfiguration],
          Next: S.failureDefaults,
          ResultPath: '$.error',
        },
        { ErrorEquals: [CALLBACK_ERRORS.fenced], Next: S.runFenced, ResultPath: '$.error' },
        {
          ErrorEquals: [CALLBACK_ERRORS.lost, CALLBACK_ERRORS.interrupted],
          Next: S.lostOrInterrupted,
          ResultPath: '$.error',
        },
        // 409/422: another attempt may be live, keep the lock to its lease.
        { ErrorEquals: [ERROR_NAMES.DbtApiRejected], Next: S.keepLockOnRejected, ResultPath: '$.error' },
        // Heartbeat timeout, task timeout, an ambiguous start (DbtApiUnavailable after retries): ask the app.
        { ErrorEquals: ['States.ALL'], Next: S.reconcile, ResultPath: '$.waitError' },
      ],
    }),
    [S.runFenced]: pass({
      next: S.failureDefaults,
      parameters: { 'Error.$': '$.error.Error', 'Cause.$': '$.error.Cause', retryable: true },
      resultPath: '$.error',
    }),
    [S.keepLockOnRejected]: pass({
      next: S.failureDefaults,
      parameters: { 'Error.$': '$.error.Error', 'Cause.$': '$.error.Cause', keepLock: true },
      resultPath: '$.error',
    }),
    [S.lostOrInterrupted]: choice(
      [{ Variable: '$.build.lostRetries', NumericLessThan: dbt.maxLostRetries, Next: S.newAttempt }],
      S.runLost,
    ),
    // A new attempt only once the old one is known to be over (LOST/INTERRUPTED), and only by the claim's owner.
    [S.newAttempt]: dynamoUpdateItem(
      c.table,
      {
        Key: c.downstreamKey,
        UpdateExpression: 'SET attempt = attempt + :one',
        ConditionExpression: 'executionArn = :exec',
        ExpressionAttributeValues: { ':one': { N: '1' }, ':exec': execArn },
        ReturnValues: 'UPDATED_NEW',
      },
      {
        next: S.countLostRetry,
        resultSelector: { 'attempt.$': 'States.StringToJson($.Attributes.attempt.N)' },
        resultPath: '$.claim',
        catchTo: S.failureDefaults,
      },
    ),
    [S.countLostRetry]: pass({
      next: S.readFenceBeforeStart,
      parameters: {
        'rewaits.$': '$.build.rewaits',
        'lostRetries.$': 'States.MathAdd($.build.lostRetries, 1)',
      },
      resultPath: '$.build',
    }),
    [S.runLost]: raise(WORKFLOW_ERRORS.DbtRunLost, {
      'Cause.$': `States.Format('dbt run of batch {} attempt {} ended LOST or INTERRUPTED and ${dbt.maxLostRetries} automatic retries are spent', $.batchId, $.claim.attempt)`,
    }),
  };
  return fragment({
    name: 'downstream/dbtRun',
    entries: [S.startDbtRun, S.lostOrInterrupted],
    exits: [S.readFenceBeforeStart, S.readFenceBeforeSuccess, S.reconcile, S.failureDefaults],
    states,
  });
}

/** After a heartbeat timeout, a timeout or an ambiguous start: read the run by (batch, attempt), act on it. */
function reconcile(c: Ctx): Fragment {
  const { refs } = c;
  const active: BooleanExpression = {
    Or: [
      { Variable: '$.reconciled.status', StringEquals: 'QUEUED' },
      { Variable: '$.reconciled.status', StringEquals: 'RUNNING' },
    ],
  };
  const states: StatesInput = {
    [S.reconcile]: invoke(refs.functions.getDbtRun, {
      next: S.reconciledStatus,
      payload: {
        pipeline: c.p,
        'batchId.$': '$.batchId',
        'attempt.$': '$.claim.attempt',
        failOnFailed: false,
      },
      resultSelector: {
        'runId.$': '$.Payload.runId',
        'status.$': '$.Payload.status',
        'queuedAt.$': '$.Payload.queuedAt',
        'startedAt.$': '$.Payload.startedAt',
        'finishedAt.$': '$.Payload.finishedAt',
      },
      resultPath: '$.reconciled',
      retry: [LAMBDA_SERVICE_RETRY, DBT_UNAVAILABLE_RETRY],
      catch: [
        { ErrorEquals: [ERROR_NAMES.DbtRunNotFound], Next: S.notStarted, ResultPath: '$.reconcileError' },
        { ErrorEquals: ['States.ALL'], Next: S.fateUnknown, ResultPath: '$.reconcileError' },
      ],
    }),
    [S.reconciledStatus]: choice(
      [
        { Variable: '$.reconciled.status', StringEquals: 'SUCCEEDED', Next: S.adoptReconciled },
        { Variable: '$.reconciled.status', StringEquals: 'FAILED', Next: S.reconciledFailed },
        {
          Or: [
            { Variable: '$.reconciled.status', StringEquals: 'LOST' },
            { Variable: '$.reconciled.status', StringEquals: 'INTERRUPTED' },
          ],
          Next: S.lostOrInterrupted,
        },
        { ...active, Next: S.runStillActive },
      ],
      S.unexpectedStatus,
    ),
    // The callback was lost but the run SUCCEEDED: continue as if it had arrived.
    [S.adoptReconciled]: pass({
      next: S.readFenceBeforeSuccess,
      parameters: {
        'runId.$': '$.reconciled.runId',
        status: 'SUCCEEDED',
        'startedAt.$': '$.reconciled.startedAt',
        'finishedAt.$': '$.reconciled.finishedAt',
      },
      resultPath: '$.dbtRun',
    }),
    [S.reconciledFailed]: raise(WORKFLOW_ERRORS.DbtRunFailed, {
      'Cause.$':
        "States.Format('dbt run {} of batch {} attempt {} ended FAILED (found by reconciliation after {})', $.reconciled.runId, $.batchId, $.claim.attempt, $.waitError.Error)",
    }),
    [S.runStillActive]: choice(
      [
        { Variable: '$.waitError.Error', StringEquals: 'States.Timeout', Next: S.runTimeout },
        { Variable: '$.build.rewaits', NumericGreaterThanEquals: c.d.maxRewaits, Next: S.runUnresponsive },
      ],
      S.countRewait,
    ),
    // Same key, new token: the app replaces the stored token (it cannot build twice).
    [S.countRewait]: pass({
      next: S.startDbtRun,
      parameters: {
        'rewaits.$': 'States.MathAdd($.build.rewaits, 1)',
        'lostRetries.$': '$.build.lostRetries',
      },
      resultPath: '$.build',
    }),
    [S.runTimeout]: raise(
      WORKFLOW_ERRORS.DbtRunTimeout,
      {
        'Cause.$': `States.Format('dbt run {} of batch {} still {} after the task timeout (maxQueueMinutes ${refs.dbt.maxQueueMinutes} + maxRunMinutes ${refs.dbt.maxRunMinutes})', $.reconciled.runId, $.batchId, $.reconciled.status)`,
      },
      { keepLock: true },
    ),
    [S.runUnresponsive]: raise(
      WORKFLOW_ERRORS.DbtRunUnresponsive,
      {
        'Cause.$': `States.Format('dbt run {} of batch {} is {} but sent no heartbeat after ${c.d.maxRewaits} re-waits', $.reconciled.runId, $.batchId, $.reconciled.status)`,
      },
      { keepLock: true },
    ),
  };
  return fragment({
    name: 'downstream/reconcile',
    entries: [S.reconcile],
    exits: [
      S.startDbtRun,
      S.lostOrInterrupted,
      S.readFenceBeforeSuccess,
      S.notStarted,
      S.fateUnknown,
      S.unexpectedStatus,
      S.failureDefaults,
    ],
    states,
  });
}

/** The app has no run for (batch, attempt) (404): start it again, at most maxRewaits times. */
function runNotFound(c: Ctx): Fragment {
  const states: StatesInput = {
    // 404: the start never reached the registry; the same key again is idempotent.
    [S.notStarted]: choice(
      [{ Variable: '$.build.rewaits', NumericGreaterThanEquals: c.d.maxRewaits, Next: S.neverStarted }],
      S.countRestart,
    ),
    [S.countRestart]: pass({
      next: S.readFenceBeforeStart,
      parameters: {
        'rewaits.$': 'States.MathAdd($.build.rewaits, 1)',
        'lostRetries.$': '$.build.lostRetries',
      },
      resultPath: '$.build',
    }),
    [S.neverStarted]: raise(WORKFLOW_ERRORS.DbtRunNotStarted, {
      'Cause.$': `States.Format('dbt has no run for batch {} attempt {} after ${c.d.maxRewaits} starts: {}', $.batchId, $.claim.attempt, $.waitError.Cause)`,
    }),
  };
  return fragment({
    name: 'downstream/runNotFound',
    entries: [S.notStarted],
    exits: [S.readFenceBeforeStart, S.failureDefaults],
    states,
  });
}

/** The run's fate or status is unknown: fail, but keep the lock (the run may live on). */
function unknownRunFate(): Fragment {
  const states: StatesInput = {
    // Never a new attempt while the old one's fate is unknown: keep the lock; its lease expires (no renewals).
    [S.fateUnknown]: raise(
      WORKFLOW_ERRORS.DbtRunFateUnknown,
      {
        'Cause.$':
          "States.Format('could not read dbt run of batch {} attempt {} after {}: {}: {}', $.batchId, $.claim.attempt, $.waitError.Error, $.reconcileError.Error, $.reconcileError.Cause)",
      },
      { keepLock: true },
    ),
    [S.unexpectedStatus]: raise(
      WORKFLOW_ERRORS.UnexpectedDbtStatus,
      {
        'Cause.$': "States.Format('dbt run {} reported status {}', $.reconciled.runId, $.reconciled.status)",
      },
      { keepLock: true },
    ),
  };
  return fragment({
    name: 'downstream/unknownRunFate',
    entries: [S.fateUnknown, S.unexpectedStatus],
    exits: [S.failureDefaults],
    states,
  });
}

/** Success, recorded: the record (ours only), the watermark (forward only), the lock released (ours only). */
function successRecord(c: Ctx): Fragment {
  const states: StatesInput = {
    [S.finishContext]: batchContext(c, S.markSucceeded, [
      { ErrorEquals: ['States.ALL'], Next: S.failureDefaults, ResultPath: '$.error' },
    ]),
    [S.markSucceeded]: dynamoUpdateItem(
      c.table,
      {
        Key: c.downstreamKey,
        UpdateExpression:
          'SET #status = :succeeded, gsi1pk = :gsi1pk, dbtRunId = :run, completedAt = :now, dbtStartedAt = :dbtStart, dbtFinishedAt = :dbtEnd',
        ConditionExpression: 'executionArn = :exec',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':succeeded': { S: 'SUCCEEDED' },
          ':gsi1pk': c.gsi1pk('SUCCEEDED'),
          ':run': { 'S.$': "States.Format('{}', $.dbtRun.runId)" },
          ':now': s('$.ctx.nowIso'),
          ':dbtStart': { 'S.$': "States.Format('{}', $.dbtRun.startedAt)" },
          ':dbtEnd': { 'S.$': "States.Format('{}', $.dbtRun.finishedAt)" },
          ':exec': execArn,
        },
      },
      { next: S.advanceWatermark, resultPath: null, catchTo: S.failureDefaults },
    ),
    [S.advanceWatermark]: dynamoUpdateItem(
      c.table,
      {
        Key: { pk: c.pk, sk: { S: DOWNSTREAM_WATERMARK_SK } },
        UpdateExpression: 'SET batchId = :b, updatedAt = :now, executionArn = :exec',
        // Only forward: a rerun of an older batch, or a late region, never moves it back.
        ConditionExpression: 'attribute_not_exists(batchId) OR batchId < :b',
        ExpressionAttributeValues: { ':b': s('$.batchId'), ':now': s('$.ctx.nowIso'), ':exec': execArn },
      },
      {
        next: S.releaseLock,
        resultPath: null,
        catch: [
          {
            ErrorEquals: [CONDITIONAL_CHECK_FAILED],
            Next: S.releaseLock,
            ResultPath: '$.watermarkUnchanged',
          },
          { ErrorEquals: ['States.ALL'], Next: S.failureDefaults, ResultPath: '$.error' },
        ],
      },
    ),
    [S.releaseLock]: releaseOwnLock(c.table, c.lockKey, {
      next: S.publishSucceeded,
      resultPath: null,
      // Not holding it any more (lease taken over) is worth a log line, not a failed build.
      catch: [{ ErrorEquals: ['States.ALL'], Next: S.publishSucceeded, ResultPath: '$.releaseError' }],
    }),
  };
  return fragment({
    name: 'downstream/successRecord',
    entries: [S.finishContext],
    exits: [S.publishSucceeded, S.failureDefaults],
    states,
  });
}

/** Success, announced: DownstreamRunSucceeded, or an alert when it cannot be published. */
function successAnnouncement(c: Ctx): Fragment {
  const { refs, p } = c;
  const states: StatesInput = {
    [S.publishSucceeded]: eventsPutEvents(
      refs.bus,
      [
        {
          Source: refs.eventSource,
          DetailType: DOWNSTREAM_RUN_SUCCEEDED,
          Detail: {
            schemaVersion: EVENT_SCHEMA_VERSION,
            pipeline: p,
            'batchId.$': '$.batchId',
            region: refs.region,
            'attempt.$': '$.claim.attempt',
            'dbtRunId.$': '$.dbtRun.runId',
            'executionArn.$': '$$.Execution.Id',
            'completedAt.$': '$.ctx.nowIso',
          },
        },
      ],
      {
        next: S.successResult,
        resultPath: null,
        catch: [{ ErrorEquals: ['States.ALL'], Next: S.alertNotPublished, ResultPath: '$.error' }],
      },
    ),
    [S.successResult]: pass({
      next: S.succeeded,
      parameters: {
        outcome: 'SUCCEEDED',
        pipeline: p,
        'batchId.$': '$.batchId',
        'attempt.$': '$.claim.attempt',
        'dbtRunId.$': '$.dbtRun.runId',
      },
    }),
    [S.succeeded]: succeed(),
    // The build and its record are done; only the announcement failed.
    [S.alertNotPublished]: snsPublish(
      refs.alerts,
      {
        Subject: `etl-platform: ${DOWNSTREAM_RUN_SUCCEEDED} not published (${p})`,
        'Message.$': `States.Format('Batch {} of pipeline ${p} was built (dbt run {}) but the ${DOWNSTREAM_RUN_SUCCEEDED} event could not be published: {}: {}. Execution {}', $.batchId, $.dbtRun.runId, $.error.Error, $.error.Cause, $$.Execution.Id)`,
      },
      {
        next: S.eventNotPublished,
        resultPath: null,
        catch: [{ ErrorEquals: ['States.ALL'], Next: S.eventNotPublished, ResultPath: null }],
      },
    ),
    [S.eventNotPublished]: fail({ error: WORKFLOW_ERRORS.EventPublishFailed, causePath: '$.error.Cause' }),
  };
  return fragment({ name: 'downstream/successAnnouncement', entries: [S.publishSucceeded], states });
}

/** Failure, recorded: FAILED (ours only), and the lock released unless the run may live on. */
function failureRecord(c: Ctx): Fragment {
  const states: StatesInput = {
    // Every error lands here as {Error, Cause[, keepLock][, retryable]}; flags default to false.
    [S.failureDefaults]: pass({
      next: S.recordFailure,
      parameters: {
        'Error.$': '$.error.Error',
        'Cause.$': '$.error.Cause',
        'flags.$': 'States.JsonMerge($.defaults.error, $.error, false)',
      },
      resultPath: '$.error',
    }),
    [S.recordFailure]: dynamoUpdateItem(
      c.table,
      {
        Key: c.downstreamKey,
        UpdateExpression:
          'SET #status = :failed, gsi1pk = :gsi1pk, #error = :error, #cause = :cause, retryable = :retryable',
        // Ours only: never overwrite a record another execution claimed.
        ConditionExpression: 'executionArn = :exec',
        ExpressionAttributeNames: { '#status': 'status', '#error': 'error', '#cause': 'cause' },
        ExpressionAttributeValues: {
          ':failed': { S: 'FAILED' },
          ':gsi1pk': c.gsi1pk('FAILED'),
          ':error': { 'S.$': "States.Format('{}', $.error.Error)" },
          ':cause': { 'S.$': "States.Format('{}', $.error.Cause)" },
          ':retryable': { 'BOOL.$': '$.error.flags.retryable' },
          ':exec': execArn,
        },
      },
      {
        next: S.shouldReleaseLock,
        resultPath: null,
        catch: [
          { ErrorEquals: ['States.ALL'], Next: S.shouldReleaseLock, ResultPath: '$.recordFailureError' },
        ],
      },
    ),
    [S.shouldReleaseLock]: choice(
      [{ Variable: '$.error.flags.keepLock', BooleanEquals: true, Next: S.alertFailure }],
      S.releaseLockOnFailure,
      'A dbt run that may still be running keeps the lock until its lease expires',
    ),
    [S.releaseLockOnFailure]: releaseOwnLock(c.table, c.lockKey, {
      next: S.alertFailure,
      resultPath: null,
      catch: [{ ErrorEquals: ['States.ALL'], Next: S.alertFailure, ResultPath: '$.releaseError' }],
    }),
  };
  return fragment({
    name: 'downstream/failureRecord',
    entries: [S.failureDefaults],
    exits: [S.alertFailure],
    states,
  });
}

/** Failure, announced: the alert, DownstreamRunFailed, and the execution fails with the error. */
function failureAlerts(c: Ctx): Fragment {
  const { refs, p } = c;
  const states: StatesInput = {
    [S.alertFailure]: snsPublish(
      refs.alerts,
      {
        Subject: `etl-platform: downstream run FAILED (${p})`,
        'Message.$': `States.Format('Downstream run of batch {} (pipeline ${p}, region ${refs.region}) FAILED: {}: {}. Execution {}', $.batchId, $.error.Error, $.error.Cause, $$.Execution.Id)`,
      },
      {
        next: S.publishFailure,
        resultPath: null,
        catch: [{ ErrorEquals: ['States.ALL'], Next: S.publishFailure, ResultPath: '$.alertError' }],
      },
    ),
    [S.publishFailure]: eventsPutEvents(
      refs.bus,
      [
        {
          Source: refs.eventSource,
          DetailType: DOWNSTREAM_RUN_FAILED,
          Detail: {
            schemaVersion: EVENT_SCHEMA_VERSION,
            pipeline: p,
            'batchId.$': '$.batchId',
            region: refs.region,
            'error.$': '$.error.Error',
            'cause.$': '$.error.Cause',
            'executionArn.$': '$$.Execution.Id',
          },
        },
      ],
      {
        next: S.failed,
        resultPath: null,
        catch: [{ ErrorEquals: ['States.ALL'], Next: S.failed, ResultPath: '$.publishError' }],
      },
    ),
    [S.failed]: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
  };
  return fragment({ name: 'downstream/failureAlerts', entries: [S.alertFailure], states });
}

// ---------------------------------------------------------------- the definition

function context(refs: DownstreamWorkflowRefs): Ctx {
  const p = refs.pipeline.name;
  const pk = { S: pipelinePk(p) };
  return {
    refs,
    p,
    table: refs.controlTable,
    pk,
    downstreamKey: { pk, sk: { 'S.$': `States.Format('${batchSk('{}', 'DOWNSTREAM')}', $.batchId)` } },
    lockKey: { pk, sk: { S: lockSk('DOWNSTREAM') } },
    gsi1pk: (status: string) => ({ S: statusGsiPk(p, 'DOWNSTREAM', status) }),
    leaseSeconds: refs.dbt.lockLeaseMinutes * 60,
    d: defaults(refs.dbt),
  };
}

/** The fragments in definition order (the order of `States` is part of the generated ASL). */
function fragmentsOf(c: Ctx): Fragment[] {
  return [
    triggerIntake(c),
    rerunIntake(c),
    batchIdGate(c),
    fenceAtEntry(c),
    claim(c),
    lock(c),
    consistency(c),
    fenceBeforeStart(c),
    fenceBeforeSuccess(c),
    dbtRun(c),
    reconcile(c),
    runNotFound(c),
    unknownRunFate(),
    successRecord(c),
    successAnnouncement(c),
    failureRecord(c),
    failureAlerts(c),
  ];
}

/** The workflow's fragments, each checked on its own (for tests and docs); refs are validated first. */
export function downstreamFragments(refs: DownstreamWorkflowRefs): Fragment[] {
  validateRefs(refs);
  return fragmentsOf(context(refs));
}

export function downstreamWorkflow(refs: DownstreamWorkflowRefs): DownstreamWorkflow {
  const timeoutSeconds = validateRefs(refs);
  const built = workflow({
    ...composeFragments(fragmentsOf(context(refs))),
    comment: `Downstream dbt build of pipeline ${refs.pipeline.name} in ${refs.region}: fence, claim, lock, consistency, dbt (callback), fence, record`,
    timeoutSeconds,
  });
  assertGraph(built.definition, 'downstreamWorkflow');
  return built;
}
