import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  BATCH_SK_PREFIX,
  batchSk,
  DOWNSTREAM_WATERMARK_SK,
  FENCE_KEY,
  lateMarkerSk,
  pipelinePk,
  STATUS_INDEX,
  statusGsiPk,
} from '../contracts/control-table';
import type { AlertPublisher } from './lib/alert-publisher';
import { createStepFunctionsPublisher } from './lib/sfn-alert-publisher';
import { MissingConfiguration } from '../contracts/errors';
import { HANDLER_ENV, type HandlerEnvName } from '../contracts/env';
import { readEnv, requireEnv } from './lib/env';
import { logger, withContext, type LambdaContext } from './lib/logger';
import {
  alertFor,
  expectationFor,
  fenceAlert,
  fenceProblem,
  findLateness,
  followUpKeys,
  lostTriggerLowerBound,
  MARKER_TTL_DAYS,
  parsePipelines,
  type ControlItem,
  type Expectation,
  type ItemKey,
  type PipelineWatch,
  type WatchdogAction,
  type WatchSettings,
} from './lib/watchdog';

/**
 * The lateness watchdog (docs/watchdog.md). An EventBridge Scheduler rate schedule invokes it
 * every few minutes, ENABLED in the active region only; the input is ignored.
 *
 * Env    CONTROL_TABLE_NAME, PIPELINES_JSON ([{name, expression, timezone?, graceMinutes,
 *        downstreamArn, anchor?}]), LOST_TRIGGER_MINUTES, MAX_DOWNSTREAM_MINUTES,
 *        ALERTS_STATE_MACHINE_ARN, EVENT_SOURCE; optional LOOKBACK_HOURS (default 48);
 *        AWS_REGION (set by Lambda) for the fence check.
 * Output a WatchdogSummary. Throws after acting on everything else if any action failed, so the
 *        function's Errors metric shows it; every action is idempotent, so Lambda's async retry
 *        and the next tick simply try again.
 *
 * Reads per tick, P pipelines, nothing to do: 1 BatchGetItem (fence, and per pipeline the
 * watermark, the expected batch's upstream record and late marker) + 3 Queries per pipeline on
 * the GSI (upstream SUCCEEDED newer than the watermark, downstream CLAIMED, downstream RUNNING).
 * A second BatchGetItem runs only when there are aged candidates. No writes.
 */

const DEFAULT_LOOKBACK_HOURS = 48;

type DocLike = Pick<DynamoDBDocumentClient, 'send'>;

/** The subset of SFNClient used; tests inject a stub. */
export interface SfnLike {
  send(command: StartExecutionCommand): Promise<{ executionArn?: string; startDate?: Date }>;
}

let documentClient: DocLike = DynamoDBDocumentClient.from(new DynamoDBClient({}), {
  marshallOptions: { removeUndefinedValues: true },
});
let sfn: SfnLike = new SFNClient({});
let publisher: AlertPublisher | undefined;

/** Replaces the module-level DynamoDB document client (tests, the local twin). */
export function setDocumentClient(client: DocLike): void {
  documentClient = client;
}
/** Replaces the module-level Step Functions client. Returns the previous one. */
export function setSfnClient(client: SfnLike): SfnLike {
  const previous = sfn;
  sfn = client;
  return previous;
}
/**
 * Replaces the alert publisher; `undefined` restores the default: StartExecution on the alert
 * workflow, through the module's Step Functions client (no SNS client in this bundle).
 */
export function setAlertPublisher(p: AlertPublisher | undefined): void {
  publisher = p;
}

function alertPublisher(): AlertPublisher {
  // Built per call from the current client, so setSfnClient also redirects the alerts.
  return publisher ?? createStepFunctionsPublisher(requireEnv(HANDLER_ENV.ALERTS_STATE_MACHINE_ARN), sfn);
}

function positiveIntEnv(name: HandlerEnvName): number {
  const raw = requireEnv(name);
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new MissingConfiguration(`Environment variable ${name}="${raw}" is not a positive integer`);
  }
  return value;
}

function optionalPositiveIntEnv(name: HandlerEnvName, fallback: number): number {
  const raw = readEnv(name);
  return raw === undefined || raw.trim() === '' ? fallback : positiveIntEnv(name);
}

export interface WatchdogSummary {
  outcome: 'CHECKED' | 'SKIPPED_NOT_ACTIVE' | 'FENCE_INVALID';
  now: string;
  pipelines: number;
  /** DynamoDB requests this tick (reads and writes). */
  dynamoRequests: number;
  actions: Array<{ kind: WatchdogAction['kind']; pipeline: string; batchId: string; result: string }>;
  /** Pipelines whose lateness could not be checked, with the reason. */
  unchecked: Array<{ pipeline: string; reason: string }>;
}

