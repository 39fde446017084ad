import { strict as assert } from 'assert';
import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import type { TaskState } from '../state-machines/asl';
import { downstreamWorkflow, type DownstreamWorkflowRefs } from '../state-machines/downstream';
import { checkGraph } from '../state-machines/graph';
import { mergeStatements, type ResolvedStatement } from '../state-machines/policy';
import { handler as batchContextHandler } from '../handlers/batch-context';
import { handler as checkConsistencyHandler } from '../handlers/check-consistency';
import { handler as getDbtRunHandler } from '../handlers/get-dbt-run';
import { handler as startDbtRunHandler } from '../handlers/start-dbt-run';
import { validateAsl } from './harness/asl-validate';
import type { LocalDynamo } from './harness/dynalite';
import { useLocalDownstream } from './harness/local-downstream';
import type { FakeDbtApi, FakeRun } from './harness/fake-dbt-api';
import { allStates, runWorkflow, type LambdaHandler, type RunOptions, type RunResult } from './harness/sfn-local';
import { ACCOUNT, PIPELINE, REGION, SOURCE, TABLES, upstreamEvent as wellFormedEvent } from './harness/malformed-events';

const OTHER_REGION = 'us-west-1';
const TABLE = 'etl-platform-control';
const TABLE_ARN = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE}`;
const fnArn = (name: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:etl-platform-${name}`;
const FN = {
  batchContext: fnArn('batch-context'),
  checkConsistency: fnArn('check-consistency'),
  startDbtRun: fnArn('start-dbt-run'),
  getDbtRun: fnArn('get-dbt-run'),
};
const BUS_ARN = `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/etl-platform`;
const TOPIC_ARN = `arn:aws:sns:${REGION}:${ACCOUNT}:etl-platform-alerts`;
const KMS_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

const refs: DownstreamWorkflowRefs = {
  region: REGION,
  eventSource: SOURCE,
  pipeline: { name: PIPELINE, expectedTables: TABLES, dbtSelect: 'tag:policycenter' },
  controlTable: { name: TABLE, arn: TABLE_ARN },
  functions: {
    batchContext: { arn: FN.batchContext },
    checkConsistency: { arn: FN.checkConsistency },
    startDbtRun: { arn: FN.startDbtRun },
    getDbtRun: { arn: FN.getDbtRun },
  },
  bus: { arn: BUS_ARN },
  alerts: { arn: TOPIC_ARN, kmsKeyArn: KMS_ARN },
  dbt: { pollInitialSeconds: 30, pollMaxSeconds: 300, maxRunMinutes: 30, lockWaitMinutes: 60 },
  timeoutSeconds: 6 * 3600,
};

// Built once: the local engine validates a definition when it first runs it (~0.5 s).
const { definition, statements } = downstreamWorkflow(refs);

const BATCH = 'policycenter-20261127T020000Z';
const BATCH_2 = 'policycenter-20261127T030000Z';

function upstreamEvent(batchId: string, detail: Record<string, unknown> = {}, envelope: Record<string, unknown> = {}) {
  return wellFormedEvent(detail, envelope, batchId);
}

const item = (attrs: Record<string, string | number>): Record<string, AttributeValue> =>
  Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, typeof v === 'number' ? { N: String(v) } : { S: v }]));

