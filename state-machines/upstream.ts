import * as pulumi from '@pulumi/pulumi';
import {
  batchSk,
  FENCE_KEY,
  lockSk,
  pipelinePk,
  statusGsiPk,
  tableSk,
  tableWatermarkSk,
  upstreamSkipSk,
} from '../contracts/control-table';
import { ERROR_NAMES } from '../contracts/errors';
import { EVENT_SCHEMA_VERSION, UPSTREAM_BATCH_FAILED, UPSTREAM_BATCH_SUCCEEDED } from '../contracts/events';
import type { IamStatement } from '../contracts/iam';
import { CDA_TABLE_NAME_PATTERN, PIPELINE_NAME_PATTERN } from '../contracts/pipeline-name';
import type { Catcher, PayloadTemplate, Retrier, StateMachineDefinition } from './asl';
import { assertGraph } from './graph';
import { fenceUnchanged, fenceValid, readFenceItem } from './fence';
import { composeFragments, fragment, type Fragment } from './fragment';
import {
  backoff,
  choice,
  conditionFailedTo,
  releaseOwnLock,
  dynamoGetItem,
  dynamoPutItem,
  dynamoUpdateItem,
  eventsPutEvents,
  fail,
  glueStartJobRunSync,
  lambdaInvoke,
  map,
  pass,
  RETRYABLE,
  s3GetObject,
  sfnStartExecution,
  snsPublish,
  succeed,
  workflow,
  type S3Objects,
  type StatesInput,
} from './tasks';
import { EXECUTION_ALREADY_EXISTS } from './intermediate';

/**
 * The upstream workflow (docs/upstream.md): one Standard execution per schedule tick of one
 * pipeline. Scheduler payload in, CDA → lake → Snowflake per table, one `UpstreamBatchSucceeded`
 * event out. JSONPath only (the local engine ignores JSONata).
 *
 * Composed of fragments (state-machines/fragment.ts): the batch's (`fragmentsOf`) and, inside the
 * LoadTables Map, one table's (`tableFragments`), each checked on its own when built; the builder
 * runs checkGraph on the whole.
 */

type In = pulumi.Input<string>;

export interface UpstreamWorkflowRefs {
  /** Pipeline name (contracts/pipeline-name.ts); the payload's `pipeline` must equal it. */
  pipeline: string;
  /** CDA table folders loaded by every batch. */
  tables: string[];
  /** Tables loaded at once (Map MaxConcurrency). */
  maxConcurrency: number;
  /** EventBridge `Source` of the events this workflow puts. */
  eventSource: string;
  /** The region this stack deploys to (recorded on the batch and in events). */
  region: string;
  /** Workflow TimeoutSeconds, and the lease of the upstream lock. */
  timeoutSeconds: number;
  controlTable: { name: In; arn: In };
  batchContextFunction: { arn: In };
  glueJobs: {
    cdaToLake: { name: In; arn: In };
    lakeToSnowflake: { name: In; arn: In };
  };
  /** The lake bucket: bare name, bucket ARN, and its KMS key when SSE-KMS. */
  lake: { bucket: In; arn: In; kmsKeyArn?: In };
  /** Guidewire's CDA bucket and the prefix holding manifest.json. */
  source: { bucket: In; prefix: In };
  snowflakeConnectionName: In;
  bus: { arn: In; name: In };
  alerts: { arn: In; kmsKeyArn?: In };
  /**
   * Trigger mode `upstream-direct`: the last state starts this downstream workflow itself, named by
   * the batch id, fire-and-forget. Same region only: a state machine cannot start one elsewhere.
   */
  downstream?: { arn: In };
}

// State names used across transitions.
const S = {
  validateInput: 'ValidateInput',
  rejectPayload: 'RejectPayload',
  batchContext: 'BatchContext',
  rejectBatchContext: 'RejectBatchContext',
  alertNoBatch: 'AlertBatchContextFailed',
  batchContextFailed: 'BatchContextFailed',
  readFence: 'ReadFence',
  fenceRoute: 'FenceRoute',
  fenceMissing: 'FenceMissing',
  recordSkip: 'RecordSkipNotActive',
  skippedNotActive: 'SkippedNotActive',
  recordBatch: 'RecordBatch',
  duplicate: 'DuplicateDelivery',
  acquireLock: 'AcquireLock',
  readLockHolder: 'ReadLockHolder',
  holderKnown: 'LockHolderKnown',
  describeHolder: 'DescribeLockHolder',
  describeNoHolder: 'DescribeLockReleased',
  markSkipped: 'MarkBatchSkipped',
  skipped: 'SkippedLockHeld',
  loadTables: 'LoadTables',
  // per table (Map)
  getWatermark: 'GetTableWatermark',
  hasWatermark: 'HasTableWatermark',
  useWatermark: 'UseTableWatermark',
  firstLoad: 'FirstTableLoad',
  markTableRunning: 'MarkTableRunning',
  cdaToLake: 'RunCdaToLake',
  readLakeResult: 'ReadLakeResult',
  checkLakeResult: 'CheckLakeResult',
  lakeNotSucceeded: 'LakeResultNotSucceeded',
  readFenceBeforeLoad: 'ReadFenceBeforeLoad',
  fenceBeforeLoad: 'FenceUnchangedBeforeLoad',
  fenceMovedBeforeLoad: 'FenceMovedBeforeLoad',
  lakeToSnowflake: 'RunLakeToSnowflake',
  readSnowflakeResult: 'ReadSnowflakeResult',
  watermarkMoved: 'WatermarkMoved',
  advanceWatermark: 'AdvanceTableWatermark',
  markTableSucceeded: 'MarkTableSucceeded',
  tableLoaded: 'TableLoaded',
  markTableFailed: 'MarkTableFailed',
  describeTableFailure: 'DescribeTableFailure',
  tableFailed: 'TableLoadFailed',
  // success
  finishClock: 'FinishClock',
  markSucceeded: 'MarkBatchSucceeded',
  releaseLock: 'ReleaseLock',
  publishSucceeded: 'PublishBatchSucceeded',
  done: 'BatchSucceeded',
  startDownstream: 'StartDownstream',
  alertDownstreamStart: 'AlertDownstreamNotStarted',
  downstreamStartFailed: 'DownstreamNotStarted',
  // failure
  failureClock: 'FailureClock',
  describeFailure: 'DescribeFailure',
  markFailed: 'MarkBatchFailed',
  releaseLockAfterFailure: 'ReleaseLockAfterFailure',
  alertFailure: 'AlertBatchFailed',
  publishFailed: 'PublishBatchFailed',
  batchFailed: 'BatchFailed',
  failureHandlingFailed: 'FailureHandlingFailed',
} as const;

