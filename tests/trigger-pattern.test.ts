import { strict as assert } from 'assert';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { matchesPattern } from '../events/pattern';
import { EXECUTION_ALREADY_EXISTS } from '../state-machines/intermediate';
import {
  DOWNSTREAM_RUN_SUCCEEDED,
  UPSTREAM_BATCH_FAILED,
  UPSTREAM_BATCH_SUCCEEDED,
} from '../contracts/events';
import { UPSTREAM_STATES } from '../state-machines/upstream';
import { envelope, type BusEvent, type PutEventsEntry } from '../local/platform/bus';
import { Twin, type Region } from '../local/platform/twin';
import { runWorkflow, StatesError, type RunResult } from '../local/sfn-local';

/**
 * The rule's pattern, as the program records it, against the event the REAL upstream definition
 * (also as recorded) publishes when executed on the local platform with the real batch-context
 * handler.
 */

const PIPELINE = 'policycenter';
const SCHEDULED = '2026-11-27T07:00:00Z';
const BATCH = `${PIPELINE}-20261127T070000Z`;
const UPSTREAM = `etl-${PIPELINE}-upstream`;
const DOWNSTREAM = `etl-${PIPELINE}-downstream`;

/** The upstream run for the scheduled time, started directly (as its schedule would start it). */
function runUpstream(region: Region): void {
  region.startExecution({
    stateMachineArn: region.machineByName(UPSTREAM).arn,
    input: JSON.stringify({ pipeline: PIPELINE, scheduledTime: SCHEDULED }),
  });
}

/** The events `publisher` put on the region's bus. */
function publishedBy(region: Region, publisher: string): BusEvent[] {
  return region.bus.accepted.filter((e) => region.bus.origin(e.id)?.publisher === publisher);
}

describe('trigger pattern vs the event the upstream really emits', function () {
  this.timeout(120_000);
  let twin: Twin;
  let region: Region;
  let event: BusEvent;

  before(async () => {
    twin = await Twin.start({ activeRegion: 'us-east-1', start: SCHEDULED });
    region = twin.region('us-east-1');
    runUpstream(region);
    await twin.idle();
    const published = publishedBy(region, UPSTREAM);
    assert.equal(published.length, 1, 'the upstream published exactly one event');
    event = published[0];
  });
  after(async () => twin?.close());

  it('the upstream published UpstreamBatchSucceeded for the batch, with Step Functions resources in the envelope', () => {
    assert.equal(event['detail-type'], UPSTREAM_BATCH_SUCCEEDED);
    assert.equal(event.source, 'com.example-insurer.etl-platform');
    assert.equal((event.detail as { batchId: string }).batchId, BATCH);
    assert.equal((event.detail as { region: string }).region, 'us-east-1');
    assert.equal(event.resources.length, 2);
  });

  it('the recorded trigger rule pattern matches it (and the downstream it delivered to succeeded)', () => {
    const rule = region.bus.rule(`${PIPELINE}-downstream-trigger`);
    assert.deepEqual(rule.pattern, {
      source: ['com.example-insurer.etl-platform'],
      'detail-type': ['UpstreamBatchSucceeded'],
      detail: { pipeline: [PIPELINE] },
    });
    assert.ok(matchesPattern(rule.pattern, event));
    const ds = region.executions.filter((e) => e.stateMachine === DOWNSTREAM);
    assert.equal(ds.length, 1);
    assert.deepEqual(ds[0].path, [`EventBridge rule ${PIPELINE}-downstream-trigger → Step Functions`]);
    assert.equal((ds[0].output as { outcome: string }).outcome, 'SUCCEEDED');
  });

  it('rejects other pipelines and other detail-types', () => {
    const rule = region.bus.rule(`${PIPELINE}-downstream-trigger`);
    const withDetail = (d: Record<string, unknown>) => ({
      ...event,
      detail: { ...(event.detail as object), ...d },
    });
    assert.ok(!matchesPattern(rule.pattern, withDetail({ pipeline: 'claimcenter' })));
    for (const dt of [UPSTREAM_BATCH_FAILED, DOWNSTREAM_RUN_SUCCEEDED]) {
      assert.ok(!matchesPattern(rule.pattern, { ...event, 'detail-type': dt }), dt);
    }
    assert.ok(!matchesPattern(rule.pattern, { ...event, source: 'someone.else' }));
    // Other pipelines' rules ignore this event.
    assert.ok(!matchesPattern(region.bus.rule('claimcenter-downstream-trigger').pattern, event));
  });

  it("the forwarding pattern matches this region's events but not one forwarded from the peer", () => {
    const forward = region.bus.rule('forward-to-us-west-1');
    assert.ok(matchesPattern(forward.pattern, event));
    const downstreamEvents = publishedBy(region, DOWNSTREAM);
    assert.ok(downstreamEvents.length > 0);
    for (const e of downstreamEvents) assert.ok(matchesPattern(forward.pattern, e), e['detail-type']);
    const fromPeer = { ...event, detail: { ...(event.detail as object), region: 'us-west-1' } };
    assert.ok(!matchesPattern(forward.pattern, fromPeer));
    const forwarded = region.bus.deliveries.filter((d) => d.rule === forward.name);
    assert.equal(
      forwarded.length,
      1 + downstreamEvents.length,
      'every event of this region was forwarded once',
    );
  });

  it('envelope() keeps the entry as published', () => {
    const entry: PutEventsEntry = { Source: 's', DetailType: 'd', Detail: '{"a":1}' };
    assert.deepEqual(envelope(entry, { id: 'i', region: 'r', time: 't' }).detail, { a: 1 });
  });
});

