/**
 * The control table's keys (docs/control-table.md): every pk, sk and GSI key the workflows, the
 * handlers, the dbt app's lease renewal and `etl-ops` read or write, built here and nowhere else.
 *
 * The builders take plain strings, so an ASL `States.Format` template is the same call with `{}`
 * for the part only known at run time: `batchSk('{}', 'DOWNSTREAM')` is `BATCH#{}#DOWNSTREAM`.
 */
import { PIPELINE_NAME_BODY } from './pipeline-name';

/** Key attribute names of the table. */
export const TABLE_KEY = { hashKey: 'pk', rangeKey: 'sk' } as const;

/** The GSI listing a pipeline's batch records by side and status (docs/control-table.md). */
export const STATUS_INDEX = { name: 'byPipelineStatus', hashKey: 'gsi1pk', rangeKey: 'gsi1sk' } as const;

/** Audit-record TTL attribute (epoch seconds). */
export const TTL_ATTRIBUTE = 'expiresAt';

/** Which workflow a batch record, lock or status belongs to. */
export type Side = 'UPSTREAM' | 'DOWNSTREAM';

/** Status values each side writes on its batch record (and into `gsi1pk`). */
export const RECORD_STATUSES = {
  UPSTREAM: ['RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED'],
  DOWNSTREAM: ['CLAIMED', 'RUNNING', 'SUCCEEDED', 'FAILED'],
} as const satisfies Record<Side, readonly string[]>;

/** A key as the document client takes it. */
export interface ItemKey {
  readonly pk: string;
  readonly sk: string;
}

/** The failover fence: one item naming the active region and an epoch (docs/fence-and-locks.md). */
export const FENCE_KEY = { pk: 'FENCE', sk: 'ACTIVE' } as const satisfies ItemKey;

/** A key in DynamoDB's AttributeValue form, as the low-level client and ASL SDK tasks take it. */
export function attributeKey<K extends ItemKey>(key: K): { pk: { S: K['pk'] }; sk: { S: K['sk'] } } {
  return { pk: { S: key.pk }, sk: { S: key.sk } };
}

/** FENCE_KEY in AttributeValue form. */
export const FENCE_ATTRIBUTE_KEY = /* @__PURE__ */ attributeKey(FENCE_KEY);

/** The partition of one pipeline: its batch records, locks and watermarks. */
export const PIPELINE_PK_PREFIX = 'PIPELINE#';
export const pipelinePk = (pipeline: string): string => `${PIPELINE_PK_PREFIX}${pipeline}`;
/** A pipeline partition key, e.g. for validating a lease the dbt app is asked to renew. */
export const PIPELINE_PK_PATTERN = /* @__PURE__ */ new RegExp(`^${pipelinePk(PIPELINE_NAME_BODY)}$`);

/** Every sort key of a batch's items starts with this (the begins_with of "all items of a batch"). */
export const BATCH_SK_PREFIX = 'BATCH#';
export const batchSkPrefix = (batchId: string): string => `${BATCH_SK_PREFIX}${batchId}#`;

/** The batch record of one side: `BATCH#<id>#UPSTREAM` / `BATCH#<id>#DOWNSTREAM`. */
export const batchSk = (batchId: string, side: Side): string => `${batchSkPrefix(batchId)}${side}`;
/** One table load of an upstream batch. */
export const tableSk = (batchId: string, table: string): string => `${batchSkPrefix(batchId)}TABLE#${table}`;
/** The watchdog's marker that it started a lost trigger's downstream run. */
export const recoveredSk = (batchId: string): string => `${batchSkPrefix(batchId)}RECOVERED`;
/** Audit of a downstream delivery a passive region skipped. */
export const downstreamSkipSk = (batchId: string, region: string): string =>
  `${batchSkPrefix(batchId)}SKIP#${region}`;
/** Audit of an upstream run a passive region skipped. */
export const upstreamSkipSk = (batchId: string, region: string): string =>
  `${batchSk(batchId, 'UPSTREAM')}#SKIP#${region}`;

/** The pipeline lock of one side. */
export const lockSk = <S extends Side>(side: S): `LOCK#${S}` => `LOCK#${side}`;

/** The newest batch built downstream (the out-of-order guard and the poller's lower bound). */
export const DOWNSTREAM_WATERMARK_SK = 'WATERMARK#DOWNSTREAM';
/** The newest CDA timestamp folder loaded for a table. */
export const tableWatermarkSk = (table: string): string => `WATERMARK#TABLE#${table}`;

/** The watchdog's once-per-batch alert markers (docs/watchdog.md). */
export const lateMarkerSk = (batchId: string): string => `ALERT#LATE#${batchId}`;
export const overrunMarkerSk = (batchId: string, attempt: number): string =>
  `ALERT#OVERRUN#${batchId}#${attempt}`;
export const unrecoverableMarkerSk = (batchId: string): string => `ALERT#UNRECOVERABLE#${batchId}`;

/** The GSI partition of one pipeline, side and status: `PIPELINE#<p>#<side>#<status>`. */
export const statusGsiPk = (pipeline: string, side: Side, status: string): string =>
  `${pipelinePk(pipeline)}#${side}#${status}`;
/** The prefix of every status partition of one side of a pipeline. */
export const statusGsiPkPrefix = (pipeline: string, side: Side): string => `${pipelinePk(pipeline)}#${side}#`;