/** `{ 'S.$': path }` / `{ S: value }` AttributeValue templates. */
const sPath = (path: string): PayloadTemplate => ({ 'S.$': path });
const nPath = (path: string): PayloadTemplate => ({ 'N.$': path });
const sVal = (value: unknown): PayloadTemplate => ({ S: value });

function validateRefs(refs: UpstreamWorkflowRefs): void {
  if (!PIPELINE_NAME_PATTERN.test(refs.pipeline))
    throw new Error(`upstream: bad pipeline name "${refs.pipeline}"`);
  if (refs.tables.length === 0) throw new Error('upstream: no tables');
  for (const t of refs.tables)
    if (!CDA_TABLE_NAME_PATTERN.test(t)) throw new Error(`upstream: bad table name "${t}"`);
  if (new Set(refs.tables).size !== refs.tables.length) throw new Error('upstream: duplicate table names');
  if (!Number.isInteger(refs.timeoutSeconds) || refs.timeoutSeconds <= 0)
    throw new Error('upstream: timeoutSeconds must be a positive integer');
  if (!Number.isInteger(refs.maxConcurrency) || refs.maxConcurrency < 0)
    throw new Error('upstream: maxConcurrency must be a non-negative integer');
}

/** What the fragments share: the refs and the control-table keys of this pipeline's batch. */
interface Ctx {
  refs: UpstreamWorkflowRefs;
  p: string;
  table: UpstreamWorkflowRefs['controlTable'];
  pk: PayloadTemplate;
  batchKey: PayloadTemplate;
  lockKey: PayloadTemplate;
  statusGsi: (status: string) => PayloadTemplate;
  /** Entry of the failure path (after BatchContext). */
  toFailure: string;
  /** The failure path's own catcher: a failure while handling a failure ends the execution. */
  failurePathCatch: Catcher[];
}

function context(refs: UpstreamWorkflowRefs): Ctx {
  const p = refs.pipeline;
  const pk = sVal(pipelinePk(p));
  return {
    refs,
    p,
    table: refs.controlTable,
    pk,
    batchKey: { pk, sk: sPath(`States.Format('${batchSk('{}', 'UPSTREAM')}', $.ctx.batchId)`) },
    lockKey: { pk, sk: sVal(lockSk('UPSTREAM')) },
    statusGsi: (status: string) => sVal(statusGsiPk(p, 'UPSTREAM', status)),
    toFailure: S.describeFailure,
    failurePathCatch: [
      { ErrorEquals: ['States.ALL'], Next: S.failureHandlingFailed, ResultPath: '$.failureError' },
    ],
  };
}

/**
 * Runs the same (pure) batch-context function for "now" later in the run: ASL has no clock that
 * the local engine supports ($$.State.EnteredTime is unavailable there).
 */
function clock(c: Ctx, next: string, catchTo: Catcher[] | string) {
  return lambdaInvoke(c.refs.batchContextFunction, {
    payload: { pipeline: c.p, 'batchId.$': '$.ctx.batchId', leaseSeconds: c.refs.timeoutSeconds },
    resultSelector: { 'nowIso.$': '$.Payload.nowIso' },
    resultPath: '$.finish',
    next,
    ...(typeof catchTo === 'string' ? { catchTo } : { catch: catchTo }),
  });
}

// ---------------------------------------------------------------- the batch's fragments

/** The Scheduler payload → BatchContext (batch id, clock, lease) or a Fail naming the payload it wanted. */
function scheduleIntake(c: Ctx): Fragment {
  const { refs, p } = c;
  const states: StatesInput = {
    [S.validateInput]: choice(
      [
        { Not: { Variable: '$.scheduledTime', IsPresent: true }, Next: S.rejectPayload },
        { Not: { Variable: '$.pipeline', IsPresent: true }, Next: S.rejectPayload },
        {
          And: [
            { Variable: '$.scheduledTime', IsString: true },
            { Variable: '$.pipeline', IsString: true },
            { Variable: '$.pipeline', StringEquals: p },
          ],
          Next: S.batchContext,
        },
      ],
      S.rejectPayload,
      'The Scheduler payload must be {"pipeline": "<this pipeline>", "scheduledTime": "<ISO-8601>"}.',
    ),
    [S.rejectPayload]: fail({
      error: ERROR_NAMES.InvalidInput,
      cause: `Expected the Scheduler payload {"pipeline": "${p}", "scheduledTime": "<aws.scheduler.scheduled-time>"}.`,
    }),
    [S.batchContext]: lambdaInvoke(refs.batchContextFunction, {
      payload: { pipeline: p, 'scheduledTime.$': '$.scheduledTime', leaseSeconds: refs.timeoutSeconds },
      // Numbers as strings: they only ever go into DynamoDB N attributes. `tables` is the plan.
      resultSelector: {
        'batchId.$': '$.Payload.batchId',
        'now.$': "States.Format('{}', $.Payload.now)",
        'nowIso.$': '$.Payload.nowIso',
        'leaseExpiresAt.$': "States.Format('{}', $.Payload.leaseExpiresAt)",
        'recordExpiresAt.$': "States.Format('{}', $.Payload.recordExpiresAt)",
        tables: refs.tables,
      },
      resultPath: '$.ctx',
      next: S.readFence,
      // Default Retry covers Lambda service errors only, so InvalidInput is never retried.
      catch: [
        { ErrorEquals: [ERROR_NAMES.InvalidInput], Next: S.rejectBatchContext, ResultPath: '$.error' },
        { ErrorEquals: ['States.ALL'], Next: S.alertNoBatch, ResultPath: '$.error' },
      ],
    }),
    [S.rejectBatchContext]: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
  };
  return fragment({
    name: 'upstream/scheduleIntake',
    entries: [S.validateInput],
    exits: [S.readFence, S.alertNoBatch],
    states,
  });
}

