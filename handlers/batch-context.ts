import { Logger } from '@aws-lambda-powertools/logger';
import { type BatchContext, batchContext, type BatchContextInput } from './lib/batch-context';

/** Invoked by both workflows for the batch id and lease times. Pure, no AWS calls. */

const logger = new Logger();

export async function handler(event: BatchContextInput): Promise<BatchContext> {
  const context = batchContext(event, new Date());
  logger.info('batch context', { batchId: context.batchId, leaseExpiresAt: context.leaseExpiresAt });
  return context;
}
