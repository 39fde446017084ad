import * as assert from 'node:assert/strict';
import { type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { FENCE_KEY, writeFence } from '../handlers/lib/fence';
import { createControlTable, type LocalDynamo, startDynalite } from '../local/dynalite';

/**
 * The fence writer against dynalite (real conditional writes). Two tables stand in for the two
 * replicas of the global table, so "only the survivor is updated" can be played out.
 */
describe('fence writer', () => {
  let db: LocalDynamo;
  let client: DynamoDBClient;
  const tables = { east: 'fence-east', west: 'fence-west' };

  before(async () => {
    db = await startDynalite();
    client = db.client;
    for (const table of Object.values(tables)) await createControlTable(client, table);
  });
  after(() => db.close());

  const read = async (table: string) =>
    (await client.send(new GetItemCommand({ TableName: table, Key: FENCE_KEY }))).Item;

  it('first write sets the region at epoch 1', async () => {
    const state = await writeFence(client, tables.east, 'us-east-1', 'prod-east');
    assert.deepEqual(state, { activeRegion: 'us-east-1', epoch: 1, changed: true });
    const item = await read(tables.east);
    assert.equal(item?.activeRegion?.S, 'us-east-1');
    assert.equal(item?.changedBy?.S, 'prod-east');
  });

  it('both stacks re-writing the same region leave the epoch alone', async () => {
    assert.deepEqual(await writeFence(client, tables.east, 'us-east-1', 'prod-west'), {
      activeRegion: 'us-east-1',
      epoch: 1,
      changed: false,
    });
    assert.deepEqual(await writeFence(client, tables.east, 'us-east-1', 'prod-east'), {
      activeRegion: 'us-east-1',
      epoch: 1,
      changed: false,
    });
    assert.equal(
      (await read(tables.east))?.changedBy?.S,
      'prod-east',
      'a no-op write must not touch the item',
    );
  });

  it('a change of region bumps the epoch once', async () => {
    assert.deepEqual(await writeFence(client, tables.east, 'us-west-1', 'prod-west'), {
      activeRegion: 'us-west-1',
      epoch: 2,
      changed: true,
    });
    assert.deepEqual(await writeFence(client, tables.east, 'us-west-1', 'prod-east'), {
      activeRegion: 'us-west-1',
      epoch: 2,
      changed: false,
    });
  });

  it('survivor-only failover: the survivor sets its replica without the other region', async () => {
    // Both replicas start at us-east-1 (replicated state before the outage).
    await writeFence(client, tables.west, 'us-east-1', 'prod-east');
    const state = await writeFence(client, tables.west, 'us-west-1', 'prod-west');
    assert.equal(state.changed, true);
    assert.equal((await read(tables.west))?.activeRegion?.S, 'us-west-1');
  });
});

describe('fence writer right after deployment', () => {
  const { writeFenceWhenReady } = require('../handlers/lib/fence') as typeof import('../handlers/lib/fence');
  const named = (name: string) => Object.assign(new Error(name), { name });
  const done = { activeRegion: 'us-west-1', epoch: 2, changed: true };

  it('retries while IAM propagates or the replica is being created, then writes', async () => {
    const failures = [named('AccessDeniedException'), named('ResourceNotFoundException')];
    const slept: number[] = [];
    const state = await writeFenceWhenReady(
      async () => {
        const next = failures.shift();
        if (next) throw next;
        return done;
      },
      { delayMs: 10, sleep: async (ms) => void slept.push(ms) },
    );
    assert.deepEqual(state, done);
    assert.deepEqual(slept, [10, 10]);
  });

  it('fails at once on any other error, and after the last attempt', async () => {
    let calls = 0;
    await assert.rejects(
      writeFenceWhenReady(
        async () => {
          calls++;
          throw named('ValidationException');
        },
        { sleep: async () => undefined },
      ),
      /ValidationException/,
    );
    assert.equal(calls, 1);
    calls = 0;
    await assert.rejects(
      writeFenceWhenReady(
        async () => {
          calls++;
          throw named('AccessDeniedException');
        },
        { attempts: 3, sleep: async () => undefined },
      ),
      /AccessDeniedException/,
    );
    assert.equal(calls, 3);
  });
});