/** The batch could not start (BatchContext or the fence read failed, or the fence is missing or malformed). */
function noBatchAlert(c: Ctx): Fragment {
  const { refs, p, failurePathCatch } = c;
  const states: StatesInput = {
    // No batch id yet: nothing to record or unlock; tell on-call and stop.
    [S.alertNoBatch]: snsPublish(
      refs.alerts,
      {
        Subject: `etl-platform: upstream ${p} could not start`,
        'Message.$': `States.Format('Upstream workflow of pipeline ${p} in ${refs.region} could not start the batch of scheduled time {}. Error: {}. Cause: {}', $.scheduledTime, $.error.Error, $.error.Cause)`,
      },
      { next: S.batchContextFailed, resultPath: null, catch: failurePathCatch },
    ),
    [S.batchContextFailed]: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
  };
  return fragment({
    name: 'upstream/noBatchAlert',
    entries: [S.alertNoBatch],
    exits: [S.failureHandlingFailed],
    states,
  });
}

/** D9: the fence before any write or Glue job. Same rules as downstream: missing → alert, other region → skip. */
function fenceAtEntry(c: Ctx): Fragment {
  const { refs, p, table, pk } = c;
  const states: StatesInput = {
    [S.readFence]: readFenceItem(table, {
      next: S.fenceRoute,
      resultPath: '$.fenceItem',
      catch: [{ ErrorEquals: ['States.ALL'], Next: S.alertNoBatch, ResultPath: '$.error' }],
    }),
    [S.fenceRoute]: choice(
      [
        {
          And: [
            ...fenceValid('$.fenceItem'),
            { Variable: '$.fenceItem.Item.activeRegion.S', StringEquals: refs.region },
          ],
          Next: S.recordBatch,
        },
        { And: fenceValid('$.fenceItem'), Next: S.recordSkip },
      ],
      S.fenceMissing,
    ),
    [S.fenceMissing]: pass({
      parameters: {
        Error: 'FenceMissing',
        'Cause.$': `States.Format('The fence item ${FENCE_KEY.pk}/${FENCE_KEY.sk} is missing or malformed (needs activeRegion S and epoch N >= 1); found {}. No Glue job ran', States.JsonToString($.fenceItem))`,
      },
      resultPath: '$.error',
      next: S.alertNoBatch,
    }),
    // Passive region: an audit record under its own key; the batch record is never touched.
    [S.recordSkip]: dynamoPutItem(
      table,
      {
        Item: {
          pk,
          sk: sPath(`States.Format('${upstreamSkipSk('{}', refs.region)}', $.ctx.batchId)`),
          pipeline: sVal(p),
          batchId: sPath('$.ctx.batchId'),
          status: sVal('SKIPPED_NOT_ACTIVE'),
          region: sVal(refs.region),
          fenceSeen: sPath('States.JsonToString($.fenceItem)'),
          executionArn: sPath('$$.Execution.Id'),
          expiresAt: nPath('$.ctx.recordExpiresAt'),
        },
      },
      {
        next: S.skippedNotActive,
        resultPath: null,
        catch: [{ ErrorEquals: ['States.ALL'], Next: S.skippedNotActive, ResultPath: '$.skipAuditError' }],
      },
    ),
    [S.skippedNotActive]: succeed(
      'The fence names another region: this one is passive and runs no Glue job.',
    ),
  };
  return fragment({
    name: 'upstream/fenceAtEntry',
    entries: [S.readFence],
    exits: [S.recordBatch, S.alertNoBatch],
    states,
  });
}

/** The batch record, keyed by the schedule tick: a repeated delivery finds it and starts nothing. */
function batchRecord(c: Ctx): Fragment {
  const { refs, p, table, batchKey, statusGsi, toFailure } = c;
  const states: StatesInput = {
    [S.recordBatch]: dynamoPutItem(
      table,
      {
        Item: {
          ...batchKey,
          pipeline: sVal(p),
          batchId: sPath('$.ctx.batchId'),
          status: sVal('RUNNING'),
          gsi1pk: statusGsi('RUNNING'),
          gsi1sk: sPath('$.ctx.batchId'),
          region: sVal(refs.region),
          executionArn: sPath('$$.Execution.Id'),
          scheduledTime: sPath('$.scheduledTime'),
          startedAt: sPath('$.ctx.nowIso'),
          expiresAt: nPath('$.ctx.recordExpiresAt'),
        },
        // The batch id is the scheduled tick: a second delivery of the tick finds its record.
        ConditionExpression: 'attribute_not_exists(pk)',
      },
      {
        next: S.acquireLock,
        resultPath: null,
        catch: conditionFailedTo(S.duplicate, toFailure),
      },
    ),
    [S.duplicate]: succeed('This schedule tick already has a batch; a repeated delivery starts nothing.'),
  };
  return fragment({
    name: 'upstream/batchRecord',
    entries: [S.recordBatch],
    exits: [S.acquireLock, S.describeFailure],
    states,
  });
}

