/**
 * The batch-id rule, defined once (issue I, D8). Bottom layer: this folder imports nothing from the
 * rest of the project, so handlers, the workflows' builders, ops and tests can all depend on it.
 *
 * A batch id is `<pipeline>-<yyyyMMdd>T<HHmmss>Z`: the pipeline name, then the scheduled time in UTC.
 * The workflows keep a cheap `StringMatches` pre-filter in ASL (`batchIdGlob`), but the authoritative
 * check is `parseBatchId` (regex + a real calendar instant), run by BatchContext before any write.
 */
import { PIPELINE_NAME_BODY } from './pipeline-name';

/** Group 1 is the pipeline, groups 2-7 the date and time parts. */
export const BATCH_ID_PATTERN = /* @__PURE__ */ new RegExp(
  `^(${PIPELINE_NAME_BODY})-(\\d{4})(\\d{2})(\\d{2})T(\\d{2})(\\d{2})(\\d{2})Z$`,
);

export interface ParsedBatchId {
  readonly pipeline: string;
  /** The scheduled time the id was derived from, ISO-8601 UTC. */
  readonly scheduledTime: string;
}

/** Splits a batch id, or returns undefined if it does not match the format or names no real instant. */
export function parseBatchId(batchId: unknown): ParsedBatchId | undefined {
  if (typeof batchId !== 'string') return undefined;
  const m = BATCH_ID_PATTERN.exec(batchId);
  if (!m) return undefined;
  const [, pipeline, y, mo, d, h, mi, s] = m;
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${s}.000Z`;
  const date = new Date(iso);
  // The round trip rejects month 13, Feb 30, hour 24 and friends, which Date would roll over.
  if (Number.isNaN(date.getTime()) || date.toISOString() !== iso) return undefined;
  return { pipeline, scheduledTime: `${y}-${mo}-${d}T${h}:${mi}:${s}Z` };
}

/** True when `batchId` is a valid batch id of exactly this pipeline (not of one sharing its prefix). */
export function isBatchIdOf(pipeline: string, batchId: unknown): boolean {
  return parseBatchId(batchId)?.pipeline === pipeline;
}

/** The batch id for a pipeline and a scheduled time (the inverse of parseBatchId). */
export function formatBatchId(pipeline: string, scheduledTime: Date | string): string {
  const iso = new Date(scheduledTime).toISOString(); // 2026-11-27T02:00:00.000Z
  const compact = iso.slice(0, 19).replace(/[-:]/g, ''); // 20261127T020000
  return `${pipeline}-${compact}Z`;
}

/**
 * ASL pre-filter globs for one pipeline: the id must match `accept` and must not match `reject`
 * (a longer pipeline name sharing the prefix has a second hyphen). A pre-filter only: the calendar
 * is checked by BatchContext.
 */
export function batchIdGlob(pipeline: string): { accept: string; reject: string } {
  return { accept: `${pipeline}-*T*Z`, reject: `${pipeline}-*-*` };
}
