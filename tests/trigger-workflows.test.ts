import { strict as assert } from 'assert';
import * as pulumi from '@pulumi/pulumi';
import { PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { checkGraph } from '../state-machines/graph';
import type { IamStatement } from '../contracts/iam';
import { policyDocument } from '../state-machines/policy';
import {
  DOWNSTREAM_RETRIES_EXHAUSTED,
  EXECUTION_ALREADY_EXISTS,
  INVALID_TRIGGER_EVENT,
  intermediateWorkflow,
} from '../state-machines/intermediate';
import { NOT_STARTED, pollerWorkflow } from '../state-machines/poller';
import { upstreamBatchSucceededEventSchema } from '../contracts/events';
import { validateAsl } from './harness/asl-validate';
import { STATUS_INDEX } from '../contracts/control-table';
import { startDynalite, type LocalDynamo } from '../local/dynalite';
import { runWorkflow, StatesError, type RunResult } from '../local/sfn-local';

const ACCOUNT = '123456789012';
const TABLE_NAME = 'etl-platform-control';
const TABLE_ARN = `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/${TABLE_NAME}`;
const DOWNSTREAM_ARN = `arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:etl-platform-downstream`;
const TOPIC_ARN = `arn:aws:sns:us-east-1:${ACCOUNT}:etl-platform-alerts`;
const EVENT_SOURCE = 'etl-platform.upstream';
const PIPELINE = 'policycenter';

const intermediate = intermediateWorkflow({
  downstream: { arn: DOWNSTREAM_ARN },
  alertTopic: { arn: TOPIC_ARN },
  maxAttempts: 3,
  retryWaitSeconds: 300,
});
const poller = pollerWorkflow({
  table: { name: TABLE_NAME, arn: TABLE_ARN },
  pipeline: PIPELINE,
  downstream: { arn: DOWNSTREAM_ARN },
  eventSource: EVENT_SOURCE,
  batchLimit: 10,
});

function resolve<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((res) => o.apply((v) => res(v)));
}

async function actionsByResource(statements: IamStatement[]): Promise<Record<string, string[]>> {
  const doc = await resolve(policyDocument(statements));
  const out: Record<string, string[]> = {};
  for (const s of doc.Statement) {
    for (const a of s.Action) assert.ok(!a.includes('*'), `wildcard action ${a}`);
    for (const r of s.Resource) out[r] = [...(out[r] ?? []), ...s.Action].sort();
  }
  return out;
}

function entered(res: RunResult): string[] {
  return res.events.filter((e) => e.type === 'StateEntered').map((e) => (e.state as { name: string }).name);
}

const BATCH = `${PIPELINE}-20261127T020000Z`;

function sampleEvent(batchId = BATCH) {
  return {
    version: '0',
    id: '6f1c3b9e-1111-2222-3333-444455556666',
    'detail-type': 'UpstreamBatchSucceeded',
    source: EVENT_SOURCE,
    account: ACCOUNT,
    time: '2026-11-27T02:41:00Z',
    region: 'us-east-1',
    resources: [`arn:aws:states:us-east-1:${ACCOUNT}:execution:etl-platform-upstream:${batchId}`],
    detail: {
      schemaVersion: '1.0',
      pipeline: PIPELINE,
      batchId,
      region: 'us-east-1',
      tables: [
        { name: 'pc_policy', rows: 1200, lakePath: 's3://lake-raw/policycenter/pc_policy/20261127T020000Z/' },
      ],
      startedAt: '2026-11-27T02:00:05Z',
      completedAt: '2026-11-27T02:40:55Z',
      upstreamExecutionArn: `arn:aws:states:us-east-1:${ACCOUNT}:execution:etl-platform-upstream:${batchId}`,
    },
  };
}

type Params = Record<string, unknown>;