/** The watchdog's configuration, from its environment (names: contracts/env.ts). */
function readConfig(): { tableName: string; pipelines: PipelineWatch[]; settings: WatchSettings } {
  const tableName = requireEnv(HANDLER_ENV.CONTROL_TABLE_NAME);
  const pipelines = (() => {
    try {
      return parsePipelines(requireEnv(HANDLER_ENV.PIPELINES_JSON));
    } catch (error) {
      if (error instanceof MissingConfiguration) throw error;
      throw new MissingConfiguration((error as Error).message);
    }
  })();
  const settings: WatchSettings = {
    lostTriggerMinutes: positiveIntEnv(HANDLER_ENV.LOST_TRIGGER_MINUTES),
    maxDownstreamMinutes: positiveIntEnv(HANDLER_ENV.MAX_DOWNSTREAM_MINUTES),
    eventSource: requireEnv(HANDLER_ENV.EVENT_SOURCE),
    lookbackHours: optionalPositiveIntEnv(HANDLER_ENV.LOOKBACK_HOURS, DEFAULT_LOOKBACK_HOURS),
  };
  requireEnv(HANDLER_ENV.ALERTS_STATE_MACHINE_ARN); // fail fast on a deploy bug, even on a quiet tick
  return { tableName, pipelines, settings };
}

/** The control-table reads and writes of one tick, counting its DynamoDB requests. */
class TickTable {
  requests = 0;

  constructor(
    readonly tableName: string,
    private readonly now: Date,
  ) {}

  readonly send: DocLike['send'] = ((command: Parameters<DocLike['send']>[0]) => {
    this.requests++;
    return documentClient.send(command);
  }) as DocLike['send'];

  /** BatchGetItem in pages of 100, retrying unprocessed keys with a capped backoff. */
  async batchGet(keys: ItemKey[]): Promise<ControlItem[]> {
    const table = this.tableName;
    const unique = [...new Map(keys.map((k) => [`${k.pk}\u0000${k.sk}`, k])).values()];
    const out: ControlItem[] = [];
    for (let i = 0; i < unique.length; i += 100) {
      let pending: Record<string, unknown>[] | undefined = unique
        .slice(i, i + 100)
        .map((k) => ({ pk: k.pk, sk: k.sk }));
      for (let attempt = 0; pending && pending.length > 0; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
        if (attempt > 8)
          throw new Error(`BatchGetItem left ${pending.length} keys unprocessed after retries`);
        const res = await this.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: pending } } }));
        out.push(...((res.Responses?.[table] ?? []) as ControlItem[]));
        pending = res.UnprocessedKeys?.[table]?.Keys as Record<string, unknown>[] | undefined;
      }
    }
    return out;
  }

  /** Every item of one status partition of the GSI, with a batch id after `after` when given. */
  async queryStatus(gsi1pk: string, after?: string): Promise<ControlItem[]> {
    const items: ControlItem[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: STATUS_INDEX.name,
          KeyConditionExpression: after ? 'gsi1pk = :pk AND gsi1sk > :after' : 'gsi1pk = :pk',
          ExpressionAttributeValues: { ':pk': gsi1pk, ...(after ? { ':after': after } : {}) },
          ExclusiveStartKey: startKey,
        }),
      );
      items.push(...((page.Items ?? []) as ControlItem[]));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  /** The pipeline's oldest batch record (one item), or none. */
  async oldestBatchRecord(pipeline: string): Promise<ControlItem[]> {
    const page = await this.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :batch)',
        ExpressionAttributeValues: { ':pk': pipelinePk(pipeline), ':batch': BATCH_SK_PREFIX },
        Limit: 1,
      }),
    );
    return (page.Items ?? []) as ControlItem[];
  }

  /** Writes a marker unless it exists; false when it did (another tick acted already). */
  async putMarker(key: ItemKey, attributes: Record<string, unknown>): Promise<boolean> {
    const expiresAt = Math.floor(this.now.getTime() / 1000) + MARKER_TTL_DAYS * 86_400;
    try {
      await this.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...key, ...attributes, createdAt: this.now.toISOString(), expiresAt },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  async deleteMarker(key: ItemKey): Promise<void> {
    await this.send(new DeleteCommand({ TableName: this.tableName, Key: key }));
  }
}