describe("upstream-direct: the upstream's StartDownstream state, executed", function () {
  this.timeout(120_000);
  let twin: Twin;
  let region: Region;

  beforeEach(async () => {
    twin = await Twin.start({
      activeRegion: 'us-east-1',
      start: SCHEDULED,
      config: { defaultTriggerMode: 'upstream-direct' },
    });
    region = twin.region('us-east-1');
  });
  afterEach(async () => twin.close());

  const upstream = () => region.machineByName(UPSTREAM);
  const entered = (res: RunResult, state: string) =>
    res.events.filter((e) => e.type === 'StateEntered' && (e.state as { name: string }).name === state)
      .length;
  async function batchStatus(): Promise<string | undefined> {
    const out = await twin.dynamo.client(region.region).send(
      new GetItemCommand({
        TableName: twin.dynamo.tableName,
        Key: { pk: { S: `PIPELINE#${PIPELINE}` }, sk: { S: `BATCH#${BATCH}#UPSTREAM` } },
      }),
    );
    return out.Item?.status?.S;
  }
  /** The upstream with a `states` route that answers StartDownstream with `start`. */
  function runWith(start: (params: Record<string, unknown>) => unknown): Promise<RunResult> {
    return runWorkflow(
      upstream().definition,
      { pipeline: PIPELINE, scheduledTime: SCHEDULED },
      {
        handlers: {
          dynamodb: twin.dynamo.client(region.region),
          lambda: (payload) =>
            (require('../handlers/batch-context') as typeof import('../handlers/batch-context')).handler(
              payload as never,
            ),
          glue: (params) => twin.glue.run(region.region, params),
          s3: (action, params) => twin.glue.s3(action, params),
          states: (_resource, params) => start(params),
        },
        context: { Execution: { Name: 'upstream-1' } },
      },
    );
  }

  it('starts the downstream named by the batch id with the event as input; the downstream succeeds', async () => {
    runUpstream(region);
    await twin.idle();
    const ds = region.executions.filter((e) => e.stateMachine === DOWNSTREAM);
    assert.equal(ds.length, 1);
    assert.equal(ds[0].name, BATCH);
    assert.equal((ds[0].output as { outcome: string }).outcome, 'SUCCEEDED');
    assert.equal(region.dbt.runsFor(BATCH).length, 1);
  });

  it('ExecutionAlreadyExists is tolerated: SUCCEEDED, no alert', async () => {
    const res = await runWith(() => {
      throw new StatesError(EXECUTION_ALREADY_EXISTS, 'Execution Already Exists');
    });
    assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
    assert.equal(entered(res, UPSTREAM_STATES.startDownstream), 1);
    assert.equal(entered(res, UPSTREAM_STATES.done), 1);
    assert.equal(res.router.snsMessages.length, 0);
    assert.equal(await batchStatus(), 'SUCCEEDED');
  });

  it('any other error: one alert naming the rerun command, then Fail; the batch record stays SUCCEEDED', async () => {
    const res = await runWith(() => {
      throw new StatesError('StepFunctions.StateMachineDoesNotExistException', 'no such state machine');
    });
    assert.equal(res.status, 'FAILED');
    assert.equal(res.error, 'StepFunctions.StateMachineDoesNotExistException');
    assert.equal(entered(res, UPSTREAM_STATES.downstreamStartFailed), 1);
    assert.equal(res.router.snsMessages.length, 1);
    assert.match(
      String(res.router.snsMessages[0].Message),
      new RegExp(`etl-ops rerun --pipeline ${PIPELINE} --batch ${BATCH}`),
    );
    assert.equal(await batchStatus(), 'SUCCEEDED');
    // The success event was published before the start was attempted.
    assert.equal(res.router.putEvents.filter((e) => e.DetailType === UPSTREAM_BATCH_SUCCEEDED).length, 1);
  });
});
