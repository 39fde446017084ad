import * as z from './zod-mini';
import { parseBatchId } from './batch-id';
import { CDA_TABLE_NAME_PATTERN, PIPELINE_NAME_PATTERN, PIPELINE_NAME_RULE } from './pipeline-name';
import { REGION_PATTERN } from './regions';

/**
 * The platform's own events (docs/events.md). The upstream workflow's last state publishes
 * `UpstreamBatchSucceeded` with a versioned schema (1.0; see docs/control-table.md for the batch id);
 * every trigger mode and the local twin validate against this one schema. The downstream workflow
 * publishes `DownstreamRunSucceeded` / `DownstreamRunFailed`.
 */

export const UPSTREAM_BATCH_SUCCEEDED = 'UpstreamBatchSucceeded' as const;
/** What the upstream workflow publishes when a batch fails (docs/events.md). */
export const UPSTREAM_BATCH_FAILED = 'UpstreamBatchFailed' as const;
export const DOWNSTREAM_RUN_SUCCEEDED = 'DownstreamRunSucceeded' as const;
export const DOWNSTREAM_RUN_FAILED = 'DownstreamRunFailed' as const;
/** The schema version producers write; consumers accept SUPPORTED_SCHEMA_VERSIONS. */
export const EVENT_SCHEMA_VERSION = '1.0' as const;
export const SUPPORTED_SCHEMA_VERSIONS = [EVENT_SCHEMA_VERSION] as const;

export const pipelineNameSchema = z
  .string({ error: 'must be a string' })
  .check(z.regex(PIPELINE_NAME_PATTERN, { error: `is not a pipeline name (${PIPELINE_NAME_RULE})` }));

export const batchIdSchema = z.string({ error: 'must be a string' }).check(
  z.refine((value) => parseBatchId(value) !== undefined, {
    error:
      'is not a batch id of the form <pipeline>-<yyyyMMdd>T<HHmmss>Z naming a real UTC time, e.g. policycenter-20261127T020000Z',
  }),
);

/**
 * The check for inputs that carry a pipeline and a batch id: the batch id must be the pipeline's
 * (issue on `batchId`). Nothing to add when the pipeline is absent or the batch id is not one
 * (`batchIdSchema` reports that). A new check per schema.
 */
export function batchIdOfPipeline() {
  return z.superRefine((input: { readonly pipeline?: string; readonly batchId: string }, ctx) => {
    const owner = input.pipeline === undefined ? undefined : parseBatchId(input.batchId)?.pipeline;
    if (owner !== undefined && owner !== input.pipeline) {
      ctx.addIssue({
        code: 'custom',
        path: ['batchId'],
        message: `belongs to pipeline "${owner}", not "${input.pipeline}"`,
      });
    }
  });
}

const isoTimestamp = z.iso.datetime({
  offset: true,
  error: 'must be an ISO-8601 timestamp, e.g. 2026-11-27T02:00:00Z',
});

export const tableResultSchema = z.object({
  name: z
    .string({ error: 'must be a string' })
    .check(z.regex(CDA_TABLE_NAME_PATTERN, { error: 'is not a CDA table name' })),
  rows: z
    .number({ error: 'must be a number' })
    .check(z.int({ error: 'must be a whole number' }), z.gte(0, { error: 'must be >= 0' })),
  lakePath: z
    .string({ error: 'must be a string' })
    .check(z.regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, { error: 'must be an s3:// URI' })),
});

/**
 * The event's `detail`. Unknown fields are ignored (not rejected) so a producer can add optional
 * fields within a version; an incompatible change must bump `schemaVersion`, which is rejected.
 */
export const upstreamBatchSucceededDetailSchema = z
  .object({
    schemaVersion: z.enum(SUPPORTED_SCHEMA_VERSIONS, {
      error: (issue) =>
        `schema version ${JSON.stringify(issue.input)} is not supported; this consumer reads ${SUPPORTED_SCHEMA_VERSIONS.join(', ')}`,
    }),
    pipeline: pipelineNameSchema,
    batchId: batchIdSchema,
    region: z
      .string({ error: 'must be a string' })
      .check(z.regex(REGION_PATTERN, { error: 'is not an AWS region name' })),
    tables: z
      .array(tableResultSchema, { error: 'must be an array' })
      .check(z.minLength(1, { error: 'must list at least one table' })),
    startedAt: isoTimestamp,
    completedAt: isoTimestamp,
    upstreamExecutionArn: z.string({ error: 'must be a string' }).check(
      z.regex(/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:\s]{1,80}:[^:\s]{1,80}$/, {
        error: 'is not a Step Functions execution ARN',
      }),
    ),
  })
  .check(
    z.superRefine((detail, ctx) => {
      const parsed = parseBatchId(detail.batchId);
      if (parsed && parsed.pipeline !== detail.pipeline) {
        ctx.addIssue({
          code: 'custom',
          path: ['batchId'],
          message: `belongs to pipeline "${parsed.pipeline}", not to the event's pipeline "${detail.pipeline}"`,
        });
      }
      if (Date.parse(detail.completedAt) < Date.parse(detail.startedAt)) {
        ctx.addIssue({ code: 'custom', path: ['completedAt'], message: 'is before startedAt' });
      }
    }),
  );

/** The EventBridge envelope around the detail, as a target (Lambda, SFN input) receives it. */
export const upstreamBatchSucceededEventSchema = z.object({
  version: z.optional(z.string()),
  id: z.string({ error: 'must be the EventBridge event id' }).check(z.minLength(1)),
  'detail-type': z.literal(UPSTREAM_BATCH_SUCCEEDED, {
    error: (issue) => `is ${JSON.stringify(issue.input)}; expected "${UPSTREAM_BATCH_SUCCEEDED}"`,
  }),
  source: z.string({ error: 'must be a string' }).check(z.minLength(1)),
  account: z.optional(z.string()),
  time: z.optional(z.string()),
  region: z.optional(z.string()),
  resources: z.optional(z.array(z.string())),
  detail: upstreamBatchSucceededDetailSchema,
});

export type UpstreamBatchSucceededDetail = z.output<typeof upstreamBatchSucceededDetailSchema>;
export type UpstreamBatchSucceededEvent = z.output<typeof upstreamBatchSucceededEventSchema>;

/** `detail` of `UpstreamBatchFailed`, schema 1.0 (the upstream workflow's failure path writes it). */
export interface UpstreamBatchFailedDetail {
  readonly schemaVersion: typeof EVENT_SCHEMA_VERSION;
  readonly pipeline: string;
  readonly batchId: string;
  readonly region: string;
  readonly error: string;
  readonly cause: string;
  readonly startedAt: string;
  readonly failedAt: string;
  readonly upstreamExecutionArn: string;
}
