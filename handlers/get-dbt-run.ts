import * as z from 'zod';
import { getRun, type RunStatus } from './lib/dbt-client';
import { DbtRunFailed } from './lib/errors';
import { logger, withContext, type LambdaContext } from './lib/logger';
import { parseInput } from './lib/validate';

/**
 * Polls one dbt run.
 * Input  {runId, failOnFailed?=true}
 * Output {runId, batchId, status, startedAt, finishedAt, error?}
 * Env    DBT_API_URL, DBT_API_TOKEN_SECRET_ARN (or DBT_API_TOKEN locally), DBT_API_TIMEOUT_MS?
 * Errors InvalidInput, DbtApiUnavailable (retry), DbtApiRejected (404: unknown run), DbtRunFailed
 *        (status FAILED and failOnFailed), MissingConfiguration
 */

export const getDbtRunInputSchema = z.object({
  runId: z
    .string({ error: 'must be a string' })
    .regex(/^[A-Za-z0-9._-]{1,128}$/, { error: 'is not a run id (1-128 of letters, digits, . _ -)' }),
  failOnFailed: z.boolean({ error: 'must be a boolean' }).default(true),
});

export type GetDbtRunInput = z.input<typeof getDbtRunInputSchema>;
export interface GetDbtRunOutput {
  runId: string;
  batchId: string;
  status: RunStatus;
  startedAt: string | null;
  finishedAt: string | null;
  error?: string;
}

export const handler = async (event: unknown, context?: LambdaContext): Promise<GetDbtRunOutput> => {
  const input = parseInput(getDbtRunInputSchema, event, 'get-dbt-run');
  withContext(context, { runId: input.runId });
  const run = await getRun(input.runId);
  const output: GetDbtRunOutput = {
    runId: run.runId,
    batchId: run.batchId,
    status: run.status,
    startedAt: run.startedAt ?? null,
    finishedAt: run.finishedAt ?? null,
    ...(run.error ? { error: run.error } : {}),
  };
  logger.info('dbt run polled', { ...output });
  // LOST and INTERRUPTED runs are over too: the build did not finish, so they fail like FAILED.
  if ((run.status === 'FAILED' || run.status === 'LOST' || run.status === 'INTERRUPTED') && input.failOnFailed) {
    throw new DbtRunFailed(run.error || `dbt run ${run.runId} of ${run.batchId} ended ${run.status} without an error message`, run.runId);
  }
  return output;
};
