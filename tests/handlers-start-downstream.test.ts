import * as assert from 'node:assert/strict';
import {
  ExecutionAlreadyExists,
  StartExecutionCommand,
  type StartExecutionCommandInput,
} from '@aws-sdk/client-sfn';
import { BATCH_ID_PATTERN, formatBatchId, parseBatchId } from '../contracts/batch-id';
import { upstreamBatchSucceededEventSchema } from '../contracts/events';
import { logger } from '../handlers/lib/logger';
import { handler, setSfnClient, type SfnLike } from '../handlers/start-downstream';

const ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:etl-downstream-policycenter';
const ENV = { DOWNSTREAM_STATE_MACHINE_ARN: ARN, PIPELINES: 'policycenter, billingcenter' };

function event(detailOverrides: Record<string, unknown> = {}, envelope: Record<string, unknown> = {}) {
  return {
    version: '0',
    id: '6a7e8feb-b491-4cf7-a9f1-bf3703467718',
    'detail-type': 'UpstreamBatchSucceeded',
    source: 'com.insurer.etl-platform',
    account: '123456789012',
    time: '2026-11-27T02:41:07Z',
    region: 'us-east-1',
    resources: [],
    detail: {
      schemaVersion: '1.0',
      pipeline: 'policycenter',
      batchId: 'policycenter-20261127T020000Z',
      region: 'us-east-1',
      tables: [
        {
          name: 'pc_policy',
          rows: 1200,
          lakePath: 's3://lake-bucket/policycenter/pc_policy/20261127T020000Z/',
        },
        {
          name: 'pc_contact',
          rows: 0,
          lakePath: 's3://lake-bucket/policycenter/pc_contact/20261127T020000Z/',
        },
      ],
      startedAt: '2026-11-27T02:00:03Z',
      completedAt: '2026-11-27T02:41:05Z',
      upstreamExecutionArn:
        'arn:aws:states:us-east-1:123456789012:execution:etl-upstream-policycenter:policycenter-20261127T020000Z',
      ...detailOverrides,
    },
    ...envelope,
  };
}

/** A recording stub. `behaviour` decides each call's outcome. */
function stubSfn(
  behaviour: (input: StartExecutionCommandInput) => Promise<{ executionArn?: string; startDate?: Date }>,
) {
  const calls: StartExecutionCommandInput[] = [];
  const client: SfnLike = {
    send: async (command: StartExecutionCommand) => {
      assert.ok(command instanceof StartExecutionCommand);
      calls.push(command.input);
      return behaviour(command.input);
    },
  };
  return { client, calls };
}

