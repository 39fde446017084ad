import * as assert from 'node:assert/strict';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  ExecutionAlreadyExists,
  StartExecutionCommand,
  type StartExecutionCommandInput,
} from '@aws-sdk/client-sfn';
import {
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
} from '@aws-sdk/lib-dynamodb';
import { upstreamBatchSucceededEventSchema } from '../contracts/events';
import type { Alert } from '../handlers/lib/alert-publisher';
import { logger } from '../handlers/lib/logger';
import { alertExecutionName } from '../handlers/lib/sfn-alert-publisher';
import { alertFor, fenceAlert, findLateness, type ControlItem } from '../handlers/lib/watchdog';
import {
  runWatchdog,
  setAlertPublisher,
  setDocumentClient,
  setSfnClient,
  type SfnLike,
} from '../handlers/watchdog';
import { createControlTable, startDynalite, type LocalDynamo } from '../local/dynalite';

const ALERT_SM = 'arn:aws:states:us-east-1:123456789012:stateMachine:etl-watchdog-alerts';
const P = 'policycenter';
const Q = 'billingcenter';
const ARN = (p: string) => `arn:aws:states:us-east-1:123456789012:stateMachine:etl-platform-downstream-${p}`;
const PIPELINES = [
  // 02:00 New York: 07:00Z in November (EST).
  {
    name: P,
    expression: 'cron(0 2 * * ? *)',
    timezone: 'America/New_York',
    graceMinutes: 60,
    downstreamArn: ARN(P),
  },
  {
    name: Q,
    expression: 'rate(6 hours)',
    graceMinutes: 30,
    downstreamArn: ARN(Q),
    anchor: '2026-01-01T01:00:00Z',
  },
];
const ENV: Record<string, string> = {
  PIPELINES_JSON: JSON.stringify(PIPELINES),
  LOST_TRIGGER_MINUTES: '30',
  MAX_DOWNSTREAM_MINUTES: '180',
  ALERTS_STATE_MACHINE_ARN: ALERT_SM,
  EVENT_SOURCE: 'com.insurer.etl-platform',
  AWS_REGION: 'us-east-1',
};
// Expected ticks at NOW: P's 2026-11-27T07:00Z (due by 08:00Z), Q's 2026-11-27T07:00Z (rate from 01:00Z).
const NOW = new Date('2026-11-27T09:00:00Z');
const later = (minutes: number) => new Date(NOW.getTime() + minutes * 60_000);
const PB = `${P}-20261127T070000Z`;
const QB = `${Q}-20261127T070000Z`;

function upstream(pipeline: string, batchId: string, overrides: Record<string, unknown> = {}) {
  const status = (overrides.status as string) ?? 'SUCCEEDED';
  return {
    pk: `PIPELINE#${pipeline}`,
    sk: `BATCH#${batchId}#UPSTREAM`,
    gsi1pk: `PIPELINE#${pipeline}#UPSTREAM#${status}`,
    gsi1sk: batchId,
    pipeline,
    batchId,
    status,
    region: 'us-east-1',
    scheduledTime: '2026-11-27T07:00:00Z',
    executionArn: `arn:aws:states:us-east-1:123456789012:execution:etl-platform-upstream-${pipeline}:${batchId}`,
    startedAt: '2026-11-27T07:00:04.120Z',
    completedAt: '2026-11-27T07:41:55.804Z',
    // As MarkBatchSucceeded writes it: States.JsonToString of the tables array.
    tables: JSON.stringify([
      {
        name: 'pc_policy',
        rows: 1200,
        lakePath: `s3://ins-lake-raw/raw/${pipeline}/pc_policy/batch_id=${batchId}/`,
      },
      {
        name: 'pc_contact',
        rows: 0,
        lakePath: `s3://ins-lake-raw/raw/${pipeline}/pc_contact/batch_id=${batchId}/`,
      },
    ]),
    expiresAt: 1_900_000_000,
    ...overrides,
  };
}

