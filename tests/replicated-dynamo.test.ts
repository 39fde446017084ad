import assert from 'assert';
import {
  DynamoDBClient,
  TransactWriteItemsCommand,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  ReplicatedDynamo,
  compareWriteTimes,
  type ReplicatedDynamoOptions,
} from '../local/replicated-dynamo';
import { controlTableInput, runsTableInput } from '../local/table-schemas';

const EAST = 'us-east-1';
const WEST = 'us-west-1';
const TABLE = 'etl-platform-control';
const GSI = 'byPipelineStatus';

/** The control table exactly as the program declares it. */
const CONTROL_TABLE = controlTableInput(TABLE);

describe('local/replicated-dynamo: per-region replicas with async last-writer-wins replication', function () {
  this.timeout(10_000);
  let engines: ReplicatedDynamo[] = [];
  let clients: DynamoDBClient[] = [];

  afterEach(async () => {
    for (const c of clients) c.destroy();
    for (const e of engines) await e.stop();
    engines = [];
    clients = [];
  });

  async function start(opts: Partial<ReplicatedDynamoOptions> = {}): Promise<ReplicatedDynamo> {
    const engine = await ReplicatedDynamo.start({ regions: [EAST, WEST], tables: [CONTROL_TABLE], ...opts });
    engines.push(engine);
    return engine;
  }

  function doc(
    engine: ReplicatedDynamo,
    region: string,
    extra: Partial<DynamoDBClientConfig> = { maxAttempts: 1 },
  ): DynamoDBDocumentClient {
    const client = new DynamoDBClient({ ...engine.clientConfig(region), ...extra });
    clients.push(client);
    return DynamoDBDocumentClient.from(client);
  }

  /** A virtual clock the test moves by hand. */
  function virtualClock(startMs = 1_000_000): { now: () => number; tick: (ms: number) => void } {
    let t = startMs;
    return { now: () => t, tick: (ms) => (t += ms) };
  }

  const get = async (
    d: DynamoDBDocumentClient,
    pk: string,
    sk = 'S',
  ): Promise<Record<string, unknown> | undefined> =>
    (await d.send(new GetCommand({ TableName: TABLE, Key: { pk, sk }, ConsistentRead: true }))).Item;

  const claim = (d: DynamoDBDocumentClient, pk: string, region: string): Promise<unknown> =>
    d.send(
      new PutCommand({
        TableName: TABLE,
        Item: { pk, sk: 'CLAIM', region },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );

  it('a write in east reaches west only after the lag; west reads the old value until then (virtual clock)', async () => {
    const clock = virtualClock();
    const engine = await start({ lag: 1_000, now: clock.now });
    const east = doc(engine, EAST);
    const west = doc(engine, WEST);

    await east.send(new PutCommand({ TableName: TABLE, Item: { pk: 'A', sk: 'S', v: 1 } }));
    assert.strictEqual(await get(west, 'A'), undefined, 'not replicated before any time passes');
    clock.tick(1_000);
    assert.strictEqual(await engine.deliverDue(), 1);
    assert.deepStrictEqual(await get(west, 'A'), { pk: 'A', sk: 'S', v: 1 });

    await east.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { pk: 'A', sk: 'S' },
        UpdateExpression: 'SET v = :v',
        ExpressionAttributeValues: { ':v': 2 },
      }),
    );
    assert.strictEqual((await get(east, 'A'))?.v, 2, 'the local replica has the write at once');
    assert.strictEqual((await get(west, 'A'))?.v, 1, 'west still reads the old value');
    clock.tick(999);
    assert.strictEqual((await get(west, 'A'))?.v, 1, '1 ms before the lag elapses: still old');
    clock.tick(1);
    // No deliverDue(): a request at west's proxy first delivers what is due there.
    assert.strictEqual((await get(west, 'A'))?.v, 2);
    assert.deepStrictEqual(engine.stats(EAST).replicatedOut, 2);
    assert.deepStrictEqual(engine.stats(WEST).applied, 2);
    assert.strictEqual(engine.pending(), 0);
  });

  it('with real timers the record is applied when the lag has elapsed in wall time', async () => {
    const engine = await start({ lag: 80 });
    const east = doc(engine, EAST);
    const west = doc(engine, WEST);
    const t0 = Date.now();
    await east.send(new PutCommand({ TableName: TABLE, Item: { pk: 'T', sk: 'S', v: 1 } }));
    assert.strictEqual(await get(west, 'T'), undefined);
    while ((await get(west, 'T')) === undefined) await new Promise((r) => setTimeout(r, 10));
    assert.ok(Date.now() - t0 >= 75, `applied after ${Date.now() - t0} ms, lag was 80`);
    assert.strictEqual(engine.deliveries()[0]?.outcome, 'applied');
  });

  it('conditional claims guard only the local replica: both succeed in a partition, the later writer wins silently after heal', async () => {
    const clock = virtualClock();
    const engine = await start({ now: clock.now });
    const east = doc(engine, EAST);
    const west = doc(engine, WEST);

    engine.partition();
    await claim(east, 'CLAIM#b1', EAST);
    clock.tick(5);
    await claim(west, 'CLAIM#b1', WEST);
    await assert.rejects(
      claim(east, 'CLAIM#b1', EAST),
      { name: 'ConditionalCheckFailedException' },
      'the local replica still guards',
    );
    await engine.flush();
    assert.strictEqual(engine.pending(), 2, 'a partition delivers nothing, even on flush');

    await engine.heal();
    const snap = await engine.snapshot(TABLE);
    assert.deepStrictEqual(snap[EAST], [{ pk: 'CLAIM#b1', sk: 'CLAIM', region: WEST }]);
    assert.deepStrictEqual(snap[WEST], snap[EAST], 'both replicas converge to the later writer');
    const outcomes = engine.deliveries().map((d) => `${d.from}->${d.to}:${d.outcome}`);
    assert.deepStrictEqual(outcomes.sort(), [`${EAST}->${WEST}:skipped`, `${WEST}->${EAST}:applied`]);
    assert.strictEqual(engine.stats(WEST).skippedOlder, 1, "east's claim is silently gone");
  });

  it('deletes replicate, and an update and a delete of one item resolve by last writer', async () => {
    const clock = virtualClock();
    const engine = await start({ now: clock.now });
    const east = doc(engine, EAST);
    const west = doc(engine, WEST);
    const update = (pk: string): Promise<unknown> =>
      east.send(
        new UpdateCommand({
          TableName: TABLE,
          Key: { pk, sk: 'S' },
          UpdateExpression: 'SET v = :v',
          ExpressionAttributeValues: { ':v': 2 },
        }),
      );

    for (const pk of ['D', 'X', 'Y'])
      await east.send(new PutCommand({ TableName: TABLE, Item: { pk, sk: 'S', v: 1, keep: 'yes' } }));
    await engine.flush();
    await west.send(new DeleteCommand({ TableName: TABLE, Key: { pk: 'D', sk: 'S' } }));
    await engine.flush();
    assert.strictEqual(await get(east, 'D'), undefined, 'a delete in west removes the item in east');

    engine.partition();
    await update('X'); // earlier
    clock.tick(1);
    await west.send(new DeleteCommand({ TableName: TABLE, Key: { pk: 'X', sk: 'S' } })); // later: wins
    await west.send(new DeleteCommand({ TableName: TABLE, Key: { pk: 'Y', sk: 'S' } })); // earlier
    clock.tick(1);
    await update('Y'); // later: wins, as a whole item
    await engine.heal();

    const snap = await engine.snapshot(TABLE);
    assert.deepStrictEqual(snap[EAST], [{ pk: 'Y', sk: 'S', v: 2, keep: 'yes' }]);
    assert.deepStrictEqual(snap[WEST], snap[EAST]);
  });

  it('BatchWriteItem replicates each put and delete it made', async () => {
    const engine = await start({ now: virtualClock().now });
    const east = doc(engine, EAST);
    await east.send(new PutCommand({ TableName: TABLE, Item: { pk: 'B0', sk: 'S' } }));
    await east.send(
      new BatchWriteCommand({
        RequestItems: {
          [TABLE]: [
            { PutRequest: { Item: { pk: 'B1', sk: 'S', v: 1 } } },
            { PutRequest: { Item: { pk: 'B2', sk: 'S' } } },
            { DeleteRequest: { Key: { pk: 'B0', sk: 'S' } } },
          ],
        },
      }),
    );
    assert.strictEqual(engine.stats(EAST).replicatedOut, 4);
    await engine.flush();
    assert.deepStrictEqual((await engine.snapshot(TABLE))[WEST], [
      { pk: 'B1', sk: 'S', v: 1 },
      { pk: 'B2', sk: 'S' },
    ]);
  });

  it('records of different keys are reordered by per-record random lag (seeded), yet the replicas converge', async () => {
    async function run(seed: number): Promise<{ order: string[]; same: boolean }> {
      const clock = virtualClock();
      const engine = await start({ lag: { min: 0, max: 100 }, seed, now: clock.now });
      const east = doc(engine, EAST);
      for (let i = 0; i < 6; i++)
        await east.send(new PutCommand({ TableName: TABLE, Item: { pk: `K${i}`, sk: 'S', i } }));
      clock.tick(100);
      assert.strictEqual(await engine.deliverDue(), 6);
      const snap = await engine.snapshot(TABLE);
      const order = engine.deliveries().map((d) => JSON.parse(d.keyId)[1] as string);
      return {
        order,
        same: JSON.stringify(snap[EAST]) === JSON.stringify(snap[WEST]) && snap[WEST].length === 6,
      };
    }
    const writeOrder = Array.from({ length: 6 }, (_, i) => `S:K${i}`);
    const a = await run(7);
    assert.notDeepStrictEqual(a.order, writeOrder, 'applied in an order other than written');
    assert.deepStrictEqual([...a.order].sort(), [...writeOrder].sort());
    assert.ok(a.same, 'final state converges');
    const b = await run(7);
    assert.deepStrictEqual(b.order, a.order, 'the same seed gives the same order');
    const c = await run(8);
    assert.notDeepStrictEqual(c.order, a.order, 'another seed gives another order');
  });

  it('within one key a late-arriving older write is skipped (LWW), whatever the arrival order', async () => {
    const clock = virtualClock();
    // The first write of the key is slow to replicate, the second fast: they arrive reversed.
    const engine = await start({ now: clock.now, lag: (r) => (r.item?.v?.N === '1' ? 50 : 10) });
    const east = doc(engine, EAST);
    const west = doc(engine, WEST);
    await east.send(new PutCommand({ TableName: TABLE, Item: { pk: 'K', sk: 'S', v: 1 } }));
    await east.send(new PutCommand({ TableName: TABLE, Item: { pk: 'K', sk: 'S', v: 2 } }));
    clock.tick(50);
    await engine.deliverDue();
    const log = engine.deliveries();
    assert.deepStrictEqual(
      log.map((d) => [d.item?.v?.N, d.outcome]),
      [
        ['2', 'applied'],
        ['1', 'skipped'],
      ],
    );
    assert.ok(compareWriteTimes(log[1].writeTime, log[0].writeTime) < 0);
    assert.strictEqual((await get(west, 'K'))?.v, 2);
  });

  it('throttleNext answers in the DynamoDB error format, the SDK retries, the caller succeeds', async () => {
    const engine = await start();
    // The SDK's default retry strategy (its delay is random, under 1 s for one throttled attempt).
    const east = doc(engine, EAST, { maxAttempts: 3 });
    engine.throttleNext(EAST, 'PutItem', 1);
    const out = await east.send(new PutCommand({ TableName: TABLE, Item: { pk: 'R', sk: 'S' } }));
    assert.strictEqual(out.$metadata.attempts, 2);
    assert.strictEqual(engine.stats(EAST).requests.PutItem, 2);
    assert.strictEqual(engine.stats(EAST).throttled, 1);
    assert.strictEqual(engine.stats(EAST).replicatedOut, 1, 'only the write that happened replicates');

    // ThrottlingException: surfaced by name without retries; classified THROTTLING by the SDK with them.
    engine.throttleNext(EAST, 'GetItem', 1, 'ThrottlingException');
    await assert.rejects(get(doc(engine, EAST), 'R'), { name: 'ThrottlingException' });
    const seen: string[] = [];
    const fastRetry = {
      mode: 'standard',
      acquireInitialRetryToken: async () => ({ getRetryCount: () => 0, getRetryDelay: () => 0 }),
      refreshRetryTokenForRetry: async (
        t: { getRetryCount(): number },
        info: { errorType: string; error: Error },
      ) => {
        seen.push(info.errorType);
        if (info.errorType !== 'THROTTLING' || t.getRetryCount() >= 3) throw info.error;
        return { getRetryCount: () => t.getRetryCount() + 1, getRetryDelay: () => 5 };
      },
      recordSuccess: () => undefined,
    };
    engine.throttleNext(EAST, 'GetItem', 2, 'ThrottlingException');
    const before = engine.stats(EAST).requests.GetItem;
    assert.deepStrictEqual(
      await get(
        doc(engine, EAST, { retryStrategy: fastRetry as unknown as DynamoDBClientConfig['retryStrategy'] }),
        'R',
      ),
      {
        pk: 'R',
        sk: 'S',
      },
    );
    assert.deepStrictEqual(seen, ['THROTTLING', 'THROTTLING']);
    assert.strictEqual(engine.stats(EAST).requests.GetItem - before, 3);
  });

  it('refuses transactions clearly and replicates nothing of them', async () => {
    const engine = await start();
    const client = new DynamoDBClient({ ...engine.clientConfig(EAST), maxAttempts: 1 });
    clients.push(client);
    await assert.rejects(
      client.send(
        new TransactWriteItemsCommand({
          TransactItems: [{ Put: { TableName: TABLE, Item: { pk: { S: 'Q' }, sk: { S: 'S' } } } }],
        }),
      ),
      (e: Error) =>
        e.name === 'UnknownOperationException' && /TransactWriteItems .*no transactions/.test(e.message),
    );
    assert.strictEqual(engine.stats(EAST).replicatedOut, 0);
  });

  it("GSI queries on each replica see that replica's items only", async () => {
    const clock = virtualClock();
    const engine = await start({ now: clock.now });
    const east = doc(engine, EAST);
    const west = doc(engine, WEST);
    const query = async (d: DynamoDBDocumentClient): Promise<unknown[]> =>
      (
        (
          await d.send(
            new QueryCommand({
              TableName: TABLE,
              IndexName: GSI,
              KeyConditionExpression: 'gsi1pk = :p',
              ExpressionAttributeValues: { ':p': 'PIPELINE#pc#SUCCEEDED' },
            }),
          )
        ).Items ?? []
      ).map((i) => i.gsi1sk);
    engine.partition();
    await east.send(
      new PutCommand({
        TableName: TABLE,
        Item: { pk: 'P', sk: 'B1', gsi1pk: 'PIPELINE#pc#SUCCEEDED', gsi1sk: 'b1' },
      }),
    );
    await west.send(
      new PutCommand({
        TableName: TABLE,
        Item: { pk: 'P', sk: 'B2', gsi1pk: 'PIPELINE#pc#SUCCEEDED', gsi1sk: 'b2' },
      }),
    );
    assert.deepStrictEqual(await query(east), ['b1']);
    assert.deepStrictEqual(await query(west), ['b2']);
    await engine.heal();
    assert.deepStrictEqual(await query(east), ['b1', 'b2']);
    assert.deepStrictEqual(await query(west), ['b1', 'b2']);
  });

  it('a regional table (option regionalTables) is never replicated: each region keeps its own items', async () => {
    const RUNS = runsTableInput('etl-dbt-runs');
    const engine = await start({ tables: [CONTROL_TABLE, RUNS], regionalTables: ['etl-dbt-runs'] });
    const east = doc(engine, EAST);
    const west = doc(engine, WEST);
    await east.send(
      new PutCommand({ TableName: 'etl-dbt-runs', Item: { pk: 'RUN#b', sk: 'ATTEMPT#001', region: EAST } }),
    );
    await west.send(
      new PutCommand({ TableName: 'etl-dbt-runs', Item: { pk: 'RUN#b', sk: 'ATTEMPT#001', region: WEST } }),
    );
    await east.send(new PutCommand({ TableName: TABLE, Item: { pk: 'A', sk: 'S', v: 1 } }));
    await engine.quiesce();
    const runs = await engine.snapshot('etl-dbt-runs');
    assert.deepStrictEqual(runs[EAST], [{ pk: 'RUN#b', sk: 'ATTEMPT#001', region: EAST }]);
    assert.deepStrictEqual(runs[WEST], [{ pk: 'RUN#b', sk: 'ATTEMPT#001', region: WEST }]);
    assert.deepStrictEqual((await get(west, 'A'))?.v, 1, 'the control table still replicates');
    assert.strictEqual(engine.stats(EAST).replicatedOut, 1, 'only the control-table write left east');
    await assert.rejects(
      start({ regionalTables: ['etl-dbt-runz'] }),
      /option regionalTables\[0\] = "etl-dbt-runz" is invalid; name a table of `tables` \(etl-platform-control\)/,
    );
  });

  it('refuses bad options naming the key, the value and the fix', async () => {
    await assert.rejects(
      start({ lagMs: 5 } as Partial<ReplicatedDynamoOptions>),
      /option lagMs = 5 is invalid; known options are regions, tables/,
    );
    await assert.rejects(
      start({ lag: { min: 5, max: 1 } }),
      /option lag.max = 1 is invalid; give a finite number of ms >= min \(5\)/,
    );
    await assert.rejects(
      start({ regions: [EAST, EAST] }),
      /option regions\[1\] = "us-east-1" is invalid; region names must be distinct/,
    );
    const engine = await start();
    assert.throws(() => engine.setLag(-1), /option lag = -1 is invalid/);
    assert.throws(
      () => engine.throttleNext(EAST, 'PutItm', 1),
      /throttleNext op = "PutItm" is invalid; give one of GetItem/,
    );
    assert.throws(
      () => engine.endpoint('eu-west-1'),
      /unknown region "eu-west-1"; regions are us-east-1, us-west-1/,
    );
  });

  it('an engine error in a proxy answers HTTP 500 and is re-thrown by flush', async () => {
    const engine = await start({ now: virtualClock().now, lag: () => Number.NaN });
    await assert.rejects(
      doc(engine, EAST).send(new PutCommand({ TableName: TABLE, Item: { pk: 'N', sk: 'S' } })),
      (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
        return (
          e.name === 'InternalServerError' &&
          e.$metadata?.httpStatusCode === 500 &&
          /lag function returned NaN/.test(e.message)
        );
      },
    );
    await assert.rejects(
      engine.flush(),
      /1 error\(s\): .*lag function returned NaN .*return a finite number of ms >= 0/,
    );
    await engine.flush(); // reported once
  });

  it('quiesce refuses during a partition and converges after heal', async () => {
    const engine = await start({ lag: 5_000, now: virtualClock().now });
    await doc(engine, EAST).send(new PutCommand({ TableName: TABLE, Item: { pk: 'Z', sk: 'S' } }));
    engine.partition();
    await assert.rejects(engine.quiesce(), /during a partition cannot converge; call heal\(\) first/);
    engine.setLag(0);
    await engine.heal();
    await engine.quiesce();
    assert.strictEqual(engine.pending(), 0);
    assert.deepStrictEqual((await engine.snapshot(TABLE))[WEST], [{ pk: 'Z', sk: 'S' }]);
  });

  it('start and stop leave no open handles (servers, sockets, timers)', async () => {
    const handles = (): Record<string, number> => {
      const counts: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo())
        if (/TCP|Timeout/.test(r)) counts[r] = (counts[r] ?? 0) + 1;
      return counts;
    };
    await new Promise((r) => setImmediate(r)); // mocha arms its own test timer once the test has returned its promise
    const before = handles();
    const engine = await ReplicatedDynamo.start({
      regions: [EAST, WEST],
      tables: [CONTROL_TABLE],
      lag: 10_000,
    });
    const client = new DynamoDBClient({ ...engine.clientConfig(EAST), maxAttempts: 1 });
    await DynamoDBDocumentClient.from(client).send(
      new PutCommand({ TableName: TABLE, Item: { pk: 'H', sk: 'S' } }),
    );
    assert.strictEqual(engine.pending(), 1, 'a record is waiting on a 10 s timer');
    const during = handles();
    assert.ok(
      (during.TCPServerWrap ?? 0) >= (before.TCPServerWrap ?? 0) + 4,
      'two dynalites and two proxies listen',
    );
    assert.ok((during.Timeout ?? 0) > (before.Timeout ?? 0), 'the lag timer is armed');
    client.destroy();
    await engine.stop();
    await engine.stop(); // idempotent
    // A start that fails half-way (dynalite refuses the table name) closes what it opened.
    await assert.rejects(
      ReplicatedDynamo.start({ regions: [EAST, WEST], tables: [{ ...CONTROL_TABLE, TableName: 'x' }] }),
      /TableName must be at least 3 characters/,
    );
    await new Promise((r) => setImmediate(r));
    assert.deepStrictEqual(handles(), before);
    await assert.rejects(fetch(engine.endpoint(EAST)), 'the proxy no longer listens');
  });
});