describe('start-downstream (rule-lambda trigger)', () => {
  const saved: Record<string, string | undefined> = {};
  let previous: SfnLike;

  before(() => {
    logger.setLogLevel('SILENT');
    for (const k of [...Object.keys(ENV), 'EVENT_SOURCE']) saved[k] = process.env[k];
  });
  beforeEach(() => {
    Object.assign(process.env, ENV);
    delete process.env.EVENT_SOURCE;
  });
  after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    if (previous) setSfnClient(previous);
  });

  it('starts the downstream workflow named after the batch id, with the event as input', async () => {
    const { client, calls } = stubSfn(async (input) => ({
      executionArn: `${ARN.replace(':stateMachine:', ':execution:')}:${input.name}`,
      startDate: new Date('2026-11-27T02:41:08Z'),
    }));
    previous = setSfnClient(client);
    const ev = event();
    const out = await handler(ev);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].name, 'policycenter-20261127T020000Z');
    assert.equal(calls[0].stateMachineArn, ARN);
    assert.deepEqual(JSON.parse(calls[0].input!), ev);
    assert.deepEqual(out, {
      status: 'STARTED',
      executionName: 'policycenter-20261127T020000Z',
      executionArn: `${ARN.replace(':stateMachine:', ':execution:')}:policycenter-20261127T020000Z`,
      startDate: '2026-11-27T02:41:08.000Z',
    });
  });

  it('ExecutionAlreadyExists is a success: ALREADY_STARTED', async () => {
    const { client, calls } = stubSfn(async () => {
      throw new ExecutionAlreadyExists({ message: 'Execution Already Exists: ...', $metadata: {} });
    });
    setSfnClient(client);
    const out = await handler(event());
    assert.deepEqual(out, { status: 'ALREADY_STARTED', executionName: 'policycenter-20261127T020000Z' });
    assert.equal(calls.length, 1);
  });

  it('other SFN errors propagate (Lambda async retry, then DLQ)', async () => {
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    setSfnClient(stubSfn(async () => Promise.reject(throttled)).client);
    await assert.rejects(handler(event()), (e: Error) => e.name === 'ThrottlingException');
  });

  describe('malformed events -> InvalidInput, and StartExecution is never called', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      [
        'unknown schemaVersion',
        event({ schemaVersion: '2.0' }),
        /detail\.schemaVersion: schema version "2\.0" is not supported/,
      ],
      ['missing batchId', event({ batchId: undefined }), /detail\.batchId/],
      [
        'batchId not in the documented format',
        event({ batchId: 'policycenter-2026-11-27T02:00:00Z' }),
        /detail\.batchId: is not a batch id of the form/,
      ],
      [
        'batchId naming an impossible time',
        event({ batchId: 'policycenter-20261331T250000Z' }),
        /detail\.batchId: is not a batch id/,
      ],
      [
        'batchId of another pipeline',
        event({ batchId: 'billingcenter-20261127T020000Z' }),
        /detail\.batchId: belongs to pipeline "billingcenter"/,
      ],
      [
        'pipeline not configured',
        event({ pipeline: 'claimcenter', batchId: 'claimcenter-20261127T020000Z' }),
        /"claimcenter" is not a configured pipeline/,
      ],
      [
        'rows of the wrong type',
        event({ tables: [{ name: 'pc_policy', rows: '1200', lakePath: 's3://b/x' }] }),
        /detail\.tables\.0\.rows: must be a number/,
      ],
      [
        'negative rows',
        event({ tables: [{ name: 'pc_policy', rows: -1, lakePath: 's3://lake-bucket/x' }] }),
        /detail\.tables\.0\.rows: must be >= 0/,
      ],
      ['tables empty', event({ tables: [] }), /detail\.tables: must list at least one table/],
      [
        'lakePath not s3',
        event({ tables: [{ name: 'pc_policy', rows: 1, lakePath: '/tmp/x' }] }),
        /lakePath: must be an s3:\/\/ URI/,
      ],
      [
        'wrong detail-type',
        event({}, { 'detail-type': 'Step Functions Execution Status Change' }),
        /detail-type: is "Step Functions Execution Status Change"; expected "UpstreamBatchSucceeded"/,
      ],
      [
        'startedAt not a timestamp',
        event({ startedAt: 'yesterday' }),
        /detail\.startedAt: must be an ISO-8601 timestamp/,
      ],
      [
        'completedAt before startedAt',
        event({ completedAt: '2026-11-27T01:00:00Z' }),
        /detail\.completedAt: is before startedAt/,
      ],
      [
        'bad execution ARN',
        event({ upstreamExecutionArn: 'arn:aws:lambda:us-east-1:123456789012:function:x' }),
        /upstreamExecutionArn: is not a Step Functions execution ARN/,
      ],
      ['no detail at all', { 'detail-type': 'UpstreamBatchSucceeded', id: 'x', source: 's' }, /detail: /],
      ['not an object', 'UpstreamBatchSucceeded', /Invalid start-downstream input: \(input\)/],
    ];
    for (const [what, ev, message] of cases) {
      it(what, async () => {
        const { client, calls } = stubSfn(async () => ({ executionArn: 'x' }));
        setSfnClient(client);
        await assert.rejects(handler(ev), (e: Error) => {
          assert.equal(e.name, 'InvalidInput', `${e.name}: ${e.message}`);
          assert.match(e.message, message);
          return true;
        });
        assert.equal(calls.length, 0);
      });
    }

    it('an event from a foreign source when EVENT_SOURCE is set', async () => {
      process.env.EVENT_SOURCE = 'com.insurer.etl-platform';
      const { client, calls } = stubSfn(async () => ({ executionArn: 'x' }));
      setSfnClient(client);
      await assert.rejects(
        handler(event({}, { source: 'com.attacker' })),
        /source: "com.attacker" is not the platform's source/,
      );
      assert.equal(calls.length, 0);
    });
  });

  it('missing DOWNSTREAM_STATE_MACHINE_ARN or PIPELINES -> error naming the variable', async () => {
    for (const name of ['DOWNSTREAM_STATE_MACHINE_ARN', 'PIPELINES']) {
      Object.assign(process.env, ENV);
      delete process.env[name];
      await assert.rejects(
        handler(event()),
        (e: Error) => e.name === 'MissingConfiguration' && e.message.includes(name),
      );
    }
  });
});

describe('the event schema (contracts/events.ts)', () => {
  it('batch id round-trips and is a valid, short execution name', () => {
    const id = formatBatchId('policycenter', '2026-11-27T02:00:00Z');
    assert.equal(id, 'policycenter-20261127T020000Z');
    assert.deepEqual(parseBatchId(id), { pipeline: 'policycenter', scheduledTime: '2026-11-27T02:00:00Z' });
    assert.match(id, BATCH_ID_PATTERN);
    assert.ok(!id.includes(':') && id.length <= 80);
    assert.equal(
      parseBatchId('a-very-long-pipeline-nam-20261127T020000Z')?.pipeline,
      'a-very-long-pipeline-nam',
    );
  });
  it('a lexically greater id is a newer batch', () => {
    const older = formatBatchId('p2', '2026-11-27T23:59:59Z');
    const newer = formatBatchId('p2', '2026-11-28T00:00:00Z');
    assert.ok(newer > older);
  });
  it('the full event schema is exported and accepts the reference event', () => {
    assert.equal(upstreamBatchSucceededEventSchema.safeParse(event()).success, true);
  });
});