function downstream(pipeline: string, batchId: string, status: string, startedAt: string, attempt = 1) {
  return {
    pk: `PIPELINE#${pipeline}`,
    sk: `BATCH#${batchId}#DOWNSTREAM`,
    gsi1pk: `PIPELINE#${pipeline}#DOWNSTREAM#${status}`,
    gsi1sk: batchId,
    pipeline,
    batchId,
    status,
    attempt,
    region: 'us-east-1',
    startedAt,
  };
}
const watermark = (pipeline: string, batchId: string) => ({
  pk: `PIPELINE#${pipeline}`,
  sk: 'WATERMARK#DOWNSTREAM',
  batchId,
});

describe('lateness watchdog against dynalite', () => {
  let db: LocalDynamo;
  let tableName: string;
  let seq = 0;
  let alerts: Alert[];
  let starts: StartExecutionCommandInput[];
  let sfnBehaviour: (input: StartExecutionCommandInput) => Promise<{ executionArn?: string }>;
  let dynamoCalls: string[];
  /** Runs once just before the watchdog's next PutItem (to simulate a racing tick). */
  let beforeNextPut: (() => Promise<void>) | undefined;
  let counted: DynamoDBClient;
  const saved: Record<string, string | undefined> = {};
  let previousSfn: SfnLike;

  before(async () => {
    logger.setLogLevel('SILENT');
    for (const k of [...Object.keys(ENV), 'CONTROL_TABLE_NAME', 'LOOKBACK_HOURS']) saved[k] = process.env[k];
    db = await startDynalite();
    // A client of our own that counts every DynamoDB request the watchdog makes.
    counted = new DynamoDBClient({
      endpoint: db.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    counted.middlewareStack.add(
      (next, context) => async (args) => {
        dynamoCalls.push(String(context.commandName));
        if (context.commandName === 'PutItemCommand' && beforeNextPut) {
          const hook = beforeNextPut;
          beforeNextPut = undefined;
          await hook();
        }
        return next(args);
      },
      { step: 'initialize', name: 'countDynamoCalls' },
    );
    setDocumentClient(
      DynamoDBDocumentClient.from(counted, { marshallOptions: { removeUndefinedValues: true } }),
    );
    previousSfn = setSfnClient({
      send: async (command: StartExecutionCommand) => {
        assert.ok(command instanceof StartExecutionCommand);
        starts.push(command.input);
        return sfnBehaviour(command.input);
      },
    });
    setAlertPublisher({ publish: async (alert) => void alerts.push(alert) });
  });
  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    setSfnClient(previousSfn);
    setAlertPublisher(undefined);
    counted.destroy();
    await db.close();
  });
  beforeEach(async () => {
    tableName = `etl-platform-control-wd-${++seq}`;
    await createControlTable(db.client, tableName);
    // The fence names this region (the watchdog runs only where it is active); tests that need
    // another fence overwrite it.
    await db.doc.send(
      new PutCommand({
        TableName: tableName,
        Item: { pk: 'FENCE', sk: 'ACTIVE', activeRegion: 'us-east-1', epoch: 1 },
      }),
    );
    Object.assign(process.env, ENV, { CONTROL_TABLE_NAME: tableName });
    delete process.env.LOOKBACK_HOURS;
    alerts = [];
    starts = [];
    dynamoCalls = [];
    beforeNextPut = undefined;
    sfnBehaviour = async (input) => ({
      executionArn: `${input.stateMachineArn!.replace(':stateMachine:', ':execution:')}:${input.name}`,
    });
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
  const get = async (pipeline: string, sk: string) =>
    (await db.doc.send(new GetCommand({ TableName: tableName, Key: { pk: `PIPELINE#${pipeline}`, sk } })))
      .Item;

  /** Everything is well for both pipelines at NOW: upstream and downstream done, watermarks at the batch. */
  const allWell = () => [
    upstream(P, PB),
    downstream(P, PB, 'SUCCEEDED', '2026-11-27T07:45:00Z'),
    watermark(P, PB),
    upstream(Q, QB),
    downstream(Q, QB, 'SUCCEEDED', '2026-11-27T07:45:00Z'),
    watermark(Q, QB),
  ];

  it('nothing to do: no actions, no writes, and exactly 7 DynamoDB requests for two pipelines', async () => {
    await seed(
      ...allWell(),
      // Older history the watchdog must not look at (below the watermark).
      upstream(P, `${P}-20261126T070000Z`),
      downstream(P, `${P}-20261126T070000Z`, 'SUCCEEDED', '2026-11-26T07:45:00Z'),
    );
    dynamoCalls = [];
    const summary = await runWatchdog(NOW);
    assert.deepEqual(summary.actions, []);
    assert.deepEqual(summary.unchecked, []);
    assert.equal(summary.outcome, 'CHECKED');
    assert.deepEqual(alerts, []);
    assert.deepEqual(starts, []);
    // 1 BatchGetItem (fence + per pipeline: watermark, expected upstream, late marker) +
    // 3 Queries per pipeline (upstream SUCCEEDED after the watermark, downstream CLAIMED, RUNNING).
    assert.deepEqual(dynamoCalls.sort(), ['BatchGetItemCommand', ...Array(6).fill('QueryCommand')]);
    assert.equal(summary.dynamoRequests, 7);
  });

  /** A batch from days before: the pipeline had a cadence to keep. */
  const earlierBatch = (p: string) => ({
    pk: `PIPELINE#${p}`,
    sk: `BATCH#${p}-20261120T070000Z#UPSTREAM`,
    status: 'SUCCEEDED',
  });

  it('a pipeline with no earlier batch is not late (a fresh deployment or a new pipeline)', async () => {
    await seed(
      ...allWell().filter((item) => item.pk !== `PIPELINE#${P}`),
      watermark(P, `${P}-20261126T070000Z`),
    );
    const tick = await runWatchdog(NOW);
    assert.deepEqual(tick.actions, []);
    assert.equal(alerts.length, 0);
  });

  it('an overdue upstream batch alerts once across two ticks', async () => {
    await seed(
      ...allWell().filter((item) => item.pk !== `PIPELINE#${P}`),
      watermark(P, `${P}-20261126T070000Z`),
      earlierBatch(P),
    );
    const first = await runWatchdog(NOW);
    assert.deepEqual(first.actions, [{ kind: 'ALERT_LATE', pipeline: P, batchId: PB, result: 'ALERTED' }]);
    assert.equal(alerts.length, 1);
    assert.match(alerts[0].subject, /policycenter: upstream batch overdue/);
    assert.match(alerts[0].message, /2026-11-27T07:00:00.000Z \(batch policycenter-20261127T070000Z\)/);
    const marker = await get(P, `ALERT#LATE#${PB}`);
    assert.equal(marker?.alert, 'ALERT_LATE');
    assert.equal(marker?.expiresAt, Math.floor(NOW.getTime() / 1000) + 35 * 86_400);

    const second = await runWatchdog(later(10));
    assert.deepEqual(second.actions, []);
    assert.equal(alerts.length, 1, 'no second alert for the same batch');
  });

  it('the tick still inside its grace period is not expected yet; a racing tick that wrote the marker first wins', async () => {
    await seed(
      ...allWell().filter((item) => item.pk !== `PIPELINE#${P}`),
      watermark(P, `${P}-20261126T070000Z`),
      earlierBatch(P),
    );
    // 07:50Z: the 07:00Z tick is due by 08:00Z, so the expected batch is yesterday's... which is absent too.
    const early = await runWatchdog(new Date('2026-11-27T07:50:00Z'));
    assert.deepEqual(
      early.actions.map((a) => a.batchId),
      [`${P}-20261126T070000Z`],
    );
    // Another invocation writes the marker after this one read (so findLateness proposes the alert)
    // and before this one's conditional put: the put is refused and nothing is published.
    beforeNextPut = () => seed({ pk: `PIPELINE#${P}`, sk: `ALERT#LATE#${PB}`, alert: 'ALERT_LATE' });
    const raced = await runWatchdog(NOW);
    assert.deepEqual(raced.actions, [
      { kind: 'ALERT_LATE', pipeline: P, batchId: PB, result: 'ALREADY_ALERTED' },
    ]);
    assert.equal(alerts.length, 1);
  });

  it('a lost trigger starts the downstream once, named by the batch id with a valid event, and records it', async () => {
    await seed(
      ...allWell().filter(
        (item) =>
          (item.sk !== `BATCH#${PB}#DOWNSTREAM` && item.sk !== 'WATERMARK#DOWNSTREAM') ||
          item.pk !== `PIPELINE#${P}`,
      ),
    );
    await seed(watermark(P, `${P}-20261126T070000Z`));
    const summary = await runWatchdog(NOW);
    assert.deepEqual(summary.actions, [
      { kind: 'START_DOWNSTREAM', pipeline: P, batchId: PB, result: 'STARTED' },
    ]);
    assert.equal(starts.length, 1);
    assert.equal(starts[0].name, PB);
    assert.equal(starts[0].stateMachineArn, ARN(P));
    const input = upstreamBatchSucceededEventSchema.parse(JSON.parse(starts[0].input!));
    assert.equal(input['detail-type'], 'UpstreamBatchSucceeded');
    assert.equal(input.source, ENV.EVENT_SOURCE);
    assert.deepEqual(input.detail, {
      schemaVersion: '1.0',
      pipeline: P,
      batchId: PB,
      region: 'us-east-1',
      tables: JSON.parse(upstream(P, PB).tables as string),
      startedAt: '2026-11-27T07:00:04.120Z',
      completedAt: '2026-11-27T07:41:55.804Z',
      upstreamExecutionArn: upstream(P, PB).executionArn,
    });
    const recovered = await get(P, `BATCH#${PB}#RECOVERED`);
    assert.equal(recovered?.outcome, 'STARTED');
    assert.equal(recovered?.executionArn, `${ARN(P).replace(':stateMachine:', ':execution:')}:${PB}`);
    assert.equal(recovered?.gsi1pk, undefined, 'the marker stays out of the status index');
    assert.equal(alerts.length, 1);
    assert.match(alerts[0].subject, /lost trigger recovered/);

    // Next tick: the downstream has not claimed yet (its execution is still before the claim) → not started again.
    const again = await runWatchdog(later(10));
    assert.deepEqual(again.actions, []);
    assert.equal(starts.length, 1);
    assert.equal(alerts.length, 1);
  });

  it('a lost trigger whose execution already exists is fine (ALREADY_STARTED, recorded)', async () => {
    await seed(
      upstream(P, PB),
      upstream(Q, QB),
      downstream(Q, QB, 'SUCCEEDED', '2026-11-27T07:45:00Z'),
      watermark(Q, QB),
    );
    sfnBehaviour = async () => {
      throw new ExecutionAlreadyExists({ message: `Execution Already Exists: ${PB}`, $metadata: {} });
    };
    const summary = await runWatchdog(NOW);
    assert.deepEqual(summary.actions, [
      { kind: 'START_DOWNSTREAM', pipeline: P, batchId: PB, result: 'ALREADY_STARTED' },
    ]);
    assert.equal((await get(P, `BATCH#${PB}#RECOVERED`))?.outcome, 'ALREADY_STARTED');
  });

  it('not a lost trigger: completed less than LOST_TRIGGER_MINUTES ago, or already claimed, or at/below the watermark', async () => {
    const recent = `${P}-20261127T080000Z`; // not a tick of P's cron, but a SUCCEEDED record all the same
    await seed(
      upstream(P, PB),
      downstream(P, PB, 'CLAIMED', '2026-11-27T08:59:00Z'),
      upstream(P, recent, { completedAt: '2026-11-27T08:45:00Z' }),
      upstream(P, `${P}-20261125T070000Z`),
      watermark(P, `${P}-20261125T070000Z`),
      ...allWell().filter((item) => item.pk === `PIPELINE#${Q}`),
    );
    const summary = await runWatchdog(NOW);
    assert.deepEqual(summary.actions, []);
    assert.deepEqual(starts, []);
  });

  it('a downstream running past MAX_DOWNSTREAM_MINUTES alerts once per batch attempt', async () => {
    await seed(
      upstream(P, PB),
      downstream(P, PB, 'RUNNING', '2026-11-27T07:45:00Z'),
      ...allWell().filter((item) => item.pk === `PIPELINE#${Q}`),
    );
    const within = await runWatchdog(NOW); // 75 minutes in
    assert.deepEqual(within.actions, []);
    const over = await runWatchdog(new Date('2026-11-27T10:50:00Z')); // 185 minutes in
    assert.deepEqual(over.actions, [{ kind: 'ALERT_OVERRUN', pipeline: P, batchId: PB, result: 'ALERTED' }]);
    assert.match(alerts[0].message, /RUNNING since 2026-11-27T07:45:00Z, 185 minutes \(max 180\)/);
    assert.ok(await get(P, `ALERT#OVERRUN#${PB}#1`));
    const next = await runWatchdog(new Date('2026-11-27T11:00:00Z'));
    assert.deepEqual(next.actions, []);
    assert.equal(alerts.length, 1);
  });

  it('a failed publish un-claims the marker, fails the tick, and the next tick alerts', async () => {
    await seed(
      ...allWell().filter((item) => item.pk === `PIPELINE#${Q}`),
      watermark(P, `${P}-20261126T070000Z`),
      earlierBatch(P),
    );
    setAlertPublisher({
      publish: async () => {
        throw Object.assign(new Error('topic unreachable'), { name: 'InternalErrorException' });
      },
    });
    try {
      await assert.rejects(
        runWatchdog(NOW),
        (e: Error) => e.name === 'WatchdogActionFailed' && /ALERT_LATE/.test(e.message),
      );
      assert.equal(await get(P, `ALERT#LATE#${PB}`), undefined);
    } finally {
      setAlertPublisher({ publish: async (alert) => void alerts.push(alert) });
    }
    const retry = await runWatchdog(later(5));
    assert.deepEqual(
      retry.actions.map((a) => a.result),
      ['ALERTED'],
    );
  });

  describe('the default publisher: StartExecution on the alert workflow', () => {
    const alertStarts = () => starts.filter((st) => st.stateMachineArn === ALERT_SM);
    const overdue = () =>
      seed(
        ...allWell().filter((item) => item.pk === `PIPELINE#${Q}`),
        watermark(P, `${P}-20261126T070000Z`),
        earlierBatch(P),
      );
    beforeEach(() => setAlertPublisher(undefined));
    afterEach(() => setAlertPublisher({ publish: async (alert) => void alerts.push(alert) }));

    it('starts the alert workflow named by the marker, with {subject, message} as input', async () => {
      await overdue();
      const summary = await runWatchdog(NOW);
      assert.deepEqual(
        summary.actions.map((a) => a.result),
        ['ALERTED'],
      );
      assert.equal(alertStarts().length, 1);
      const [start] = alertStarts();
      assert.equal(start.name, `alert-late-${PB}`);
      const input = JSON.parse(start.input!);
      assert.deepEqual(Object.keys(input).sort(), ['message', 'subject']);
      assert.match(input.subject, /policycenter: upstream batch overdue/);
      assert.match(input.message, /batch policycenter-20261127T070000Z/);
      assert.deepEqual(starts, alertStarts(), 'nothing else was started');
    });

    it('ExecutionAlreadyExists is an alert already published: the tick succeeds and keeps the marker', async () => {
      await overdue();
      sfnBehaviour = async (input) => {
        throw new ExecutionAlreadyExists({
          message: `Execution Already Exists: '${ALERT_SM}:${input.name}'`,
          $metadata: {},
        });
      };
      const summary = await runWatchdog(NOW);
      assert.deepEqual(
        summary.actions.map((a) => a.result),
        ['ALERTED'],
      );
      assert.equal((await get(P, `ALERT#LATE#${PB}`))?.alert, 'ALERT_LATE');
    });

    it('a failed StartExecution is not published: the marker is un-claimed and the next tick starts the same name', async () => {
      await overdue();
      sfnBehaviour = async () => {
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      };
      await assert.rejects(
        runWatchdog(NOW),
        (e: Error) => e.name === 'WatchdogActionFailed' && /ALERT_LATE.*ThrottlingException/.test(e.message),
      );
      assert.equal(await get(P, `ALERT#LATE#${PB}`), undefined, 'un-claimed');
      sfnBehaviour = async (input) => ({ executionArn: `${ALERT_SM}:${input.name}` });
      const retry = await runWatchdog(later(5));
      assert.deepEqual(
        retry.actions.map((a) => a.result),
        ['ALERTED'],
      );
      assert.deepEqual(
        alertStarts().map((st) => st.name),
        [`alert-late-${PB}`, `alert-late-${PB}`],
      );
      assert.ok(await get(P, `ALERT#LATE#${PB}`));
    });

    it('a recovered lost trigger starts the downstream, then its alert (alert-recovered-<batchId>)', async () => {
      await seed(upstream(P, PB), ...allWell().filter((item) => item.pk === `PIPELINE#${Q}`));
      await runWatchdog(NOW);
      assert.deepEqual(
        starts.map((st) => [st.stateMachineArn, st.name]),
        [
          [ARN(P), PB],
          [ALERT_SM, `alert-recovered-${PB}`],
        ],
      );
    });

    it('the invalid-fence alert is keyed by the tick: a repeated tick is one alert, the next tick another', async () => {
      await db.doc.send(new DeleteCommand({ TableName: tableName, Key: { pk: 'FENCE', sk: 'ACTIVE' } }));
      await runWatchdog(NOW);
      await runWatchdog(NOW);
      await runWatchdog(later(5));
      assert.deepEqual(
        alertStarts().map((st) => st.name),
        ['alert-fence-20261127T090000Z', 'alert-fence-20261127T090000Z', 'alert-fence-20261127T090500Z'],
      );
    });
  });

  for (const [what, fence] of [
    ['no fence item', undefined],
    ['a fence without activeRegion', { pk: 'FENCE', sk: 'ACTIVE', epoch: 2 }],
    ['a fence with epoch 0', { pk: 'FENCE', sk: 'ACTIVE', activeRegion: 'us-east-1', epoch: 0 }],
  ] as const) {
    it(`${what}: the watchdog alerts that no batch can be claimed and starts nothing`, async () => {
      await db.doc.send(new DeleteCommand({ TableName: tableName, Key: { pk: 'FENCE', sk: 'ACTIVE' } }));
      if (fence) await seed({ ...fence });
      // A lost trigger that would otherwise be "recovered" into a FenceMissing failure.
      await seed(upstream(P, PB), ...allWell().filter((item) => item.pk === `PIPELINE#${Q}`));
      const summary = await runWatchdog(NOW);
      assert.equal(summary.outcome, 'FENCE_INVALID');
      assert.deepEqual(starts, []);
      assert.equal(alerts.length, 1);
      assert.match(alerts[0].subject, /fence missing or invalid/);
      assert.match(
        alerts[0].message,
        new RegExp(`${tableName}.*(no FENCE/ACTIVE item|no activeRegion|epoch 0)`),
      );
    });
  }

  it('the fence naming another region: nothing is checked beyond the first read', async () => {
    await seed({ pk: 'FENCE', sk: 'ACTIVE', activeRegion: 'us-west-1', epoch: 2 });
    dynamoCalls = [];
    const summary = await runWatchdog(NOW);
    assert.equal(summary.outcome, 'SKIPPED_NOT_ACTIVE');
    assert.deepEqual(dynamoCalls, ['BatchGetItemCommand']);
    assert.deepEqual(alerts, []);
  });

  it('configuration errors are MissingConfiguration naming the problem', async () => {
    process.env.PIPELINES_JSON = JSON.stringify([{ ...PIPELINES[0], expression: 'cron(0 2 * * * *)' }]);
    await assert.rejects(
      runWatchdog(NOW),
      (e: Error) => e.name === 'MissingConfiguration' && /exactly one of day-of-month/.test(e.message),
    );
    process.env.PIPELINES_JSON = ENV.PIPELINES_JSON;
    delete process.env.LOST_TRIGGER_MINUTES;
    await assert.rejects(
      runWatchdog(NOW),
      (e: Error) => e.name === 'MissingConfiguration' && /LOST_TRIGGER_MINUTES/.test(e.message),
    );
  });

  it('a rate() pipeline without anchor is reported unchecked, its other checks still run', async () => {
    const { anchor: _anchor, ...noAnchor } = PIPELINES[1] as (typeof PIPELINES)[1] & { anchor: string };
    process.env.PIPELINES_JSON = JSON.stringify([noAnchor]);
    await seed(downstream(Q, QB, 'CLAIMED', '2026-11-27T01:00:00Z'));
    const summary = await runWatchdog(NOW);
    assert.equal(summary.unchecked[0]?.pipeline, Q);
    assert.deepEqual(
      summary.actions.map((a) => a.kind),
      ['ALERT_OVERRUN'],
    );
  });
});

describe('findLateness (pure)', () => {
  it('an upstream record that cannot become a valid event is alerted, not started', () => {
    const pipeline = { ...PIPELINES[0], timezone: 'America/New_York' };
    const records = [upstream(P, PB, { tables: '[]' })] as ControlItem[];
    const actions = findLateness(
      records,
      [{ pipeline, expectedBatchId: PB, expectedScheduledTime: '2026-11-27T07:00:00.000Z' }],
      NOW,
      {
        lostTriggerMinutes: 30,
        maxDownstreamMinutes: 180,
        eventSource: 'com.insurer.etl-platform',
        lookbackHours: 48,
      },
    );
    assert.equal(actions.length, 1);
    assert.equal(actions[0].kind, 'ALERT_UNRECOVERABLE');
    assert.match((actions[0] as { problem: string }).problem, /detail.tables: must list at least one table/);
  });
});

describe('alert keys and execution names', () => {
  const marker = { pk: `PIPELINE#${P}`, sk: 'x' };
  it('each action kind has its own key, the overrun one per attempt', () => {
    const base = { pipeline: P, batchId: PB, marker };
    const keys = [
      alertFor({ ...base, kind: 'ALERT_LATE', scheduledTime: 't', graceMinutes: 5 }, 180).key,
      alertFor({ ...base, kind: 'ALERT_UNRECOVERABLE', problem: 'p' }, 180).key,
      ...[1, 2].map(
        (attempt) =>
          alertFor(
            {
              ...base,
              kind: 'ALERT_OVERRUN',
              status: 'RUNNING',
              attempt,
              startedAt: 't',
              runningMinutes: 200,
            },
            180,
          ).key,
      ),
    ];
    assert.deepEqual(keys, [`late-${PB}`, `unrecoverable-${PB}`, `overrun-${PB}-a1`, `overrun-${PB}-a2`]);
    assert.equal(fenceAlert('x', 't', 'us-east-1', NOW).key, 'fence-20261127T090000Z');
  });

  it('names follow Step Functions rules: unsafe characters replaced, at most 80 characters, long keys kept apart', () => {
    assert.equal(alertExecutionName(`overrun-${PB}-a2`), `alert-overrun-${PB}-a2`);
    assert.equal(alertExecutionName('late-a b:c/d#e'), 'alert-late-a-b-c-d-e');
    const long = (tail: string) => alertExecutionName(`late-${'x'.repeat(90)}-${tail}`);
    for (const name of [long('1'), long('2')]) {
      assert.equal(name.length, 80);
      assert.match(name, /^alert-late-x+-[0-9a-f]{8}$/);
    }
    assert.notEqual(long('1'), long('2'));
  });
});

describe('watchdog tick time', () => {
  const { tickTime } = require('../handlers/watchdog') as typeof import('../handlers/watchdog');
  const wall = new Date('2026-11-27T09:00:00Z');
  it('is the scheduled time the Scheduler passes', () => {
    assert.equal(
      tickTime({ scheduledTime: '2026-11-27T08:55:00Z' }, wall).toISOString(),
      '2026-11-27T08:55:00.000Z',
    );
  });
  it('falls back to the wall clock without one, or with garbage', () => {
    assert.equal(tickTime({}, wall), wall);
    assert.equal(tickTime({ scheduledTime: 'soon' }, wall), wall);
    assert.equal(tickTime(null, wall), wall);
  });
});