/** The first BatchGetItem's keys: the fence, and per pipeline its watermark, expected batch and late marker. */
function firstKeys(expectations: readonly Expectation[]): ItemKey[] {
  const keys: ItemKey[] = [FENCE_KEY];
  for (const e of expectations) {
    const pk = pipelinePk(e.pipeline.name);
    keys.push({ pk, sk: DOWNSTREAM_WATERMARK_SK });
    if (e.expectedBatchId)
      keys.push(
        { pk, sk: batchSk(e.expectedBatchId, 'UPSTREAM') },
        { pk, sk: lateMarkerSk(e.expectedBatchId) },
      );
  }
  return keys;
}

/**
 * Why this tick must not check anything, or undefined: the fence is missing or invalid (alerted),
 * or it names another region (this one is passive).
 */
async function fenceStop(
  records: readonly ControlItem[],
  tableName: string,
  now: Date,
): Promise<'FENCE_INVALID' | 'SKIPPED_NOT_ACTIVE' | undefined> {
  const fence = records.find((r) => r.pk === FENCE_KEY.pk && r.sk === FENCE_KEY.sk);
  const region = process.env.AWS_REGION;
  const invalid = fenceProblem(fence);
  if (invalid) {
    logger.error('the fence is missing or invalid; nothing is checked or started', { problem: invalid });
    await alertPublisher().publish(fenceAlert(invalid, tableName, region, now));
    return 'FENCE_INVALID';
  }
  if (region && fence && typeof fence.activeRegion === 'string' && fence.activeRegion !== region) {
    logger.warn(
      'the fence names another region; this region is passive and its watchdog schedule should be DISABLED',
      { activeRegion: fence.activeRegion, region },
    );
    return 'SKIPPED_NOT_ACTIVE';
  }
  return undefined;
}

/**
 * Per pipeline, three GSI queries in parallel (upstream SUCCEEDED after the lower bound, downstream
 * CLAIMED and RUNNING); then, only for pipelines whose expected batch is missing, the oldest batch
 * record (a missing batch counts only if the pipeline ran before it).
 */
async function queryCandidates(
  table: TickTable,
  expectations: Expectation[],
  records: readonly ControlItem[],
  now: Date,
  settings: WatchSettings,
): Promise<ControlItem[]> {
  const queried = await Promise.all(
    expectations.map(async (e) => {
      const p = e.pipeline.name;
      const pk = pipelinePk(p);
      const watermark = records.find((r) => r.pk === pk && r.sk === DOWNSTREAM_WATERMARK_SK);
      const after = lostTriggerLowerBound(
        p,
        typeof watermark?.batchId === 'string' ? watermark.batchId : undefined,
        now,
        settings,
      );
      e.lostTriggerAfter = after;
      const [succeeded, claimed, running] = await Promise.all([
        table.queryStatus(statusGsiPk(p, 'UPSTREAM', 'SUCCEEDED'), after),
        table.queryStatus(statusGsiPk(p, 'DOWNSTREAM', 'CLAIMED')),
        table.queryStatus(statusGsiPk(p, 'DOWNSTREAM', 'RUNNING')),
      ]);
      return [...succeeded, ...claimed, ...running];
    }),
  );
  const found = [...records, ...queried.flat()];
  const missing = expectations.filter((e) => {
    const pk = pipelinePk(e.pipeline.name);
    const id = e.expectedBatchId;
    return (
      id && !found.some((r) => r.pk === pk && (r.sk === batchSk(id, 'UPSTREAM') || r.sk === lateMarkerSk(id)))
    );
  });
  const oldest = await Promise.all(missing.map((e) => table.oldestBatchRecord(e.pipeline.name)));
  return [...queried.flat(), ...oldest.flat()];
}

/** Starts a lost trigger's downstream run (idempotent: the execution name is the batch id). */
async function startDownstream(
  table: TickTable,
  action: Extract<WatchdogAction, { kind: 'START_DOWNSTREAM' }>,
  settings: WatchSettings,
): Promise<string> {
  let outcome: 'STARTED' | 'ALREADY_STARTED';
  let executionArn: string | undefined;
  try {
    const out = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: action.stateMachineArn,
        name: action.batchId,
        input: JSON.stringify(action.input),
      }),
    );
    outcome = 'STARTED';
    executionArn = out.executionArn;
  } catch (error) {
    if ((error as Error).name !== 'ExecutionAlreadyExists') throw error;
    outcome = 'ALREADY_STARTED';
  }
  const recorded = await table.putMarker(action.marker, {
    pipeline: action.pipeline,
    batchId: action.batchId,
    recoveredBy: 'watchdog',
    outcome,
    ...(executionArn ? { executionArn } : {}),
  });
  logger.warn('lost trigger: downstream started by the watchdog', {
    batchId: action.batchId,
    outcome,
    executionArn,
    recorded,
  });
  if (recorded) await alertPublisher().publish(alertFor(action, settings.maxDownstreamMinutes));
  return outcome;
}

