import * as assert from 'node:assert/strict';
import { BatchWriteCommand } from '@aws-sdk/lib-dynamodb';
import { evaluateConsistency, handler, setDocumentClient } from '../handlers/check-consistency';
import { logger } from '../handlers/lib/logger';
import { createControlTable, startDynalite, type LocalDynamo } from '../local/dynalite';

const P = 'policycenter';
const TABLES = ['pc_policy', 'pc_policyperiod', 'pc_contact'];
let tableSeq = 0;

describe('check-consistency against dynalite', () => {
  let db: LocalDynamo;
  let tableName: string;
  let savedTableEnv: string | undefined;

  before(async () => {
    logger.setLogLevel('SILENT');
    savedTableEnv = process.env.CONTROL_TABLE_NAME;
    db = await startDynalite();
    setDocumentClient(db.doc);
  });
  after(async () => {
    if (savedTableEnv === undefined) delete process.env.CONTROL_TABLE_NAME;
    else process.env.CONTROL_TABLE_NAME = savedTableEnv;
    await db.close();
  });
  beforeEach(async () => {
    tableName = `etl-platform-control-${++tableSeq}`;
    await createControlTable(db.client, tableName);
    process.env.CONTROL_TABLE_NAME = tableName;
  });

  const upstream = (batchId: string, status = 'SUCCEEDED') => ({
    pk: `PIPELINE#${P}`,
    sk: `BATCH#${batchId}#UPSTREAM`,
    gsi1pk: `PIPELINE#${P}#UPSTREAM#${status}`,
    gsi1sk: batchId,
    pipeline: P,
    batchId,
    status,
    region: 'us-east-1',
  });
  const load = (batchId: string, table: string, status = 'SUCCEEDED', rows: unknown = 42) => ({
    pk: `PIPELINE#${P}`,
    sk: `BATCH#${batchId}#TABLE#${table}`,
    pipeline: P,
    batchId,
    table,
    status,
    rows,
    lakePath: `s3://lake/${P}/${table}/${batchId}/`,
  });
  const watermark = (batchId: string) => ({
    pk: `PIPELINE#${P}`,
    sk: 'WATERMARK#DOWNSTREAM',
    batchId,
    updatedAt: '2026-11-27T03:00:00Z',
  });

  async function seed(...items: Array<Record<string, unknown>>) {
    for (let i = 0; i < items.length; i += 25) {
      await db.doc.send(
        new BatchWriteCommand({
          RequestItems: { [tableName]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) },
        }),
      );
    }
  }
  const complete = (batchId: string) => [upstream(batchId), ...TABLES.map((t) => load(batchId, t))];
  const B1 = `${P}-20261126T020000Z`;
  const B2 = `${P}-20261127T020000Z`;
  const B3 = `${P}-20261128T020000Z`;

  it('SUCCESS: upstream SUCCEEDED, every table loaded, batch newer than the watermark', async () => {
    await seed(...complete(B2), watermark(B1), ...complete(B1), ...complete(B3).slice(0, 1));
    const result = await handler({ pipeline: P, batchId: B2, expectedTables: TABLES });
    assert.deepEqual(result, { consistencyStatus: 'SUCCESS', reasons: [] });
  });

  it('SUCCESS with no watermark yet (first batch ever) and rows = 0', async () => {
    await seed(upstream(B2), ...TABLES.map((t) => load(B2, t, 'SUCCEEDED', 0)));
    const result = await handler({ pipeline: P, batchId: B2, expectedTables: TABLES });
    assert.equal(result.consistencyStatus, 'SUCCESS', result.reasons.join('; '));
  });

  it('NOT_YET_REPLICATED: upstream batch record missing (replication lag, not a failure)', async () => {
    await seed(...TABLES.map((t) => load(B2, t)));
    const result = await handler({ pipeline: P, batchId: B2, expectedTables: TABLES });
    assert.equal(result.consistencyStatus, 'NOT_YET_REPLICATED');
    assert.deepEqual(result.reasons, [`upstream batch record BATCH#${B2}#UPSTREAM is missing`]);
  });

  it('NOT_YET_REPLICATED: upstream batch still RUNNING; FAILED once it is FAILED', async () => {
    await seed(upstream(B2, 'RUNNING'), ...TABLES.map((t) => load(B2, t)));
    const result = await handler({ pipeline: P, batchId: B2, expectedTables: TABLES });
    assert.equal(result.consistencyStatus, 'NOT_YET_REPLICATED');
    await seed(upstream(B2, 'FAILED'));
    const failed = await handler({ pipeline: P, batchId: B2, expectedTables: TABLES });
    assert.equal(failed.consistencyStatus, 'FAILED');
    assert.deepEqual(failed.reasons, [`upstream batch ${B2} is FAILED, not SUCCEEDED`]);
    assert.deepEqual(result.reasons, [`upstream batch ${B2} is RUNNING, not SUCCEEDED`]);
  });

  it("NOT_YET_REPLICATED: a table load record is missing (another batch's load does not count)", async () => {
    await seed(upstream(B2), load(B2, 'pc_policy'), load(B2, 'pc_policyperiod'), load(B1, 'pc_contact'));
    const result = await handler({ pipeline: P, batchId: B2, expectedTables: TABLES });
    assert.equal(result.consistencyStatus, 'NOT_YET_REPLICATED');
    assert.deepEqual(result.reasons, [`table pc_contact: no load record for batch ${B2}`]);
  });

  it('FAILED: a table load FAILED, and one has negative rows', async () => {
    await seed(
      upstream(B2),
      load(B2, 'pc_policy', 'FAILED'),
      load(B2, 'pc_policyperiod', 'SUCCEEDED', -1),
      load(B2, 'pc_contact'),
    );
    const result = await handler({ pipeline: P, batchId: B2, expectedTables: TABLES });
    assert.equal(result.consistencyStatus, 'FAILED', 'a FAILED load is final: no waiting');
    assert.deepEqual(result.reasons, [
      'table pc_policy: load is FAILED, not SUCCEEDED',
      'table pc_policyperiod: rows is -1, not a whole number >= 0',
    ]);
  });

  it('FAILED: out of order (batch older than the watermark), even with rerun', async () => {
    await seed(...complete(B1), watermark(B2));
    for (const rerun of [false, true]) {
      const result = await handler({ pipeline: P, batchId: B1, expectedTables: TABLES, rerun });
      assert.deepEqual(result.reasons, [
        `out of order: batch ${B1} is older than the last built batch ${B2}`,
      ]);
    }
  });

  it('FAILED: the batch equals the watermark (already built) unless rerun: true', async () => {
    await seed(...complete(B2), watermark(B2));
    const plain = await handler({ pipeline: P, batchId: B2, expectedTables: TABLES });
    assert.equal(plain.consistencyStatus, 'FAILED');
    assert.match(plain.reasons[0], /already built downstream/);
    const rerun = await handler({ pipeline: P, batchId: B2, expectedTables: TABLES, rerun: true });
    assert.equal(rerun.consistencyStatus, 'SUCCESS');
  });

  it('SUCCESS: rerun of a batch whose downstream build FAILED (watermark still behind it)', async () => {
    await seed(...complete(B2), watermark(B1), {
      pk: `PIPELINE#${P}`,
      sk: `BATCH#${B2}#DOWNSTREAM`,
      status: 'FAILED',
      attempt: 1,
    });
    const result = await handler({ pipeline: P, batchId: B2, expectedTables: TABLES });
    assert.equal(result.consistencyStatus, 'SUCCESS', result.reasons.join('; '));
  });

  it('pages through a batch whose items exceed one 1 MB query page', async () => {
    const many = Array.from({ length: 300 }, (_, i) => `t_${String(i).padStart(3, '0')}`);
    // 300 items of ~4 KB each: dynalite, like DynamoDB, returns them in more than one page.
    const pad = 'y'.repeat(4000);
    await seed(upstream(B2), ...many.map((t) => ({ ...load(B2, t), pad })));
    const result = await handler({ pipeline: P, batchId: B2, expectedTables: many });
    assert.equal(result.consistencyStatus, 'SUCCESS', result.reasons.slice(0, 3).join('; '));
  });

  it('missing CONTROL_TABLE_NAME -> error naming the variable', async () => {
    delete process.env.CONTROL_TABLE_NAME;
    await assert.rejects(handler({ pipeline: P, batchId: B2, expectedTables: TABLES }), (e: Error) => {
      assert.equal(e.name, 'MissingConfiguration');
      assert.match(e.message, /CONTROL_TABLE_NAME/);
      return true;
    });
  });

  it('malformed input -> InvalidInput', async () => {
    for (const [input, message] of [
      [{ pipeline: P, batchId: B2 }, /expectedTables/],
      [{ pipeline: P, batchId: B2, expectedTables: [] }, /expectedTables: must list at least one table/],
      [{ pipeline: P, batchId: 'x', expectedTables: TABLES }, /batchId: is not a batch id/],
      [
        { pipeline: 'billingcenter', batchId: B2, expectedTables: TABLES },
        /belongs to pipeline "policycenter"/,
      ],
      [{ pipeline: P, batchId: B2, expectedTables: TABLES, rerun: 'yes' }, /rerun: must be a boolean/],
    ] as const) {
      await assert.rejects(handler(input), (e: Error) => {
        assert.equal(e.name, 'InvalidInput');
        assert.match(e.message, message);
        return true;
      });
    }
  });
});