/** A .sync:2 child: returns DescribeExecution with parsed Output, or fails as Step Functions reports it. */
function childDownstream(
  outcomes: Array<'SUCCEEDED' | 'DUPLICATE' | 'SKIPPED_NOT_ACTIVE' | 'FAIL' | 'EXISTS'>,
) {
  const starts: Params[] = [];
  const handler = (resource: string, params: Params) => {
    assert.equal(resource, 'arn:aws:states:::states:startExecution.sync:2');
    starts.push(params);
    const outcome = outcomes[Math.min(starts.length, outcomes.length) - 1];
    const executionArn = `arn:aws:states:us-east-1:${ACCOUNT}:execution:etl-platform-downstream:${String(params.Name)}`;
    if (outcome === 'EXISTS')
      throw new StatesError(EXECUTION_ALREADY_EXISTS, `Execution Already Exists: '${executionArn}'`);
    if (outcome === 'FAIL') {
      throw new StatesError(
        'States.TaskFailed',
        JSON.stringify({
          ExecutionArn: executionArn,
          Status: 'FAILED',
          Error: 'DbtRunFailed',
          Cause: 'model errored',
        }),
      );
    }
    return { ExecutionArn: executionArn, Status: 'SUCCEEDED', Input: params.Input, Output: { outcome } };
  };
  return { starts, handler };
}

