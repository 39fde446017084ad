import * as assert from 'node:assert/strict';
import { CreateTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { AddressInfo } from 'node:net';
import { FENCE_KEY, writeFence } from '../handlers/lib/fence';

const dynalite = require('dynalite');

/**
 * The fence writer against dynalite (real conditional writes). Two tables stand in for the two
 * replicas of the global table, so "only the survivor is updated" can be played out.
 */
describe('fence writer', () => {
  let server: any;
  let client: DynamoDBClient;
  const tables = { east: 'fence-east', west: 'fence-west' };

  before(async () => {
    server = dynalite({ createTableMs: 0 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    client = new DynamoDBClient({ endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    for (const TableName of Object.values(tables)) {
      await client.send(
        new CreateTableCommand({
          TableName,
          KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
          AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'S' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
    }
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  const read = async (table: string) => (await client.send(new GetItemCommand({ TableName: table, Key: FENCE_KEY }))).Item;

  it('first write sets the region at epoch 1', async () => {
    const state = await writeFence(client, tables.east, 'us-east-1', 'prod-east');
    assert.deepEqual(state, { activeRegion: 'us-east-1', epoch: 1, changed: true });
    const item = await read(tables.east);
    assert.equal(item?.activeRegion?.S, 'us-east-1');
    assert.equal(item?.changedBy?.S, 'prod-east');
  });

  it('both stacks re-writing the same region leave the epoch alone', async () => {
    assert.deepEqual(await writeFence(client, tables.east, 'us-east-1', 'prod-west'), { activeRegion: 'us-east-1', epoch: 1, changed: false });
    assert.deepEqual(await writeFence(client, tables.east, 'us-east-1', 'prod-east'), { activeRegion: 'us-east-1', epoch: 1, changed: false });
    assert.equal((await read(tables.east))?.changedBy?.S, 'prod-east', 'a no-op write must not touch the item');
  });

  it('a change of region bumps the epoch once', async () => {
    assert.deepEqual(await writeFence(client, tables.east, 'us-west-1', 'prod-west'), { activeRegion: 'us-west-1', epoch: 2, changed: true });
    assert.deepEqual(await writeFence(client, tables.east, 'us-west-1', 'prod-east'), { activeRegion: 'us-west-1', epoch: 2, changed: false });
  });

  it('survivor-only failover: the survivor sets its replica without the other region', async () => {
    // Both replicas start at us-east-1 (replicated state before the outage).
    await writeFence(client, tables.west, 'us-east-1', 'prod-east');
    const state = await writeFence(client, tables.west, 'us-west-1', 'prod-west');
    assert.equal(state.changed, true);
    assert.equal((await read(tables.west))?.activeRegion?.S, 'us-west-1');
  });
});