describe('evaluateConsistency (pure)', () => {
  const B = 'policycenter-20261127T020000Z';
  const pk = 'PIPELINE#policycenter';
  it('lists every reason at once', () => {
    const result = evaluateConsistency(
      [
        { pk, sk: `BATCH#${B}#UPSTREAM`, status: 'FAILED' },
        { pk, sk: `BATCH#${B}#TABLE#a`, status: 'SUCCEEDED', rows: '12' },
        { pk, sk: 'WATERMARK#DOWNSTREAM', batchId: 'policycenter-20261128T020000Z' },
      ],
      ['a', 'b'],
      B,
    );
    assert.equal(result.consistencyStatus, 'FAILED');
    assert.equal(result.reasons.length, 4, result.reasons.join('\n'));
  });
  it('an empty expected list is not vacuously consistent', () => {
    const result = evaluateConsistency([{ pk, sk: `BATCH#${B}#UPSTREAM`, status: 'SUCCEEDED' }], [], B);
    assert.deepEqual(result.reasons, ['no expected tables were given']);
  });
});

describe('trigger lag metric (EMF)', () => {
  const { triggerLagMetric } =
    require('../handlers/lib/consistency') as typeof import('../handlers/lib/consistency');
  const batchId = 'policycenter-20261127T070000Z';

  it('measures upstream completion to the first consistency check, in seconds', () => {
    const records = [
      {
        pk: 'PIPELINE#policycenter',
        sk: `BATCH#${batchId}#UPSTREAM`,
        status: 'SUCCEEDED',
        completedAt: '2026-11-27T07:40:00.000Z',
      },
    ];
    const metric = triggerLagMetric(
      records as any,
      'policycenter',
      batchId,
      new Date('2026-11-27T07:40:12.500Z'),
    )!;
    assert.equal(metric.TriggerLagSeconds, 13);
    assert.equal(metric.Pipeline, 'policycenter');
    assert.deepEqual((metric._aws as any).CloudWatchMetrics[0].Metrics, [
      { Name: 'TriggerLagSeconds', Unit: 'Seconds' },
    ]);
  });

  it('emits nothing when the upstream has no completion time', () => {
    assert.equal(triggerLagMetric([], 'policycenter', batchId, new Date()), undefined);
  });
});
