import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import * as z from 'zod';
import { requireEnv } from './lib/env';
import { FENCE_KEY, type FenceState, writeFence, writeFenceWhenReady } from './lib/fence';

/**
 * Invoked by `pulumi up` (aws.lambda.Invocation, `lifecycleScope: "CRUD"`) in the stack's own
 * region, so the fence is set through the surviving region's replica even when the other region is
 * unreachable. Every `up` invokes it (see docs/fence-and-locks.md); the write is idempotent, so the
 * epoch moves only when the region really changes.
 */

const logger = new Logger();
let client = new DynamoDBClient({});

/** Tests point the handler at a local DynamoDB. */
export function setDynamoClient(next: DynamoDBClient): void {
  client = next;
}

/**
 * The provider adds `tf: {action, prev_input}` in CRUD mode (Terraform's aws_lambda_invocation:
 * action is "create", "update" or "delete"; prev_input is the previous invocation's input).
 */
const FenceRequest = z.object({
  activeRegion: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'activeRegion must be a region name'),
  stack: z.string().min(1),
  /** Changes on every `up`, so the provider sees an update and invokes; not used otherwise. */
  assertedAt: z.string().optional(),
  tf: z.object({ action: z.enum(['create', 'update', 'delete']), prev_input: z.unknown().optional() }).optional(),
});

export interface FenceResult extends FenceState {
  /** The lifecycle action the provider passed (`create` when invoked without one). */
  readonly action: 'create' | 'update' | 'delete';
}

export async function handler(event: unknown): Promise<FenceResult> {
  const parsed = FenceRequest.safeParse(event);
  if (!parsed.success) {
    const error = new Error(`Invalid fence request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    error.name = 'InvalidInput';
    throw error;
  }
  const tableName = requireEnv('CONTROL_TABLE_NAME');
  const action = parsed.data.tf?.action ?? 'create';
  if (action === 'delete') {
    // Removing the stack (or the old resource after a replacement) must not move the fence: the
    // input of a delete is the OLD config. Report the fence as it is.
    const current = await client.send(new GetItemCommand({ TableName: tableName, Key: FENCE_KEY, ConsistentRead: true }));
    const state = { activeRegion: current.Item?.activeRegion?.S ?? '', epoch: Number(current.Item?.epoch?.N ?? '0'), changed: false };
    logger.info('fence left as it is (delete)', { ...state, stack: parsed.data.stack });
    return { ...state, action };
  }
  const state = await writeFenceWhenReady(() => writeFence(client, tableName, parsed.data.activeRegion, parsed.data.stack));
  logger.info('fence asserted', { ...state, action, stack: parsed.data.stack, region: process.env.AWS_REGION });
  return { ...state, action };
}
