import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';

/** The failover fence: one item naming the active region. See docs/fence-and-locks.md. */
export const FENCE_KEY = { pk: { S: 'FENCE' }, sk: { S: 'ACTIVE' } } as const;

export interface FenceState {
  readonly activeRegion: string;
  readonly epoch: number;
  readonly changed: boolean;
}

/**
 * Sets the fence to `activeRegion`, bumping the epoch only when the region actually changes, so
 * both stacks (and every re-run of either) can write it without moving the epoch.
 */
export function fenceUpdate(tableName: string, activeRegion: string, changedBy: string, now: Date): UpdateItemCommandInput {
  return {
    TableName: tableName,
    Key: FENCE_KEY,
    UpdateExpression: 'SET activeRegion = :region, changedAt = :now, changedBy = :by ADD epoch :one',
    ConditionExpression: 'attribute_not_exists(activeRegion) OR activeRegion <> :region',
    ExpressionAttributeValues: {
      ':region': { S: activeRegion },
      ':now': { S: now.toISOString() },
      ':by': { S: changedBy },
      ':one': { N: '1' },
    },
    ReturnValues: 'ALL_NEW',
  };
}

export async function writeFence(
  client: DynamoDBClient,
  tableName: string,
  activeRegion: string,
  changedBy: string,
  now = new Date(),
): Promise<FenceState> {
  try {
    const result = await client.send(new UpdateItemCommand(fenceUpdate(tableName, activeRegion, changedBy, now)));
    return { activeRegion, epoch: Number(result.Attributes?.epoch?.N ?? '0'), changed: true };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException) && (error as Error).name !== 'ConditionalCheckFailedException') {
      throw error;
    }
    // Already naming this region: nothing to change.
    const current = await client.send(new GetItemCommand({ TableName: tableName, Key: FENCE_KEY, ConsistentRead: true }));
    return { activeRegion, epoch: Number(current.Item?.epoch?.N ?? '0'), changed: false };
  }
}

/** Errors that mean "not yet" right after deployment: IAM propagation, the replica still being created. */
const NOT_YET = new Set(['AccessDeniedException', 'ResourceNotFoundException']);

/**
 * `writeFence`, retried while the role's new policy propagates or the peer's replica appears, so the
 * first `pulumi up` does not fail on eventual consistency. Any other error fails at once.
 */
export async function writeFenceWhenReady(
  write: () => Promise<FenceState>,
  options: { attempts?: number; delayMs?: number; sleep?: (ms: number) => Promise<void> } = {},
): Promise<FenceState> {
  const attempts = options.attempts ?? 7;
  const delayMs = options.delayMs ?? 5_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      if (!NOT_YET.has((error as Error).name) || attempt >= attempts) throw error;
      await sleep(delayMs);
    }
  }
}