/** LOCK#UPSTREAM, owned by the execution; while another batch holds it, this tick is SKIPPED. */
function lock(c: Ctx): Fragment {
  const { table, batchKey, lockKey, statusGsi, toFailure } = c;
  const states: StatesInput = {
    [S.acquireLock]: dynamoPutItem(
      table,
      {
        Item: {
          ...lockKey,
          // The owner is the execution; the batch id is informational (and names it in skip reasons).
          executionArn: sPath('$$.Execution.Id'),
          holder: sPath('$.ctx.batchId'),
          batchId: sPath('$.ctx.batchId'),
          acquiredAt: sPath('$.ctx.nowIso'),
          leaseExpiresAt: nPath('$.ctx.leaseExpiresAt'),
        },
        // Free, or the holder's lease (= its workflow timeout) has run out, or ours already.
        ConditionExpression: 'attribute_not_exists(pk) OR leaseExpiresAt < :now OR executionArn = :exec',
        ExpressionAttributeValues: { ':now': nPath('$.ctx.now'), ':exec': sPath('$$.Execution.Id') },
      },
      {
        next: S.loadTables,
        resultPath: null,
        catch: conditionFailedTo(S.readLockHolder, toFailure),
      },
    ),
    [S.readLockHolder]: dynamoGetItem(
      table,
      { Key: lockKey, ConsistentRead: true },
      { next: S.holderKnown, catchTo: toFailure, resultPath: '$.lock' },
    ),
    [S.holderKnown]: choice(
      [
        {
          And: [
            { Variable: '$.lock.Item.holder.S', IsPresent: true },
            { Variable: '$.lock.Item.leaseExpiresAt.N', IsPresent: true },
          ],
          Next: S.describeHolder,
        },
      ],
      S.describeNoHolder,
    ),
    [S.describeHolder]: pass({
      parameters: {
        'reason.$': `States.Format('${lockSk('UPSTREAM')} is held by batch {} (lease until epoch {})', $.lock.Item.holder.S, $.lock.Item.leaseExpiresAt.N)`,
      },
      resultPath: '$.skip',
      next: S.markSkipped,
    }),
    [S.describeNoHolder]: pass({
      result: {
        reason: `${lockSk('UPSTREAM')} was held by another batch (released before it could be read)`,
      },
      resultPath: '$.skip',
      next: S.markSkipped,
    }),
    [S.markSkipped]: dynamoUpdateItem(
      table,
      {
        Key: batchKey,
        UpdateExpression: 'SET #status = :s, gsi1pk = :g, skipReason = :r, completedAt = :c',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':s': sVal('SKIPPED'),
          ':g': statusGsi('SKIPPED'),
          ':r': sPath('$.skip.reason'),
          ':c': sPath('$.ctx.nowIso'),
        },
      },
      { next: S.skipped, catchTo: toFailure, resultPath: null },
    ),
    [S.skipped]: succeed('Another batch holds the upstream lock; this tick is recorded as SKIPPED.'),
  };
  return fragment({
    name: 'upstream/lock',
    entries: [S.acquireLock],
    exits: [S.loadTables, S.describeFailure],
    states,
  });
}

/** The per-table Glue work as a Map over the plan's tables (its processor: `tableFragments`). */
function loadTables(c: Ctx): Fragment {
  const { refs, p, toFailure } = c;
  const processor = composeFragments(tableFragments(tableContext(c)));
  const states: StatesInput = {
    [S.loadTables]: map(processor, {
      next: S.finishClock,
      catchTo: toFailure,
      itemsPath: '$.ctx.tables',
      itemSelector: {
        pipeline: p,
        'table.$': '$$.Map.Item.Value',
        'batchId.$': '$.ctx.batchId',
        'startedAt.$': '$.ctx.nowIso',
        'expiresAt.$': '$.ctx.recordExpiresAt',
        'fence.$': '$.fenceItem.Item',
      },
      maxConcurrency: refs.maxConcurrency,
      resultPath: '$.tables',
    }),
  };
  return fragment({
    name: 'upstream/loadTables',
    entries: [S.loadTables],
    exits: [S.finishClock, S.describeFailure],
    states,
  });
}

/** Every table loaded: the batch SUCCEEDED and the lock released (ours only). */
function batchSucceeded(c: Ctx): Fragment {
  const { table, batchKey, lockKey, statusGsi, toFailure } = c;
  const states: StatesInput = {
    [S.finishClock]: clock(c, S.markSucceeded, toFailure),
    [S.markSucceeded]: dynamoUpdateItem(
      table,
      {
        Key: batchKey,
        UpdateExpression: 'SET #status = :s, gsi1pk = :g, completedAt = :c, #tables = :t',
        ExpressionAttributeNames: { '#status': 'status', '#tables': 'tables' },
        ExpressionAttributeValues: {
          ':s': sVal('SUCCEEDED'),
          ':g': statusGsi('SUCCEEDED'),
          ':c': sPath('$.finish.nowIso'),
          ':t': sPath('States.JsonToString($.tables)'),
        },
      },
      { next: S.releaseLock, catchTo: toFailure, resultPath: null },
    ),
    [S.releaseLock]: releaseOwnLock(table, lockKey, {
      next: S.publishSucceeded,
      resultPath: null,
      catch: conditionFailedTo(S.publishSucceeded, toFailure),
    }),
  };
  return fragment({
    name: 'upstream/batchSucceeded',
    entries: [S.finishClock],
    exits: [S.publishSucceeded, S.describeFailure],
    states,
  });
}

