import * as z from '../contracts/zod-mini';
import { lockSk, PIPELINE_PK_PATTERN, PIPELINE_PK_PREFIX } from '../contracts/control-table';
import { batchIdOfPipeline, batchIdSchema, pipelineNameSchema } from '../contracts/events';
import { REGION_PATTERN } from '../contracts/regions';
import { createRun, DBT_COMMANDS } from './lib/dbt-client';
import { logger, withContext, type LambdaContext } from './lib/logger';
import { parseInput } from './lib/validate';

/**
 * Starts (idempotently) the dbt run of a batch.
 * Input  {pipeline, batchId, command?='build', select?, vars?, attempt?=1, fence: {region, epoch}, taskToken?,
 *         lease?: {pk, sk, holder, seconds}, deadlines?: {maxQueueMinutes, maxRunMinutes}}
 * With a taskToken (the workflow's waitForTaskToken start) the workflow waits for the app's callback,
 * not for this return value.
 * Output {runId, status, created}
 * Env    DBT_API_URL, DBT_API_TOKEN_SECRET_ARN (or DBT_API_TOKEN locally), DBT_API_TIMEOUT_MS?
 * Errors InvalidInput, DbtApiUnavailable (retry), DbtApiRejected, MissingConfiguration
 */

export const startDbtRunInputSchema = z
  .object({
    pipeline: pipelineNameSchema,
    batchId: batchIdSchema,
    command: z._default(
      z.enum(DBT_COMMANDS, { error: `must be one of ${DBT_COMMANDS.join(', ')}` }),
      'build',
    ),
    select: z.optional(
      z.string({ error: 'must be a string' }).check(
        z.regex(/^[A-Za-z0-9_.:+*@,/ -]{1,1000}$/, {
          error: 'is not a dbt selector (letters, digits, _ . : + * @ , / - and spaces)',
        }),
      ),
    ),
    vars: z.optional(z.record(z.string(), z.unknown(), { error: 'must be an object' })),
    attempt: z._default(z.number({ error: 'must be a number' }).check(z.int(), z.gte(1), z.lte(100)), 1),
    fence: z.object(
      {
        region: z
          .string({ error: 'must be a string' })
          .check(z.regex(REGION_PATTERN, { error: 'is not an AWS region' })),
        // The workflow reads the fence item's epoch as DynamoDB's N string.
        epoch: z.coerce.number({ error: 'must be a number' }).check(z.int(), z.gte(1)),
      },
      { error: 'must be {region, epoch}: the fence the claim was made under' },
    ),
    taskToken: z.optional(z.string({ error: 'must be a string' }).check(z.minLength(1), z.maxLength(1024))),
    lease: z.optional(
      z.strictObject(
        {
          pk: z
            .string({ error: 'must be a string' })
            .check(z.regex(PIPELINE_PK_PATTERN, { error: `is not ${PIPELINE_PK_PREFIX}<pipeline>` })),
          sk: z.literal(lockSk('DOWNSTREAM'), { error: `must be ${lockSk('DOWNSTREAM')}` }),
          holder: z.string({ error: 'must be a string' }).check(
            z.regex(/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[!-9;-~]{1,80}:[!-9;-~]{1,80}$/, {
              error: 'is not a Step Functions execution ARN',
            }),
          ),
          seconds: z.number({ error: 'must be a number' }).check(z.int(), z.gte(60), z.lte(86_400)),
        },
        { error: 'must be {pk, sk, holder, seconds}: the lock the app renews on each heartbeat' },
      ),
    ),
    deadlines: z.optional(
      z.strictObject(
        {
          maxQueueMinutes: z.number({ error: 'must be a number' }).check(z.int(), z.gte(1), z.lte(1_440)),
          maxRunMinutes: z.number({ error: 'must be a number' }).check(z.int(), z.gte(1), z.lte(1_440)),
        },
        { error: 'must be {maxQueueMinutes, maxRunMinutes}' },
      ),
    ),
  })
  .check(batchIdOfPipeline());

export type StartDbtRunInput = z.input<typeof startDbtRunInputSchema>;
export interface StartDbtRunOutput {
  runId: string;
  status: string;
  /** false when the API returned an existing run for (batchId, attempt), i.e. this was a repeat. */
  created: boolean;
}

export const handler = async (event: unknown, context?: LambdaContext): Promise<StartDbtRunOutput> => {
  const input = parseInput(startDbtRunInputSchema, event, 'start-dbt-run');
  withContext(context, { pipeline: input.pipeline, batchId: input.batchId });
  const run = await createRun({
    batchId: input.batchId,
    pipeline: input.pipeline,
    command: input.command,
    ...(input.select === undefined ? {} : { select: input.select }),
    ...(input.vars === undefined ? {} : { vars: input.vars }),
    attempt: input.attempt,
    fence: input.fence,
    ...(input.taskToken === undefined ? {} : { taskToken: input.taskToken }),
    ...(input.lease === undefined ? {} : { lease: input.lease }),
    ...(input.deadlines === undefined ? {} : { deadlines: input.deadlines }),
  });
  logger.info(run.created ? 'dbt run created' : 'dbt run already existed for this batch', { ...run });
  return { runId: run.runId, status: run.status, created: run.created };
};
