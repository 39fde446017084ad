import * as z from '../../contracts/zod-mini';
import { formatBatchId } from '../../contracts/batch-id';
import {
  BATCH_SK_PREFIX,
  batchSk,
  type ItemKey,
  lateMarkerSk,
  overrunMarkerSk,
  pipelinePk,
  recoveredSk,
  statusGsiPk,
  statusGsiPkPrefix,
  unrecoverableMarkerSk,
} from '../../contracts/control-table';
import { lastFireTime, parseSchedule } from '../../contracts/cron';
import {
  EVENT_SCHEMA_VERSION,
  pipelineNameSchema,
  upstreamBatchSucceededEventSchema,
  UPSTREAM_BATCH_SUCCEEDED,
  type UpstreamBatchSucceededEvent,
} from '../../contracts/events';
import { formatIssues } from './validate';
import type { Alert } from './alert-publisher';

/**
 * The lateness watchdog's pure part (docs/watchdog.md): from the control records the handler
 * read, decide what to do. No I/O and no clock: `now` is a parameter.
 *
 * Three findings, each acted on at most once per batch (markers in the control table):
 * - LATE: the pipeline's last expected tick (due at least `graceMinutes` ago) has no upstream
 *   record at all, and the pipeline has an earlier batch (it had a cadence to keep) → alert,
 *   marker `ALERT#LATE#<batchId>`.
 * - LOST TRIGGER: an upstream batch SUCCEEDED at least `lostTriggerMinutes` ago, is newer than
 *   the downstream watermark, and has no downstream record → start the downstream workflow
 *   (name = batch id, input = the rebuilt UpstreamBatchSucceeded event), marker
 *   `BATCH#<batchId>#RECOVERED`. If the record cannot be turned into a valid event → alert,
 *   marker `ALERT#UNRECOVERABLE#<batchId>`.
 * - OVERRUN: a downstream record CLAIMED/RUNNING for at least `maxDownstreamMinutes` → alert,
 *   marker `ALERT#OVERRUN#<batchId>#<attempt>` (a rerun is a new attempt and may alert again).
 */

export const MARKER_TTL_DAYS = 35;

const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/;

/** One entry of PIPELINES_JSON. */
export const pipelineWatchSchema = z.strictObject({
  name: pipelineNameSchema,
  expression: z.string({ error: 'must be a string' }).check(
    z.superRefine((value, ctx) => {
      try {
        parseSchedule(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }),
  ),
  timezone: z._default(z.string({ error: 'must be a string' }), 'UTC').check(
    z.refine(
      (zone) => {
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: zone });
          return true;
        } catch {
          return false;
        }
      },
      { error: 'is not an IANA time zone name' },
    ),
  ),
  graceMinutes: z.number({ error: 'must be a number' }).check(z.int(), z.gte(0), z.lte(10_080)),
  downstreamArn: z
    .string({ error: 'must be a string' })
    .check(z.regex(STATE_MACHINE_ARN, { error: 'is not a state machine ARN' })),
  /** rate() only: a known fire time or the schedule's StartDate (rate ticks are anchored there). */
  anchor: z.optional(z.iso.datetime({ offset: true, error: 'must be an ISO-8601 timestamp' })),
});

export const pipelinesSchema = z.array(pipelineWatchSchema, { error: 'must be a JSON array' }).check(
  z.minLength(1, { error: 'must list at least one pipeline' }),
  z.superRefine((list, ctx) => {
    const seen = new Set<string>();
    for (const [i, p] of list.entries()) {
      if (seen.has(p.name))
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${p.name}" is listed twice` });
      seen.add(p.name);
    }
  }),
);

export type PipelineWatch = z.output<typeof pipelineWatchSchema>;

/** Parses PIPELINES_JSON text; throws an Error listing every problem. */
export function parsePipelines(json: string): PipelineWatch[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new Error(`PIPELINES_JSON is not JSON: ${(error as Error).message}`);
  }
  const result = pipelinesSchema.safeParse(raw);
  if (!result.success) throw new Error(`PIPELINES_JSON is invalid: ${formatIssues(result.error.issues)}`);
  return result.data;
}