describe('downstream workflow', function () {
  this.timeout(60_000);

  describe('definition', () => {
    it('passes asl-validator and checkGraph (every Task has Retry and Catch, every Next exists)', () => {
      assert.deepEqual(validateAsl(definition), []);
      assert.deepEqual(checkGraph(definition), []);
      assert.equal(definition.TimeoutSeconds, refs.timeoutSeconds);
    });

    it('refuses refs that cannot work (short execution timeout, poll cap below start, foreign pipeline name)', () => {
      assert.throws(() => downstreamWorkflow({ ...refs, timeoutSeconds: 3600 }), /timeoutSeconds = 3600 is shorter/);
      assert.throws(
        () => downstreamWorkflow({ ...refs, dbt: { ...refs.dbt, pollInitialSeconds: 600 } }),
        /pollMaxSeconds is below/,
      );
      assert.throws(() => downstreamWorkflow({ ...refs, pipeline: { ...refs.pipeline, name: 'Policy Center' } }), /not a pipeline name/);
    });

    it('derives IAM with no wildcard and exactly the referenced ARNs', () => {
      const merged = mergeStatements(statements as ResolvedStatement[]);
      const actions = new Set(merged.flatMap((s) => s.Action));
      const resources = new Set(merged.flatMap((s) => s.Resource));
      for (const a of actions) assert.ok(!a.includes('*'), `wildcard action ${a}`);
      for (const r of resources) assert.ok(!r.includes('*'), `wildcard resource ${r}`);
      assert.deepEqual(
        [...resources].sort(),
        [TABLE_ARN, ...Object.values(FN), BUS_ARN, TOPIC_ARN, KMS_ARN].sort(),
      );
      assert.deepEqual(
        [...actions].sort(),
        [
          'dynamodb:DeleteItem',
          'dynamodb:GetItem',
          'dynamodb:PutItem',
          'dynamodb:UpdateItem',
          'events:PutEvents',
          'kms:Decrypt',
          'kms:GenerateDataKey',
          'lambda:InvokeFunction',
          'sns:Publish',
        ],
      );
      const byResource = (r: string) => merged.filter((s) => s.Resource.includes(r)).flatMap((s) => s.Action);
      assert.deepEqual(byResource(FN.getDbtRun), ['lambda:InvokeFunction']);
      assert.deepEqual(byResource(BUS_ARN), ['events:PutEvents']);
    });

    it('retries DbtApiUnavailable and Lambda service errors with jitter, never DbtRunFailed/DbtApiRejected/InvalidInput', () => {
      const lambdaTasks = allStates(definition).filter(
        (e): e is [string, TaskState] => e[1].Type === 'Task' && e[1].Resource === 'arn:aws:states:::lambda:invoke',
      );
      assert.deepEqual(lambdaTasks.map(([n]) => n).sort(), [
        'BatchContext',
        'ConsistencyCheck',
        'FinishContext',
        'GetDbtRun',
        'RefreshContext',
        'StartDbtRun',
      ]);
      for (const [name, state] of lambdaTasks) {
        const retried = (state.Retry ?? []).flatMap((r) => r.ErrorEquals);
        for (const never of ['DbtRunFailed', 'DbtApiRejected', 'InvalidInput', 'States.ALL', 'States.TaskFailed']) {
          assert.ok(!retried.includes(never), `${name} retries ${never}`);
        }
        assert.ok(retried.includes('Lambda.TooManyRequestsException'), `${name} does not retry Lambda throttling`);
        for (const r of state.Retry ?? []) assert.equal(r.JitterStrategy, 'FULL', `${name}: no jitter`);
      }
      for (const name of ['StartDbtRun', 'GetDbtRun']) {
        const state = definition.States[name] as TaskState;
        assert.ok(state.Retry?.some((r) => r.ErrorEquals.includes('DbtApiUnavailable') && (r.BackoffRate ?? 1) > 1));
      }
    });
  });

  describe('executed locally (dynalite + real handlers + fake dbt API)', () => {
    let db: LocalDynamo;
    let api: FakeDbtApi;
    const local = useLocalDownstream(TABLE, REGION);
    before(() => {
      ({ db, api } = local);
    });

    beforeEach(async () => {
      await local.clear();
      await seedFence(REGION);
    });

    // ---- seeding and reading

    async function put(attrs: Record<string, string | number>): Promise<void> {
      await db.client.send(new PutItemCommand({ TableName: TABLE, Item: item(attrs) }));
    }
    async function seedFence(activeRegion: string, epoch = 3): Promise<void> {
      await put({ pk: 'FENCE', sk: 'ACTIVE', activeRegion, epoch, changedAt: '2026-11-01T00:00:00Z', changedBy: 'prod-east' });
    }
    /** Upstream SUCCEEDED plus a SUCCEEDED load per table (all of TABLES unless given). */
    async function seedUpstream(batchId: string, tables: string[] = TABLES): Promise<void> {
      const pk = `PIPELINE#${PIPELINE}`;
      await put({ pk, sk: `BATCH#${batchId}#UPSTREAM`, pipeline: PIPELINE, batchId, status: 'SUCCEEDED', region: REGION });
      for (const table of tables) {
        await put({ pk, sk: `BATCH#${batchId}#TABLE#${table}`, pipeline: PIPELINE, batchId, table, status: 'SUCCEEDED', rows: 42 });
      }
    }
    async function getItem(sk: string, pk = `PIPELINE#${PIPELINE}`): Promise<Record<string, AttributeValue> | undefined> {
      return (await db.client.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: pk }, sk: { S: sk } }, ConsistentRead: true }))).Item;
    }
    const downstream = (batchId: string) => getItem(`BATCH#${batchId}#DOWNSTREAM`);
    const lock = () => getItem('LOCK#DOWNSTREAM');
    async function allItems(): Promise<Record<string, AttributeValue>[]> {
      return (await db.client.send(new ScanCommand({ TableName: TABLE }))).Items ?? [];
    }

    // ---- running

    const realHandlers: Record<string, LambdaHandler> = {
      [FN.batchContext]: (p) => batchContextHandler(p as never),
      [FN.checkConsistency]: (p) => checkConsistencyHandler(p),
      [FN.startDbtRun]: (p) => startDbtRunHandler(p),
      [FN.getDbtRun]: (p) => getDbtRunHandler(p),
    };
    function run(input: unknown, opts: Omit<RunOptions, 'handlers'> & { lambda?: Record<string, LambdaHandler> } = {}): Promise<RunResult> {
      const { lambda, ...rest } = opts;
      return runWorkflow(definition, input, {
        ...rest,
        handlers: { dynamodb: db.client, lambda: { ...realHandlers, ...lambda } },
      });
    }
    const output = (r: RunResult) => r.output as { outcome: string; attempt?: number; dbtRunId?: string };
    const eventsOf = (r: RunResult, detailType: string) => r.router.putEvents.filter((e) => e.DetailType === detailType);
    const postedRuns = () => api.requests.filter((q) => q.method === 'POST');
    async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
      const end = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    /** The dbt run intervals [created, finished] never overlap. */
    function assertNoOverlap(runs: FakeRun[]): void {
      const spans = runs.map((r) => ({ id: r.runId, from: Date.parse(r.createdAt), to: Date.parse(r.finishedAt ?? '9999-12-31T00:00:00Z') }));
      spans.sort((a, b) => a.from - b.from);
      for (let i = 1; i < spans.length; i++) {
        assert.ok(spans[i - 1].to <= spans[i].from, `dbt runs ${spans[i - 1].id} and ${spans[i].id} overlap`);
      }
    }

    it('happy path: SUCCEEDED record, one DownstreamRunSucceeded, watermark advanced, lock released', async () => {
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(output(res).outcome, 'SUCCEEDED');
      assert.equal(output(res).attempt, 1);

      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'SUCCEEDED');
      assert.equal(rec?.attempt.N, '1');
      assert.equal(rec?.region.S, REGION);
      assert.equal(rec?.fenceEpoch.N, '3');
      assert.equal(rec?.gsi1pk.S, `PIPELINE#${PIPELINE}#DOWNSTREAM#SUCCEEDED`);
      assert.equal(rec?.dbtRunId.S, api.runs[0].runId);
      assert.ok(rec?.startedAt.S && rec?.completedAt.S && rec?.dbtFinishedAt.S);
      assert.match(rec?.executionArn.S ?? '', /^arn:aws:states:/);

      assert.equal(api.runs.length, 1);
      assert.equal(api.runs[0].select, 'tag:policycenter');
      assert.equal(api.runs[0].attempt, 1);
      const succeeded = eventsOf(res, 'DownstreamRunSucceeded');
      assert.equal(succeeded.length, 1);
      assert.equal(succeeded[0].Source, SOURCE);
      assert.equal(succeeded[0].EventBusName, BUS_ARN);
      assert.equal((succeeded[0].Detail as { batchId: string }).batchId, BATCH);
      assert.equal(eventsOf(res, 'DownstreamRunFailed').length, 0);
      assert.equal(res.router.snsMessages.length, 0);

      assert.equal((await getItem('WATERMARK#DOWNSTREAM'))?.batchId.S, BATCH);
      assert.equal(await lock(), undefined);
    });

    it('the same batch delivered twice (concurrently): one dbt run, the other ends DUPLICATE', async () => {
      await seedUpstream(BATCH);
      const results = await Promise.all([run(upstreamEvent(BATCH)), run(upstreamEvent(BATCH))]);
      for (const r of results) assert.equal(r.status, 'SUCCEEDED', `${r.error}: ${r.cause}`);
      assert.deepEqual(results.map((r) => output(r).outcome).sort(), ['DUPLICATE', 'SUCCEEDED']);
      assert.equal(api.runsFor(BATCH).length, 1);
      assert.equal(postedRuns().length, 1);
      assert.equal(results.flatMap((r) => eventsOf(r, 'DownstreamRunSucceeded')).length, 1);

      // A third, late delivery (e.g. an archive replay) is a duplicate too.
      const late = await run(upstreamEvent(BATCH));
      assert.equal(output(late).outcome, 'DUPLICATE');
      assert.equal(api.runsFor(BATCH).length, 1);
    });

    it('a Step Functions parent ({detail} + started-by id) is accepted like the event', async () => {
      await seedUpstream(BATCH);
      const res = await run({
        detail: upstreamEvent(BATCH).detail,
        AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: `arn:aws:states:${REGION}:${ACCOUNT}:execution:trigger:x`,
      });
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(output(res).outcome, 'SUCCEEDED');
    });

    it('fence names the other region: no claim, no dbt call, SKIPPED_NOT_ACTIVE (audit under its own key)', async () => {
      await seedFence(OTHER_REGION, 4);
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(output(res).outcome, 'SKIPPED_NOT_ACTIVE');
      assert.equal(await downstream(BATCH), undefined);
      assert.equal(await lock(), undefined);
      assert.equal(api.requests.length, 0);
      assert.equal(res.router.putEvents.length + res.router.snsMessages.length, 0);
      const audit = await getItem(`BATCH#${BATCH}#SKIP#${REGION}`);
      assert.equal(audit?.status.S, 'SKIPPED_NOT_ACTIVE');
      assert.match(audit?.fenceSeen.S ?? '', /us-west-1/);
    });

    it('no fence item at all counts as not active', async () => {
      await db.client.send(new DeleteItemCommand({ TableName: TABLE, Key: { pk: { S: 'FENCE' }, sk: { S: 'ACTIVE' } } }));
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH));
      assert.equal(output(res).outcome, 'SKIPPED_NOT_ACTIVE');
      assert.equal(await downstream(BATCH), undefined);
      assert.equal(api.requests.length, 0);
    });

    it('consistency FAILED (a table load missing): DataInconsistencyError, no dbt call, FAILED record, one alert', async () => {
      await seedUpstream(BATCH, ['pc_policy']);
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DataInconsistencyError');
      assert.match(res.cause ?? '', /pc_claim/);
      assert.equal(api.requests.length, 0);
      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'FAILED');
      assert.equal(rec?.error.S, 'DataInconsistencyError');
      assert.match(rec?.cause.S ?? '', /table pc_claim: no load record/);
      assert.equal(rec?.gsi1pk.S, `PIPELINE#${PIPELINE}#DOWNSTREAM#FAILED`);
      assert.equal(res.router.snsMessages.length, 1);
      assert.equal(res.router.snsMessages[0].TopicArn, TOPIC_ARN);
      assert.match(String(res.router.snsMessages[0].Message), /DataInconsistencyError/);
      assert.equal(eventsOf(res, 'DownstreamRunFailed').length, 1);
      assert.equal(await lock(), undefined, 'lock released');
      assert.equal(await getItem('WATERMARK#DOWNSTREAM'), undefined);
    });

    it('dbt API 503 twice, then OK: StartDbtRun is retried and the run succeeds', async () => {
      await seedUpstream(BATCH);
      api.inject({ kind: 'status', status: 503, count: 2, method: 'POST' });
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.deepEqual(postedRuns().map((q) => q.outcome), [503, 503, 202]);
      assert.equal(api.runsFor(BATCH).length, 1);
      assert.equal(res.events.filter((e) => e.type === 'StateRetried').length, 2);
      assert.equal((await downstream(BATCH))?.status.S, 'SUCCEEDED');
    });

    it('dbt run FAILED: execution fails with DbtRunFailed, FAILED record with the error, one alert, lock released', async () => {
      await seedUpstream(BATCH);
      api.inject({ kind: 'fail-run', batchId: BATCH, error: 'Database Error in model fct_policy' });
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DbtRunFailed');
      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'FAILED');
      assert.equal(rec?.error.S, 'DbtRunFailed');
      assert.match(rec?.cause.S ?? '', /fct_policy/);
      assert.equal(rec?.dbtRunId.S, api.runs[0].runId);
      assert.equal(res.router.snsMessages.length, 1);
      assert.equal(eventsOf(res, 'DownstreamRunFailed').length, 1);
      assert.equal(eventsOf(res, 'DownstreamRunSucceeded').length, 0);
      assert.equal(api.runsFor(BATCH).length, 1, 'DbtRunFailed is not retried');
      assert.equal(await lock(), undefined);
    });

    it('rerun of a FAILED batch succeeds with attempt 2; a plain re-delivery stays DUPLICATE', async () => {
      await seedUpstream(BATCH);
      api.inject({ kind: 'fail-run', batchId: BATCH });
      assert.equal((await run(upstreamEvent(BATCH))).status, 'FAILED');

      const redelivered = await run(upstreamEvent(BATCH));
      assert.equal(output(redelivered).outcome, 'DUPLICATE');

      const res = await run({ rerun: { pipeline: PIPELINE, batchId: BATCH, reason: 'fixed fct_policy (INC-1234)' } });
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(output(res).outcome, 'SUCCEEDED');
      assert.equal(output(res).attempt, 2);
      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'SUCCEEDED');
      assert.equal(rec?.attempt.N, '2');
      assert.equal(rec?.rerunReason.S, 'fixed fct_policy (INC-1234)');
      assert.equal(rec?.error, undefined, 'the failed attempt’s error is cleared');
      assert.deepEqual(api.runsFor(BATCH).map((r) => [r.attempt, r.status]), [[1, 'FAILED'], [2, 'SUCCEEDED']]);

      // A rerun of a SUCCEEDED batch is refused by the claim.
      const again = await run({ rerun: { pipeline: PIPELINE, batchId: BATCH, reason: 'again' } });
      assert.equal(output(again).outcome, 'DUPLICATE');
      assert.equal(api.runsFor(BATCH).length, 2);
    });

    it('two batches of one pipeline started concurrently: never two dbt runs at once, both succeed', async () => {
      await seedUpstream(BATCH);
      await seedUpstream(BATCH_2);
      // The newer batch's trigger is held until the older one is inside dbt, so this exercises the
      // lock wait (an older batch that loses the race is refused as out of order: next test).
      let gated = true;
      const gatedContext: LambdaHandler = async (p) => {
        if (gated) {
          gated = false;
          await until('the first batch to start dbt', () => api.runsFor(BATCH).length > 0);
        }
        return batchContextHandler(p as never);
      };
      const [a, b] = await Promise.all([
        run(upstreamEvent(BATCH), { waitMs: 20 }),
        run(upstreamEvent(BATCH_2), { waitMs: 20, lambda: { [FN.batchContext]: gatedContext } }),
      ]);
      assert.equal(a.status, 'SUCCEEDED', `${a.error}: ${a.cause}`);
      assert.equal(b.status, 'SUCCEEDED', `${b.error}: ${b.cause}`);
      assert.equal(output(a).outcome, 'SUCCEEDED');
      assert.equal(output(b).outcome, 'SUCCEEDED');
      assert.ok(b.events.some((e) => e.type === 'StateEntered' && (e as { state?: { name?: string } }).state?.name === 'WaitForLock'), 'the second batch waited for the lock');
      assert.equal(api.runs.length, 2);
      assertNoOverlap(api.runs);
      assert.equal((await getItem('WATERMARK#DOWNSTREAM'))?.batchId.S, BATCH_2);
      assert.equal(await lock(), undefined);
    });

    it('two batches, the newer wins the lock: no overlap, and the older is refused as out of order', async () => {
      await seedUpstream(BATCH);
      await seedUpstream(BATCH_2);
      let gated = true;
      const gatedContext: LambdaHandler = async (p) => {
        if (gated) {
          gated = false;
          await until('the newer batch to start dbt', () => api.runsFor(BATCH_2).length > 0);
        }
        return batchContextHandler(p as never);
      };
      const [older, newer] = await Promise.all([
        run(upstreamEvent(BATCH), { waitMs: 20, lambda: { [FN.batchContext]: gatedContext } }),
        run(upstreamEvent(BATCH_2), { waitMs: 20 }),
      ]);
      assert.equal(newer.status, 'SUCCEEDED', `${newer.error}: ${newer.cause}`);
      assert.equal(older.status, 'FAILED');
      assert.equal(older.error, 'DataInconsistencyError');
      assert.match(older.cause ?? '', /out of order/);
      assert.equal(api.runsFor(BATCH).length, 0);
      assertNoOverlap(api.runs);
      assert.equal((await getItem('WATERMARK#DOWNSTREAM'))?.batchId.S, BATCH_2);
    });

    it('lock held by another batch past lockWaitMinutes: PipelineLockTimeout, FAILED record, alert, their lock kept', async () => {
      await seedUpstream(BATCH_2);
      const farFuture = Math.floor(Date.now() / 1000) + 86_400;
      await put({ pk: `PIPELINE#${PIPELINE}`, sk: 'LOCK#DOWNSTREAM', holder: BATCH, executionArn: 'arn:other', acquiredAt: 'x', leaseExpiresAt: farFuture });
      const res = await run(upstreamEvent(BATCH_2));
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'PipelineLockTimeout');
      assert.equal((await downstream(BATCH_2))?.status.S, 'FAILED');
      assert.equal((await lock())?.holder.S, BATCH);
      assert.equal(res.router.snsMessages.length, 1);
      assert.equal(api.requests.length, 0);
      // Backoff 30, 60, 120, 240, then capped at 300 s until 60 minutes of waiting.
      const waits = res.events.filter((e) => e.type === 'StateEntered' && (e as { state?: { name?: string } }).state?.name === 'WaitForLock');
      assert.equal(waits.length, 4 + Math.ceil((3600 - 450) / 300));
    });

    it('an expired lease is taken over', async () => {
      await seedUpstream(BATCH_2);
      await put({ pk: `PIPELINE#${PIPELINE}`, sk: 'LOCK#DOWNSTREAM', holder: BATCH, executionArn: 'arn:other', acquiredAt: 'x', leaseExpiresAt: 1_000 });
      const res = await run(upstreamEvent(BATCH_2));
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(await lock(), undefined);
    });

    it('a dbt run still RUNNING after maxRunMinutes: DbtRunTimeout, FAILED record, the lock is kept (run may still be active)', async () => {
      await seedUpstream(BATCH);
      api.inject({ kind: 'slow-run', batchId: BATCH, polls: 1000 });
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DbtRunTimeout');
      assert.equal((await downstream(BATCH))?.status.S, 'FAILED');
      assert.equal((await lock())?.holder.S, BATCH, 'lock left to its lease');
      // 30, 60, 120, 240, then 300 s per poll until >= 30 minutes.
      assert.equal(api.runs[0].polls, 4 + Math.ceil((1800 - 450) / 300));
      assert.equal(res.router.snsMessages.length, 1);
    });

    describe('malformed triggers end in InvalidTriggerEvent having written nothing', () => {
      const { detail } = upstreamEvent(BATCH);
      const { batchId: _omit, ...detailWithoutBatchId } = detail;
      void _omit;
      const cases: Array<[string, unknown]> = [
        ['an empty object', {}],
        ['no detail.batchId', { ...upstreamEvent(BATCH), detail: detailWithoutBatchId }],
        ['the wrong detail-type', upstreamEvent(BATCH, {}, { 'detail-type': 'UpstreamBatchFailed' })],
        ['the wrong schemaVersion', upstreamEvent(BATCH, { schemaVersion: '2.0' })],
        ['a numeric schemaVersion', upstreamEvent(BATCH, { schemaVersion: 1 })],
        ['another pipeline', upstreamEvent('claimcenter-20261127T020000Z', { pipeline: 'claimcenter' })],
        ['a batch id of a pipeline sharing the prefix', upstreamEvent('policycenter-x-20261127T020000Z')],
        ['a batch id that is not a time', upstreamEvent('policycenter-fooTbarZ')],
        ['a foreign source', upstreamEvent(BATCH, {}, { source: 'evil.source' })],
        ['a bare detail without a parent execution id', { detail }],
        ['a rerun without a reason', { rerun: { pipeline: PIPELINE, batchId: BATCH } }],
        ['a rerun with an empty reason', { rerun: { pipeline: PIPELINE, batchId: BATCH, reason: '' } }],
        ['a rerun of another pipeline', { rerun: { pipeline: 'claimcenter', batchId: 'claimcenter-20261127T020000Z', reason: 'x' } }],
      ];
      for (const [name, input] of cases) {
        it(name, async () => {
          await seedUpstream(BATCH);
          const before = (await allItems()).length;
          const res = await run(input);
          assert.equal(res.status, 'FAILED');
          assert.equal(res.error, 'InvalidTriggerEvent', res.cause);
          assert.equal((await allItems()).length, before, 'nothing written');
          assert.equal(api.requests.length, 0);
          assert.equal(res.router.putEvents.length + res.router.snsMessages.length, 0);
        });
      }
    });
  });
});

describe('downstream workflow: execution history bound', () => {
  it('refuses poll settings whose worst case passes 25,000 history events', () => {
    assert.throws(
      () => downstreamWorkflow({ ...refs, dbt: { ...refs.dbt, pollMaxSeconds: 30, maxRunMinutes: 1440 }, timeoutSeconds: 200_000 }),
      /over Step Functions' 25,000/,
    );
    assert.doesNotThrow(() => downstreamWorkflow({ ...refs, dbt: { ...refs.dbt, pollMaxSeconds: 300, maxRunMinutes: 1440 }, timeoutSeconds: 200_000 }));
  });
});
