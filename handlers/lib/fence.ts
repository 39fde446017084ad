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
