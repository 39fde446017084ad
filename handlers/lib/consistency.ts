import { batchSk, DOWNSTREAM_WATERMARK_SK, tableSk } from '../../contracts/control-table';
import { PLATFORM_METRIC_NAMESPACE, TRIGGER_LAG_METRIC } from '../../contracts/metrics';

/**
 * The pure rules behind check-consistency: is the upstream batch complete and new enough for the
 * downstream dbt build? No I/O here; the handler feeds it control-table items.
 */

/** A control-table item as the document client returns it (only the fields the rules read). */
export interface ControlRecord {
  pk: string;
  sk: string;
  batchId?: string;
  table?: string;
  status?: string;
  rows?: unknown;
  [key: string]: unknown;
}

export interface ConsistencyOptions {
  /**
   * An operator-requested rebuild of the batch the watermark already names. Never lets an older
   * batch through: rebuilding an older batch would roll the semantic layer back.
   */
  rerun?: boolean;
}

/**
 * SUCCESS: build it. NOT_YET_REPLICATED: only absent or unfinished upstream records (replication lag,
 * or the upstream still writing): the workflow waits with a bounded backoff and asks again. FAILED:
 * at least one record says the batch cannot be built (a FAILED/SKIPPED load, bad rows, out of order).
 */
export type ConsistencyStatus = 'SUCCESS' | 'NOT_YET_REPLICATED' | 'FAILED';

export interface ConsistencyResult {
  consistencyStatus: ConsistencyStatus;
  reasons: string[];
}

/** Statuses of a record that is still on its way to SUCCEEDED (the upstream is writing it). */
const UNFINISHED = new Set(['RUNNING', 'STARTED', 'CLAIMED']);

/**
 * Absent or unfinished (RUNNING) records are NOT_YET_REPLICATED, unless another reason is final.
 * All must hold:
 * 1. the upstream batch record exists and is SUCCEEDED;
 * 2. every expected table has a SUCCEEDED load record whose `rows` is a whole number >= 0;
 * 3. the batch is newer (lexically greater id) than the WATERMARK#DOWNSTREAM batch. The watermark
 *    advances only when a downstream build SUCCEEDS, so a rerun of a FAILED batch is still newer
 *    and passes. Equal means the batch was already built: it fails unless `rerun` is set. Older
 *    always fails (out of order).
 *
 * `records` may hold any items of the pipeline's partition; items of other batches are ignored.
 */
export function evaluateConsistency(
  records: readonly ControlRecord[],
  expectedTables: readonly string[],
  batchId: string,
  options: ConsistencyOptions = {},
): ConsistencyResult {
  const reasons: string[] = [];
  // Reasons that only say "not here yet" (absent or unfinished); any other reason is final.
  const pending: string[] = [];
  const bySk = new Map(records.map((r) => [r.sk, r]));

  const upstream = bySk.get(batchSk(batchId, 'UPSTREAM'));
  if (!upstream) {
    pending.push(`upstream batch record ${batchSk(batchId, 'UPSTREAM')} is missing`);
  } else if (upstream.status !== 'SUCCEEDED') {
    (UNFINISHED.has(String(upstream.status)) ? pending : reasons).push(
      `upstream batch ${batchId} is ${upstream.status ?? 'without status'}, not SUCCEEDED`,
    );
  }

  if (expectedTables.length === 0) reasons.push('no expected tables were given');
  for (const table of new Set(expectedTables)) {
    const load = bySk.get(tableSk(batchId, table));
    if (!load) {
      pending.push(`table ${table}: no load record for batch ${batchId}`);
      continue;
    }
    if (load.status !== 'SUCCEEDED') {
      (UNFINISHED.has(String(load.status)) ? pending : reasons).push(
        `table ${table}: load is ${load.status ?? 'without status'}, not SUCCEEDED`,
      );
      continue;
    }
    if (typeof load.rows !== 'number' || !Number.isInteger(load.rows) || load.rows < 0) {
      reasons.push(`table ${table}: rows is ${JSON.stringify(load.rows)}, not a whole number >= 0`);
    }
  }

  const watermark = bySk.get(DOWNSTREAM_WATERMARK_SK)?.batchId;
  if (typeof watermark === 'string' && watermark !== '') {
    if (batchId < watermark) {
      reasons.push(`out of order: batch ${batchId} is older than the last built batch ${watermark}`);
    } else if (batchId === watermark && !options.rerun) {
      reasons.push(
        `batch ${batchId} was already built downstream (watermark); pass rerun: true to rebuild it`,
      );
    }
  }

  if (reasons.length > 0) return { consistencyStatus: 'FAILED', reasons: [...pending, ...reasons] };
  return { consistencyStatus: pending.length === 0 ? 'SUCCESS' : 'NOT_YET_REPLICATED', reasons: pending };
}

/**
 * The upstream→downstream lag as a CloudWatch embedded-metric-format record: the time from the
 * upstream batch's completion to this first consistency check of its downstream run. Undefined
 * when the upstream has no completion time (nothing to measure).
 */
export function triggerLagMetric(
  records: readonly ControlRecord[],
  pipeline: string,
  batchId: string,
  now: Date,
): Record<string, unknown> | undefined {
  const upstream = records.find((r) => r.sk === batchSk(batchId, 'UPSTREAM'));
  const completedAt = typeof upstream?.completedAt === 'string' ? Date.parse(upstream.completedAt) : NaN;
  if (Number.isNaN(completedAt)) return undefined;
  return {
    _aws: {
      Timestamp: now.getTime(),
      CloudWatchMetrics: [
        {
          Namespace: PLATFORM_METRIC_NAMESPACE,
          Dimensions: [[TRIGGER_LAG_METRIC.dimension]],
          Metrics: [{ Name: TRIGGER_LAG_METRIC.name, Unit: TRIGGER_LAG_METRIC.unit }],
        },
      ],
    },
    [TRIGGER_LAG_METRIC.dimension]: pipeline,
    [TRIGGER_LAG_METRIC.name]: Math.max(0, Math.round((now.getTime() - completedAt) / 1000)),
  };
}