/** Publishes an alert once per marker; un-claims the marker when publishing fails. */
async function alertOnce(table: TickTable, action: WatchdogAction, settings: WatchSettings): Promise<string> {
  const claimed = await table.putMarker(action.marker, {
    pipeline: action.pipeline,
    batchId: action.batchId,
    alert: action.kind,
  });
  if (!claimed) return 'ALREADY_ALERTED';
  try {
    await alertPublisher().publish(alertFor(action, settings.maxDownstreamMinutes));
  } catch (error) {
    // Un-claim so the next tick alerts again; the alert must not be lost.
    await table.deleteMarker(action.marker).catch(() => undefined);
    throw error;
  }
  logger.warn('alert published', { kind: action.kind, pipeline: action.pipeline, batchId: action.batchId });
  return 'ALERTED';
}

/** Runs one tick. `now` is injectable for tests; the handler passes the current time. */
export async function runWatchdog(now: Date): Promise<WatchdogSummary> {
  const { tableName, pipelines, settings } = readConfig();
  const table = new TickTable(tableName, now);

  // 1. Expected ticks (pure), then one BatchGetItem: fence, watermarks, expected batches, late markers.
  const expectations: Expectation[] = pipelines.map((p) => expectationFor(p, now));
  const records = await table.batchGet(firstKeys(expectations));
  const unchecked = expectations
    .filter((e) => e.unknownReason)
    .map((e) => ({ pipeline: e.pipeline.name, reason: e.unknownReason! }));
  for (const u of unchecked) logger.warn('lateness not checked for a pipeline', u);
  const summary = (outcome: WatchdogSummary['outcome'], actions: WatchdogSummary['actions']) => ({
    outcome,
    now: now.toISOString(),
    pipelines: pipelines.length,
    dynamoRequests: table.requests,
    actions,
    unchecked,
  });
  const stop = await fenceStop(records, tableName, now);
  if (stop) return summary(stop, []);

  // 2. The GSI queries, and 3. follow-up reads only for aged candidates (none on a quiet tick).
  records.push(...(await queryCandidates(table, expectations, records, now, settings)));
  const more = followUpKeys(records, expectations, now, settings);
  if (more.length > 0) records.push(...(await table.batchGet(more)));

  // 4. Decide (pure) and act.
  const results: WatchdogSummary['actions'] = [];
  const failures: string[] = [];
  for (const action of findLateness(records, expectations, now, settings)) {
    const base = { kind: action.kind, pipeline: action.pipeline, batchId: action.batchId };
    try {
      const result =
        action.kind === 'START_DOWNSTREAM'
          ? await startDownstream(table, action, settings)
          : await alertOnce(table, action, settings);
      results.push({ ...base, result });
    } catch (error) {
      logger.error('watchdog action failed', { ...base, error: error as Error });
      failures.push(
        `${action.kind} ${action.batchId}: ${(error as Error).name}: ${(error as Error).message}`,
      );
      results.push({ ...base, result: `FAILED: ${(error as Error).name}` });
    }
  }

  const done: WatchdogSummary = summary('CHECKED', results);
  if (failures.length > 0) {
    const error = new Error(`watchdog: ${failures.length} action(s) failed: ${failures.join('; ')}`);
    error.name = 'WatchdogActionFailed';
    throw Object.assign(error, { summary: done });
  }
  if (results.length > 0) logger.info('watchdog tick acted', { ...done });
  else logger.debug('watchdog tick: nothing to do', { dynamoRequests: done.dynamoRequests });
  return done;
}

/**
 * The tick's time is the Scheduler's `<aws.scheduler.scheduled-time>` when the schedule passes it
 * (it does: components/regional-platform.ts), so a delayed or retried invocation judges the moment
 * it was meant for; otherwise the wall clock.
 */
export function tickTime(event: unknown, wallClock: Date): Date {
  const scheduled = (event as { scheduledTime?: unknown } | null)?.scheduledTime;
  if (typeof scheduled === 'string') {
    const at = new Date(scheduled);
    if (!Number.isNaN(at.getTime())) return at;
  }
  return wallClock;
}

export const handler = async (event: unknown, context?: LambdaContext): Promise<WatchdogSummary> => {
  withContext(context);
  return runWatchdog(tickTime(event, new Date()));
};