/** UpstreamBatchSucceeded, then (upstream-direct only) the downstream started by the batch id. */
function publish(c: Ctx): Fragment {
  const { refs, p, toFailure } = c;
  const states: StatesInput = {
    [S.publishSucceeded]: eventsPutEvents(
      refs.bus,
      [
        {
          Source: refs.eventSource,
          DetailType: UPSTREAM_BATCH_SUCCEEDED,
          Detail: {
            schemaVersion: EVENT_SCHEMA_VERSION,
            pipeline: p,
            'batchId.$': '$.ctx.batchId',
            region: refs.region,
            'tables.$': '$.tables',
            'startedAt.$': '$.ctx.nowIso',
            'completedAt.$': '$.finish.nowIso',
            'upstreamExecutionArn.$': '$$.Execution.Id',
          },
        },
      ],
      { next: refs.downstream ? S.startDownstream : S.done, catchTo: toFailure, resultPath: null },
    ),
    ...(refs.downstream ? startDownstreamStates(c, refs.downstream) : {}),
    [S.done]: succeed(),
  };
  return fragment({
    name: 'upstream/publish',
    entries: [S.publishSucceeded],
    exits: refs.downstream ? [S.describeFailure, S.failureHandlingFailed] : [S.describeFailure],
    states,
  });
}

/** The failure path (never loops): the batch FAILED (when recorded at all) and the lock released. */
function failureRecord(c: Ctx): Fragment {
  const { refs, p, table, batchKey, lockKey, statusGsi, failurePathCatch } = c;
  const states: StatesInput = {
    [S.describeFailure]: pass({
      parameters: {
        schemaVersion: EVENT_SCHEMA_VERSION,
        pipeline: p,
        'batchId.$': '$.ctx.batchId',
        region: refs.region,
        'error.$': '$.error.Error',
        'cause.$': '$.error.Cause',
        'startedAt.$': '$.ctx.nowIso',
        'upstreamExecutionArn.$': '$$.Execution.Id',
      },
      resultPath: '$.failure',
      next: S.failureClock,
    }),
    [S.failureClock]: clock(c, S.markFailed, failurePathCatch),
    [S.markFailed]: dynamoUpdateItem(
      table,
      {
        Key: batchKey,
        UpdateExpression: 'SET #status = :s, gsi1pk = :g, #error = :e, #cause = :c, completedAt = :t',
        // Only an existing record: RecordBatch itself may be what failed.
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: { '#status': 'status', '#error': 'error', '#cause': 'cause' },
        ExpressionAttributeValues: {
          ':s': sVal('FAILED'),
          ':g': statusGsi('FAILED'),
          ':e': sPath('$.error.Error'),
          ':c': sPath('$.error.Cause'),
          ':t': sPath('$.finish.nowIso'),
        },
      },
      {
        next: S.releaseLockAfterFailure,
        resultPath: null,
        catch: conditionFailedTo(S.releaseLockAfterFailure, failurePathCatch),
      },
    ),
    [S.releaseLockAfterFailure]: releaseOwnLock(table, lockKey, {
      next: S.alertFailure,
      resultPath: null,
      catch: conditionFailedTo(S.alertFailure, failurePathCatch),
    }),
  };
  return fragment({
    name: 'upstream/failureRecord',
    entries: [S.describeFailure],
    exits: [S.alertFailure, S.failureHandlingFailed],
    states,
  });
}

/** The failure announced: the alert, UpstreamBatchFailed, and the execution fails with the error. */
function failureAlerts(c: Ctx): Fragment {
  const { refs, p, failurePathCatch } = c;
  const states: StatesInput = {
    [S.alertFailure]: snsPublish(
      refs.alerts,
      {
        Subject: `etl-platform: upstream batch of ${p} failed`,
        // Plain text: States.Format, not JsonToString (see docs/upstream.md, "local engine").
        'Message.$': `States.Format('Upstream batch {} of pipeline ${p} failed in ${refs.region}. Error: {}. Cause: {}. Execution: {}', $.failure.batchId, $.failure.error, $.failure.cause, $.failure.upstreamExecutionArn)`,
      },
      { next: S.publishFailed, resultPath: null, catch: failurePathCatch },
    ),
    [S.publishFailed]: eventsPutEvents(
      refs.bus,
      [
        {
          Source: refs.eventSource,
          DetailType: UPSTREAM_BATCH_FAILED,
          Detail: {
            schemaVersion: EVENT_SCHEMA_VERSION,
            pipeline: p,
            'batchId.$': '$.failure.batchId',
            region: refs.region,
            'error.$': '$.failure.error',
            'cause.$': '$.failure.cause',
            'startedAt.$': '$.failure.startedAt',
            'failedAt.$': '$.finish.nowIso',
            'upstreamExecutionArn.$': '$$.Execution.Id',
          },
        },
      ],
      { next: S.batchFailed, resultPath: null, catch: failurePathCatch },
    ),
    [S.batchFailed]: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
    [S.failureHandlingFailed]: fail({
      error: 'UpstreamFailureHandlingFailed',
      causePath: '$.failureError.Cause',
    }),
  };
  return fragment({
    name: 'upstream/failureAlerts',
    entries: [S.alertFailure, S.failureHandlingFailed],
    states,
  });
}