export interface WatchSettings {
  lostTriggerMinutes: number;
  maxDownstreamMinutes: number;
  /** `source` of rebuilt events (the platform's EventBridge source). */
  eventSource: string;
  /** Lost triggers are looked for among batches scheduled within this many hours. */
  lookbackHours: number;
}

export interface Expectation {
  pipeline: PipelineWatch;
  /** Batch id of the newest tick due by `now - graceMinutes`; undefined when it cannot be known. */
  expectedBatchId?: string;
  expectedScheduledTime?: string;
  /** Why there is no expected batch (rate() without anchor, or no fire time found). */
  unknownReason?: string;
  /**
   * Lost-trigger candidates are upstream SUCCEEDED batches with an id greater than this
   * (`lostTriggerLowerBound`: the downstream watermark or the lookback, whichever is newer).
   * The handler sets it after reading the watermark; undefined means no lower bound.
   */
  lostTriggerAfter?: string;
}

/** The newest tick that should have started by now (grace included). */
export function expectationFor(pipeline: PipelineWatch, now: Date): Expectation {
  const schedule = parseSchedule(pipeline.expression);
  if (schedule.kind === 'rate' && !pipeline.anchor) {
    return {
      pipeline,
      unknownReason: 'rate() schedule without "anchor": its ticks depend on when the schedule was created',
    };
  }
  const dueBy = new Date(now.getTime() - pipeline.graceMinutes * 60_000);
  const tick = lastFireTime(
    schedule,
    pipeline.timezone,
    dueBy,
    pipeline.anchor ? { anchor: new Date(pipeline.anchor) } : {},
  );
  if (!tick) return { pipeline, unknownReason: 'the schedule has not fired in the search window' };
  return {
    pipeline,
    expectedBatchId: formatBatchId(pipeline.name, tick),
    expectedScheduledTime: tick.toISOString(),
  };
}

/** Lower bound (exclusive) for lost-trigger candidates: the newer of the watermark and the lookback. */
export function lostTriggerLowerBound(
  pipeline: string,
  watermarkBatchId: string | undefined,
  now: Date,
  settings: WatchSettings,
): string {
  const lookback = formatBatchId(pipeline, new Date(now.getTime() - settings.lookbackHours * 3_600_000));
  return watermarkBatchId && watermarkBatchId > lookback ? watermarkBatchId : lookback;
}

/** A control-table item as the document client returns it. */
export interface ControlItem {
  pk: string;
  sk: string;
  [attribute: string]: unknown;
}

export type { ItemKey };

export type WatchdogAction =
  | {
      kind: 'ALERT_LATE';
      pipeline: string;
      batchId: string;
      scheduledTime: string;
      graceMinutes: number;
      marker: ItemKey;
    }
  | {
      kind: 'START_DOWNSTREAM';
      pipeline: string;
      batchId: string;
      stateMachineArn: string;
      input: UpstreamBatchSucceededEvent;
      marker: ItemKey;
    }
  | { kind: 'ALERT_UNRECOVERABLE'; pipeline: string; batchId: string; problem: string; marker: ItemKey }
  | {
      kind: 'ALERT_OVERRUN';
      pipeline: string;
      batchId: string;
      status: string;
      attempt: number;
      startedAt: string;
      runningMinutes: number;
      marker: ItemKey;
    };

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const minutesSince = (iso: string, now: Date): number => (now.getTime() - Date.parse(iso)) / 60_000;

class ItemIndex {
  private readonly items = new Map<string, ControlItem>();
  constructor(records: readonly ControlItem[]) {
    for (const r of records) this.items.set(`${r.pk}\u0000${r.sk}`, r);
  }
  get(pk: string, sk: string): ControlItem | undefined {
    return this.items.get(`${pk}\u0000${sk}`);
  }
  has(pk: string, sk: string): boolean {
    return this.items.has(`${pk}\u0000${sk}`);
  }
  all(): ControlItem[] {
    return [...this.items.values()];
  }
  /** Whether the pipeline has any batch record older than `batchId` (it ran before that tick). */
  hasEarlierBatch(pk: string, batchId: string): boolean {
    return this.all().some(
      (r) =>
        r.pk === pk &&
        r.sk.startsWith(BATCH_SK_PREFIX) &&
        r.sk.slice(BATCH_SK_PREFIX.length).split('#')[0] < batchId,
    );
  }
}

