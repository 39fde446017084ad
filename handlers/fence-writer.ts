import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import * as z from 'zod';
import { requireEnv } from './lib/env';
import { type FenceState, writeFence, writeFenceWhenReady } from './lib/fence';

/**
 * Invoked by `pulumi up` (aws.lambda.Invocation) in the stack's own region, so the fence is set
 * through the surviving region's replica even when the other region is unreachable.
 */

const logger = new Logger();
const client = new DynamoDBClient({});

const FenceRequest = z.object({
  activeRegion: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'activeRegion must be a region name'),
  stack: z.string().min(1),
});

export async function handler(event: unknown): Promise<FenceState> {
  const parsed = FenceRequest.safeParse(event);
  if (!parsed.success) {
    const error = new Error(`Invalid fence request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    error.name = 'InvalidInput';
    throw error;
  }
  const tableName = requireEnv('CONTROL_TABLE_NAME');
  const state = await writeFenceWhenReady(() => writeFence(client, tableName, parsed.data.activeRegion, parsed.data.stack));
  logger.info('fence written', { ...state, stack: parsed.data.stack, region: process.env.AWS_REGION });
  return state;
}