/**
 * `upstream-direct`: start the downstream named by the batch id once the batch is SUCCEEDED and its
 * event published. A redrive or re-run of the upstream finds the name taken and ends cleanly.
 * Failing to start does not un-succeed the batch: it alerts and fails the execution, and the
 * downstream can be started with `etl-ops rerun` or by the poller/watchdog.
 */
function startDownstreamStates(c: Ctx, downstream: { arn: In }): StatesInput {
  const { refs, p, failurePathCatch } = c;
  return {
    [S.startDownstream]: sfnStartExecution(
      downstream,
      {
        'Name.$': '$.ctx.batchId',
        Input: {
          version: '0',
          source: refs.eventSource,
          'detail-type': UPSTREAM_BATCH_SUCCEEDED,
          region: refs.region,
          'resources.$': 'States.Array($$.Execution.Id)',
          detail: {
            schemaVersion: EVENT_SCHEMA_VERSION,
            pipeline: p,
            'batchId.$': '$.ctx.batchId',
            region: refs.region,
            'tables.$': '$.tables',
            'startedAt.$': '$.ctx.nowIso',
            'completedAt.$': '$.finish.nowIso',
            'upstreamExecutionArn.$': '$$.Execution.Id',
          },
        },
      },
      {
        next: S.done,
        resultPath: null,
        catch: [
          { ErrorEquals: [EXECUTION_ALREADY_EXISTS], Next: S.done, ResultPath: null },
          { ErrorEquals: ['States.ALL'], Next: S.alertDownstreamStart, ResultPath: '$.error' },
        ],
      },
    ),
    [S.alertDownstreamStart]: snsPublish(
      refs.alerts,
      {
        Subject: `etl-platform: downstream of ${p} not started`,
        'Message.$': `States.Format('Upstream batch {} of pipeline ${p} SUCCEEDED in ${refs.region} but its downstream could not be started. Error: {}. Cause: {}. Run: etl-ops rerun --pipeline ${p} --batch {}', $.ctx.batchId, $.error.Error, $.error.Cause, $.ctx.batchId)`,
      },
      { next: S.downstreamStartFailed, resultPath: null, catch: failurePathCatch },
    ),
    [S.downstreamStartFailed]: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
  };
}

// ---------------------------------------------------------------- one table (the Map's processor)

/** What the per-table fragments share: the item keys and run-result objects of one table. */
interface TableCtx {
  refs: UpstreamWorkflowRefs;
  p: string;
  table: UpstreamWorkflowRefs['controlTable'];
  tableKey: PayloadTemplate;
  watermarkKey: PayloadTemplate;
  /** s3://<lake>/_runs/<pipeline>/<batchId>/[snowflake/]<table>.json (glue/README.md) */
  runsKey: (suffix: string) => string;
  lakeObjects: S3Objects;
  toTableFailure: string;
  glueRetry: Retrier[];
}

function tableContext(c: Ctx): TableCtx {
  const { refs, p, pk } = c;
  return {
    refs,
    p,
    table: c.table,
    tableKey: { pk, sk: sPath(`States.Format('${tableSk('{}', '{}')}', $.batchId, $.table)`) },
    watermarkKey: { pk, sk: sPath(`States.Format('${tableWatermarkSk('{}')}', $.table)`) },
    runsKey: (suffix: string) => `States.Format('_runs/${p}/{}/${suffix}', $.batchId, $.table)`,
    lakeObjects: {
      name: refs.lake.bucket,
      arn: refs.lake.arn,
      keyPattern: `_runs/${p}/*`,
      ...(refs.lake.kmsKeyArn !== undefined ? { kmsKeyArn: refs.lake.kmsKeyArn } : {}),
    },
    toTableFailure: S.markTableFailed,
    glueRetry: [
      // MaxConcurrentRuns is per job, shared by every table of every pipeline: wait for a slot.
      backoff(['Glue.ConcurrentRunsExceededException'], {
        IntervalSeconds: 30,
        MaxAttempts: 8,
        MaxDelaySeconds: 300,
      }),
      backoff(RETRYABLE.glue.filter((e) => e !== 'Glue.ConcurrentRunsExceededException')),
    ],
  };
}

/** The table's watermark, or '' for its first load. */
function tableWatermark(t: TableCtx): Fragment {
  const { table, watermarkKey, toTableFailure } = t;
  const states: StatesInput = {
    [S.getWatermark]: dynamoGetItem(
      table,
      { Key: watermarkKey, ConsistentRead: true, ProjectionExpression: 'watermark' },
      { next: S.hasWatermark, catchTo: toTableFailure, resultPath: '$.wm' },
    ),
    [S.hasWatermark]: choice(
      [{ Variable: '$.wm.Item.watermark.S', IsPresent: true, Next: S.useWatermark }],
      S.firstLoad,
    ),
    [S.useWatermark]: pass({
      parameters: { 'value.$': '$.wm.Item.watermark.S' },
      resultPath: '$.previous',
      next: S.markTableRunning,
    }),
    [S.firstLoad]: pass({ result: { value: '' }, resultPath: '$.previous', next: S.markTableRunning }),
  };
  return fragment({
    name: 'upstream/table/watermark',
    entries: [S.getWatermark],
    exits: [S.markTableRunning, S.markTableFailed],
    states,
  });
}

