import * as assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { assertFence, FENCE_KEY, planEpoch } from '../handlers/lib/fence';
import {
  keyPairJwt,
  type RunStatement,
  SqlWarehouseFence,
  sqlApiRequest,
  sqlApiRunner,
  type WarehouseFence,
  WarehouseFenceRefused,
  type WarehouseFenceRow,
} from '../handlers/lib/warehouse-fence';
import { createControlTable, type LocalDynamo, startDynalite } from '../local/dynalite';

const REPO = path.resolve(__dirname, '..');

/** Under load a new dynalite table may not be ACTIVE yet. */
async function untilActive(client: DynamoDBClient, table: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await client.send(new GetItemCommand({ TableName: table, Key: FENCE_KEY }));
      return;
    } catch (e) {
      if ((e as Error).name !== 'ResourceNotFoundException' || i >= 100) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** An in-memory warehouse fence with the real one's contract, recording calls in order. */
function memoryWarehouse(
  log: string[],
  start?: WarehouseFenceRow,
  fail?: Error,
): WarehouseFence & { row?: WarehouseFenceRow } {
  const wf = {
    row: start,
    async read() {
      log.push('warehouse.read');
      return wf.row;
    },
    async advance(region: string, epoch: number) {
      log.push(`warehouse.advance ${region} ${epoch}`);
      if (fail) throw fail;
      if (wf.row && (wf.row.epoch > epoch || (wf.row.epoch === epoch && wf.row.region !== region)))
        throw new WarehouseFenceRefused('newer');
      wf.row = { region, epoch };
      return wf.row;
    },
  };
  return wf;
}

describe('failover order: the warehouse fence first, then the DynamoDB fence', () => {
  let db: LocalDynamo;
  let client: DynamoDBClient;
  let n = 0;
  let table: string;
  before(async () => {
    db = await startDynalite();
    client = db.client;
  });
  after(() => db.close());
  beforeEach(async () => {
    table = `wf-${++n}`;
    await createControlTable(client, table);
    await untilActive(client, table);
  });
  const dynamo = async () => {
    const item = (
      await client.send(new GetItemCommand({ TableName: table, Key: FENCE_KEY, ConsistentRead: true }))
    ).Item;
    return item ? { region: item.activeRegion?.S, epoch: Number(item.epoch?.N) } : undefined;
  };

  it('planEpoch: keep, finish an interrupted failover, or one past the larger epoch', () => {
    const cases: Array<[Parameters<typeof planEpoch>[0], string, number]> = [
      [{}, 'us-east-1', 1],
      [
        { dynamo: { activeRegion: 'us-east-1', epoch: 3 }, warehouse: { region: 'us-east-1', epoch: 3 } },
        'us-east-1',
        3,
      ],
      [{ dynamo: { activeRegion: 'us-east-1', epoch: 3 } }, 'us-east-1', 3], // warehouse empty: repaired at 3
      [
        { dynamo: { activeRegion: 'us-east-1', epoch: 3 }, warehouse: { region: 'us-east-1', epoch: 3 } },
        'us-west-1',
        4,
      ],
      [
        { dynamo: { activeRegion: 'us-east-1', epoch: 3 }, warehouse: { region: 'us-west-1', epoch: 4 } },
        'us-west-1',
        4,
      ], // finish it
      [
        { dynamo: { activeRegion: 'us-east-1', epoch: 3 }, warehouse: { region: 'us-west-1', epoch: 4 } },
        'us-east-1',
        5,
      ],
      [
        { dynamo: { activeRegion: 'us-east-1', epoch: 3 }, warehouse: { region: 'us-west-1', epoch: 3 } },
        'us-east-1',
        4,
      ], // same epoch, other region
      [
        { dynamo: { activeRegion: 'us-east-1', epoch: 3 }, warehouse: { region: 'us-east-1', epoch: 2 } },
        'us-east-1',
        3,
      ],
    ];
    for (const [views, region, want] of cases)
      assert.equal(planEpoch(views, region), want, JSON.stringify({ views, region }));
  });

  it('a failover moves the warehouse first and gives both fences the same epoch', async () => {
    const log: string[] = [];
    const wh = memoryWarehouse(log);
    assert.equal((await assertFence(client, table, wh, 'us-east-1', 'prod-east')).epoch, 1);
    log.length = 0;
    const send = client.send.bind(client);
    // Record when DynamoDB is written relative to the warehouse.
    (client as { send: unknown }).send = async (cmd: { constructor: { name: string } }) => {
      log.push(`dynamo.${cmd.constructor.name}`);
      return send(cmd as never);
    };
    try {
      const state = await assertFence(client, table, wh, 'us-west-1', 'prod-west');
      assert.deepEqual([state.epoch, state.changed, state.warehouseChanged], [2, true, true]);
    } finally {
      (client as { send: unknown }).send = send;
    }
    assert.deepEqual(log, [
      'dynamo.GetItemCommand',
      'warehouse.read',
      'warehouse.advance us-west-1 2',
      'dynamo.UpdateItemCommand',
    ]);
    assert.deepEqual(await dynamo(), { region: 'us-west-1', epoch: 2 });
    assert.deepEqual(wh.row, { region: 'us-west-1', epoch: 2 });
  });

  it('re-asserting the same region writes nothing anywhere', async () => {
    const log: string[] = [];
    const wh = memoryWarehouse(log);
    await assertFence(client, table, wh, 'us-east-1', 'prod-east');
    log.length = 0;
    const again = await assertFence(client, table, wh, 'us-east-1', 'prod-west');
    assert.deepEqual([again.epoch, again.changed, again.warehouseChanged], [1, false, false]);
    assert.deepEqual(log, ['warehouse.read']);
  });

  it('the warehouse write fails: the DynamoDB fence does not move and the error propagates', async () => {
    const log: string[] = [];
    await assertFence(client, table, memoryWarehouse(log), 'us-east-1', 'prod-east');
    const broken = memoryWarehouse(
      log,
      { region: 'us-east-1', epoch: 1 },
      new Error('Snowflake SQL API answered 401'),
    );
    await assert.rejects(assertFence(client, table, broken, 'us-west-1', 'prod-west'), /401/);
    assert.deepEqual(await dynamo(), { region: 'us-east-1', epoch: 1 });
  });

  it('an interrupted failover (warehouse moved, DynamoDB not) is finished with the same epoch', async () => {
    const log: string[] = [];
    const wh = memoryWarehouse(log);
    await assertFence(client, table, wh, 'us-east-1', 'prod-east');
    wh.row = { region: 'us-west-1', epoch: 2 }; // the earlier run stopped after the warehouse
    const state = await assertFence(client, table, wh, 'us-west-1', 'prod-west');
    assert.deepEqual([state.epoch, state.changed, state.warehouseChanged], [2, true, false]);
    assert.deepEqual(await dynamo(), { region: 'us-west-1', epoch: 2 });
  });

  it('the fence writer handler: a failing warehouse fails the invocation (pulumi up fails) and DynamoDB keeps its fence', async () => {
    const writer = require('../handlers/fence-writer') as typeof import('../handlers/fence-writer');
    process.env.CONTROL_TABLE_NAME = table;
    writer.setDynamoClient(client);
    const log: string[] = [];
    try {
      writer.setWarehouseFence(memoryWarehouse(log));
      const ok = await writer.handler({
        activeRegion: 'us-east-1',
        stack: 'prod-east',
        tf: { action: 'create' },
      });
      assert.deepEqual([ok.epoch, ok.warehouse], [1, { region: 'us-east-1', epoch: 1 }]);
      writer.setWarehouseFence(
        memoryWarehouse(log, { region: 'us-east-1', epoch: 1 }, new Error('connect ETIMEDOUT')),
      );
      await assert.rejects(
        writer.handler({ activeRegion: 'us-west-1', stack: 'prod-west', tf: { action: 'update' } }),
        /ETIMEDOUT/,
      );
      assert.deepEqual(await dynamo(), { region: 'us-east-1', epoch: 1 });
    } finally {
      writer.setWarehouseFence(undefined);
    }
  });
});

/** The Python local-warehouse SQL runner (dbt-app/local_warehouse/sql_stdio.py) as a RunStatement. */
async function startLocalWarehouse(): Promise<{
  run: RunStatement;
  close: () => Promise<void>;
  sent: string[];
}> {
  const proc: ChildProcessWithoutNullStreams = spawn(
    path.join(REPO, '.venv/bin/python'),
    ['-m', 'local_warehouse.sql_stdio'],
    {
      cwd: path.join(REPO, 'dbt-app'),
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr = (stderr + String(d)).slice(-4000);
  });
  const lines = readline.createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    let line = await lines.next();
    // fakesnow's server logs to stdout too: answers are the JSON lines.
    while (!line.done && !line.value.startsWith('{')) line = await lines.next();
    if (line.done) throw new Error(`the local warehouse exited: ${stderr}`);
    return JSON.parse(line.value) as { ready?: number; rows?: string[][]; error?: string };
  };
  await next(); // ready
  const sent: string[] = [];
  const run: RunStatement = async (statement) => {
    sent.push(statement.sql);
    proc.stdin.write(`${JSON.stringify({ sql: statement.sql, bindings: statement.bindings })}\n`);
    const answer = await next();
    if (answer.error) throw new Error(answer.error);
    return answer.rows ?? [];
  };
  return {
    run,
    sent,
    close: () =>
      new Promise((resolve) => {
        proc.once('exit', () => resolve());
        proc.stdin.end();
      }),
  };
}