function upstreamSucceededCandidates(
  index: ItemIndex,
  e: Expectation,
  now: Date,
  settings: WatchSettings,
): ControlItem[] {
  const gsi = statusGsiPk(e.pipeline.name, 'UPSTREAM', 'SUCCEEDED');
  return index
    .all()
    .filter((r) => r.gsi1pk === gsi && r.status === 'SUCCEEDED' && typeof r.gsi1sk === 'string')
    .filter((r) => e.lostTriggerAfter === undefined || (r.gsi1sk as string) > e.lostTriggerAfter)
    .filter((r) => {
      const completed = str(r.completedAt);
      // No completedAt: cannot age it; the event could not be rebuilt either → treated as aged.
      return (
        completed === undefined ||
        Number.isNaN(Date.parse(completed)) ||
        minutesSince(completed, now) >= settings.lostTriggerMinutes
      );
    });
}

function overrunCandidates(
  index: ItemIndex,
  e: Expectation,
  now: Date,
  settings: WatchSettings,
): ControlItem[] {
  const prefix = statusGsiPkPrefix(e.pipeline.name, 'DOWNSTREAM');
  return index.all().filter((r) => {
    if (typeof r.gsi1pk !== 'string' || !r.gsi1pk.startsWith(prefix)) return false;
    if (r.status !== 'RUNNING' && r.status !== 'CLAIMED') return false;
    const started = str(r.startedAt);
    return started !== undefined && minutesSince(started, now) >= settings.maxDownstreamMinutes;
  });
}

const attemptOf = (r: ControlItem): number =>
  typeof r.attempt === 'number' && Number.isInteger(r.attempt) ? r.attempt : 1;

/**
 * Keys the handler must read after its queries, before calling findLateness: for each aged
 * upstream SUCCEEDED candidate its downstream record and recovery marker (or unrecoverable
 * marker), and for each overrunning downstream record its alert marker.
 */
export function followUpKeys(
  records: readonly ControlItem[],
  expectations: readonly Expectation[],
  now: Date,
  settings: WatchSettings,
): ItemKey[] {
  const index = new ItemIndex(records);
  const keys: ItemKey[] = [];
  for (const e of expectations) {
    const pk = pipelinePk(e.pipeline.name);
    for (const r of upstreamSucceededCandidates(index, e, now, settings)) {
      const id = r.gsi1sk as string;
      keys.push(
        { pk, sk: batchSk(id, 'DOWNSTREAM') },
        { pk, sk: recoveredSk(id) },
        { pk, sk: unrecoverableMarkerSk(id) },
      );
    }
    for (const r of overrunCandidates(index, e, now, settings)) {
      keys.push({ pk, sk: overrunMarkerSk(r.gsi1sk as string, attemptOf(r)) });
    }
  }
  return keys;
}

/**
 * Rebuilds the UpstreamBatchSucceeded event from an upstream record, as the schedule-poll trigger
 * (state-machines/poller.ts) does. `tables` is read in both stored forms: the JSON string the
 * upstream workflow's MarkBatchSucceeded writes, and a list of {name, rows, lakePath} maps.
 * Returns the validated event, or a problem description.
 */
export function rebuildEvent(
  record: ControlItem,
  pipeline: string,
  eventSource: string,
): { event: UpstreamBatchSucceededEvent } | { problem: string } {
  const batchId = str(record.gsi1sk) ?? str(record.batchId) ?? '';
  let tables: unknown = record.tables;
  if (typeof tables === 'string') {
    try {
      tables = JSON.parse(tables);
    } catch {
      return { problem: 'the upstream record\'s "tables" is not valid JSON' };
    }
  }
  const candidate = {
    version: '0',
    id: `watchdog-${batchId}`,
    'detail-type': UPSTREAM_BATCH_SUCCEEDED,
    source: eventSource,
    ...(str(record.completedAt) ? { time: record.completedAt } : {}),
    ...(str(record.region) ? { region: record.region } : {}),
    resources: [],
    detail: {
      schemaVersion: EVENT_SCHEMA_VERSION,
      pipeline,
      batchId,
      region: record.region,
      tables,
      startedAt: record.startedAt,
      completedAt: record.completedAt,
      upstreamExecutionArn: record.executionArn,
    },
  };
  const parsed = upstreamBatchSucceededEventSchema.safeParse(candidate);
  if (!parsed.success)
    return {
      problem: `the upstream record cannot be turned into a valid event: ${formatIssues(parsed.error.issues)}`,
    };
  return { event: parsed.data };
}

