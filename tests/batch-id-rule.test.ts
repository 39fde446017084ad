import { strict as assert } from 'assert';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { isBatchIdOf } from '../contracts/batch-id';
import { downstreamWorkflow, type DownstreamWorkflowRefs } from '../state-machines/downstream';
import { handler as batchContextHandler } from '../handlers/batch-context';
import {
  checkConsistencyInputSchema,
  handler as checkConsistencyHandler,
} from '../handlers/check-consistency';
import { upstreamBatchSucceededDetailSchema } from '../contracts/events';
import { getDbtRunInputSchema } from '../handlers/get-dbt-run';
import { batchContext } from '../handlers/lib/batch-context';
import { startDbtRunInputSchema } from '../handlers/start-dbt-run';
import { useLocalDownstream } from './harness/local-downstream';
import { ACCOUNT, PIPELINE, REGION, SOURCE, TABLES, upstreamEvent } from '../local/fixtures/malformed-events';
import { runWorkflow } from '../local/sfn-local';

/**
 * One batch-id rule (contracts/batch-id.ts, issue I D8): the same list of ids goes to the downstream
 * ASL (executed up to the claim: written or not) and to every handler schema that takes a batch id.
 * Acceptance must be identical everywhere.
 */
const IDS: Array<[string, unknown, boolean]> = [
  ['valid', 'policycenter-20261127T020000Z', true],
  ['valid leap day', 'policycenter-20280229T235959Z', true],
  ['month 13', 'policycenter-20261327T020000Z', false],
  ['February 30', 'policycenter-20260230T020000Z', false],
  ['hour 24', 'policycenter-20261127T240000Z', false],
  ['other pipeline', 'claimcenter-20261127T020000Z', false],
  ['prefix pipeline', 'policycenter-x-20261127T020000Z', false],
  ['lowercase t', 'policycenter-20261127t020000Z', false],
  ['missing Z', 'policycenter-20261127T020000', false],
  ['a number', 20261127020000, false],
];

const TABLE = 'etl-platform-control';
const fnArn = (name: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:etl-platform-${name}`;
const refs: DownstreamWorkflowRefs = {
  region: REGION,
  eventSource: SOURCE,
  pipeline: { name: PIPELINE, expectedTables: TABLES },
  controlTable: { name: TABLE, arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE}` },
  functions: {
    batchContext: { arn: fnArn('batch-context') },
    checkConsistency: { arn: fnArn('check-consistency') },
    startDbtRun: { arn: fnArn('start-dbt-run') },
    getDbtRun: { arn: fnArn('get-dbt-run') },
  },
  bus: { arn: `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/etl-platform` },
  alerts: { arn: `arn:aws:sns:${REGION}:${ACCOUNT}:etl-platform-alerts` },
  dbt: {
    maxRunMinutes: 30,
    maxQueueMinutes: 60,
    heartbeatSeconds: 300,
    maxLostRetries: 1,
    lockWaitMinutes: 60,
    lockLeaseMinutes: 15,
    replicationWaitMinutes: 0,
  },
};

const ok = (f: () => unknown) => {
  try {
    f();
    return true;
  } catch {
    return false;
  }
};
const FENCE = { region: REGION, epoch: 1 };
const HANDLER_SCHEMAS: Array<[string, (id: unknown) => boolean]> = [
  ['contracts isBatchIdOf', (id) => isBatchIdOf(PIPELINE, id)],
  [
    'batch-context',
    (id) =>
      ok(() => batchContext({ pipeline: PIPELINE, batchId: id as string, leaseSeconds: 60 }, new Date())),
  ],
  [
    'check-consistency',
    (id) =>
      checkConsistencyInputSchema.safeParse({ pipeline: PIPELINE, batchId: id, expectedTables: TABLES })
        .success,
  ],
  [
    'start-dbt-run',
    (id) => startDbtRunInputSchema.safeParse({ pipeline: PIPELINE, batchId: id, fence: FENCE }).success,
  ],
  [
    'get-dbt-run (by key)',
    (id) => getDbtRunInputSchema.byKey.safeParse({ pipeline: PIPELINE, batchId: id, attempt: 1 }).success,
  ],
  [
    'UpstreamBatchSucceeded detail',
    (id) => upstreamBatchSucceededDetailSchema.safeParse({ ...upstreamEvent().detail, batchId: id }).success,
  ],
];

describe('one batch-id rule: the ASL and every handler accept exactly the same ids', function () {
  this.timeout(120_000);

  for (const [name, check] of HANDLER_SCHEMAS) {
    it(`${name}: ${IDS.filter((i) => i[2]).length} accepted, ${IDS.filter((i) => !i[2]).length} refused`, () => {
      for (const [what, id, valid] of IDS)
        assert.equal(check(id), valid, `${name}: ${what} (${JSON.stringify(id)})`);
    });
  }

  describe('the downstream ASL, executed up to the claim (dynalite + real handlers)', () => {
    const local = useLocalDownstream(TABLE, REGION);
    const { definition } = downstreamWorkflow(refs);
    for (const [what, id, valid] of IDS) {
      it(`${what}: ${valid ? 'claimed' : 'InvalidTriggerEvent, nothing written'}`, async () => {
        await local.clear();
        await local.db.client.send(
          new PutItemCommand({
            TableName: TABLE,
            Item: { pk: { S: 'FENCE' }, sk: { S: 'ACTIVE' }, activeRegion: { S: REGION }, epoch: { N: '1' } },
          }),
        );
        const res = await runWorkflow(definition, upstreamEvent({ batchId: id }), {
          handlers: {
            dynamodb: local.db.client,
            lambda: {
              [fnArn('batch-context')]: (p) => batchContextHandler(p as never),
              [fnArn('check-consistency')]: (p) => checkConsistencyHandler(p),
            },
            taskToken: () => {
              throw new Error('no upstream records are seeded: the run never reaches dbt');
            },
          },
        });
        const claimed =
          typeof id === 'string' &&
          (
            await local.db.client.send(
              new GetItemCommand({
                TableName: TABLE,
                Key: { pk: { S: `PIPELINE#${PIPELINE}` }, sk: { S: `BATCH#${id}#DOWNSTREAM` } },
              }),
            )
          ).Item !== undefined;
        assert.equal(claimed, valid, `${what}: ${res.status} ${res.error ?? ''}`);
        if (!valid) assert.equal(res.error, 'InvalidTriggerEvent');
      });
    }
  });
});
