import * as assert from 'node:assert/strict';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ControlTable } from '../ops/clients';
import { rerun } from '../ops/commands/rerun';
import { batchKey, loadBatches, status, statusGsiKey } from '../ops/commands/status';
import { memoryIo, OpsError } from '../ops/io';
import { startDynalite, type LocalDynamo } from '../local/dynalite';
import { FakeQueue, fakeEvents, fakeScheduler, fakeSfn, smArn } from './harness/ops-fakes';

const P = 'policycenter';
const NOW = new Date('2026-11-27T12:00:00Z');
const SINCE = new Date('2026-11-26T12:00:00Z');
const B = (hhmmss: string, day = '20261127') => `${P}-${day}T${hhmmss}Z`;

describe('etl-ops status and rerun (against dynalite)', () => {
  let db: LocalDynamo;
  let control: ControlTable;

  const put = (item: Record<string, unknown>) =>
    db.doc.send(new PutCommand({ TableName: db.tableName, Item: item }));
  const record = (batchId: string, part: 'UPSTREAM' | 'DOWNSTREAM', fields: Record<string, unknown>) =>
    put({
      ...batchKey(P, batchId, part),
      pipeline: P,
      batchId,
      gsi1pk: statusGsiKey(P, part, String(fields.status)),
      gsi1sk: batchId,
      region: 'us-east-1',
      ...fields,
    });
  const downstream = async (batchId: string) =>
    (await db.doc.send(new GetCommand({ TableName: db.tableName, Key: batchKey(P, batchId, 'DOWNSTREAM') })))
      .Item as Record<string, unknown>;

  before(async () => {
    db = await startDynalite();
    control = { doc: db.doc, tableName: db.tableName, region: 'us-east-1' };
    await put({
      pk: 'FENCE',
      sk: 'ACTIVE',
      activeRegion: 'us-east-1',
      epoch: 3,
      changedAt: '2026-11-01T00:00:00Z',
      changedBy: 'prod-east',
    });
    const ok = { startedAt: '2026-11-27T02:00:03Z', completedAt: '2026-11-27T02:41:05Z' };
    // succeeded end to end
    await record(B('020000'), 'UPSTREAM', { status: 'SUCCEEDED', ...ok });
    await record(B('020000'), 'DOWNSTREAM', {
      status: 'SUCCEEDED',
      attempt: 1,
      startedAt: '2026-11-27T02:41:10Z',
      completedAt: '2026-11-27T03:02:10Z',
    });
    // downstream failed
    await record(B('030000'), 'UPSTREAM', { status: 'SUCCEEDED', ...ok });
    await record(B('030000'), 'DOWNSTREAM', {
      status: 'FAILED',
      attempt: 1,
      error: 'DbtRunFailed',
      cause: 'model fct_policy failed',
      startedAt: '2026-11-27T03:40:00Z',
      completedAt: '2026-11-27T03:45:30Z',
    });
    // downstream running
    await record(B('040000'), 'UPSTREAM', { status: 'SUCCEEDED', ...ok });
    await record(B('040000'), 'DOWNSTREAM', {
      status: 'RUNNING',
      attempt: 1,
      startedAt: '2026-11-27T04:40:00Z',
      executionArn: 'arn:aws:states:us-east-1:123456789012:execution:etl-policycenter-downstream:x',
    });
    // upstream failed: no downstream
    await record(B('050000'), 'UPSTREAM', {
      status: 'FAILED',
      error: 'States.TaskFailed',
      cause: 'table pc_policy: Glue job failed',
      startedAt: '2026-11-27T05:00:02Z',
      completedAt: '2026-11-27T05:10:02Z',
    });
    // upstream succeeded, downstream never triggered
    await record(B('060000'), 'UPSTREAM', { status: 'SUCCEEDED', ...ok });
    // older than the window
    await record(B('020000', '20261120'), 'UPSTREAM', { status: 'SUCCEEDED', ...ok });
  });
  after(() => db.close());

  describe('status', () => {
    it('joins upstream and downstream records of the window from the GSI, newest first', async () => {
      const rows = await loadBatches(control, P, SINCE);
      assert.deepEqual(
        rows.map((r) => [r.batchId, r.upstream?.status, r.downstream?.status]),
        [
          [B('060000'), 'SUCCEEDED', undefined],
          [B('050000'), 'FAILED', undefined],
          [B('040000'), 'SUCCEEDED', 'RUNNING'],
          [B('030000'), 'SUCCEEDED', 'FAILED'],
          [B('020000'), 'SUCCEEDED', 'SUCCEEDED'],
        ],
      );
    });

    it('prints the batch table, the fence, rule and schedule states and DLQ depths', async () => {
      const io = memoryIo();
      const queue = new FakeQueue();
      queue.add('{}', {});
      const problems = await status(io, {
        pipelines: [P],
        since: SINCE,
        records: control,
        regions: [
          {
            region: 'us-east-1',
            control,
            events: fakeEvents().events,
            scheduler: fakeScheduler(),
            sqs: queue,
          },
        ],
      });
      assert.equal(problems, 0, io.text());
      const text = io.text();
      const line = (batchId: string) => io.lines.find((l) => l.includes(batchId)) ?? '';
      assert.match(
        io.lines.find((l) => l.includes('BATCH')) ?? '',
        /BATCH\s+UPSTREAM\s+DOWNSTREAM\s+ATTEMPT\s+REGION\s+UP TIME\s+DOWN TIME\s+ERROR/,
      );
      assert.match(line(B('020000')), /SUCCEEDED\s+SUCCEEDED\s+1\s+us-east-1\s+41m02s\s+21m00s/);
      assert.match(
        line(B('030000')),
        /SUCCEEDED\s+FAILED\s+1\s+us-east-1\s+41m02s\s+5m30s\s+DbtRunFailed: model fct_policy failed/,
      );
      assert.match(line(B('040000')), /SUCCEEDED\s+RUNNING\s+1\s+us-east-1\s+41m02s\s+-/);
      assert.match(
        line(B('050000')),
        /FAILED\s+-\s+-\s+us-east-1\s+10m00s\s+-\s+States.TaskFailed: table pc_policy: Glue job failed/,
      );
      assert.match(line(B('060000')), /SUCCEEDED\s+NOT TRIGGERED/);
      assert.ok(!text.includes('20261120'), 'batches before --since are not shown');
      assert.match(text, /activeRegion=us-east-1 epoch=3 .*\(this region is active\)/);
      assert.match(text, /policycenter-downstream-trigger\s+ENABLED/);
      assert.match(text, /policycenter-upstream\s+ENABLED/);
      assert.match(text, /prod-east-schedule-dlq-queue-7a8b9c\s+1\s+0\s+schedule policycenter-upstream/);
      assert.match(
        text,
        /prod-east-trigger-dlq-queue-1a2b3c\s+1\s+0\s+rule policycenter-downstream-trigger -> etl-policycenter-downstream/,
      );
    });

    it('reports a section it cannot read (e.g. a missing client) and counts it as a problem', async () => {
      const io = memoryIo();
      const missing = new Proxy(
        {},
        { get: () => () => Promise.reject(new Error('needs the package @aws-sdk/client-eventbridge')) },
      );
      const problems = await status(io, {
        pipelines: [P],
        since: SINCE,
        records: control,
        regions: [
          {
            region: 'us-east-1',
            control,
            events: missing as never,
            scheduler: fakeScheduler(),
            sqs: new FakeQueue(),
          },
        ],
      });
      assert.equal(problems, 2); // rules, and the DLQs (found through the rules)
      assert.match(
        io.errors.join('\n'),
        /rules on bus etl-platform: unavailable \(needs the package @aws-sdk\/client-eventbridge\)/,
      );
    });
  });

  describe('rerun', () => {
    const args = { pipeline: P, operator: 'alice', yes: true };

    it('refuses a batch that does not exist', async () => {
      const { sfn, started } = fakeSfn();
      await assert.rejects(
        rerun(memoryIo(), { ...args, batchId: B('235900') }, { control, sfn }),
        (e: Error) => e instanceof OpsError && /does not exist/.test(e.message),
      );
      assert.equal(started.length, 0);
    });

    it('refuses a batch whose downstream was never triggered, pointing to the missed-batch runbook', async () => {
      const { sfn, started } = fakeSfn();
      await assert.rejects(
        rerun(memoryIo(), { ...args, batchId: B('060000') }, { control, sfn }),
        /never triggered.*missed-batch/s,
      );
      assert.equal(started.length, 0);
    });

    it('refuses a RUNNING batch', async () => {
      const { sfn, started } = fakeSfn();
      await assert.rejects(
        rerun(memoryIo(), { ...args, batchId: B('040000') }, { control, sfn }),
        /is RUNNING .*refusing/,
      );
      assert.equal(started.length, 0);
    });

    it('refuses a SUCCEEDED batch without --force, and --force without a reason', async () => {
      const { sfn, started } = fakeSfn();
      await assert.rejects(
        rerun(memoryIo(), { ...args, batchId: B('020000') }, { control, sfn }),
        /already SUCCEEDED.*--force --reason/,
      );
      await assert.rejects(
        rerun(memoryIo(), { ...args, batchId: B('020000'), force: true }, { control, sfn }),
        /--force needs --reason/,
      );
      assert.equal(started.length, 0);
      assert.equal((await downstream(B('020000'))).status, 'SUCCEEDED');
    });

    it('refuses to run in a region the fence does not name', async () => {
      const { sfn, started } = fakeSfn();
      await assert.rejects(
        rerun(
          memoryIo(),
          { ...args, batchId: B('030000') },
          { control: { ...control, region: 'us-west-1' }, sfn },
        ),
        /fence names us-east-1.*--region us-east-1/,
      );
      assert.equal(started.length, 0);
    });

    it('reruns a FAILED batch: execution <batchId>-rerun-<attempt+1> with the rerun input', async () => {
      const { sfn, started } = fakeSfn();
      const io = memoryIo();
      const result = await rerun(
        io,
        { ...args, batchId: B('030000'), reason: 'dbt model fixed' },
        { control, sfn },
      );
      assert.deepEqual(started, [
        {
          stateMachineArn: smArn('etl-policycenter-downstream'),
          name: `${B('030000')}-rerun-2`,
          input: JSON.stringify({ rerun: { pipeline: P, batchId: B('030000'), reason: 'dbt model fixed' } }),
        },
      ]);
      assert.equal(result?.executionName, `${B('030000')}-rerun-2`);
      assert.match(
        io.text(),
        /Plan:\n {2}- start etl-policycenter-downstream in us-east-1: name policycenter-20261127T030000Z-rerun-2/,
      );
    });

    it('--dry-run prints the plan and starts nothing; a declined confirmation aborts', async () => {
      const { sfn, started } = fakeSfn();
      const io = memoryIo();
      await rerun(io, { ...args, yes: false, dryRun: true, batchId: B('030000') }, { control, sfn });
      assert.match(io.text(), /Dry run: no changes made/);
      await assert.rejects(
        rerun(memoryIo([false]), { ...args, yes: false, batchId: B('030000') }, { control, sfn }),
        /Aborted: not confirmed/,
      );
      assert.equal(started.length, 0);
    });

    it('--force on a SUCCEEDED batch records the reason on the record, then starts the rerun', async () => {
      const { sfn, started } = fakeSfn();
      await rerun(
        memoryIo(),
        { ...args, batchId: B('020000'), force: true, reason: 'source data corrected (INC-1234)' },
        { control, sfn, now: () => NOW },
      );
      const item = await downstream(B('020000'));
      assert.equal(item.status, 'FAILED');
      assert.equal(item.gsi1pk, statusGsiKey(P, 'DOWNSTREAM', 'FAILED'));
      assert.equal(item.rerunReason, 'source data corrected (INC-1234)');
      assert.equal(item.forcedBy, 'alice');
      assert.equal(item.forcedAt, NOW.toISOString());
      assert.equal(started.length, 1);
      assert.equal(started[0].name, `${B('020000')}-rerun-2`);
      assert.deepEqual(JSON.parse(started[0].input), {
        rerun: { pipeline: P, batchId: B('020000'), reason: 'source data corrected (INC-1234)' },
      });
    });

    it('explains ExecutionAlreadyExists', async () => {
      const { sfn } = fakeSfn({
        startExecution: async () => {
          throw Object.assign(new Error('Execution Already Exists'), { name: 'ExecutionAlreadyExists' });
        },
      });
      await assert.rejects(
        rerun(memoryIo(), { ...args, batchId: B('030000') }, { control, sfn }),
        /already exists/,
      );
    });
  });
});
