/**
 * Time and identity for a workflow step, computed where ASL cannot: JSONPath intrinsics have no
 * date arithmetic, and lock leases need "now" and "now + lease" as epoch seconds.
 */

import { formatBatchId, isBatchIdOf } from '../../contracts/batch-id';
import { ERROR_NAMES } from '../../contracts/errors';
import { PIPELINE_NAME_PATTERN } from '../../contracts/pipeline-name';

export interface BatchContextInput {
  readonly pipeline: string;
  /** The Scheduler's `<aws.scheduler.scheduled-time>`, e.g. 2026-11-27T07:00:00Z. */
  readonly scheduledTime?: string;
  /** An existing batch id (downstream); checked rather than derived. */
  readonly batchId?: string;
  /** Lease length for a lock taken now. */
  readonly leaseSeconds: number;
}

export interface BatchContext {
  readonly pipeline: string;
  readonly batchId: string;
  readonly scheduledTime?: string;
  /** Epoch seconds. */
  readonly now: number;
  readonly nowIso: string;
  /** Epoch seconds at which a lock taken now may be taken over. */
  readonly leaseExpiresAt: number;
  /** Epoch seconds after which audit records may expire (400 days). */
  readonly recordExpiresAt: number;
}

export class InvalidBatchContext extends Error {
  override readonly name = ERROR_NAMES.InvalidInput;
}

const RECORD_RETENTION_SECONDS = 400 * 24 * 3600;

/** `policycenter` + 2026-11-27T07:00:00Z → `policycenter-20261127T070000Z`: stable per schedule tick. */
export function batchIdFor(pipeline: string, scheduledTime: string): string {
  const at = new Date(scheduledTime);
  if (
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(scheduledTime) ||
    Number.isNaN(at.getTime())
  ) {
    throw new InvalidBatchContext(`scheduledTime "${scheduledTime}" is not an ISO-8601 timestamp`);
  }
  return formatBatchId(pipeline, at);
}

export function batchContext(input: BatchContextInput, now: Date): BatchContext {
  if (typeof input?.pipeline !== 'string' || !PIPELINE_NAME_PATTERN.test(input.pipeline)) {
    throw new InvalidBatchContext(`pipeline ${JSON.stringify(input?.pipeline)} is not a pipeline name`);
  }
  if (!Number.isInteger(input.leaseSeconds) || input.leaseSeconds <= 0) {
    throw new InvalidBatchContext(
      `leaseSeconds ${JSON.stringify(input.leaseSeconds)} must be a positive integer`,
    );
  }
  let batchId: string;
  if (input.batchId !== undefined) {
    // The one batch-id rule (contracts/batch-id.ts): format, a real UTC instant, exactly this pipeline.
    if (!isBatchIdOf(input.pipeline, input.batchId)) {
      throw new InvalidBatchContext(
        `batchId ${JSON.stringify(input.batchId)} is not a batch id of pipeline ${input.pipeline}. Fix: ${input.pipeline}-<yyyyMMdd>T<HHmmss>Z naming a real UTC time, e.g. ${input.pipeline}-20261127T020000Z`,
      );
    }
    batchId = input.batchId;
  } else if (typeof input.scheduledTime === 'string') {
    batchId = batchIdFor(input.pipeline, input.scheduledTime);
  } else {
    throw new InvalidBatchContext('either scheduledTime or batchId is required');
  }
  const epoch = Math.floor(now.getTime() / 1000);
  return {
    pipeline: input.pipeline,
    batchId,
    ...(input.scheduledTime ? { scheduledTime: input.scheduledTime } : {}),
    now: epoch,
    nowIso: now.toISOString(),
    leaseExpiresAt: epoch + input.leaseSeconds,
    recordExpiresAt: epoch + RECORD_RETENTION_SECONDS,
  };
}