/** The table RUNNING, cda_to_lake run to completion, and its result object read. */
function cdaToLake(t: TableCtx): Fragment {
  const { refs, p, table, tableKey, runsKey, lakeObjects, toTableFailure, glueRetry } = t;
  const states: StatesInput = {
    [S.markTableRunning]: dynamoPutItem(
      table,
      {
        Item: {
          ...tableKey,
          pipeline: sVal(p),
          batchId: sPath('$.batchId'),
          table: sPath('$.table'),
          status: sVal('RUNNING'),
          previousWatermark: sPath('$.previous.value'),
          startedAt: sPath('$.startedAt'),
          expiresAt: nPath('$.expiresAt'),
        },
      },
      { next: S.cdaToLake, catchTo: toTableFailure, resultPath: null },
    ),
    [S.cdaToLake]: glueStartJobRunSync(
      refs.glueJobs.cdaToLake,
      {
        Arguments: {
          '--pipeline': p,
          '--batch_id.$': '$.batchId',
          '--table.$': '$.table',
          '--source_bucket': refs.source.bucket,
          '--source_prefix': refs.source.prefix,
          '--lake_bucket': refs.lake.bucket,
          '--watermark.$': '$.previous.value',
        },
      },
      { next: S.readLakeResult, catchTo: toTableFailure, retry: glueRetry, resultPath: '$.cdaRun' },
    ),
    [S.readLakeResult]: s3GetObject(
      lakeObjects,
      { 'Key.$': runsKey('{}.json') },
      {
        next: S.checkLakeResult,
        catchTo: toTableFailure,
        resultSelector: { 'value.$': 'States.StringToJson($.Body)' },
        resultPath: '$.lake',
      },
    ),
  };
  return fragment({
    name: 'upstream/table/cdaToLake',
    entries: [S.markTableRunning],
    exits: [S.checkLakeResult, S.markTableFailed],
    states,
  });
}

/** The Snowflake load goes ahead only when the lake result SUCCEEDED and the fence has not moved. */
function loadGate(t: TableCtx): Fragment {
  const { table, toTableFailure } = t;
  const states: StatesInput = {
    [S.checkLakeResult]: choice(
      [{ Variable: '$.lake.value.status', StringEquals: 'SUCCEEDED', Next: S.readFenceBeforeLoad }],
      S.lakeNotSucceeded,
    ),
    // D9: the fence again right before the Snowflake load (the warehouse checks its own fence too).
    [S.readFenceBeforeLoad]: readFenceItem(table, {
      next: S.fenceBeforeLoad,
      catchTo: toTableFailure,
      resultPath: '$.fenceNow',
    }),
    [S.fenceBeforeLoad]: choice(
      [{ ...fenceUnchanged('$.fenceNow', '$.fence'), Next: S.lakeToSnowflake }],
      S.fenceMovedBeforeLoad,
    ),
    [S.fenceMovedBeforeLoad]: pass({
      parameters: {
        Error: 'FenceMoved',
        'Cause.$':
          "States.Format('the fence moved before the Snowflake load of table {}: the batch started under {} epoch {}', $.table, $.fence.activeRegion.S, $.fence.epoch.N)",
      },
      resultPath: '$.error',
      next: S.markTableFailed,
    }),
    [S.lakeNotSucceeded]: pass({
      parameters: {
        Error: 'CdaToLakeResultNotSucceeded',
        'Cause.$': "States.Format('cda_to_lake result of table {} is not SUCCEEDED', $.table)",
      },
      resultPath: '$.error',
      next: S.markTableFailed,
    }),
  };
  return fragment({
    name: 'upstream/table/loadGate',
    entries: [S.checkLakeResult],
    exits: [S.lakeToSnowflake, S.markTableFailed],
    states,
  });
}

/** lake_to_snowflake run to completion (under the claim's fence), and its result object read. */
function snowflakeLoad(t: TableCtx): Fragment {
  const { refs, p, runsKey, lakeObjects, toTableFailure, glueRetry } = t;
  const states: StatesInput = {
    [S.lakeToSnowflake]: glueStartJobRunSync(
      refs.glueJobs.lakeToSnowflake,
      {
        Arguments: {
          '--pipeline': p,
          '--batch_id.$': '$.batchId',
          '--table.$': '$.table',
          '--lake_bucket': refs.lake.bucket,
          '--snowflake_connection': refs.snowflakeConnectionName,
          // The claim's fence: the load checks CONTROL.FENCE names exactly this (glue/cda_logic.py).
          '--fence_region.$': '$.fence.activeRegion.S',
          '--fence_epoch.$': '$.fence.epoch.N',
        },
      },
      {
        next: S.readSnowflakeResult,
        catchTo: toTableFailure,
        retry: glueRetry,
        resultPath: '$.snowflakeRun',
      },
    ),
    [S.readSnowflakeResult]: s3GetObject(
      lakeObjects,
      { 'Key.$': runsKey('snowflake/{}.json') },
      {
        next: S.watermarkMoved,
        catchTo: toTableFailure,
        resultSelector: { 'value.$': 'States.StringToJson($.Body)' },
        resultPath: '$.snowflake',
      },
    ),
  };
  return fragment({
    name: 'upstream/table/snowflakeLoad',
    entries: [S.lakeToSnowflake],
    exits: [S.watermarkMoved, S.markTableFailed],
    states,
  });
}