describe('SqlWarehouseFence against the local warehouse (fakesnow server, the statements verbatim)', function () {
  this.timeout(120_000);
  let local: Awaited<ReturnType<typeof startLocalWarehouse>>;
  before(async () => {
    local = await startLocalWarehouse();
  });
  after(async () => local?.close());

  it('first fence, forward moves, idempotent re-advance, and refusals that leave the row alone', async () => {
    const fence = new SqlWarehouseFence(local.run);
    assert.equal(await fence.read(), undefined);
    assert.deepEqual(await fence.advance('us-east-1', 1), { region: 'us-east-1', epoch: 1 });
    assert.deepEqual(await fence.advance('us-east-1', 1), { region: 'us-east-1', epoch: 1 }); // same pair: no-op
    assert.deepEqual(await fence.advance('us-west-1', 2), { region: 'us-west-1', epoch: 2 });
    await assert.rejects(
      fence.advance('us-east-1', 1),
      /was not moved to us-east-1 epoch 1: it holds us-west-1 epoch 2/,
    );
    await assert.rejects(fence.advance('us-east-1', 2), /it holds us-west-1 epoch 2/);
    assert.deepEqual(await fence.read(), { region: 'us-west-1', epoch: 2 });
    assert.deepEqual((await local.run({ sql: 'SELECT COUNT(*) FROM CONTROL.FENCE', bindings: [] }))[0], [
      '1',
    ]);
    assert.deepEqual(
      new Set(local.sent.filter((s) => !s.startsWith('SELECT COUNT'))).size,
      3,
      'read, update, insert-first',
    );
  });

  it('end to end with assertFence: the warehouse and dynalite name the same region and epoch', async () => {
    const db = await startDynalite();
    try {
      await createControlTable(db.client, 'wf-e2e');
      await untilActive(db.client, 'wf-e2e');
      const fence = new SqlWarehouseFence(local.run);
      const state = await assertFence(db.client, 'wf-e2e', fence, 'us-east-1', 'prod-east');
      // The warehouse already holds us-west-1 epoch 2 (previous test): one past it.
      assert.deepEqual([state.activeRegion, state.epoch], ['us-east-1', 3]);
      assert.deepEqual(await fence.read(), { region: 'us-east-1', epoch: 3 });
      const item = (await db.client.send(new GetItemCommand({ TableName: 'wf-e2e', Key: FENCE_KEY }))).Item;
      assert.deepEqual([item?.activeRegion?.S, item?.epoch?.N], ['us-east-1', '3']);
    } finally {
      await db.close();
    }
  });
});

