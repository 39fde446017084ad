/**
 * The malformed trigger events of the bad-input matrix (issue G): tests/bad-input-matrix.test.ts
 * feeds each to every entry point, and docs/bad-input.md lists them with their endings.
 */

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const SOURCE = 'com.insurer.etl-platform';
export const PIPELINE = 'policycenter';
export const TABLES = ['pc_policy', 'pc_claim'];
export const BATCH = 'policycenter-20261127T020000Z';

/** A well-formed `UpstreamBatchSucceeded` event as EventBridge delivers it; overrides make it bad. */
export function upstreamEvent(
  detail: Record<string, unknown> = {},
  envelope: Record<string, unknown> = {},
  batchId = BATCH,
): Record<string, any> {
  return {
    version: '0',
    id: `evt-${batchId}`,
    'detail-type': 'UpstreamBatchSucceeded',
    source: SOURCE,
    account: ACCOUNT,
    time: '2026-11-27T02:40:00Z',
    region: REGION,
    resources: [],
    detail: {
      schemaVersion: '1.0',
      pipeline: PIPELINE,
      batchId,
      region: REGION,
      tables: TABLES.map((name) => ({ name, rows: 10, lakePath: `s3://lake/raw/${name}/${batchId}/` })),
      startedAt: '2026-11-27T02:00:05Z',
      completedAt: '2026-11-27T02:39:00Z',
      upstreamExecutionArn: `arn:aws:states:${REGION}:${ACCOUNT}:execution:etl-platform-upstream:${batchId}`,
      ...detail,
    },
    ...envelope,
  };
}

export interface MalformedEvent {
  readonly kind: string;
  readonly input: () => unknown;
  /** The downstream workflow's Fail error (rule-direct, and every mode that starts it). */
  readonly workflow: string;
  /** What start-downstream (rule-lambda) throws. */
  readonly lambda: { readonly name: string; readonly message: RegExp };
  /**
   * Not refused by either entry point (see docs/bad-input.md): the workflow SUCCEEDS with one dbt
   * run and start-downstream STARTs the execution. `workflow`/`lambda` then name those endings.
   */
  readonly accepted?: true;
}

const withoutBatchId = (): Record<string, any> => {
  const e = upstreamEvent();
  delete e.detail.batchId;
  return e;
};
const withoutDetail = (): Record<string, any> => {
  const e = upstreamEvent();
  delete e.detail;
  return e;
};
/** ~330 KB of tables: over EventBridge's 256 KB entry limit, so in AWS it is never delivered at all. */
const hugeTables = () =>
  Array.from({ length: 3000 }, (_, i) => ({
    name: `pc_table_${i}`,
    rows: i,
    lakePath: `s3://lake/raw/pc_table_${i}/${BATCH}/padding-padding/`,
  }));

const invalid = (message: RegExp) => ({ name: 'InvalidInput', message });

export const MALFORMED_EVENTS: readonly MalformedEvent[] = [
  {
    kind: 'missing detail.batchId',
    input: withoutBatchId,
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/detail\.batchId/),
  },
  {
    kind: 'detail.batchId a number',
    input: () => upstreamEvent({ batchId: 20261127020000 }),
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/detail\.batchId/),
  },
  {
    kind: 'wrong schemaVersion ("2.0")',
    input: () => upstreamEvent({ schemaVersion: '2.0' }),
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/schemaVersion/),
  },
  {
    kind: 'unknown pipeline',
    input: () => upstreamEvent({ pipeline: 'gwpc', batchId: 'gwpc-20261127T020000Z' }),
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/not a configured pipeline/),
  },
  {
    kind: 'wrong detail-type',
    input: () => upstreamEvent({}, { 'detail-type': 'UpstreamBatchFailed' }),
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/detail-type/),
  },
  {
    kind: 'oversized detail (3,000 tables, ~330 KB) with a bad batchId',
    input: () => upstreamEvent({ tables: hugeTables(), batchId: 'policycenter-latest' }),
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/detail\.batchId/),
  },
  {
    kind: 'oversized detail (3,000 tables, ~330 KB), otherwise valid',
    input: () => upstreamEvent({ tables: hugeTables() }),
    workflow: 'SUCCEEDED',
    lambda: { name: 'STARTED', message: /./ },
    accepted: true,
  },
  {
    kind: 'missing detail',
    input: withoutDetail,
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/detail/),
  },
  {
    kind: 'wrong source',
    input: () => upstreamEvent({}, { source: 'evil.source' }),
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/source/),
  },
  {
    kind: 'batchId of another pipeline',
    input: () => upstreamEvent({ batchId: 'billingcenter-20261127T020000Z' }),
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/batchId/),
  },
  {
    kind: 'batchId of a pipeline sharing the prefix',
    input: () => upstreamEvent({ batchId: 'policycenter-x-20261127T020000Z' }),
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/batchId/),
  },
  {
    kind: 'rerun without reason',
    input: () => ({ rerun: { pipeline: PIPELINE, batchId: BATCH } }),
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/./),
  },
  { kind: 'empty object', input: () => ({}), workflow: 'InvalidTriggerEvent', lambda: invalid(/./) },
  {
    kind: 'non-object JSON (a string)',
    input: () => 'UpstreamBatchSucceeded',
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/./),
  },
  {
    kind: 'non-object JSON (an array)',
    input: () => [upstreamEvent()],
    workflow: 'InvalidTriggerEvent',
    lambda: invalid(/./),
  },
  { kind: 'null', input: () => null, workflow: 'InvalidTriggerEvent', lambda: invalid(/./) },
];