/**
 * Decides the actions. `records` must hold everything the handler read: for each expectation
 * with an expected batch, that batch's upstream record and late marker if they exist; the
 * upstream SUCCEEDED and downstream CLAIMED/RUNNING records from the index; and every item
 * `followUpKeys` named that exists. An absent item is taken as "does not exist".
 */
export function findLateness(
  records: readonly ControlItem[],
  expectations: readonly Expectation[],
  now: Date,
  settings: WatchSettings,
): WatchdogAction[] {
  const index = new ItemIndex(records);
  const actions: WatchdogAction[] = [];
  for (const e of expectations) {
    const pipeline = e.pipeline.name;
    const pk = pipelinePk(pipeline);

    if (e.expectedBatchId && e.expectedScheduledTime) {
      const id = e.expectedBatchId;
      // A pipeline with no earlier batch has no cadence to miss yet (a new pipeline, a fresh deployment).
      if (
        !index.has(pk, batchSk(id, 'UPSTREAM')) &&
        !index.has(pk, lateMarkerSk(id)) &&
        index.hasEarlierBatch(pk, id)
      ) {
        actions.push({
          kind: 'ALERT_LATE',
          pipeline,
          batchId: id,
          scheduledTime: e.expectedScheduledTime,
          graceMinutes: e.pipeline.graceMinutes,
          marker: { pk, sk: lateMarkerSk(id) },
        });
      }
    }

    const candidates = upstreamSucceededCandidates(index, e, now, settings).sort((a, b) =>
      String(a.gsi1sk).localeCompare(String(b.gsi1sk)),
    );
    for (const r of candidates) {
      const id = r.gsi1sk as string;
      if (index.has(pk, batchSk(id, 'DOWNSTREAM')) || index.has(pk, recoveredSk(id))) continue;
      const rebuilt = rebuildEvent(r, pipeline, settings.eventSource);
      if ('event' in rebuilt) {
        actions.push({
          kind: 'START_DOWNSTREAM',
          pipeline,
          batchId: id,
          stateMachineArn: e.pipeline.downstreamArn,
          input: rebuilt.event,
          marker: { pk, sk: recoveredSk(id) },
        });
      } else if (!index.has(pk, unrecoverableMarkerSk(id))) {
        actions.push({
          kind: 'ALERT_UNRECOVERABLE',
          pipeline,
          batchId: id,
          problem: rebuilt.problem,
          marker: { pk, sk: unrecoverableMarkerSk(id) },
        });
      }
    }

    for (const r of overrunCandidates(index, e, now, settings)) {
      const id = r.gsi1sk as string;
      const attempt = attemptOf(r);
      if (index.has(pk, overrunMarkerSk(id, attempt))) continue;
      actions.push({
        kind: 'ALERT_OVERRUN',
        pipeline,
        batchId: id,
        status: String(r.status),
        attempt,
        startedAt: String(r.startedAt),
        runningMinutes: Math.floor(minutesSince(String(r.startedAt), now)),
        marker: { pk, sk: overrunMarkerSk(id, attempt) },
      });
    }
  }
  return actions;
}

/**
 * What is wrong with the fence item, or undefined when it names a region and an epoch >= 1. A
 * missing or malformed fence makes every claim end FenceMissing in both regions: the watchdog
 * reports it (every tick, until it is fixed) and starts nothing, rather than "recovering" batches
 * into failures.
 */
export function fenceProblem(fence: ControlItem | undefined): string | undefined {
  if (!fence) return 'there is no FENCE/ACTIVE item';
  if (typeof fence.activeRegion !== 'string' || fence.activeRegion === '')
    return 'FENCE/ACTIVE has no activeRegion';
  const epoch = fence.epoch;
  if (typeof epoch !== 'number' || !Number.isInteger(epoch) || epoch < 1)
    return `FENCE/ACTIVE has epoch ${JSON.stringify(epoch)}, not an integer >= 1`;
  return undefined;
}

