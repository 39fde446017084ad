import { DynamoDBClient, GetItemCommand, QueryCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import * as z from '../contracts/zod-mini';
import { batchSkPrefix, DOWNSTREAM_WATERMARK_SK, pipelinePk } from '../contracts/control-table';
import { HANDLER_ENV } from '../contracts/env';
import { batchIdOfPipeline, batchIdSchema, pipelineNameSchema } from '../contracts/events';
import {
  evaluateConsistency,
  triggerLagMetric,
  type ConsistencyResult,
  type ControlRecord,
} from './lib/consistency';
import { readEnv, requireEnv } from './lib/env';
import { logger, withContext, type LambdaContext } from './lib/logger';
import { parseInput } from './lib/validate';

export { evaluateConsistency } from './lib/consistency';

/**
 * Checks the control table before the downstream dbt build.
 * Input  {pipeline, batchId, expectedTables: string[], rerun?=false}
 * Output {consistencyStatus: 'SUCCESS'|'NOT_YET_REPLICATED'|'FAILED', reasons: string[]}  (results, not errors)
 * Env    CONTROL_TABLE_NAME
 * Errors InvalidInput, MissingConfiguration, DynamoDB SDK errors (e.g. ProvisionedThroughputExceededException)
 */

export const checkConsistencyInputSchema = z
  .object({
    pipeline: pipelineNameSchema,
    batchId: batchIdSchema,
    expectedTables: z
      .array(
        z
          .string({ error: 'must be a string' })
          .check(z.regex(/^[a-z][a-z0-9_]{0,62}$/, { error: 'is not a table name' })),
        {
          error: 'must be an array of table names',
        },
      )
      .check(z.minLength(1, { error: 'must list at least one table' })),
    rerun: z._default(z.boolean({ error: 'must be a boolean' }), false),
  })
  .check(batchIdOfPipeline());

export type CheckConsistencyInput = z.input<typeof checkConsistencyInputSchema>;

/**
 * Module-level client, reused across invocations. Tests and the twin point it elsewhere (any
 * client whose `send` takes the low-level commands, a DynamoDBDocumentClient included). The
 * low-level client plus util-dynamodb keeps lib-dynamodb out of the bundle (size budget).
 */
type LowLevelClient = { send: DynamoDBClient['send'] };
let documentClient: LowLevelClient = new DynamoDBClient({});
export function setDocumentClient(client: LowLevelClient): void {
  documentClient = client;
}

const plain = (item: Record<string, AttributeValue>) => unmarshall(item) as ControlRecord;

/** Reads every item of the batch (upstream, table loads, downstream) plus the downstream watermark. */
export async function readBatchRecords(
  tableName: string,
  pipeline: string,
  batchId: string,
): Promise<ControlRecord[]> {
  const pk = pipelinePk(pipeline);
  const records: ControlRecord[] = [];
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await documentClient.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: marshall({ ':pk': pk, ':prefix': batchSkPrefix(batchId) }),
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    records.push(...(page.Items ?? []).map(plain));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  const watermark = await documentClient.send(
    new GetItemCommand({
      TableName: tableName,
      Key: marshall({ pk, sk: DOWNSTREAM_WATERMARK_SK }),
      ConsistentRead: true,
    }),
  );
  if (watermark.Item) records.push(plain(watermark.Item));
  return records;
}

export const handler = async (event: unknown, context?: LambdaContext): Promise<ConsistencyResult> => {
  const input = parseInput(checkConsistencyInputSchema, event, 'check-consistency');
  withContext(context, { pipeline: input.pipeline, batchId: input.batchId });
  const tableName = requireEnv(HANDLER_ENV.CONTROL_TABLE_NAME);
  const records = await readBatchRecords(tableName, input.pipeline, input.batchId);
  const result = evaluateConsistency(records, input.expectedTables, input.batchId, { rerun: input.rerun });
  // Reruns would inflate the lag: only first attempts are measured.
  const lag = input.rerun ? undefined : triggerLagMetric(records, input.pipeline, input.batchId, new Date());
  // EMF to stdout is how Lambda publishes it; POWERTOOLS_METRICS_DISABLED (Powertools' own switch)
  // routes it nowhere in tests and local tools.
  if (lag && readEnv(HANDLER_ENV.POWERTOOLS_METRICS_DISABLED) !== 'true')
    process.stdout.write(`${JSON.stringify(lag)}\n`);
  if (result.consistencyStatus === 'SUCCESS')
    logger.info('batch is consistent', { tables: input.expectedTables.length });
  else if (result.consistencyStatus === 'NOT_YET_REPLICATED')
    logger.info('upstream records not here yet', { reasons: result.reasons });
  else logger.warn('batch is not consistent', { reasons: result.reasons });
  return result;
};
