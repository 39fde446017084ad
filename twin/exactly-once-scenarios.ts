import { randomUUID } from 'node:crypto';
import { DeleteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { RunResult } from '../local/sfn-local';
import { runWorkflow } from '../local/sfn-local';
import type { BuildRow } from '../local/warehouse';
import { type ExactlyOnceWorld, type RegionName } from './exactly-once';
import { batchSk, FENCE_KEY, lockSk, pipelinePk, upstreamSkipSk } from '../contracts/control-table';
import { CALLBACK_ERRORS, WORKFLOW_ERRORS } from '../contracts/errors';

/**
 * One scenario per defect D1–D9 of issue I, plus the partition case, against the exactly-once world.
 * Each returns checks read from the WAREHOUSE (CONTROL.BUILDS) and the APP (its runs tables):
 *   builds per due batch = 1; no two builds of the pipeline overlap; the watermark never goes back;
 *   every batch not built ends FAILED with an alert or SKIPPED with a reason; nothing is lost.
 */

export interface Check {
  what: string;
  ok: boolean;
  detail: string;
}

export interface ScenarioReport {
  name: string;
  checks: Check[];
  notes: string[];
}

export interface ExactlyOnceScenario {
  describe: string;
  run(w: ExactlyOnceWorld): Promise<ScenarioReport>;
}

const P = 'policycenter';
const EAST: RegionName = 'us-east-1';
const WEST: RegionName = 'us-west-1';
/** Distinct batch ids per scenario: the warehouse's build log is shared by all of them. */
let hour = 0;
function batchIds(n: number): string[] {
  return Array.from({ length: n }, () => {
    const h = hour++;
    const day = String(1 + Math.floor(h / 24)).padStart(2, '0');
    return `${P}-202612${day}T${String(h % 24).padStart(2, '0')}0000Z`;
  });
}

class Report {
  readonly checks: Check[] = [];
  readonly notes: string[] = [];
  constructor(readonly name: string) {}
  check(what: string, ok: boolean, detail = ''): void {
    this.checks.push({ what, ok, detail });
  }
  note(text: string): void {
    this.notes.push(text);
  }
  done(): ScenarioReport {
    return { name: this.name, checks: this.checks, notes: this.notes };
  }
}

const ms = (ts: string | null): number => (ts === null ? Infinity : Date.parse(`${ts.replace(' ', 'T')}Z`));
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

const outcome = (r: RunResult) =>
  r.status === 'SUCCEEDED' ? String((r.output as { outcome?: string })?.outcome) : `${r.status} ${r.error}`;

/**
 * The five invariants, from the warehouse and the app's own records. `due`: batches that must be
 * built by the end; `notBuilt`: batches that must end FAILED+alert or SKIPPED with a reason.
 */
async function invariants(
  w: ExactlyOnceWorld,
  rep: Report,
  opts: { due: string[]; notBuilt?: string[]; all?: string[] },
): Promise<BuildRow[]> {
  const all = opts.all ?? [...opts.due, ...(opts.notBuilt ?? [])];
  const rows = await w.builds(all);
  for (const b of opts.due) {
    const ok = rows.filter((r) => r.batch_id === b && r.status === 'SUCCEEDED');
    rep.check(
      `warehouse: ${b} built exactly once`,
      ok.length === 1,
      `${ok.length} SUCCEEDED of ${rows.filter((r) => r.batch_id === b).length} CONTROL.BUILDS rows`,
    );
    const appOk = [...(await w.appRuns(EAST, b)), ...(await w.appRuns(WEST, b))].filter(
      (r) => r.status === 'SUCCEEDED',
    );
    rep.check(
      `app: ${b} has exactly one SUCCEEDED run across both regions`,
      appOk.length === 1,
      appOk.map((r) => `${r.runId}@${r.fence?.region}`).join(', '),
    );
  }
  const spans = rows.filter((r) => r.pipeline === P).sort((a, b) => ms(a.started_at) - ms(b.started_at));
  let overlap = '';
  for (let i = 1; i < spans.length; i++)
    if (ms(spans[i - 1].finished_at) > ms(spans[i].started_at))
      overlap = `${spans[i - 1].run_id} and ${spans[i].run_id}`;
  rep.check('warehouse: no two builds of the pipeline overlap in time', overlap === '', overlap);
  await w.db.quiesce();
  const built = opts.due.filter((b) => rows.some((r) => r.batch_id === b && r.status === 'SUCCEEDED')).sort();
  const newest = built[built.length - 1];
  for (const region of [EAST, WEST]) {
    const wm = (await w.watermark(region, P))?.batchId;
    rep.check(
      `watermark in ${region} is the newest built batch (never went back)`,
      newest === undefined || wm === undefined || wm >= newest,
      `watermark ${wm}, newest built ${newest}`,
    );
  }
  for (const b of opts.notBuilt ?? []) {
    const recs = [await w.downstreamRecord(EAST, P, b), await w.downstreamRecord(WEST, P, b)].filter(Boolean);
    const failed =
      recs.some((r) => r!.status === 'FAILED') &&
      w.alerts.some((a) => a.message.includes(b) || a.subject.includes(b));
    const skipped = recs.some((r) => String(r!.status).startsWith('SKIPPED') && (r!.reason || r!.status));
    const nothing = recs.length === 0 && w.alerts.some((a) => a.message.includes(b) || a.subject.includes(b));
    rep.check(
      `${b} not built: FAILED with an alert, or SKIPPED with a reason`,
      failed || skipped || nothing,
      recs.map((r) => `${r!.status} ${r!.error ?? ''}`).join('; ') || 'no record',
    );
  }
  return rows;
}

async function setUp(w: ExactlyOnceWorld, seconds = 0.5): Promise<void> {
  await w.reset();
  w.configureDbt({ seconds });
  const fence = await w.warehouse.fence();
  // The fence item of the active region, and the warehouse fence moved with it (runbook order).
  if (!fence || fence[0] !== EAST) await w.moveFence(EAST);
  else
    await w.region(EAST).doc.send(
      new UpdateCommand({
        TableName: w.controlTable,
        Key: FENCE_KEY,
        UpdateExpression: 'SET activeRegion = :r, epoch = :e',
        ExpressionAttributeValues: { ':r': EAST, ':e': fence[1] },
      }),
    );
  await w.db.quiesce();
}

const rerun = (batchId: string, reason: string) => ({ rerun: { pipeline: P, batchId, reason } });

export const EXACTLY_ONCE_SCENARIOS: Record<string, ExactlyOnceScenario> = {
  'd1-two-pods': {
    describe:
      'D1: two pods; the reply to the first POST is lost, the retried POST lands on the other pod → the same run, one build',
    async run(w) {
      const rep = new Report('d1-two-pods');
      await setUp(w);
      const [b] = batchIds(1);
      await w.seedUpstream(EAST, P, b);
      w.faults.push({ kind: 'lose-start-reply', region: EAST, times: 1 });
      const routed = w.region(EAST).pods.proxy.routed.length;
      const tokens = w.tokens.length;
      const res = await w.runDownstream(EAST, P, w.event(EAST, P, b));
      rep.check('the workflow SUCCEEDED', outcome(res) === 'SUCCEEDED', outcome(res));
      const backends = new Set(w.region(EAST).pods.proxy.routed.slice(routed));
      rep.check('requests reached both pods (round robin)', backends.size === 2, [...backends].join(', '));
      const minted = w.tokens.slice(tokens);
      rep.check(
        'each StartDbtRun attempt had its own task token',
        minted.length === 2 && minted[0] !== minted[1],
        minted.join(', '),
      );
      const runs = await w.appRuns(EAST, b);
      rep.check(
        "the app holds one run for the batch, carrying the retry's token",
        runs.length === 1 && runs[0].taskToken === minted[1],
        runs.map((r) => `${r.runId} ${r.status}`).join(', '),
      );
      await invariants(w, rep, { due: [b] });
      return rep.done();
    },
  },

  'd2-lease-renewed': {
    describe:
      'D2: two batches of one pipeline at once; the lease is renewed by the live run (never expires under it), the second waits → no overlap',
    async run(w) {
      const rep = new Report('d2-lease-renewed');
      await setUp(w, 1.5);
      const [b1, b2] = batchIds(2);
      await w.seedUpstream(EAST, P, b1);
      await w.seedUpstream(EAST, P, b2);
      const first = w.runDownstream(EAST, P, w.event(EAST, P, b1));
      const lock1 = await until(
        'the first lock',
        async () =>
          (await w.item(EAST, pipelinePk(P), lockSk('DOWNSTREAM')))?.batchId === b1 &&
          w.item(EAST, pipelinePk(P), lockSk('DOWNSTREAM')),
      );
      const second = w.runDownstream(EAST, P, w.event(EAST, P, b2));
      await until('the first build to run', async () =>
        (await w.appRuns(EAST, b1)).some((r) => r.status === 'RUNNING'),
      );
      await sleep(1000);
      const lock1Later = await w.item(EAST, pipelinePk(P), lockSk('DOWNSTREAM'));
      rep.check(
        'the live run renewed the lease (the app wrote leaseRenewedAt; leaseExpiresAt did not go back)',
        lock1Later?.batchId === b1 &&
          lock1Later.leaseRenewedAt !== undefined &&
          Number(lock1Later.leaseExpiresAt) >= Number(lock1?.leaseExpiresAt),
        `${lock1?.leaseExpiresAt} → ${lock1Later?.leaseExpiresAt}, renewed at ${lock1Later?.leaseRenewedAt}`,
      );
      const [r1, r2] = await Promise.all([first, second]);
      rep.check(
        'both workflows SUCCEEDED',
        outcome(r1) === 'SUCCEEDED' && outcome(r2) === 'SUCCEEDED',
        `${outcome(r1)}, ${outcome(r2)}`,
      );
      rep.check(
        'the second waited for the lock',
        r2.events.some(
          (e) => e.type === 'StateEntered' && (e as { state?: { name?: string } }).state?.name === 'LockHeld',
        ),
        '',
      );
      await invariants(w, rep, { due: [b1, b2] });
      return rep.done();
    },
  },

  'd3-slow-release': {
    describe:
      "D3: a failing original whose lease expired releases late; it cannot delete the rerun's lock, so batch N+1 waits for the rerun",
    async run(w) {
      const rep = new Report('d3-slow-release');
      await setUp(w, 1);
      const [b1, b2] = batchIds(2);
      await w.seedUpstream(EAST, P, b1);
      await w.seedUpstream(EAST, P, b2);
      w.configureDbt({ seconds: 1, batches: { [b1]: { seconds: 0.3, fail: true } } });
      const originalName = `original-${randomUUID()}`;
      let rerunDone: Promise<RunResult> | undefined;
      let nextDone: Promise<RunResult> | undefined;
      // The original's release is slow: its lease has expired meanwhile (written here), the operator's
      // rerun takes the lock, batch N+1 arrives; only then does the original's release run.
      w.faults.push({
        kind: 'before-lock-release',
        region: EAST,
        execution: originalName,
        action: async () => {
          w.configureDbt({ seconds: 2 });
          await w.region(EAST).doc.send(
            new UpdateCommand({
              TableName: w.controlTable,
              Key: { pk: pipelinePk(P), sk: lockSk('DOWNSTREAM') },
              UpdateExpression: 'SET leaseExpiresAt = :past',
              ExpressionAttributeValues: { ':past': 1 },
            }),
          );
          rerunDone = w.runDownstream(EAST, P, rerun(b1, 'D3 scenario: dbt failed'));
          await until(
            'the rerun to hold the lock',
            async () =>
              !String((await w.item(EAST, pipelinePk(P), lockSk('DOWNSTREAM')))?.executionArn ?? '').endsWith(
                originalName,
              ),
          );
          nextDone = w.runDownstream(EAST, P, w.event(EAST, P, b2));
          await sleep(200);
        },
      });
      const original = await w.runDownstream(EAST, P, w.event(EAST, P, b1), originalName);
      rep.check(
        'the original FAILED (DbtRunFailed)',
        original.status === 'FAILED' && original.error === WORKFLOW_ERRORS.DbtRunFailed,
        outcome(original),
      );
      const lock = await w.item(EAST, pipelinePk(P), lockSk('DOWNSTREAM'));
      rep.check(
        "the rerun's lock survived the original's late release",
        lock !== undefined && !String(lock.executionArn).endsWith(originalName),
        String(lock?.executionArn),
      );
      const [rr, nx] = await Promise.all([rerunDone!, nextDone!]);
      rep.check(
        'the rerun (attempt 2) and batch N+1 SUCCEEDED',
        outcome(rr) === 'SUCCEEDED' && outcome(nx) === 'SUCCEEDED',
        `${outcome(rr)}, ${outcome(nx)}`,
      );
      await invariants(w, rep, { due: [b1, b2] });
      return rep.done();
    },
  },

  'd4-failover-mid-run': {
    describe:
      "D4: failover while east builds: the warehouse fence, then DynamoDB's moves to west; east's success is refused (FenceMoved + alert), west's next batch waits for the lock",
    async run(w) {
      const rep = new Report('d4-failover-mid-run');
      await setUp(w, 2);
      const [b1, b2] = batchIds(2);
      await w.seedUpstream(EAST, P, b1);
      await w.seedUpstream(WEST, P, b2);
      const east = w.runDownstream(EAST, P, w.event(EAST, P, b1));
      // dbt passed the sink fence and is building (its CONTROL.BUILDS row is RUNNING)
      await until("east's build in the warehouse", async () =>
        (await w.builds([b1])).some((r) => r.status === 'RUNNING'),
      );
      const epoch = await w.moveFence(WEST);
      await w.db.quiesce();
      rep.note(`failover to us-west-1, epoch ${epoch}, while ${b1} builds in us-east-1`);
      const west = w.runDownstream(WEST, P, w.event(WEST, P, b2));
      const [re, rw] = await Promise.all([east, west]);
      rep.check(
        'east ends FAILED FenceMoved (nothing recorded as SUCCEEDED after the fence moved)',
        re.status === 'FAILED' && /FenceMoved/.test(String(re.error)),
        outcome(re),
      );
      rep.check(
        'east alerted',
        w.alerts.some((a) => a.region === EAST && a.message.includes(b1)),
        w.alerts.map((a) => a.subject).join('; '),
      );
      rep.check('west SUCCEEDED', outcome(rw) === 'SUCCEEDED', outcome(rw));
      const rows = await invariants(w, rep, { due: [b1, b2] });
      rep.check(
        "west's build carries the new epoch",
        rows.some((r) => r.batch_id === b2 && r.region === WEST && r.epoch === epoch),
        '',
      );
      rep.note(
        `${b1} reached the warehouse once but its control record is FAILED (FenceMovedBeforeSuccess): do not rerun it; see docs/fence-and-locks.md`,
      );
      return rep.done();
    },
  },

  'd5-post-timeout-reconcile': {
    describe:
      "D5: the replies to every POST of StartDbtRun's retries are lost (the run exists) → the workflow reconciles by (batch, attempt) and waits on that run: no second build",
    async run(w) {
      const rep = new Report('d5-post-timeout-reconcile');
      await setUp(w, 1);
      const [b] = batchIds(1);
      await w.seedUpstream(EAST, P, b);
      // StartDbtRun's retries on DbtApiUnavailable: 1 call + 5 retries, all with the reply lost.
      w.faults.push({ kind: 'lose-start-reply', region: EAST, times: 6 });
      const res = await w.runDownstream(EAST, P, w.event(EAST, P, b));
      rep.check('the workflow SUCCEEDED after reconciling', outcome(res) === 'SUCCEEDED', outcome(res));
      rep.check(
        'it reconciled (GET by key)',
        res.events.some(
          (e) =>
            e.type === 'StateEntered' && (e as { state?: { name?: string } }).state?.name === 'ReconcileRun',
        ),
        '',
      );
      const runs = await w.appRuns(EAST, b);
      rep.check(
        'the app holds one run (attempt 1)',
        runs.length === 1 && runs[0].attempt === 1,
        runs.map((r) => `${r.runId} ${r.status}`).join(', '),
      );
      await invariants(w, rep, { due: [b] });
      return rep.done();
    },
  },

  'd6-fence-missing': {
    describe:
      'D6: the fence item is missing → FenceMissing with an alert, nothing claimed; `pulumi up` re-asserts it and a replay builds once',
    async run(w) {
      const rep = new Report('d6-fence-missing');
      await setUp(w);
      const [b] = batchIds(1);
      await w.seedUpstream(EAST, P, b);
      await w.region(EAST).doc.send(new DeleteCommand({ TableName: w.controlTable, Key: FENCE_KEY }));
      await w.db.quiesce();
      const res = await w.runDownstream(EAST, P, w.event(EAST, P, b));
      rep.check(
        'FAILED FenceMissing, not a silent skip',
        res.status === 'FAILED' && res.error === WORKFLOW_ERRORS.FenceMissing,
        outcome(res),
      );
      rep.check(
        'an alert names the batch',
        w.alerts.some((a) => a.message.includes(b)),
        w.alerts.map((a) => a.subject).join('; '),
      );
      rep.check(
        'nothing claimed, no app run, no build',
        !(await w.downstreamRecord(EAST, P, b)) &&
          (await w.appRuns(EAST, b)).length === 0 &&
          (await w.builds([b])).length === 0,
        '',
      );
      await w.moveFence(EAST); // the operator's `pulumi up` of the active stack re-asserts the fence
      await w.db.quiesce();
      const replay = await w.runDownstream(EAST, P, w.event(EAST, P, b));
      rep.check(
        'after the fence is re-asserted, the replay SUCCEEDED',
        outcome(replay) === 'SUCCEEDED',
        outcome(replay),
      );
      await invariants(w, rep, { due: [b] });
      return rep.done();
    },
  },

  'd7-not-yet-replicated': {
    describe:
      'D7: the event reaches east before the upstream records written in west have replicated (lag 1.2 s) → it waits, then builds',
    async run(w) {
      const rep = new Report('d7-not-yet-replicated');
      await setUp(w);
      const [b] = batchIds(1);
      w.db.setLag(1200);
      await w.seedUpstream(WEST, P, b);
      const res = await w.runDownstream(EAST, P, w.event(EAST, P, b));
      w.db.setLag(0);
      rep.check('SUCCEEDED', outcome(res) === 'SUCCEEDED', outcome(res));
      rep.check(
        'it waited for replication',
        res.events.some(
          (e) =>
            e.type === 'StateEntered' &&
            (e as { state?: { name?: string } }).state?.name === 'WaitForReplication',
        ),
        '',
      );
      await invariants(w, rep, { due: [b] });
      return rep.done();
    },
  },

  'd8-month-13': {
    describe:
      'D8: batch id policycenter-20261327T020000Z (month 13) → InvalidTriggerEvent before any write: no claim, no lock, no run, no build',
    async run(w) {
      const rep = new Report('d8-month-13');
      await setUp(w);
      const b = `${P}-20261327T020000Z`;
      const res = await w.runDownstream(EAST, P, w.event(EAST, P, b));
      rep.check(
        'FAILED InvalidTriggerEvent',
        res.status === 'FAILED' && res.error === WORKFLOW_ERRORS.InvalidTriggerEvent,
        outcome(res),
      );
      const lock = await w.item(EAST, pipelinePk(P), lockSk('DOWNSTREAM'));
      rep.check(
        'nothing written: no record, no lock, no app run, no build',
        !(await w.downstreamRecord(EAST, P, b)) &&
          !lock &&
          (await w.appRuns(EAST, b)).length === 0 &&
          (await w.builds([b])).length === 0,
        '',
      );
      return rep.done();
    },
  },

  'd9-upstream-not-active': {
    describe:
      'D9: the upstream workflow in us-west-1 (not active) → SkippedNotActive with an audit record, no Glue job run',
    async run(w) {
      const rep = new Report('d9-upstream-not-active');
      await setUp(w);
      const model = w.region(WEST).model;
      const sm = model.stateMachines.find((m) => m.name === `etl-${P}-upstream`)!;
      const schedule = model.schedules.find((s) => s.target.arn === sm.arn);
      const input = JSON.parse(
        (schedule?.target.input ?? '{}').replaceAll('<aws.scheduler.scheduled-time>', '2026-12-20T02:00:00Z'),
      );
      const glue: unknown[] = [];
      const res = await runWorkflow(sm.definition, input, {
        handlers: {
          dynamodb: new (await import('@aws-sdk/client-dynamodb')).DynamoDBClient(w.db.clientConfig(WEST)),
          lambda: (payload, fn) => w.invokeFunction(WEST, fn, payload),
          glue: async (params) => {
            glue.push(params);
            return { JobRunState: 'SUCCEEDED' };
          },
          s3: async () => ({}),
          states: async () => ({}),
          sns: (params) =>
            void w.alerts.push({
              region: WEST,
              subject: String(params.Subject ?? ''),
              message: String(params.Message ?? ''),
            }),
        },
        context: {
          Execution: { Id: `arn:aws:states:${WEST}:123456789012:execution:${sm.name}:d9`, Name: 'd9' },
        },
      });
      const batchId = `${P}-20261220T020000Z`;
      const skippedAt = res.events
        .filter((e) => e.type === 'StateEntered')
        .map((e) => (e as { state?: { name?: string } }).state?.name)
        .pop();
      rep.check(
        'SUCCEEDED in SkippedNotActive',
        res.status === 'SUCCEEDED' && skippedAt === 'SkippedNotActive',
        `${res.status} at ${skippedAt}`,
      );
      const audit = await w.item(WEST, pipelinePk(P), upstreamSkipSk(batchId, WEST));
      rep.check(
        'the skip is recorded with its reason (the fence it saw)',
        audit?.status === 'SKIPPED_NOT_ACTIVE' && /us-east-1/.test(String(audit.fenceSeen)),
        JSON.stringify(audit ?? null).slice(0, 200),
      );
      rep.check(
        'the batch record is untouched',
        !(await w.item(WEST, pipelinePk(P), batchSk(batchId, 'UPSTREAM'))),
        '',
      );
      rep.check('no Glue job run', glue.length === 0, `${glue.length} Glue runs`);
      return rep.done();
    },
  },

  'partition-both-claim': {
    describe:
      'Partition: failover to west while the replicas are cut off; both regions claim the same batch; the sink fence refuses east (DbtRunFenced + alert), west builds once',
    async run(w) {
      const rep = new Report('partition-both-claim');
      await setUp(w, 1);
      const [b] = batchIds(1);
      await w.seedUpstream(EAST, P, b);
      await w.db.quiesce();
      await w.db.partition();
      const epoch = await w.moveFence(WEST); // only west's replica and the warehouse see it
      rep.note(`partitioned; fence → us-west-1 epoch ${epoch} (east's replica still names us-east-1)`);
      const [re, rw] = await Promise.all([
        w.runDownstream(EAST, P, w.event(EAST, P, b)),
        w.runDownstream(WEST, P, w.event(WEST, P, b)),
      ]);
      rep.check('west SUCCEEDED', outcome(rw) === 'SUCCEEDED', outcome(rw));
      rep.check(
        'east claimed too, and ended FAILED DbtRunFenced',
        re.status === 'FAILED' && re.error === CALLBACK_ERRORS.fenced,
        `${outcome(re)}: ${re.cause?.slice(0, 200)}`,
      );
      rep.check(
        'east alerted',
        w.alerts.some((a) => a.region === EAST && a.message.includes(b)),
        w.alerts.map((a) => `${a.region} ${a.subject}`).join('; '),
      );
      const eastRuns = await w.appRuns(EAST, b);
      rep.check(
        "east's app run is FAILED with STALE_FENCE",
        eastRuns.length === 1 &&
          eastRuns[0].status === 'FAILED' &&
          /STALE_FENCE/.test(String(eastRuns[0].error)),
        eastRuns.map((r) => `${r.status} ${String(r.error).slice(0, 80)}`).join('; '),
      );
      await w.db.heal();
      const rows = await invariants(w, rep, { due: [b] });
      rep.check(
        "exactly one build reached the warehouse (west's); east's wrote nothing",
        rows.length === 1 && rows[0].region === WEST,
        rows.map((r) => `${r.region} ${r.status}`).join(', '),
      );
      return rep.done();
    },
  },
};

export const EXACTLY_ONCE_NAMES = Object.keys(EXACTLY_ONCE_SCENARIOS);