describe('trigger workflows', () => {
  describe('definitions', () => {
    for (const [name, wf] of [
      ['intermediate', intermediate],
      ['poller', poller],
    ] as const) {
      it(`${name}: passes asl-validator and checkGraph (every Task has Retry and Catch)`, () => {
        assert.deepEqual(validateAsl(wf.definition), []);
        assert.deepEqual(checkGraph(wf.definition), []);
      });
    }

    it('intermediate: IAM is StartExecution on the downstream plus what .sync:2 needs, and Publish on the topic', async () => {
      assert.deepEqual(await actionsByResource(intermediate.statements), {
        [DOWNSTREAM_ARN]: ['states:StartExecution'],
        [`arn:aws:states:us-east-1:${ACCOUNT}:execution:etl-platform-downstream:*`]: [
          'states:DescribeExecution',
          'states:StopExecution',
        ],
        [`arn:aws:events:us-east-1:${ACCOUNT}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule`]: [
          'events:DescribeRule',
          'events:PutRule',
          'events:PutTargets',
        ],
        [TOPIC_ARN]: ['sns:Publish'],
      });
    });

    it('poller: IAM is Query on the index only, GetItem on the table, StartExecution on the downstream', async () => {
      assert.deepEqual(await actionsByResource(poller.statements), {
        [`${TABLE_ARN}/index/${STATUS_INDEX.name}`]: ['dynamodb:Query'],
        [TABLE_ARN]: ['dynamodb:GetItem'],
        [DOWNSTREAM_ARN]: ['states:StartExecution'],
      });
    });

    it('rejects nonsensical refs', () => {
      assert.throws(() =>
        intermediateWorkflow({
          downstream: { arn: DOWNSTREAM_ARN },
          alertTopic: { arn: TOPIC_ARN },
          maxAttempts: 0,
          retryWaitSeconds: 1,
        }),
      );
      assert.throws(() =>
        pollerWorkflow({
          table: { name: TABLE_NAME, arn: TABLE_ARN },
          pipeline: PIPELINE,
          downstream: { arn: DOWNSTREAM_ARN },
          eventSource: EVENT_SOURCE,
          batchLimit: 0,
        }),
      );
    });
  });

  describe('intermediate (rule-intermediate-sfn)', () => {
    const run = (input: unknown, child: ReturnType<typeof childDownstream>) =>
      runWorkflow(intermediate.definition, input, {
        handlers: { states: child.handler },
        context: {
          Execution: { Id: `arn:aws:states:us-east-1:${ACCOUNT}:execution:intermediate:e1`, Name: 'e1' },
        },
      });

    it('(a) child succeeds first time: one start named <batchId>-a1 with the event as input; 3 transitions', async () => {
      const child = childDownstream(['SUCCEEDED']);
      const res = await run(sampleEvent(), child);
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(child.starts.length, 1);
      assert.equal(child.starts[0].Name, `${BATCH}-a1`);
      const { AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: link, ...input } = child.starts[0].Input as Params;
      assert.equal(link, `arn:aws:states:us-east-1:${ACCOUNT}:execution:intermediate:e1`);
      assert.deepEqual(input, sampleEvent(), 'attempt 1 input is the event itself');
      assert.equal(upstreamBatchSucceededEventSchema.safeParse(input).success, true);
      assert.deepEqual((res.output as { output: unknown }).output, { outcome: 'SUCCEEDED' });
      assert.deepEqual(entered(res), ['ValidateEvent', 'StartDownstream', 'Done']);
      assert.equal(res.transitions, 3);
      assert.equal(res.router.snsMessages.length, 0);
    });

    it('(b) child fails twice then succeeds (maxAttempts 3): names -a1..-a3, reruns carry the rerun input', async () => {
      const child = childDownstream(['FAIL', 'FAIL', 'SUCCEEDED']);
      const res = await run(sampleEvent(), child);
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.deepEqual(
        child.starts.map((s) => s.Name),
        [`${BATCH}-a1`, `${BATCH}-a2`, `${BATCH}-a3`],
      );
      for (const s of child.starts.slice(1)) {
        assert.deepEqual(s.Input, {
          rerun: { pipeline: PIPELINE, batchId: BATCH, reason: 'intermediate-retry' },
          AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: `arn:aws:states:us-east-1:${ACCOUNT}:execution:intermediate:e1`,
        });
      }
      assert.equal(entered(res).filter((n) => n === 'WaitBeforeRetry').length, 2);
      assert.equal(res.router.snsMessages.length, 0);
    });

    it('(c) child always fails: maxAttempts starts, one SNS alert, Fail DownstreamRetriesExhausted', async () => {
      const child = childDownstream(['FAIL']);
      const res = await run(sampleEvent(), child);
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, DOWNSTREAM_RETRIES_EXHAUSTED);
      assert.equal(child.starts.length, 3);
      assert.equal(res.router.snsMessages.length, 1);
      const msg = res.router.snsMessages[0];
      assert.equal(msg.TopicArn, TOPIC_ARN);
      assert.match(
        String(msg.Message),
        new RegExp(`${BATCH}.*failed 3 times; last error States\\.TaskFailed`),
      );
    });

    for (const outcome of ['DUPLICATE', 'SKIPPED_NOT_ACTIVE'] as const) {
      it(`(d) child returns ${outcome}: succeeds without retrying`, async () => {
        const child = childDownstream([outcome, 'SUCCEEDED']);
        const res = await run(sampleEvent(), child);
        assert.equal(res.status, 'SUCCEEDED');
        assert.equal(child.starts.length, 1);
        assert.deepEqual((res.output as { output: unknown }).output, { outcome });
      });
    }

    it('(e) ExecutionAlreadyExists on start (duplicate delivery): Succeed AlreadyStarted, no retry', async () => {
      const child = childDownstream(['EXISTS', 'SUCCEEDED']);
      const res = await run(sampleEvent(), child);
      assert.equal(res.status, 'SUCCEEDED');
      assert.equal(child.starts.length, 1);
      assert.equal(entered(res).at(-1), 'AlreadyStarted');
    });

    it('(e) ExecutionAlreadyExists on a rerun also ends AlreadyStarted', async () => {
      const child = childDownstream(['FAIL', 'EXISTS']);
      const res = await run(sampleEvent(), child);
      assert.equal(res.status, 'SUCCEEDED');
      assert.equal(child.starts.length, 2);
      assert.equal(entered(res).at(-1), 'AlreadyStarted');
    });

    const malformed: Array<[string, unknown]> = [
      ['empty object', {}],
      ['wrong detail-type', { ...sampleEvent(), 'detail-type': 'UpstreamBatchFailed' }],
      [
        'unsupported schema version',
        { ...sampleEvent(), detail: { ...sampleEvent().detail, schemaVersion: '2.0' } },
      ],
      ['no batch id', { ...sampleEvent(), detail: { ...sampleEvent().detail, batchId: undefined } }],
      ['batch id not a string', { ...sampleEvent(), detail: { ...sampleEvent().detail, batchId: 42 } }],
      [
        'batch id of the wrong form',
        { ...sampleEvent(), detail: { ...sampleEvent().detail, batchId: 'nonsense' } },
      ],
      ['no envelope id', { ...sampleEvent(), id: undefined }],
      ['a rerun request (not an event)', { rerun: { pipeline: PIPELINE, batchId: BATCH, reason: 'x' } }],
    ];
    for (const [label, input] of malformed) {
      it(`(f) malformed event (${label}): Fail InvalidTriggerEvent, nothing started`, async () => {
        const child = childDownstream(['SUCCEEDED']);
        const res = await run(JSON.parse(JSON.stringify(input)), child);
        assert.equal(res.status, 'FAILED');
        assert.equal(res.error, INVALID_TRIGGER_EVENT);
        assert.equal(child.starts.length, 0);
      });
    }
  });

  describe('poller (schedule-poll) against dynalite', () => {
    let ddb: LocalDynamo;
    beforeEach(async () => {
      ddb = await startDynalite();
    });
    afterEach(async () => ddb.close());

    const put = (item: Record<string, AttributeValue>) =>
      ddb.client.send(new PutItemCommand({ TableName: ddb.tableName, Item: item }));

    const hour = (h: number) => `${PIPELINE}-20261127T${String(h).padStart(2, '0')}0000Z`;

    async function seedUpstream(batchId: string, status = 'SUCCEEDED', pipeline = PIPELINE) {
      const t = batchId.slice(-16); // 20261127T020000Z
      await put({
        pk: { S: `PIPELINE#${pipeline}` },
        sk: { S: `BATCH#${batchId}#UPSTREAM` },
        gsi1pk: { S: `PIPELINE#${pipeline}#UPSTREAM#${status}` },
        gsi1sk: { S: batchId },
        pipeline: { S: pipeline },
        batchId: { S: batchId },
        status: { S: status },
        region: { S: 'us-east-1' },
        scheduledTime: { S: '2026-11-27T02:00:00Z' },
        executionArn: { S: `arn:aws:states:us-east-1:${ACCOUNT}:execution:etl-platform-upstream:${batchId}` },
        startedAt: { S: '2026-11-27T02:00:05Z' },
        completedAt: { S: '2026-11-27T02:40:55Z' },
        // As the upstream's MarkBatchSucceeded writes it: a JSON string.
        tables: {
          S: JSON.stringify([
            { name: 'pc_policy', rows: 1200, lakePath: `s3://lake-raw/policycenter/pc_policy/${t}/` },
            { name: 'pc_claim', rows: 0, lakePath: `s3://lake-raw/policycenter/pc_claim/${t}/` },
          ]),
        },
        expiresAt: { N: '1800000000' },
      });
    }

    async function seedDownstream(batchId: string, status: string) {
      await put({
        pk: { S: `PIPELINE#${PIPELINE}` },
        sk: { S: `BATCH#${batchId}#DOWNSTREAM` },
        gsi1pk: { S: `PIPELINE#${PIPELINE}#DOWNSTREAM#${status}` },
        gsi1sk: { S: batchId },
        batchId: { S: batchId },
        status: { S: status },
      });
    }

    function fireAndForget(existing: Set<string> = new Set()) {
      const starts: Params[] = [];
      const handler = (resource: string, params: Params) => {
        assert.equal(resource, 'arn:aws:states:::states:startExecution', 'fire and forget, not .sync');
        starts.push(params);
        if (existing.has(String(params.Name))) {
          throw new StatesError(
            EXECUTION_ALREADY_EXISTS,
            `Execution Already Exists: '${String(params.Name)}'`,
          );
        }
        return {
          ExecutionArn: `arn:aws:states:us-east-1:${ACCOUNT}:execution:etl-platform-downstream:${String(params.Name)}`,
          StartDate: '2026-11-27T03:00:00Z',
        };
      };
      return { starts, handler };
    }

    const runPoller = (sfn: ReturnType<typeof fireAndForget>) =>
      runWorkflow(poller.definition, {}, { handlers: { dynamodb: ddb.client, states: sfn.handler } });

    it('does nothing when there is nothing to do: 5 transitions', async () => {
      // No watermark yet, and only batches that are not SUCCEEDED or belong to another pipeline.
      await seedUpstream(hour(1), 'RUNNING');
      await seedUpstream(`claimcenter-20261127T010000Z`, 'SUCCEEDED', 'claimcenter');
      const sfn = fireAndForget();
      const res = await runPoller(sfn);
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.deepEqual(res.output, { considered: 0, started: 0 });
      assert.equal(sfn.starts.length, 0);
      assert.deepEqual(entered(res), [
        'GetWatermark',
        'HasWatermark',
        'QueryFromStart',
        'AnyUnprocessed',
        'NothingToDo',
      ]);
      assert.equal(res.transitions, 5);
    });

    it('does nothing when every SUCCEEDED batch is at or below the downstream watermark: 5 transitions', async () => {
      for (const h of [1, 2, 3]) {
        await seedUpstream(hour(h));
        await seedDownstream(hour(h), 'SUCCEEDED');
      }
      await put({
        pk: { S: `PIPELINE#${PIPELINE}` },
        sk: { S: 'WATERMARK#DOWNSTREAM' },
        batchId: { S: hour(3) },
      });
      const sfn = fireAndForget();
      const res = await runPoller(sfn);
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.deepEqual(res.output, { considered: 0, started: 0 });
      assert.deepEqual(entered(res), [
        'GetWatermark',
        'HasWatermark',
        'QueryAfterWatermark',
        'AnyUnprocessed',
        'NothingToDo',
      ]);
      assert.equal(res.transitions, 5);
    });

    it('starts exactly the unprocessed SUCCEEDED batches, oldest first, named by batch id with a valid event', async () => {
      // Inserted out of order; 02 has a downstream record (FAILED: the operator's rerun decision), 04 is RUNNING upstream.
      for (const h of [5, 1, 3, 2]) await seedUpstream(hour(h));
      await seedUpstream(hour(4), 'RUNNING');
      await seedDownstream(hour(2), 'FAILED');
      const sfn = fireAndForget();
      const res = await runPoller(sfn);
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.deepEqual(
        sfn.starts.map((s) => s.Name),
        [hour(1), hour(3), hour(5)],
      );
      assert.deepEqual(res.output, { considered: 4, started: 3 });
      for (const s of sfn.starts) {
        assert.equal(s.StateMachineArn, DOWNSTREAM_ARN);
        const { AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID: link, ...event } = s.Input as Params;
        assert.match(String(link), /^arn:aws:states:us-east-1:123456789012:execution:local:/);
        const parsed = upstreamBatchSucceededEventSchema.safeParse(event);
        assert.equal(parsed.success, true, JSON.stringify(parsed.error?.issues));
        const detail = (event as ReturnType<typeof sampleEvent>).detail;
        assert.equal(detail.batchId, s.Name);
        assert.equal((event as { source: string }).source, EVENT_SOURCE);
        assert.deepEqual(
          detail.tables.map((t) => [t.name, t.rows]),
          [
            ['pc_policy', 1200],
            ['pc_claim', 0],
          ],
        );
      }
    });

    it('queries only above the watermark', async () => {
      for (const h of [1, 2, 3]) await seedUpstream(hour(h));
      await put({
        pk: { S: `PIPELINE#${PIPELINE}` },
        sk: { S: 'WATERMARK#DOWNSTREAM' },
        batchId: { S: hour(1) },
      });
      const sfn = fireAndForget();
      const res = await runPoller(sfn);
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.deepEqual(
        sfn.starts.map((s) => s.Name),
        [hour(2), hour(3)],
      );
    });

    it('tolerates ExecutionAlreadyExists and carries on with newer batches', async () => {
      for (const h of [1, 2, 3]) await seedUpstream(hour(h));
      const sfn = fireAndForget(new Set([hour(2)]));
      const res = await runPoller(sfn);
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.deepEqual(
        sfn.starts.map((s) => s.Name),
        [hour(1), hour(2), hour(3)],
      );
      assert.deepEqual(res.output, { considered: 3, started: 2 });
    });

    it('ignores batches that already have a downstream record (started: 0)', async () => {
      for (const h of [1, 2]) {
        await seedUpstream(hour(h));
        await seedDownstream(hour(h), h === 1 ? 'SUCCEEDED' : 'RUNNING');
      }
      const sfn = fireAndForget();
      const res = await runPoller(sfn);
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(sfn.starts.length, 0);
      assert.deepEqual(res.output, { considered: 2, started: 0 });
    });

    it('honours the Limit: at most batchLimit batches per tick, the oldest', async () => {
      for (let h = 0; h < 12; h++) await seedUpstream(hour(h));
      const sfn = fireAndForget();
      const res = await runPoller(sfn);
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.deepEqual(
        sfn.starts.map((s) => s.Name),
        Array.from({ length: 10 }, (_, h) => hour(h)),
      );
    });

    it('a failed start stops the tick before newer batches (order kept for the next tick)', async () => {
      for (const h of [1, 2, 3]) await seedUpstream(hour(h));
      const starts: string[] = [];
      const res = await runWorkflow(
        poller.definition,
        {},
        {
          handlers: {
            dynamodb: ddb.client,
            states: (_r, params) => {
              starts.push(String(params.Name));
              if (params.Name === hour(2))
                throw new StatesError('StepFunctions.ExecutionLimitExceededException', 'too many');
              return { ExecutionArn: 'arn', StartDate: 'x' };
            },
          },
        },
      );
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'StepFunctions.ExecutionLimitExceededException');
      assert.deepEqual(starts, [hour(1), hour(2)]);
    });

    it('NOT_STARTED is not a valid batch id (so it can never collide with a started one)', () => {
      assert.doesNotMatch(NOT_STARTED, /^[a-z]/);
    });
  });
});
