import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { FENCE_ATTRIBUTE_KEY } from '../../contracts/control-table';
import type { WarehouseFence, WarehouseFenceRow } from './warehouse-fence';

/** The failover fence's key (AttributeValue form): one item naming the active region. See docs/fence-and-locks.md. */
export const FENCE_KEY = FENCE_ATTRIBUTE_KEY;

export interface FenceState {
  readonly activeRegion: string;
  readonly epoch: number;
  readonly changed: boolean;
}

/**
 * Sets the fence to `activeRegion`, bumping the epoch only when the region actually changes, so
 * both stacks (and every re-run of either) can write it without moving the epoch.
 */
export function fenceUpdate(
  tableName: string,
  activeRegion: string,
  changedBy: string,
  now: Date,
): UpdateItemCommandInput {
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
    const result = await client.send(
      new UpdateItemCommand(fenceUpdate(tableName, activeRegion, changedBy, now)),
    );
    return { activeRegion, epoch: Number(result.Attributes?.epoch?.N ?? '0'), changed: true };
  } catch (error) {
    if (
      !(error instanceof ConditionalCheckFailedException) &&
      (error as Error).name !== 'ConditionalCheckFailedException'
    ) {
      throw error;
    }
    // Already naming this region: nothing to change.
    const current = await client.send(
      new GetItemCommand({ TableName: tableName, Key: FENCE_KEY, ConsistentRead: true }),
    );
    return { activeRegion, epoch: Number(current.Item?.epoch?.N ?? '0'), changed: false };
  }
}

/** Errors that mean "not yet" right after deployment: IAM propagation, the replica still being created. */
const NOT_YET = new Set(['AccessDeniedException', 'ResourceNotFoundException']);

/**
 * `writeFence`, retried while the role's new policy propagates or the peer's replica appears, so the
 * first `pulumi up` does not fail on eventual consistency. Any other error fails at once.
 */
export async function writeFenceWhenReady<T extends FenceState>(
  write: () => Promise<T>,
  options: { attempts?: number; delayMs?: number; sleep?: (ms: number) => Promise<void> } = {},
): Promise<T> {
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

// ---- Failover order: the warehouse fence first, then the DynamoDB fence (same epoch in both)

/** What the two fences say now; `undefined` for an absent item or row. */
export interface FenceViews {
  readonly dynamo?: { readonly activeRegion: string; readonly epoch: number };
  readonly warehouse?: WarehouseFenceRow;
}

/**
 * The epoch both fences get when `region` is asserted. Keep the DynamoDB epoch when it already
 * names the region and the warehouse is not ahead of it; finish an interrupted failover (the
 * warehouse already moved to this region, DynamoDB not yet) with the warehouse's epoch; otherwise
 * one past the larger of the two, so neither ever moves back.
 */
export function planEpoch(views: FenceViews, region: string): number {
  const d = views.dynamo;
  const w = views.warehouse;
  if (
    d &&
    d.activeRegion === region &&
    d.epoch >= 1 &&
    (!w || w.epoch < d.epoch || (w.region === region && w.epoch === d.epoch))
  )
    return d.epoch;
  if (w && w.region === region && w.epoch > (d?.epoch ?? 0)) return w.epoch;
  return Math.max(d?.epoch ?? 0, w?.epoch ?? 0) + 1;
}

export class FenceConflict extends Error {
  override name = 'FenceConflict';
}

export interface AssertedFence extends FenceState {
  readonly warehouse: WarehouseFenceRow;
  readonly warehouseChanged: boolean;
}

async function readDynamoFence(client: DynamoDBClient, tableName: string): Promise<FenceViews['dynamo']> {
  const item = (
    await client.send(new GetItemCommand({ TableName: tableName, Key: FENCE_KEY, ConsistentRead: true }))
  ).Item;
  if (!item?.activeRegion?.S) return undefined;
  return { activeRegion: item.activeRegion.S, epoch: Number(item.epoch?.N ?? '0') };
}

/**
 * Asserts `region` as the active region: 1. the warehouse fence (CONTROL.FENCE) moves to
 * (region, epoch); 2. only then the DynamoDB fence item, conditioned on its epoch being older.
 * If step 1 fails, nothing is written to DynamoDB and the error propagates (the `pulumi up` fails).
 * Why this order: docs/fence-and-locks.md, "Failover order".
 */
export async function assertFence(
  client: DynamoDBClient,
  tableName: string,
  warehouse: WarehouseFence,
  region: string,
  changedBy: string,
  now = new Date(),
): Promise<AssertedFence> {
  const dynamo = await readDynamoFence(client, tableName);
  const current = await warehouse.read();
  const epoch = planEpoch({ dynamo, warehouse: current }, region);
  const warehouseChanged = !(current?.region === region && current.epoch === epoch);
  const wh = warehouseChanged ? await warehouse.advance(region, epoch) : (current as WarehouseFenceRow);
  if (dynamo?.activeRegion === region && dynamo.epoch === epoch) {
    return { activeRegion: region, epoch, changed: false, warehouse: wh, warehouseChanged };
  }
  try {
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: FENCE_KEY,
        UpdateExpression: 'SET activeRegion = :region, epoch = :epoch, changedAt = :now, changedBy = :by',
        ConditionExpression: 'attribute_not_exists(epoch) OR epoch < :epoch',
        ExpressionAttributeValues: {
          ':region': { S: region },
          ':epoch': { N: String(epoch) },
          ':now': { S: now.toISOString() },
          ':by': { S: changedBy },
        },
      }),
    );
  } catch (error) {
    if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
    const again = await readDynamoFence(client, tableName);
    if (again?.activeRegion === region && again.epoch === epoch)
      return { activeRegion: region, epoch, changed: false, warehouse: wh, warehouseChanged };
    throw new FenceConflict(
      `the DynamoDB fence moved to ${again?.activeRegion ?? 'nothing'} epoch ${again?.epoch ?? 0} while this write prepared ${region} epoch ${epoch} ` +
        `(the warehouse already names ${wh.region} epoch ${wh.epoch}). Another failover ran at the same time: run pulumi up again`,
    );
  }
  return { activeRegion: region, epoch, changed: true, warehouse: wh, warehouseChanged };
}
