import { strict as assert } from 'assert';
import * as pulumi from '@pulumi/pulumi';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { ChoiceState, State, StateMachineDefinition, SucceedState } from '../state-machines/asl';
import { checkGraph } from '../state-machines/graph';
import {
  DOWNSTREAM_STATES as DS,
  downstreamFragments,
  downstreamWorkflow,
  type DownstreamWorkflowRefs,
} from '../state-machines/downstream';
import { WORKFLOW_ERRORS } from '../contracts/errors';
import { checkFragment, composeFragments, fragment, type Fragment } from '../state-machines/fragment';
import type { IamStatement } from '../contracts/iam';
import { choice, dynamoPutItem, fail, pass, succeed } from '../state-machines/tasks';
import {
  UPSTREAM_STATES as US,
  upstreamFragments,
  upstreamWorkflow,
  type UpstreamWorkflowRefs,
} from '../state-machines/upstream';
import { validateAsl } from './harness/asl-validate';
import { startDynalite, type LocalDynamo } from '../local/dynalite';
import { runWorkflow, type RunResult } from '../local/sfn-local';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const TABLE = 'etl-platform-control';
const TABLE_ARN = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE}`;
const fnArn = (name: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:etl-platform-${name}`;
const BUS_ARN = `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/etl-platform`;
const TOPIC_ARN = `arn:aws:sns:${REGION}:${ACCOUNT}:etl-platform-alerts`;
const DOWNSTREAM_ARN = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:etl-platform-downstream-policycenter`;

const downRefs: DownstreamWorkflowRefs = {
  region: REGION,
  eventSource: 'com.insurer.etl-platform',
  pipeline: {
    name: 'policycenter',
    expectedTables: ['pc_policy', 'pc_claim'],
    dbtSelect: 'tag:policycenter',
  },
  controlTable: { name: TABLE, arn: TABLE_ARN },
  functions: {
    batchContext: { arn: fnArn('batch-context') },
    checkConsistency: { arn: fnArn('check-consistency') },
    startDbtRun: { arn: fnArn('start-dbt-run') },
    getDbtRun: { arn: fnArn('get-dbt-run') },
  },
  bus: { arn: BUS_ARN },
  alerts: { arn: TOPIC_ARN },
  dbt: {
    maxRunMinutes: 30,
    maxQueueMinutes: 60,
    heartbeatSeconds: 300,
    maxLostRetries: 1,
    lockWaitMinutes: 10,
    lockLeaseMinutes: 15,
    replicationWaitMinutes: 5,
  },
};

const upRefs: UpstreamWorkflowRefs = {
  pipeline: 'policycenter',
  tables: ['pc_policyperiod', 'pc_contact'],
  maxConcurrency: 2,
  eventSource: 'com.insurer.etl-platform',
  region: REGION,
  timeoutSeconds: 7200,
  controlTable: { name: TABLE, arn: TABLE_ARN },
  batchContextFunction: { arn: fnArn('batch-context') },
  glueJobs: {
    cdaToLake: { name: 'cda-to-lake', arn: `arn:aws:glue:${REGION}:${ACCOUNT}:job/cda-to-lake` },
    lakeToSnowflake: { name: 'lake-to-sf', arn: `arn:aws:glue:${REGION}:${ACCOUNT}:job/lake-to-sf` },
  },
  lake: { bucket: 'ins-lake-raw', arn: 'arn:aws:s3:::ins-lake-raw' },
  source: { bucket: 'guidewire-cda', prefix: 'cda/pc' },
  snowflakeConnectionName: 'snowflake-prod',
  bus: { arn: BUS_ARN, name: 'etl-platform' },
  alerts: { arn: TOPIC_ARN },
};
const upDirectRefs: UpstreamWorkflowRefs = { ...upRefs, downstream: { arn: DOWNSTREAM_ARN } };

const EXIT_PREFIX = 'Exit_';

/**
 * The fragment as a machine of its own: a Choice on `$.entry` enters it at any of its entries, and
 * each exit becomes a Succeed state `Exit_<exit>`, so checkGraph, asl-validator and the local engine
 * can judge the fragment without the rest of the workflow.
 */
function fragmentMachine(f: Fragment): StateMachineDefinition {
  const rename = (target: string) => (f.exits.includes(target) ? `${EXIT_PREFIX}${target}` : target);
  const enter: ChoiceState = {
    Type: 'Choice',
    // IsPresent first: a comparison on a missing path fails the execution.
    Choices: f.entries.map((e) => ({
      And: [
        { Variable: '$.entry', IsPresent: true },
        { Variable: '$.entry', StringEquals: e },
      ],
      Next: e,
    })),
    Default: f.entries[0],
  };
  const states: Record<string, State> = { EnterFragment: enter };
  for (const [name, state] of Object.entries(f.states)) states[name] = retarget(state, rename);
  const exit: SucceedState = { Type: 'Succeed' };
  for (const x of f.exits) states[`${EXIT_PREFIX}${x}`] = exit;
  return { StartAt: 'EnterFragment', States: states };
}

function retarget(state: State, rename: (target: string) => string): State {
  const copy = structuredClone(state);
  if ('Next' in copy && typeof copy.Next === 'string') copy.Next = rename(copy.Next);
  if (copy.Type === 'Choice') {
    for (const rule of copy.Choices) rule.Next = rename(rule.Next);
    if (copy.Default !== undefined) copy.Default = rename(copy.Default);
  }
  if ('Catch' in copy && copy.Catch) for (const c of copy.Catch) c.Next = rename(c.Next);
  return copy;
}

/** The exit an execution of `fragmentMachine` left by (undefined if it ended inside). */
function exitTaken(r: RunResult): string | undefined {
  const names = r.events
    .filter((e) => e.type === 'StateEntered')
    .map((e) => (e as { state?: { name?: string } }).state?.name ?? '');
  const last = names.filter((n) => n.startsWith(EXIT_PREFIX)).pop();
  return last?.slice(EXIT_PREFIX.length);
}

const byName = (fragments: Fragment[]) => new Map(fragments.map((f) => [f.name, f]));
const exitingTo = (fragments: Fragment[], state: string) =>
  fragments.filter((f) => f.exits.includes(state)).map((f) => f.name);

describe('workflow fragments: checkFragment and composeFragments', () => {
  const table = { name: TABLE, arn: TABLE_ARN };
  const write = (next: string, onError: string) =>
    dynamoPutItem(table, { Item: { pk: { S: 'X' } } }, { next, catchTo: onError });

  it('accepts a fragment whose transitions stay inside or leave by its declared exits', () => {
    const f = fragment({
      name: 'ok',
      entries: ['Write'],
      exits: ['After', 'OnError'],
      states: { Write: write('Check', 'OnError'), Check: choice([], 'After') },
    });
    assert.deepEqual(checkFragment(f), []);
    assert.deepEqual(Object.keys(f.states), ['Write', 'Check']);
    assert.deepEqual(f.statements, [
      { Effect: 'Allow', Action: ['dynamodb:PutItem'], Resource: [TABLE_ARN] },
    ]);
  });

  it('names an undeclared exit, a declared exit never taken, an own state declared as exit, and an unreachable state', () => {
    const f: Fragment = {
      name: 'broken',
      entries: ['Write'],
      exits: ['OnError', 'NeverTaken', 'Write'],
      ends: false,
      states: { Write: write('Elsewhere', 'OnError').state, Orphan: pass({ next: 'Write' }) },
      statements: [],
    };
    assert.deepEqual(checkFragment(f), [
      'fragment broken: Write goes to "Elsewhere", not a declared exit',
      'fragment broken: declared exit "NeverTaken" is never taken',
      'fragment broken: exit "Write" is one of its own states',
      'fragment broken: Orphan is unreachable from its entries',
    ]);
    assert.throws(
      () => fragment({ name: 'broken', entries: ['Write'], states: { Write: write('X', 'Y') } }),
      /fragment broken: Write goes to "X", not a declared exit; fragment broken: Write goes to "Y"/,
    );
  });

  it('checks End against `ends`, and that entries are its own states', () => {
    assert.throws(
      () => fragment({ name: 'ending', entries: ['Last'], states: { Last: pass() } }),
      /a state has End but the fragment does not declare ends/,
    );
    assert.throws(
      () => fragment({ name: 'f', entries: ['Done'], ends: true, states: { Done: succeed() } }),
      /declares ends but no state has End/,
    );
    assert.throws(
      () => fragment({ name: 'f', entries: ['Nope'], states: { Done: succeed() } }),
      /entry "Nope" is not one of its states.*Done is unreachable/,
    );
    assert.doesNotThrow(() =>
      fragment({ name: 'f', entries: ['Last'], ends: true, states: { Last: pass() } }),
    );
  });

  it('composes in order, starts at the first entry, and refuses shared names and exits into no entry', () => {
    const a = fragment({ name: 'a', entries: ['A1'], exits: ['B1'], states: { A1: pass({ next: 'B1' }) } });
    const b = fragment({
      name: 'b',
      entries: ['B1'],
      exits: ['OnError'],
      states: { B1: write('B2', 'OnError'), B2: succeed() },
    });
    const failures = fragment({ name: 'failures', entries: ['OnError'], states: { OnError: fail() } });
    const composed = composeFragments([a, b, failures]);
    assert.equal(composed.startAt, 'A1');
    assert.deepEqual(Object.keys(composed.states), ['A1', 'B1', 'B2', 'OnError']);
    assert.deepEqual(composed.statements, b.statements);

    assert.throws(
      () => composeFragments([a, b]),
      /fragment b exits to "OnError", which is no other fragment's entry/,
    );
    const intoTheMiddle = fragment({
      name: 'c',
      entries: ['C1'],
      exits: ['B2'],
      states: { C1: pass({ next: 'B2' }) },
    });
    assert.throws(() => composeFragments([intoTheMiddle, b, failures]), /fragment c exits to "B2"/);
    const twin = fragment({ name: 'twin', entries: ['A1'], states: { A1: succeed() } });
    assert.throws(() => composeFragments([a, twin, b, failures]), /state A1 is in fragments a and twin/);
  });
});

describe('workflow fragments: the workflows are their fragments', () => {
  interface Case {
    label: string;
    fragments: Fragment[];
    machine: { States: Record<string, State> };
    statements: readonly IamStatement[];
  }
  const cases: Case[] = [];
  const down = downstreamWorkflow(downRefs);
  cases.push({
    label: 'downstream',
    fragments: downstreamFragments(downRefs),
    machine: down.definition,
    statements: down.statements,
  });
  for (const [label, refs] of [
    ['upstream', upRefs],
    ['upstream (upstream-direct)', upDirectRefs],
  ] as const) {
    const built = upstreamWorkflow(refs);
    const { batch, table } = upstreamFragments(refs);
    cases.push({ label, fragments: batch, machine: built.definition, statements: built.statements });
    const map = built.definition.States[US.loadTables];
    assert.ok(map.Type === 'Map');
    if (refs.downstream !== undefined) continue; // the table fragments do not depend on it
    // The Map carries its processor's statements.
    const loadTables = byName(batch).get('upstream/loadTables') as Fragment;
    cases.push({
      label: `${label}, one table`,
      fragments: table,
      machine: map.ItemProcessor,
      statements: loadTables.statements,
    });
  }

  for (const c of cases) {
    it(`${c.label}: each fragment passes checkGraph and asl-validator on its own, entered at each entry`, () => {
      for (const f of c.fragments) {
        const machine = fragmentMachine(f);
        assert.deepEqual(checkGraph(machine), [], f.name);
        assert.deepEqual(validateAsl(machine), [], f.name);
      }
    });

    it(`${c.label}: the fragments hold every state once, in definition order, and every IAM statement`, async () => {
      const composed = composeFragments(c.fragments);
      assert.deepEqual(Object.keys(composed.states), Object.keys(c.machine.States));
      assert.deepEqual(composed.states, c.machine.States);
      assert.ok(composed.statements.length > 0);
      assert.deepEqual(await resolved(composed.statements), await resolved(c.statements));
    });
  }

  it('downstream: once the batch is claimed, every failure is recorded before the alert', () => {
    // Only fragments that run before a claim exists (or the failure path itself) may go straight
    // to AlertFailure; after ClaimBatch a failure must pass FailureDefaults → RecordFailure.
    const fragments = downstreamFragments(downRefs);
    assert.deepEqual(exitingTo(fragments, DS.alertFailure), [
      'downstream/batchIdGate',
      'downstream/fenceAtEntry',
      'downstream/claim',
      'downstream/failureRecord',
    ]);
    const claimed = fragments.slice(fragments.findIndex((f) => f.name === 'downstream/lock'));
    for (const f of claimed) {
      if (f.name === 'downstream/failureAlerts' || f.name === 'downstream/successAnnouncement') continue;
      assert.ok(
        f.exits.includes(DS.failureDefaults) || f.name === 'downstream/failureRecord',
        `${f.name} has no way to the failure record`,
      );
    }
  });

  it('upstream: before the batch record failures alert only; after it they are recorded; every table error marks the table', () => {
    const { batch, table } = upstreamFragments(upDirectRefs);
    assert.deepEqual(exitingTo(batch, US.alertNoBatch), ['upstream/scheduleIntake', 'upstream/fenceAtEntry']);
    assert.deepEqual(exitingTo(batch, US.describeFailure), [
      'upstream/batchRecord',
      'upstream/lock',
      'upstream/loadTables',
      'upstream/batchSucceeded',
      'upstream/publish',
    ]);
    assert.deepEqual(
      table
        .filter((f) => f.name !== 'upstream/table/failed')
        .map((f) => f.exits.includes(US.markTableFailed)),
      table.slice(0, -1).map(() => true),
    );
    assert.deepEqual(
      table.filter((f) => f.ends).map((f) => f.name),
      ['upstream/table/succeeded'],
    );
  });
});

describe('workflow fragments: fragments run on their own (aws-local-stepfunctions + dynalite)', function () {
  this.timeout(60_000);
  let db: LocalDynamo;
  before(async () => {
    db = await startDynalite({ tableName: TABLE });
  });
  after(async () => db?.close());

  const NOW = 1_790_000_000;
  const ctx = (now: number) => ({
    now,
    nowIso: new Date(now * 1000).toISOString(),
    leaseExpiresAt: now + 900,
    recordExpiresAt: now + 86_400,
  });
  const putLock = (holder: string, leaseExpiresAt: number) =>
    db.client.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: {
          pk: { S: 'PIPELINE#policycenter' },
          sk: { S: 'LOCK#DOWNSTREAM' },
          executionArn: { S: holder },
          leaseExpiresAt: { N: String(leaseExpiresAt) },
        },
      }),
    );
  const lockHolder = async () =>
    (
      await db.client.send(
        new GetItemCommand({
          TableName: TABLE,
          Key: { pk: { S: 'PIPELINE#policycenter' }, sk: { S: 'LOCK#DOWNSTREAM' } },
        }),
      )
    ).Item?.executionArn?.S;

  const lockMachine = fragmentMachine(
    byName(downstreamFragments(downRefs)).get('downstream/lock') as Fragment,
  );
  const runLock = (name: string) =>
    runWorkflow(
      lockMachine,
      {
        batchId: 'policycenter-20261127T020000Z',
        ctx: ctx(NOW),
        lockWait: { waitSeconds: 30, elapsedSeconds: 0 },
      },
      {
        handlers: { dynamodb: db.client, lambda: () => ctx(NOW) },
        context: { Execution: { Name: name } },
      },
    );

  it('downstream lock: a free lock is taken and the fragment leaves by its exit to ConsistencyCheck', async () => {
    const r = await runLock('free-lock');
    assert.equal(r.status, 'SUCCEEDED', r.cause);
    assert.equal(exitTaken(r), DS.consistencyCheck);
    assert.match((await lockHolder()) ?? '', /:free-lock$/);
  });

  it('downstream lock: a live holder makes it wait, then leave by FailureDefaults with PipelineLockTimeout', async () => {
    await putLock('arn:aws:states:us-east-1:123456789012:execution:local:other', NOW + 3600);
    const r = await runLock('blocked');
    assert.equal(r.status, 'SUCCEEDED');
    assert.equal(exitTaken(r), DS.failureDefaults);
    assert.equal((r.output as { error: { Error: string } }).error.Error, WORKFLOW_ERRORS.PipelineLockTimeout);
    // lockWaitMinutes 10: one try, then one after each wait (30, 60, 120, 240, 300 s; 750 s >= 600 s).
    assert.equal(r.router.calls.filter((call) => call.state === DS.acquireLock).length, 6);
    assert.match((await lockHolder()) ?? '', /:other$/);
  });

  it('downstream lock: an expired lease is taken over', async () => {
    await putLock('arn:aws:states:us-east-1:123456789012:execution:local:crashed', NOW - 1);
    const r = await runLock('takeover');
    assert.equal(exitTaken(r), DS.consistencyCheck);
    assert.match((await lockHolder()) ?? '', /:takeover$/);
  });

  it('upstream table load gate: a SUCCEEDED lake result under the same fence goes on; a moved fence or a failed result marks the table failed', async () => {
    const gate = fragmentMachine(
      byName(upstreamFragments(upRefs).table).get('upstream/table/loadGate') as Fragment,
    );
    await db.client.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { pk: { S: 'FENCE' }, sk: { S: 'ACTIVE' }, activeRegion: { S: REGION }, epoch: { N: '4' } },
      }),
    );
    const run = (fence: { activeRegion: string; epoch: string }, status: string) =>
      runWorkflow(
        gate,
        {
          table: 'pc_contact',
          fence: { activeRegion: { S: fence.activeRegion }, epoch: { N: fence.epoch } },
          lake: { value: { status } },
        },
        { handlers: { dynamodb: db.client } },
      );
    const ok = await run({ activeRegion: REGION, epoch: '4' }, 'SUCCEEDED');
    assert.equal(exitTaken(ok), US.lakeToSnowflake);

    const moved = await run({ activeRegion: REGION, epoch: '3' }, 'SUCCEEDED');
    assert.equal(exitTaken(moved), US.markTableFailed);
    assert.equal((moved.output as { error: { Error: string } }).error.Error, 'FenceMoved');

    const failed = await run({ activeRegion: REGION, epoch: '4' }, 'FAILED');
    assert.equal(exitTaken(failed), US.markTableFailed);
    assert.equal((failed.output as { error: { Error: string } }).error.Error, 'CdaToLakeResultNotSucceeded');
    assert.equal(failed.router.calls.length, 0, 'a failed lake result reads no fence');
  });
});

function resolve<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((res) => o.apply((v) => res(v)));
}

/** Statements with every resource resolved, in their order. */
function resolved(statements: readonly IamStatement[]) {
  return Promise.all(
    statements.map(async (s) => ({
      Effect: s.Effect,
      Action: s.Action,
      Resource: await resolve(pulumi.all([...s.Resource])),
    })),
  );
}
