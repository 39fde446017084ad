import { strict as assert } from 'assert';
import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import type { TaskState } from '../state-machines/asl';
import {
  DOWNSTREAM_STATES as S,
  downstreamTimeoutSeconds,
  downstreamWorkflow,
  type DownstreamWorkflowRefs,
} from '../state-machines/downstream';
import { assertGraph, checkGraph } from '../state-machines/graph';
import { mergeStatements, type ResolvedStatement } from '../state-machines/policy';
import { handler as batchContextHandler } from '../handlers/batch-context';
import { handler as checkConsistencyHandler } from '../handlers/check-consistency';
import { handler as getDbtRunHandler } from '../handlers/get-dbt-run';
import { handler as startDbtRunHandler } from '../handlers/start-dbt-run';
import { validateAsl } from './harness/asl-validate';
import type { LocalDynamo } from '../local/dynalite';
import { useLocalDownstream } from './harness/local-downstream';
import type { FakeDbtApi, FakeRun } from '../local/fake-dbt-api';
import {
  allStates,
  runWorkflow,
  type LambdaHandler,
  type RunOptions,
  type RunResult,
} from '../local/sfn-local';
import {
  type CallbackDriver,
  callbackFor,
  callbackOutput,
  completeRun,
  dbtCallbackDriver,
  type WaitBehaviour,
  type WaitCall,
} from '../local/dbt-callback';
import {
  ACCOUNT,
  PIPELINE,
  REGION,
  SOURCE,
  TABLES,
  upstreamEvent as wellFormedEvent,
} from '../local/fixtures/malformed-events';

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
  dbt: {
    maxRunMinutes: 30,
    maxQueueMinutes: 60,
    heartbeatSeconds: 300,
    maxLostRetries: 1,
    lockWaitMinutes: 60,
    lockLeaseMinutes: 15,
    replicationWaitMinutes: 5,
  },
};

// Built once: the local engine validates a definition when it first runs it (~0.5 s).
const { definition, statements } = downstreamWorkflow(refs);

const BATCH = 'policycenter-20261127T020000Z';
const BATCH_2 = 'policycenter-20261127T030000Z';

function upstreamEvent(
  batchId: string,
  detail: Record<string, unknown> = {},
  envelope: Record<string, unknown> = {},
) {
  return wellFormedEvent(detail, envelope, batchId);
}

const item = (attrs: Record<string, string | number>): Record<string, AttributeValue> =>
  Object.fromEntries(
    Object.entries(attrs).map(([k, v]) => [k, typeof v === 'number' ? { N: String(v) } : { S: v }]),
  );

const entered = (r: RunResult, state: string) =>
  r.events.filter(
    (e) => e.type === 'StateEntered' && (e as { state?: { name?: string } }).state?.name === state,
  ).length;

