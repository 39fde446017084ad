import * as z from '../contracts/zod-mini';
import { batchIdOfPipeline, batchIdSchema } from '../contracts/events';
import { type DbtRun, getRun, getRunByKey, type RunStatus } from './lib/dbt-client';
import { DbtApiRejected, DbtRunFailed, DbtRunNotFound, InvalidInput } from '../contracts/errors';
import { logger, withContext, type LambdaContext } from './lib/logger';
import { parseInput } from './lib/validate';

/**
 * Reads one dbt run: by run id (ops), or by its key (batchId, attempt) — the downstream workflow's
 * reconciliation after a heartbeat timeout or an ambiguous start.
 * Input  {runId, failOnFailed?=true} | {batchId, attempt, pipeline?, failOnFailed?=true}
 * Output {runId, batchId, attempt, status, queuedAt, startedAt, finishedAt, error?}
 * Env    DBT_API_URL, DBT_API_TOKEN_SECRET_ARN (or DBT_API_TOKEN locally), DBT_API_TIMEOUT_MS?
 * Errors InvalidInput, DbtApiUnavailable (retry), DbtRunNotFound (404: no such run), DbtApiRejected
 *        (other 4xx), DbtRunFailed (status FAILED/LOST/INTERRUPTED and failOnFailed), MissingConfiguration
 */

const failOnFailed = z._default(z.boolean({ error: 'must be a boolean' }), true);
const byId = z.strictObject({
  runId: z
    .string({ error: 'must be a string' })
    .check(
      z.regex(/^[A-Za-z0-9._-]{1,128}$/, { error: 'is not a run id (1-128 of letters, digits, . _ -)' }),
    ),
  failOnFailed,
});
const byKey = z
  .strictObject({
    batchId: batchIdSchema,
    attempt: z
      .number({ error: 'must be a number' })
      .check(z.int({ error: 'must be a whole number' }), z.gte(1), z.lte(100)),
    pipeline: z.optional(z.string({ error: 'must be a string' })),
    failOnFailed,
  })
  .check(batchIdOfPipeline());

/** By run id when `runId` is given, else by key; each shape reports its own field errors. */
export const getDbtRunInputSchema = { byId, byKey } as const;

export type GetDbtRunInput = z.input<typeof byId> | z.input<typeof byKey>;

function parse(event: unknown): z.output<typeof byId> | z.output<typeof byKey> {
  const has = (k: string) => typeof event === 'object' && event !== null && k in event;
  if (has('runId')) return parseInput(byId, event, 'get-dbt-run');
  if (has('batchId')) return parseInput(byKey, event, 'get-dbt-run');
  throw new InvalidInput('Invalid get-dbt-run input: (input): must be {runId} or {batchId, attempt}');
}
export interface GetDbtRunOutput {
  runId: string;
  batchId: string;
  attempt: number | null;
  status: RunStatus;
  queuedAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  error?: string;
}

export const handler = async (event: unknown, context?: LambdaContext): Promise<GetDbtRunOutput> => {
  const input = parse(event);
  const key = 'runId' in input ? { runId: input.runId } : { batchId: input.batchId, attempt: input.attempt };
  withContext(context, key);
  let run: DbtRun;
  try {
    run = 'runId' in input ? await getRun(input.runId) : await getRunByKey(input.batchId, input.attempt);
  } catch (error) {
    // 404 is an answer, not a failure: the registry has no such run (the start never reached it).
    if (error instanceof DbtApiRejected && error.status === 404) {
      throw new DbtRunNotFound(`dbt has no run for ${JSON.stringify(key)}: ${error.message}`);
    }
    throw error;
  }
  const output: GetDbtRunOutput = {
    runId: run.runId,
    batchId: run.batchId,
    attempt: run.attempt ?? null,
    status: run.status,
    queuedAt: run.queuedAt ?? null,
    startedAt: run.startedAt ?? null,
    finishedAt: run.finishedAt ?? null,
    ...(run.error ? { error: run.error } : {}),
  };
  logger.info('dbt run read', { ...output });
  // LOST and INTERRUPTED runs are over too: the build did not finish, so they fail like FAILED.
  if (
    (run.status === 'FAILED' || run.status === 'LOST' || run.status === 'INTERRUPTED') &&
    input.failOnFailed
  ) {
    throw new DbtRunFailed(
      run.error || `dbt run ${run.runId} of ${run.batchId} ended ${run.status} without an error message`,
      run.runId,
    );
  }
  return output;
};