/** The watermark moved forward (when the load found anything new), the table SUCCEEDED, its summary out. */
function tableSucceeded(t: TableCtx): Fragment {
  const { table, tableKey, watermarkKey, toTableFailure } = t;
  const states: StatesInput = {
    // Nothing new (or a first load that found nothing): the watermark item is left alone.
    [S.watermarkMoved]: choice(
      [
        {
          Variable: '$.lake.value.watermark',
          StringEqualsPath: '$.previous.value',
          Next: S.markTableSucceeded,
        },
      ],
      S.advanceWatermark,
    ),
    [S.advanceWatermark]: dynamoUpdateItem(
      table,
      {
        Key: watermarkKey,
        UpdateExpression: 'SET watermark = :w, batchId = :b, updatedAt = :t',
        // Only forward: a late or replayed batch never moves it back.
        ConditionExpression: 'attribute_not_exists(watermark) OR watermark < :w',
        ExpressionAttributeValues: {
          ':w': sPath('$.lake.value.watermark'),
          ':b': sPath('$.batchId'),
          ':t': sPath('$.lake.value.completedAt'),
        },
      },
      {
        next: S.markTableSucceeded,
        resultPath: null,
        comment: 'Only forward; a failed condition means the stored watermark is newer, which is fine.',
        catch: conditionFailedTo(S.markTableSucceeded, toTableFailure),
      },
    ),
    [S.markTableSucceeded]: dynamoUpdateItem(
      table,
      {
        Key: tableKey,
        UpdateExpression:
          'SET #status = :s, glueRunId = :g, snowflakeGlueRunId = :sg, #rows = :r, snowflakeRows = :sr, ' +
          'lakePath = :l, watermark = :w, lakeStartedAt = :ls, lakeCompletedAt = :lc, completedAt = :c',
        ExpressionAttributeNames: { '#status': 'status', '#rows': 'rows' },
        ExpressionAttributeValues: {
          ':s': sVal('SUCCEEDED'),
          ':g': sPath('$.cdaRun.Id'),
          ':sg': sPath('$.snowflakeRun.Id'),
          ':r': nPath("States.Format('{}', $.lake.value.rows)"),
          ':sr': nPath("States.Format('{}', $.snowflake.value.rows)"),
          ':l': sPath('$.lake.value.lakePath'),
          ':w': sPath('$.lake.value.watermark'),
          ':ls': sPath('$.lake.value.startedAt'),
          ':lc': sPath('$.lake.value.completedAt'),
          ':c': sPath('$.snowflake.value.completedAt'),
        },
      },
      { next: S.tableLoaded, catchTo: toTableFailure, resultPath: null },
    ),
    [S.tableLoaded]: pass({
      parameters: {
        'name.$': '$.table',
        'rows.$': '$.lake.value.rows',
        'lakePath.$': '$.lake.value.lakePath',
      },
    }),
  };
  return fragment({
    name: 'upstream/table/succeeded',
    entries: [S.watermarkMoved],
    exits: [S.markTableFailed],
    ends: true,
    states,
  });
}

/** The table FAILED (recorded when possible), which fails its Map iteration. */
function tableFailed(t: TableCtx): Fragment {
  const { table, tableKey } = t;
  const states: StatesInput = {
    [S.markTableFailed]: dynamoUpdateItem(
      table,
      {
        Key: tableKey,
        UpdateExpression: 'SET #status = :s, #error = :e, #cause = :c',
        ExpressionAttributeNames: { '#status': 'status', '#error': 'error', '#cause': 'cause' },
        ExpressionAttributeValues: {
          ':s': sVal('FAILED'),
          ':e': sPath('$.error.Error'),
          ':c': sPath('$.error.Cause'),
        },
      },
      {
        next: S.describeTableFailure,
        resultPath: null,
        // Failing to record the failure still fails the table (never loops back).
        catch: [{ ErrorEquals: ['States.ALL'], Next: S.describeTableFailure, ResultPath: '$.markError' }],
      },
    ),
    [S.describeTableFailure]: pass({
      parameters: {
        'Error.$': '$.error.Error',
        'Cause.$': "States.Format('table {}: {}', $.table, $.error.Cause)",
      },
      resultPath: '$.error',
      next: S.tableFailed,
    }),
    [S.tableFailed]: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
  };
  return fragment({ name: 'upstream/table/failed', entries: [S.markTableFailed], states });
}

/** The Map processor's fragments, in definition order. */
function tableFragments(t: TableCtx): Fragment[] {
  return [tableWatermark(t), cdaToLake(t), loadGate(t), snowflakeLoad(t), tableSucceeded(t), tableFailed(t)];
}

// ---------------------------------------------------------------- the definition

/** The batch's fragments in definition order (the order of `States` is part of the generated ASL). */
function fragmentsOf(c: Ctx): Fragment[] {
  return [
    scheduleIntake(c),
    noBatchAlert(c),
    fenceAtEntry(c),
    batchRecord(c),
    lock(c),
    loadTables(c),
    batchSucceeded(c),
    publish(c),
    failureRecord(c),
    failureAlerts(c),
  ];
}

/**
 * The workflow's fragments, each checked on its own (for tests and docs): the batch's, then the
 * Map processor's (one table). Refs are validated first.
 */
export function upstreamFragments(refs: UpstreamWorkflowRefs): { batch: Fragment[]; table: Fragment[] } {
  validateRefs(refs);
  const c = context(refs);
  return { batch: fragmentsOf(c), table: tableFragments(tableContext(c)) };
}

/**
 * Builds the upstream workflow and the IAM statements its role needs. Pure: no resources are
 * created; Inputs in refs end up in Parameters (resolve with `renderDefinition`) and statements.
 */
export function upstreamWorkflow(refs: UpstreamWorkflowRefs): {
  definition: StateMachineDefinition;
  statements: IamStatement[];
} {
  validateRefs(refs);
  const built = workflow({
    comment: `Upstream batch of pipeline ${refs.pipeline}: CDA → lake → Snowflake per table, then ${UPSTREAM_BATCH_SUCCEEDED}.`,
    timeoutSeconds: refs.timeoutSeconds,
    ...composeFragments(fragmentsOf(context(refs))),
  });
  assertGraph(built.definition, 'upstreamWorkflow');
  return built;
}

/** State names, for tests and the twin. */
export const UPSTREAM_STATES = S;
