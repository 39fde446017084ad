import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { RegionClients } from '../ops/clients';
import { run } from '../ops/cli';
import { batchKey, statusGsiKey } from '../ops/commands/status';
import { memoryIo } from '../ops/io';
import { startDynalite, type LocalDynamo } from '../local/dynalite';
import { FakeQueue, fakeEvents, fakeScheduler, fakeSfn } from './harness/ops-fakes';

/** The commander wiring end to end: exit codes and messages, with fake clients. */
describe('etl-ops CLI wiring', () => {
  let db: LocalDynamo;
  let workDir: string;
  const NOW = new Date('2026-11-27T12:00:00Z');
  const P = 'policycenter';
  const BATCH = 'policycenter-20261127T070000Z';

  before(async () => {
    db = await startDynalite();
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-ops-cli-'));
    fs.copyFileSync(
      path.join(__dirname, '..', 'Pulumi.prod-east.yaml'),
      path.join(workDir, 'Pulumi.prod-east.yaml'),
    );
    await db.doc.send(
      new PutCommand({
        TableName: db.tableName,
        Item: { pk: 'FENCE', sk: 'ACTIVE', activeRegion: 'us-east-1', epoch: 3 },
      }),
    );
    for (const [part, status] of [
      ['UPSTREAM', 'SUCCEEDED'],
      ['DOWNSTREAM', 'FAILED'],
    ] as const) {
      await db.doc.send(
        new PutCommand({
          TableName: db.tableName,
          Item: {
            ...batchKey(P, BATCH, part),
            pipeline: P,
            batchId: BATCH,
            status,
            attempt: part === 'DOWNSTREAM' ? 1 : undefined,
            region: 'us-east-1',
            gsi1pk: statusGsiKey(P, part, status),
            gsi1sk: BATCH,
            startedAt: '2026-11-27T07:00:03Z',
            completedAt: '2026-11-27T07:41:55Z',
            error: part === 'DOWNSTREAM' ? 'DbtRunFailed' : undefined,
          },
        }),
      );
    }
  });
  after(async () => {
    await db.close();
    fs.rmSync(workDir, { recursive: true, force: true });
  });

  function clients(opts: { missingEvents?: boolean } = {}) {
    const sfn = fakeSfn();
    const queue = new FakeQueue();
    const c: RegionClients = {
      control: (region) => ({ doc: db.doc, tableName: db.tableName, region }),
      sfn: () => sfn.sfn,
      events: () => {
        if (opts.missingEvents) throw new Error('EventBridge is unreachable in us-east-1');
        return fakeEvents().events;
      },
      scheduler: () => fakeScheduler(),
      sqs: () => queue,
      reachable: async () => true,
    };
    return { c, sfn };
  }
  const cli = async (argv: string[], opts: { missingEvents?: boolean; answers?: boolean[] } = {}) => {
    const io = memoryIo(opts.answers);
    const { c, sfn } = clients(opts);
    const code = await run(argv, {
      io,
      clients: () => c,
      stackOps: () => assert.fail('no stack ops'),
      now: () => NOW,
      workDir,
      operator: 'alice',
    });
    return { code, io, sfn };
  };

  it('status: exit 0 with the table; exit 1 naming the failure when a section cannot be read', async () => {
    const ok = await cli(['status', '--pipeline', P, '--region', 'us-east-1']);
    assert.equal(ok.code, 0, ok.io.text());
    assert.match(
      ok.io.text(),
      /policycenter-20261127T070000Z\s+SUCCEEDED\s+FAILED\s+1\s+us-east-1\s+41m52s\s+41m52s\s+DbtRunFailed/,
    );
    const missing = await cli(['status', '--region', 'us-east-1']);
    assert.equal(missing.code, 0, 'pipelines come from Pulumi.prod-east.yaml');
    assert.match(missing.io.text(), /Pipeline claimcenter/);
    const noEvents = await cli(['status', '--pipeline', P, '--region', 'us-east-1'], { missingEvents: true });
    assert.equal(noEvents.code, 1);
    assert.match(noEvents.io.errors.join('\n'), /EventBridge is unreachable in us-east-1/);
    assert.match(noEvents.io.errors.join('\n'), /error: status: 2 section\(s\) could not be read/);
  });

  it('rerun: the region comes from the fence; a declined prompt exits 1 and starts nothing', async () => {
    const declined = await cli(['rerun', '--pipeline', P, '--batch', BATCH], { answers: [false] });
    assert.equal(declined.code, 1);
    assert.equal(declined.sfn.started.length, 0);
    assert.match(declined.io.errors.join('\n'), /error: Aborted: not confirmed/);
    const dry = await cli(['rerun', '--pipeline', P, '--batch', BATCH, '--dry-run']);
    assert.equal(dry.code, 0);
    assert.equal(dry.sfn.started.length, 0);
    const yes = await cli([
      'rerun',
      '--pipeline',
      P,
      '--batch',
      BATCH,
      '--yes',
      '--reason',
      'dbt model fixed',
    ]);
    assert.equal(yes.code, 0, yes.io.text());
    assert.equal(yes.sfn.started[0].name, `${BATCH}-rerun-2`);
  });

  it('usage errors, bad times and unknown regions exit non-zero with a message', async () => {
    const noBatch = await cli(['rerun', '--pipeline', P]);
    assert.equal(noBatch.code, 1);
    assert.match(noBatch.io.errors.join('\n'), /required option '-b, --batch <batchId>' not specified/);
    const badTime = await cli(['replay', '--region', 'us-west-1', '--since', 'yesterday']);
    assert.equal(badTime.code, 1);
    assert.match(badTime.io.errors.join('\n'), /Invalid --since "yesterday"/);
    const badRegion = await cli(['dlq', 'list', '--region', 'eu-west-1']);
    assert.equal(badRegion.code, 1);
    assert.match(badRegion.io.errors.join('\n'), /Unknown region "eu-west-1"/);
  });

  it('dlq list finds the queues on the rules and schedules', async () => {
    const r = await cli(['dlq', 'list', '--region', 'us-east-1']);
    assert.equal(r.code, 0, r.io.text());
    assert.match(
      r.io.text(),
      /prod-east-forward-dlq-queue-4d5e6f\s+0\s+0\s+rule forward-to-us-west-1 -> bus etl-platform \(us-west-1\)/,
    );
  });
});