/** `2026-11-27T09:00:00.000Z` → `20261127T090000Z`, the batch-id form of a time. */
const compactTime = (at: Date): string => at.toISOString().replace(/[-:]|\.\d{3}/g, '');

/**
 * The alert for an invalid fence (the table and region name where to look). It has no marker and
 * is repeated every tick until the fence is fixed, so its key is the tick: a retried tick does not
 * publish it twice.
 */
export function fenceAlert(
  problem: string,
  tableName: string,
  region: string | undefined,
  tick: Date,
): Alert {
  return {
    key: `fence-${compactTime(tick)}`,
    subject: '[etl-watchdog] fence missing or invalid: no batch can be claimed',
    message:
      `The control table ${tableName} (read in ${region ?? 'this region'}): ${problem}. Every downstream claim ends FenceMissing and every upstream run is refused ` +
      'until the fence names the active region. Fix: run `pulumi up` on the active stack (its fence writer re-asserts the fence), or `etl-ops failover` (docs/runbooks/failover.md).',
  };
}

/**
 * The key of an action's alert: what its marker records (kind, batch, attempt), so a publish
 * repeated for the same marker is the same alert (handlers/lib/sfn-alert-publisher.ts).
 */
export function alertKey(action: WatchdogAction): string {
  switch (action.kind) {
    case 'ALERT_LATE':
      return `late-${action.batchId}`;
    case 'START_DOWNSTREAM':
      return `recovered-${action.batchId}`;
    case 'ALERT_UNRECOVERABLE':
      return `unrecoverable-${action.batchId}`;
    case 'ALERT_OVERRUN':
      return `overrun-${action.batchId}-a${action.attempt}`;
  }
}

/** The alert for an action (subject ≤ 100 characters, as SNS requires), keyed by `alertKey`. */
export function alertFor(action: WatchdogAction, maxDownstreamMinutes: number): Alert {
  return { ...alertText(action, maxDownstreamMinutes), key: alertKey(action) };
}

function alertText(
  action: WatchdogAction,
  maxDownstreamMinutes: number,
): { subject: string; message: string } {
  const clip = (s: string) => (s.length > 100 ? `${s.slice(0, 97)}...` : s);
  switch (action.kind) {
    case 'ALERT_LATE':
      return {
        subject: clip(`[etl-watchdog] ${action.pipeline}: upstream batch overdue`),
        message: `Pipeline ${action.pipeline}: the tick scheduled at ${action.scheduledTime} (batch ${action.batchId}) has no upstream record ${action.graceMinutes} minutes after it was due. Check the pipeline's schedule (state, DLQ) and the upstream workflow's executions.`,
      };
    case 'START_DOWNSTREAM':
      return {
        subject: clip(`[etl-watchdog] ${action.pipeline}: lost trigger recovered`),
        message: `Pipeline ${action.pipeline}: upstream batch ${action.batchId} succeeded at ${action.input.detail.completedAt} but the downstream never claimed it. The watchdog started the downstream workflow (execution name ${action.batchId}). Investigate why the trigger was lost.`,
      };
    case 'ALERT_UNRECOVERABLE':
      return {
        subject: clip(`[etl-watchdog] ${action.pipeline}: lost trigger, cannot restart`),
        message: `Pipeline ${action.pipeline}: upstream batch ${action.batchId} succeeded but the downstream never claimed it, and the watchdog cannot rebuild its event: ${action.problem}. Start the downstream by hand (etl-ops).`,
      };
    case 'ALERT_OVERRUN':
      return {
        subject: clip(`[etl-watchdog] ${action.pipeline}: downstream running too long`),
        message: `Pipeline ${action.pipeline}: downstream run of batch ${action.batchId} (attempt ${action.attempt}) is ${action.status} since ${action.startedAt}, ${action.runningMinutes} minutes (max ${maxDownstreamMinutes}). Check its execution and dbt run.`,
      };
  }
}
