import { type BatchContext, batchContext, type BatchContextInput } from './lib/batch-context';
import { logger, withContext, type LambdaContext } from './lib/logger';

/** Invoked by both workflows for the batch id and lease times. Pure, no AWS calls. */

export async function handler(event: BatchContextInput, context?: LambdaContext): Promise<BatchContext> {
  const result = batchContext(event, new Date());
  withContext(context, { pipeline: result.pipeline, batchId: result.batchId });
  logger.info('batch context', { leaseExpiresAt: result.leaseExpiresAt });
  return result;
}