describe('downstream workflow', function () {
  this.timeout(60_000);

  describe('definition', () => {
    it('passes asl-validator and checkGraph (every Task has Retry and Catch, every Next exists)', () => {
      assert.deepEqual(validateAsl(definition), []);
      assert.deepEqual(checkGraph(definition), []);
      assert.equal(definition.TimeoutSeconds, downstreamTimeoutSeconds(refs.dbt));
    });

    it('refuses refs that cannot work (short execution timeout, a lease shorter than the replication wait, foreign pipeline name)', () => {
      assert.throws(
        () => downstreamWorkflow({ ...refs, timeoutSeconds: 3600 }),
        /timeoutSeconds = 3600 is shorter/,
      );
      assert.throws(
        () =>
          downstreamWorkflow({
            ...refs,
            dbt: { ...refs.dbt, lockLeaseMinutes: 5, replicationWaitMinutes: 10 },
          }),
        /lockLeaseMinutes = 5 \(300 s\) does not cover the replication wait.*Fix: raise lockLeaseMinutes/,
      );
      assert.throws(
        () => downstreamWorkflow({ ...refs, pipeline: { ...refs.pipeline, name: 'Policy Center' } }),
        /not a pipeline name/,
      );
    });

    it('StartDbtRun waits for a task token (heartbeat, timeout = queue + run bounds + margin); nothing polls', () => {
      const start = definition.States[S.startDbtRun] as TaskState;
      assert.equal(start.Resource, 'arn:aws:states:::lambda:invoke.waitForTaskToken');
      assert.equal(start.HeartbeatSeconds, 300);
      assert.equal(start.TimeoutSeconds, (60 + 30) * 60 + 600);
      const payload = (start.Parameters as { Payload: Record<string, unknown> }).Payload;
      assert.equal(payload['taskToken.$'], '$$.Task.Token');
      assert.deepEqual(payload.lease, {
        pk: `PIPELINE#${PIPELINE}`,
        sk: 'LOCK#DOWNSTREAM',
        'holder.$': '$$.Execution.Id',
        seconds: 900,
      });
      assert.deepEqual(payload.deadlines, { maxQueueMinutes: 60, maxRunMinutes: 30 });
      // The only reader of the run is reconciliation; no Wait state sits on the dbt path.
      const getters = allStates(definition).filter(
        ([, st]) => st.Type === 'Task' && JSON.stringify(st).includes(FN.getDbtRun),
      );
      assert.deepEqual(
        getters.map(([name]) => name),
        [S.reconcile],
      );
      const waits = allStates(definition)
        .filter(([, st]) => st.Type === 'Wait')
        .map(([name]) => name)
        .sort();
      assert.deepEqual(waits, [S.waitForLock, S.waitForReplication].sort());
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
      assert.deepEqual([...actions].sort(), [
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'events:PutEvents',
        'kms:Decrypt',
        'kms:GenerateDataKey',
        'lambda:InvokeFunction',
        'sns:Publish',
      ]);
      const byResource = (r: string) => merged.filter((s) => s.Resource.includes(r)).flatMap((s) => s.Action);
      assert.deepEqual(
        byResource(FN.startDbtRun),
        ['lambda:InvokeFunction'],
        'waitForTaskToken needs only InvokeFunction',
      );
      assert.deepEqual(byResource(BUS_ARN), ['events:PutEvents']);
    });

    it('retries DbtApiUnavailable and Lambda service errors with jitter, never DbtRunFailed/DbtRunNotFound/DbtApiRejected/InvalidInput', () => {
      const lambdaTasks = allStates(definition).filter(
        (e): e is [string, TaskState] =>
          e[1].Type === 'Task' && e[1].Resource.startsWith('arn:aws:states:::lambda:invoke'),
      );
      assert.deepEqual(
        lambdaTasks.map(([n]) => n).sort(),
        [
          S.batchContext,
          S.consistencyCheck,
          S.finishContext,
          S.reconcile,
          S.refreshContext,
          S.startDbtRun,
        ].sort(),
      );
      for (const [name, state] of lambdaTasks) {
        const retried = (state.Retry ?? []).flatMap((r) => r.ErrorEquals);
        for (const never of [
          'DbtRunFailed',
          'DbtRunNotFound',
          'DbtApiRejected',
          'InvalidInput',
          'States.ALL',
          'States.TaskFailed',
          'States.HeartbeatTimeout',
        ]) {
          assert.ok(!retried.includes(never), `${name} retries ${never}`);
        }
        assert.ok(
          retried.includes('Lambda.TooManyRequestsException'),
          `${name} does not retry Lambda throttling`,
        );
        for (const r of state.Retry ?? []) assert.equal(r.JitterStrategy, 'FULL', `${name}: no jitter`);
      }
      for (const name of [S.startDbtRun, S.reconcile]) {
        const state = definition.States[name] as TaskState;
        assert.ok(
          state.Retry?.some((r) => r.ErrorEquals.includes('DbtApiUnavailable') && (r.BackoffRate ?? 1) > 1),
        );
      }
    });

    it("the builder's graph check throws on a missing or unreachable state", () => {
      const broken = structuredClone(definition);
      (broken.States[S.fenceBeforeStart] as { Default?: string }).Default = 'NoSuchState';
      assert.throws(
        () => assertGraph(broken, 'downstreamWorkflow'),
        /transition to missing state "NoSuchState"/,
      );
      delete broken.States[S.fenceMovedBeforeStart];
      (broken.States[S.fenceBeforeStart] as { Default?: string }).Default = S.failureDefaults;
      broken.States.Orphan = { Type: 'Succeed' };
      assert.throws(() => assertGraph(broken, 'downstreamWorkflow'), /Orphan: unreachable/);
      assert.throws(
        () => downstreamWorkflow({ ...refs, dbt: { ...refs.dbt, heartbeatSeconds: 10 } }),
        /heartbeatSeconds = 10 must be an integer >= 61/,
      );
    });
  });

  describe('executed locally (dynalite + real handlers + the dbt callback stand-in)', () => {
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
      await put({
        pk: 'FENCE',
        sk: 'ACTIVE',
        activeRegion,
        epoch,
        changedAt: '2026-11-01T00:00:00Z',
        changedBy: 'prod-east',
      });
    }
    /** Upstream SUCCEEDED plus a SUCCEEDED load per table (all of TABLES unless given). */
    async function seedUpstream(
      batchId: string,
      tables: string[] = TABLES,
      status = 'SUCCEEDED',
    ): Promise<void> {
      const pk = `PIPELINE#${PIPELINE}`;
      await put({
        pk,
        sk: `BATCH#${batchId}#UPSTREAM`,
        pipeline: PIPELINE,
        batchId,
        status: 'SUCCEEDED',
        region: REGION,
      });
      for (const table of tables) {
        await put({
          pk,
          sk: `BATCH#${batchId}#TABLE#${table}`,
          pipeline: PIPELINE,
          batchId,
          table,
          status,
          rows: 42,
        });
      }
    }
    async function getItem(
      sk: string,
      pk = `PIPELINE#${PIPELINE}`,
    ): Promise<Record<string, AttributeValue> | undefined> {
      return (
        await db.client.send(
          new GetItemCommand({
            TableName: TABLE,
            Key: { pk: { S: pk }, sk: { S: sk } },
            ConsistentRead: true,
          }),
        )
      ).Item;
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
    type Run = RunResult & { driver: CallbackDriver };
    function run(
      input: unknown,
      opts: Omit<RunOptions, 'handlers'> & {
        lambda?: Record<string, LambdaHandler>;
        script?: (call: WaitCall) => WaitBehaviour | undefined;
      } = {},
    ): Promise<Run> {
      const { lambda, script, ...rest } = opts;
      const handlers = { ...realHandlers, ...lambda };
      const driver = dbtCallbackDriver({
        api,
        start: handlers[FN.startDbtRun],
        db: { client: db.client, tableName: TABLE },
        script,
      });
      return runWorkflow(definition, input, {
        ...rest,
        handlers: { dynamodb: db.client, lambda: handlers, taskToken: driver.handler },
      }).then((r) => Object.assign(r, { driver }));
    }
    const output = (r: RunResult) => r.output as { outcome: string; attempt?: number; dbtRunId?: string };
    const eventsOf = (r: RunResult, detailType: string) =>
      r.router.putEvents.filter((e) => e.DetailType === detailType);
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
      const spans = runs.map((r) => ({
        id: r.runId,
        from: Date.parse(r.createdAt),
        to: Date.parse(r.finishedAt ?? '9999-12-31T00:00:00Z'),
      }));
      spans.sort((a, b) => a.from - b.from);
      for (let i = 1; i < spans.length; i++) {
        assert.ok(spans[i - 1].to <= spans[i].from, `dbt runs ${spans[i - 1].id} and ${spans[i].id} overlap`);
      }
    }

    it('happy path: one callback wait, SUCCEEDED record, watermark advanced, lease renewed by heartbeats, lock released', async () => {
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(output(res).outcome, 'SUCCEEDED');
      assert.equal(output(res).attempt, 1);
      assert.ok(res.transitions <= 30, `${res.transitions} transitions`);

      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'SUCCEEDED');
      assert.equal(rec?.attempt.N, '1');
      assert.equal(rec?.region.S, REGION);
      assert.equal(rec?.fenceEpoch.N, '3');
      assert.equal(rec?.fenceRegion.S, REGION);
      assert.equal(rec?.gsi1pk.S, `PIPELINE#${PIPELINE}#DOWNSTREAM#SUCCEEDED`);
      assert.equal(rec?.dbtRunId.S, api.runs[0].runId);
      assert.ok(rec?.startedAt.S && rec?.completedAt.S && rec?.dbtFinishedAt.S);
      assert.match(rec?.executionArn.S ?? '', /^arn:aws:states:/);

      assert.equal(api.runs.length, 1);
      assert.equal(api.runs[0].select, 'tag:policycenter');
      assert.equal(api.runs[0].attempt, 1);
      assert.deepEqual(api.runs[0].fence, { region: REGION, epoch: 3 });
      assert.equal(api.runs[0].taskToken, res.driver.waits[0].payload.taskToken);
      assert.equal(api.runs[0].lease?.holder, rec?.executionArn.S, 'the lease names this execution');
      assert.equal(res.driver.waits.length, 1);
      assert.ok(
        res.driver.renewals.ok >= 1 && res.driver.renewals.refused === 0,
        JSON.stringify(res.driver.renewals),
      );
      assert.equal(api.requests.filter((q) => q.method === 'GET').length, 0, 'nothing polls the app');
      const succeeded = eventsOf(res, 'DownstreamRunSucceeded');
      assert.equal(succeeded.length, 1);
      assert.equal((succeeded[0].Detail as { batchId: string }).batchId, BATCH);
      assert.equal(res.router.snsMessages.length, 0);

      assert.equal((await getItem('WATERMARK#DOWNSTREAM'))?.batchId.S, BATCH);
      assert.equal(await lock(), undefined);
    });

    it('transitions do not grow with the run: a short and a very long run cost the same', async () => {
      await seedUpstream(BATCH);
      await seedUpstream(BATCH_2);
      const short = await run(upstreamEvent(BATCH));
      api.inject({ kind: 'slow-run', batchId: BATCH_2, polls: 2000 });
      const long = await run(upstreamEvent(BATCH_2));
      assert.equal(long.status, 'SUCCEEDED', `${long.error}: ${long.cause}`);
      assert.ok(api.getRun(api.runsFor(BATCH_2)[0].runId)!.pollsRunning >= 2000);
      assert.equal(long.transitions, short.transitions);
      assert.ok(
        long.driver.renewals.ok > short.driver.renewals.ok,
        'the long run renewed its lease more often',
      );
    });

    it('the same batch delivered twice (concurrently): one dbt run, the other ends DUPLICATE', async () => {
      await seedUpstream(BATCH);
      const results = await Promise.all([run(upstreamEvent(BATCH)), run(upstreamEvent(BATCH))]);
      for (const r of results) assert.equal(r.status, 'SUCCEEDED', `${r.error}: ${r.cause}`);
      assert.deepEqual(results.map((r) => output(r).outcome).sort(), ['DUPLICATE', 'SUCCEEDED']);
      assert.equal(api.runsFor(BATCH).length, 1);
      assert.equal(postedRuns().length, 1);
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

    describe('D6: a missing or malformed fence is FenceMissing with an alert, never a silent skip; nothing claimed', () => {
      const cases: Array<[string, Record<string, string | number> | undefined]> = [
        ['no fence item', undefined],
        ['no activeRegion', { epoch: 3 }],
        ['epoch 0', { activeRegion: REGION, epoch: 0 }],
        ['negative epoch', { activeRegion: REGION, epoch: -2 }],
        ['fractional epoch', { activeRegion: REGION, epoch: 1.5 }],
        ['epoch as a string', { activeRegion: REGION, epoch: '3' }],
        ['empty activeRegion', { activeRegion: '', epoch: 3 }],
      ];
      for (const [name, attrs] of cases) {
        it(name, async () => {
          await db.client.send(
            new DeleteItemCommand({ TableName: TABLE, Key: { pk: { S: 'FENCE' }, sk: { S: 'ACTIVE' } } }),
          );
          if (attrs) await put({ pk: 'FENCE', sk: 'ACTIVE', ...attrs });
          await seedUpstream(BATCH);
          const res = await run(upstreamEvent(BATCH));
          assert.equal(res.status, 'FAILED');
          assert.equal(res.error, 'FenceMissing');
          assert.match(res.cause ?? '', /missing or malformed.*Nothing was claimed/);
          assert.equal(await downstream(BATCH), undefined, 'nothing claimed');
          assert.equal(await getItem(`BATCH#${BATCH}#SKIP#${REGION}`), undefined, 'not recorded as a skip');
          assert.equal(await lock(), undefined);
          assert.equal(api.requests.length, 0);
          assert.equal(res.router.snsMessages.length, 1);
          assert.match(String(res.router.snsMessages[0].Message), /FenceMissing/);
        });
      }
    });

    it('consistency FAILED (a table load FAILED): DataInconsistencyError at once (no replication wait), no dbt call, alert, lock released', async () => {
      await seedUpstream(BATCH, TABLES, 'FAILED');
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DataInconsistencyError');
      assert.match(res.cause ?? '', /pc_claim: load is FAILED/);
      assert.equal(entered(res, S.waitForReplication), 0);
      assert.equal(api.requests.length, 0);
      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'FAILED');
      assert.equal(rec?.retryable.BOOL, false);
      assert.equal(res.router.snsMessages.length, 1);
      assert.equal(eventsOf(res, 'DownstreamRunFailed').length, 1);
      assert.equal(await lock(), undefined, 'lock released');
      // Not retryable: a replay of the same event is a duplicate.
      assert.equal(output(await run(upstreamEvent(BATCH))).outcome, 'DUPLICATE');
    });

    it('D7: upstream records not replicated yet: the workflow waits (bounded backoff) and succeeds once they appear', async () => {
      let calls = 0;
      const lagging: LambdaHandler = async (p) => {
        calls++;
        if (calls === 3) await seedUpstream(BATCH); // replication catches up after two waits
        return checkConsistencyHandler(p);
      };
      const res = await run(upstreamEvent(BATCH), { lambda: { [FN.checkConsistency]: lagging } });
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(entered(res, S.waitForReplication), 2);
      assert.equal(api.runsFor(BATCH).length, 1);
    });

    it('D7: records still absent after replicationWaitMinutes: DataNotReplicated (retryable) with an alert; a later replay runs and succeeds', async () => {
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DataNotReplicated');
      // 10, 20, 40, 80, 120, then capped at 120 s until 300 s of waiting.
      assert.equal(entered(res, S.waitForReplication), 6);
      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'FAILED');
      assert.equal(rec?.retryable.BOOL, true);
      assert.equal(res.router.snsMessages.length, 1);
      assert.equal(await lock(), undefined);
      assert.equal(api.requests.length, 0);

      await seedUpstream(BATCH);
      const replay = await run(upstreamEvent(BATCH));
      assert.equal(replay.status, 'SUCCEEDED', `${replay.error}: ${replay.cause}`);
      assert.equal(output(replay).outcome, 'SUCCEEDED');
      const after = await downstream(BATCH);
      assert.equal(after?.status.S, 'SUCCEEDED');
      assert.equal(after?.attempt.N, '2');
      assert.equal(after?.retryable, undefined, 'the new claim clears the flag');
      assert.equal(api.runsFor(BATCH).length, 1);
      // Once SUCCEEDED, a further replay is a duplicate again.
      assert.equal(output(await run(upstreamEvent(BATCH))).outcome, 'DUPLICATE');
    });

    it('dbt API 503 twice, then OK: StartDbtRun is retried (same key) and the run succeeds', async () => {
      await seedUpstream(BATCH);
      api.inject({ kind: 'status', status: 503, count: 2, method: 'POST' });
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.deepEqual(
        postedRuns().map((q) => q.outcome),
        [503, 503, 202],
      );
      assert.equal(api.runsFor(BATCH).length, 1);
      assert.equal(res.events.filter((e) => e.type === 'StateRetried').length, 2);
    });

    it('D1/D5: a start whose reply is lost every time: reconcile finds the run, waits on it with a new token, one build', async () => {
      await seedUpstream(BATCH);
      api.inject({ kind: 'lose-reply', count: 6, method: 'POST' });
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(entered(res, S.reconcile), 1);
      assert.equal(api.runsFor(BATCH).length, 1, 'never a second build');
      assert.equal(api.runsFor(BATCH)[0].attempt, 1);
      assert.equal((await downstream(BATCH))?.dbtRunId.S, api.runs[0].runId);
    });

    it('D1: a start that never reached the app (5xx every time): reconcile reads 404, re-posts the same key, one build', async () => {
      await seedUpstream(BATCH);
      api.inject({ kind: 'status', status: 503, count: 6, method: 'POST' });
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(entered(res, S.notStarted), 1);
      assert.equal(entered(res, S.readFenceBeforeStart), 2, 'the fence is re-read before the second start');
      assert.equal(api.runsFor(BATCH).length, 1);
      assert.equal(api.runsFor(BATCH)[0].attempt, 1);
    });

    it('heartbeat timeout while the run is still RUNNING: re-wait on the same attempt with a new token, no second build', async () => {
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH), {
        script: (c) => (c.index === 1 ? 'heartbeat-timeout' : 'complete'),
      });
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(res.driver.waits.length, 2);
      assert.equal(res.driver.waits[0].runId, res.driver.waits[1].runId);
      assert.equal(api.runsFor(BATCH).length, 1);
      assert.deepEqual(
        postedRuns().map((q) => q.outcome),
        [202, 200],
      );
      assert.equal((await downstream(BATCH))?.attempt.N, '1');
    });

    it('heartbeats never come back: bounded re-waits, then DbtRunUnresponsive; the lock is kept (the run may live on)', async () => {
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH), { script: () => 'heartbeat-timeout' });
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DbtRunUnresponsive');
      assert.equal(res.driver.waits.length, 1 + 3);
      assert.equal(api.runsFor(BATCH).length, 1);
      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'FAILED');
      assert.equal((await lock())?.executionArn.S, rec?.executionArn.S, 'lock kept to its lease');
      assert.equal(res.router.snsMessages.length, 1);
    });

    it('the task timeout with the run still RUNNING: DbtRunTimeout, lock kept, no re-wait', async () => {
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH), { script: () => 'timeout' });
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DbtRunTimeout');
      assert.equal(res.driver.waits.length, 1);
      assert.ok(await lock());
    });

    it('D2/D5: the callback is lost but the run SUCCEEDED: reconciliation finds it and the batch succeeds', async () => {
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH), { script: () => 'callback-lost' });
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(entered(res, S.adoptReconciled), 1);
      assert.equal(res.driver.waits.length, 1);
      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'SUCCEEDED');
      assert.equal(rec?.dbtRunId.S, api.runs[0].runId);
      assert.equal((await getItem('WATERMARK#DOWNSTREAM'))?.batchId.S, BATCH);
      assert.equal(await lock(), undefined);
    });

    it('a run LOST: a new attempt (2) is claimed and built; the record ends SUCCEEDED with attempt 2', async () => {
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH), {
        script: (c) =>
          c.index === 1
            ? () => (api.finish(c.runId, 'LOST', 'worker stopped heartbeating'), callbackForLost(c))
            : 'complete',
      });
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.deepEqual(
        api.runsFor(BATCH).map((r) => [r.attempt, r.status]),
        [
          [1, 'LOST'],
          [2, 'SUCCEEDED'],
        ],
      );
      assert.equal((await downstream(BATCH))?.attempt.N, '2');
      assert.equal(output(res).attempt, 2);
    });

    it('LOST again past maxLostRetries: DbtRunLost, lock released (the run is over)', async () => {
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH), {
        script: (c) => () => (api.finish(c.runId, 'LOST'), callbackForLost(c)),
      });
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DbtRunLost');
      assert.equal(api.runsFor(BATCH).length, 2);
      assert.equal(await lock(), undefined);
    });

    it('D5: the run cannot be read after a heartbeat timeout: DbtRunFateUnknown, alert, lock kept, never a new attempt', async () => {
      await seedUpstream(BATCH);
      api.inject({ kind: 'status', status: 503, count: 100, method: 'GET', path: '/attempts/' });
      const res = await run(upstreamEvent(BATCH), { script: () => 'heartbeat-timeout' });
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DbtRunFateUnknown');
      assert.equal(api.runsFor(BATCH).length, 1);
      assert.equal(res.driver.waits.length, 1);
      assert.ok(await lock(), 'lock kept until its lease expires');
      assert.equal(res.router.snsMessages.length, 1);
      assert.match(String(res.router.snsMessages[0].Message), /DbtRunFateUnknown/);
    });

    it('dbt run FAILED (callback): DbtRunFailed, FAILED record, one alert, lock released, not retried', async () => {
      await seedUpstream(BATCH);
      api.inject({ kind: 'fail-run', batchId: BATCH, error: 'Database Error in model fct_policy' });
      const res = await run(upstreamEvent(BATCH));
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DbtRunFailed');
      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'FAILED');
      assert.match(rec?.cause.S ?? '', /fct_policy/);
      assert.equal(res.router.snsMessages.length, 1);
      assert.equal(api.runsFor(BATCH).length, 1);
      assert.equal(await lock(), undefined);
    });

    it('D4: the fence moves while dbt runs: FenceMoved, FAILED record, lock released, alert, watermark unchanged', async () => {
      await seedUpstream(BATCH);
      const res = await run(upstreamEvent(BATCH), {
        script: () => async (r: FakeRun) => {
          await seedFence(OTHER_REGION, 4);
          return callbackForSucceeded(r);
        },
      });
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'FenceMoved');
      assert.match(res.cause ?? '', /moved while dbt run/);
      const rec = await downstream(BATCH);
      assert.equal(rec?.status.S, 'FAILED');
      assert.equal(rec?.error.S, 'FenceMoved');
      assert.equal(await lock(), undefined);
      assert.equal(await getItem('WATERMARK#DOWNSTREAM'), undefined);
      assert.equal(res.router.snsMessages.length, 1);
      assert.equal(eventsOf(res, 'DownstreamRunSucceeded').length, 0);
    });

    it('D4: the fence moves before dbt starts: FenceMoved (retryable), no dbt call, lock released', async () => {
      await seedUpstream(BATCH);
      const moving: LambdaHandler = async (p) => {
        await seedFence(REGION, 4); // same region, new epoch: a failover and back
        return checkConsistencyHandler(p);
      };
      const res = await run(upstreamEvent(BATCH), { lambda: { [FN.checkConsistency]: moving } });
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'FenceMoved');
      assert.equal(api.requests.length, 0);
      assert.equal((await downstream(BATCH))?.retryable.BOOL, true);
      assert.equal(await lock(), undefined);
    });

    it("D3: the lock belongs to the execution: a slow failing original cannot delete the rerun's lock", async () => {
      await seedUpstream(BATCH);
      const rerunArn = `arn:aws:states:${REGION}:${ACCOUNT}:execution:etl-${PIPELINE}-downstream:rerun-1`;
      api.inject({ kind: 'fail-run', batchId: BATCH });
      const res = await run(upstreamEvent(BATCH), {
        script: () => async (r: FakeRun) => {
          // While the original's run fails slowly, its lease lapses and the rerun (same batch) takes the lock.
          await put({
            pk: `PIPELINE#${PIPELINE}`,
            sk: 'LOCK#DOWNSTREAM',
            executionArn: rerunArn,
            batchId: BATCH,
            acquiredAt: 'x',
            leaseExpiresAt: Math.floor(Date.now() / 1000) + 900,
          });
          return callbackFor(await completeRun(api, r.runId));
        },
      });
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'DbtRunFailed');
      assert.equal((await lock())?.executionArn.S, rerunArn, 'the rerun still holds its lock');
    });

    it('rerun of a FAILED batch succeeds with attempt 2; a plain re-delivery stays DUPLICATE', async () => {
      await seedUpstream(BATCH);
      api.inject({ kind: 'fail-run', batchId: BATCH });
      assert.equal((await run(upstreamEvent(BATCH))).status, 'FAILED');
      assert.equal(output(await run(upstreamEvent(BATCH))).outcome, 'DUPLICATE');
      const res = await run({
        rerun: { pipeline: PIPELINE, batchId: BATCH, reason: 'fixed fct_policy (INC-1234)' },
      });
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(output(res).attempt, 2);
      const rec = await downstream(BATCH);
      assert.equal(rec?.rerunReason.S, 'fixed fct_policy (INC-1234)');
      assert.equal(rec?.error, undefined, 'the failed attempt’s error is cleared');
      assert.deepEqual(
        api.runsFor(BATCH).map((r) => [r.attempt, r.status]),
        [
          [1, 'FAILED'],
          [2, 'SUCCEEDED'],
        ],
      );
      const again = await run({ rerun: { pipeline: PIPELINE, batchId: BATCH, reason: 'again' } });
      assert.equal(output(again).outcome, 'DUPLICATE');
    });

    it('the watermark never moves back: a batch older than the watermark that gets built leaves it alone', async () => {
      await seedUpstream(BATCH);
      await put({ pk: `PIPELINE#${PIPELINE}`, sk: 'WATERMARK#DOWNSTREAM', batchId: BATCH_2, updatedAt: 'x' });
      // Consistency would refuse it as out of order; force it through to test the write's own guard.
      const res = await run(upstreamEvent(BATCH), {
        lambda: { [FN.checkConsistency]: async () => ({ consistencyStatus: 'SUCCESS', reasons: [] }) },
      });
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal((await getItem('WATERMARK#DOWNSTREAM'))?.batchId.S, BATCH_2);
    });

    it('two batches of one pipeline started concurrently: never two dbt runs at once, both succeed', async () => {
      await seedUpstream(BATCH);
      await seedUpstream(BATCH_2);
      let gated = true;
      const gatedContext: LambdaHandler = async (p) => {
        if (gated) {
          gated = false;
          await until('the first batch to start dbt', () => api.runsFor(BATCH).length > 0);
        }
        return batchContextHandler(p as never);
      };
      const [a, b] = await Promise.all([
        run(upstreamEvent(BATCH), {
          waitMs: 20,
          script: () => async (r: FakeRun) => {
            await new Promise((x) => setTimeout(x, 100));
            return callbackForSucceeded(r);
          },
        }),
        run(upstreamEvent(BATCH_2), { waitMs: 20, lambda: { [FN.batchContext]: gatedContext } }),
      ]);
      assert.equal(a.status, 'SUCCEEDED', `${a.error}: ${a.cause}`);
      assert.equal(b.status, 'SUCCEEDED', `${b.error}: ${b.cause}`);
      assert.ok(entered(b, S.waitForLock) > 0, 'the second batch waited for the lock');
      assert.equal(api.runs.length, 2);
      assertNoOverlap(api.runs);
      assert.equal((await getItem('WATERMARK#DOWNSTREAM'))?.batchId.S, BATCH_2);
      assert.equal(await lock(), undefined);
    });

    it('lock held by a live execution past lockWaitMinutes: PipelineLockTimeout, alert, their lock kept', async () => {
      await seedUpstream(BATCH_2);
      const farFuture = Math.floor(Date.now() / 1000) + 86_400;
      await put({
        pk: `PIPELINE#${PIPELINE}`,
        sk: 'LOCK#DOWNSTREAM',
        batchId: BATCH,
        executionArn: 'arn:other',
        acquiredAt: 'x',
        leaseExpiresAt: farFuture,
      });
      const res = await run(upstreamEvent(BATCH_2));
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'PipelineLockTimeout');
      assert.equal((await lock())?.executionArn.S, 'arn:other');
      assert.equal(res.router.snsMessages.length, 1);
      assert.equal(api.requests.length, 0);
      assert.equal(entered(res, S.waitForLock), 4 + Math.ceil((3600 - 450) / 300));
    });

    it("a crashed execution's lock is reclaimed once its lease has expired, and only then", async () => {
      await seedUpstream(BATCH_2);
      const now = Math.floor(Date.now() / 1000);
      await put({
        pk: `PIPELINE#${PIPELINE}`,
        sk: 'LOCK#DOWNSTREAM',
        batchId: BATCH,
        executionArn: 'arn:crashed',
        acquiredAt: 'x',
        leaseExpiresAt: now + 3600,
      });
      let contexts = 0;
      const expireLater: LambdaHandler = async (p) => {
        // The lease runs out while this execution waits for the lock (before its first refresh).
        if (++contexts === 2) {
          await db.client.send(
            new UpdateItemCommand({
              TableName: TABLE,
              Key: { pk: { S: `PIPELINE#${PIPELINE}` }, sk: { S: 'LOCK#DOWNSTREAM' } },
              UpdateExpression: 'SET leaseExpiresAt = :t',
              ExpressionAttributeValues: { ':t': { N: String(now - 1) } },
            }),
          );
        }
        return batchContextHandler(p as never);
      };
      const res = await run(upstreamEvent(BATCH_2), { lambda: { [FN.batchContext]: expireLater } });
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.ok(entered(res, S.waitForLock) >= 1, 'refused while the lease was live');
      assert.equal(await lock(), undefined);
    });

    it('D8: a batch id naming no real time (month 13) passes the ASL pre-filter but ends InvalidTriggerEvent at BatchContext, nothing written', async () => {
      await seedUpstream(BATCH);
      const before = (await allItems()).length;
      const res = await run(upstreamEvent('policycenter-20261327T020000Z'));
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'InvalidTriggerEvent');
      assert.equal(entered(res, S.batchContext), 1, 'the ASL let it through to the authoritative check');
      assert.equal((await allItems()).length, before);
      assert.equal(api.requests.length, 0);
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
        [
          'a rerun of another pipeline',
          { rerun: { pipeline: 'claimcenter', batchId: 'claimcenter-20261127T020000Z', reason: 'x' } },
        ],
        [
          'a rerun of February 30',
          { rerun: { pipeline: PIPELINE, batchId: 'policycenter-20260230T020000Z', reason: 'x' } },
        ],
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

function callbackForLost(c: WaitCall): never {
  const run = c.run;
  throw Object.assign(new Error(JSON.stringify({ runId: run.runId, status: run.status })), {
    name: run.status === 'LOST' ? 'DbtRunLost' : 'DbtRunInterrupted',
  });
}

function callbackForSucceeded(run: FakeRun): Record<string, unknown> {
  run.status = 'SUCCEEDED';
  run.startedAt ??= new Date().toISOString();
  run.finishedAt = new Date().toISOString();
  return callbackOutput(run);
}