describe('Snowflake SQL API v2 request (key-pair JWT)', () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const creds = {
    account: 'xy12345.us-east-1',
    user: 'etl_fence',
    privateKey: pem,
    warehouse: 'ETL_WH',
    database: 'ETL',
    role: 'ETL_FENCE',
  };

  it('signs an RS256 JWT with the account, user and public-key fingerprint Snowflake expects', () => {
    const jwt = keyPairJwt(creds, new Date('2027-01-01T00:00:00Z'));
    const [h, p, s] = jwt.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    assert.equal(JSON.parse(Buffer.from(h, 'base64url').toString()).alg, 'RS256');
    assert.match(claims.iss, /^XY12345\.ETL_FENCE\.SHA256:[A-Za-z0-9+/]{43}=$/);
    assert.equal(claims.sub, 'XY12345.ETL_FENCE');
    assert.equal(claims.exp - claims.iat, 3600);
    assert.ok(
      verify(
        'RSA-SHA256',
        Buffer.from(`${h}.${p}`),
        createPublicKey(privateKey),
        Buffer.from(s, 'base64url'),
      ),
    );
  });

  it('sends one statement with positional bindings, and fails loudly on a non-200 answer', async () => {
    const { url, init } = sqlApiRequest(
      creds,
      { sql: 'UPDATE X SET A = ? WHERE B < ?', bindings: ['us-west-1', 2] },
      'jwt',
    );
    assert.equal(url, 'https://xy12345.us-east-1.snowflakecomputing.com/api/v2/statements');
    assert.equal(
      (init.headers as Record<string, string>)['X-Snowflake-Authorization-Token-Type'],
      'KEYPAIR_JWT',
    );
    const body = JSON.parse(String(init.body));
    assert.deepEqual(body.bindings, {
      1: { type: 'TEXT', value: 'us-west-1' },
      2: { type: 'FIXED', value: '2' },
    });
    assert.deepEqual([body.database, body.warehouse, body.role], ['ETL', 'ETL_WH', 'ETL_FENCE']);

    const answers = [
      new Response(JSON.stringify({ data: [['us-east-1', '4']] }), { status: 200 }),
      new Response('{"message":"JWT token is invalid"}', { status: 401 }),
    ];
    const run = sqlApiRunner(creds, { fetchImpl: (async () => answers.shift() as Response) as typeof fetch });
    assert.deepEqual(await run({ sql: 'SELECT 1', bindings: [] }), [['us-east-1', '4']]);
    await assert.rejects(run({ sql: 'SELECT 1', bindings: [] }), /answered 401 .*JWT token is invalid/);
  });
});
