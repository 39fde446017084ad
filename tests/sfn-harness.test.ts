import { strict as assert } from 'assert';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { StateMachineDefinition } from '../state-machines/asl';
import { checkGraph } from '../state-machines/graph';
import {
  dynamoDeleteItem,
  dynamoGetItem,
  dynamoQuery,
  dynamoUpdateItem,
  glueStartJobRunSync,
  sfnStartExecutionSync,
  succeed,
  fail,
  wait,
  choice,
  workflow,
} from '../state-machines/tasks';
import { validateAsl } from './harness/asl-validate';
import { startDynalite, type LocalDynamo } from '../local/dynalite';
import { parseResource, runWorkflow, StatesError } from '../local/sfn-local';

const table = {
  name: 'etl-platform-control',
  arn: 'arn:aws:dynamodb:us-east-1:123456789012:table/etl-platform-control',
};
const key = { pk: { S: 'PIPELINE#p' }, sk: { S: 'LOCK#UPSTREAM' } };

// get → choice → conditional update (version) → 1 h wait → glue.sync → child .sync:2 → delete → Succeed
const { definition } = workflow({
  startAt: 'GetLock',
  states: {
    GetLock: dynamoGetItem(
      table,
      { Key: key, ConsistentRead: true },
      { next: 'HasLock', catchTo: 'Failed', resultPath: '$.lock' },
    ),
    HasLock: choice([{ Variable: '$.lock.Item', IsPresent: true, Next: 'BumpVersion' }], 'Failed'),
    BumpVersion: dynamoUpdateItem(
      table,
      {
        Key: key,
        UpdateExpression: 'SET version = version + :one',
        ConditionExpression: 'version = :expected',
        ExpressionAttributeValues: { ':one': { N: '1' }, ':expected': { 'N.$': '$.lock.Item.version.N' } },
        ReturnValues: 'ALL_NEW',
      },
      { next: 'Hold', catchTo: 'Failed', resultPath: '$.updated' },
    ),
    Hold: wait({ seconds: 3600 }, 'RunGlue'),
    RunGlue: glueStartJobRunSync(
      { name: 'cda-load', arn: 'arn:aws:glue:us-east-1:123456789012:job/cda-load' },
      { Arguments: { '--batch.$': '$.batchId' } },
      { next: 'RunChild', catchTo: 'Failed', resultPath: '$.glue' },
    ),
    RunChild: sfnStartExecutionSync(
      { arn: 'arn:aws:states:us-east-1:123456789012:stateMachine:downstream' },
      { Input: { 'batchId.$': '$.batchId' }, 'Name.$': '$.batchId' },
      { next: 'Release', catchTo: 'Failed', resultPath: '$.child' },
    ),
    Release: dynamoDeleteItem(table, { Key: key }, { next: 'Done', catchTo: 'Failed', resultPath: null }),
    Done: succeed(),
    Failed: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
  },
});

const queryMissingTable: StateMachineDefinition = workflow({
  startAt: 'Q',
  states: {
    Q: dynamoQuery(
      { name: 'no-such-table', arn: 'arn:aws:dynamodb:us-east-1:123456789012:table/no-such-table' },
      { KeyConditionExpression: 'pk = :p', ExpressionAttributeValues: { ':p': { S: 'x' } } },
      { catch: false, retry: false },
    ),
  },
}).definition;

describe('sfn-local harness', () => {
  let ddb: LocalDynamo;
  before(async () => {
    ddb = await startDynalite();
  });
  after(async () => ddb.close());

  it('the definitions are valid', () => {
    assert.deepEqual(validateAsl(definition), []);
    assert.deepEqual(checkGraph(definition), []);
  });

  it('runs get/update/delete against dynalite, zeroes a 1 h Wait, and routes glue and states', async () => {
    await ddb.client.send(
      new PutItemCommand({ TableName: ddb.tableName, Item: { ...key, version: { N: '7' } } }),
    );
    const glueCalls: unknown[] = [];
    const childCalls: string[] = [];
    const started = Date.now();
    const res = await runWorkflow(
      definition,
      { batchId: 'p-20261127T020000Z' },
      {
        handlers: {
          dynamodb: ddb.client,
          glue: (params) => {
            glueCalls.push(params);
            return { JobRunState: 'SUCCEEDED' };
          },
          states: (resource, params) => {
            childCalls.push(`${resource} ${String(params.Name)}`);
            return { Status: 'SUCCEEDED', Output: { ok: true } };
          },
        },
      },
    );
    assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
    assert.ok(Date.now() - started < 5000, 'Wait override to 0 ms');
    const out = res.output as {
      updated: { Attributes: { version: { N: string } } };
      glue: { JobRunState: string };
    };
    assert.equal(out.updated.Attributes.version.N, '8');
    assert.equal(out.glue.JobRunState, 'SUCCEEDED');
    assert.deepEqual(glueCalls, [{ JobName: 'cda-load', Arguments: { '--batch': 'p-20261127T020000Z' } }]);
    assert.deepEqual(childCalls, ['arn:aws:states:::states:startExecution.sync:2 p-20261127T020000Z']);

    // The lock was deleted: a second run finds nothing and fails through the Choice default.
    const again = await runWorkflow(
      definition,
      { batchId: 'b' },
      { handlers: { dynamodb: ddb.client, glue: () => ({ JobRunState: 'SUCCEEDED' }), states: () => ({}) } },
    );
    assert.equal(again.status, 'FAILED');
  });

  it('a stale version fails the update with DynamoDB.ConditionalCheckFailedException', async () => {
    await ddb.client.send(
      new PutItemCommand({ TableName: ddb.tableName, Item: { ...key, version: { N: '1' } } }),
    );
    const res = await runWorkflow(
      definition,
      { batchId: 'c' },
      {
        handlers: {
          // Someone else bumps the version between our read and our write.
          dynamodb: new Proxy(ddb.client, {
            get(target, prop, recv) {
              if (prop !== 'send') return Reflect.get(target, prop, recv);
              return async (cmd: { constructor: { name: string } }) => {
                if (cmd.constructor.name === 'UpdateItemCommand') {
                  await target.send(
                    new PutItemCommand({ TableName: ddb.tableName, Item: { ...key, version: { N: '2' } } }),
                  );
                }
                return target.send(cmd as never);
              };
            },
          }),
          glue: () => ({ JobRunState: 'SUCCEEDED' }),
          states: () => ({}),
        },
      },
    );
    assert.equal(res.status, 'FAILED');
    assert.equal(res.error, 'DynamoDB.ConditionalCheckFailedException');
  });

  it('a failed Glue run surfaces as States.TaskFailed with the run as cause', async () => {
    await ddb.client.send(
      new PutItemCommand({ TableName: ddb.tableName, Item: { ...key, version: { N: '1' } } }),
    );
    const res = await runWorkflow(
      definition,
      { batchId: 'd' },
      {
        handlers: {
          dynamodb: ddb.client,
          glue: () => ({ JobRunState: 'FAILED', ErrorMessage: 'OOM' }),
          states: () => {
            throw new StatesError('States.TaskFailed', 'child must not run');
          },
        },
      },
    );
    assert.equal(res.error, 'States.TaskFailed');
    assert.equal(JSON.parse(res.cause ?? '{}').ErrorMessage, 'OOM');
    assert.equal(
      res.events.some((e) => e.type === 'StateEntered' && (e.state as { name: string }).name === 'RunChild'),
      false,
    );
  });

  it('aws-sdk integration errors are named DynamoDb.<Name>Exception', async () => {
    const res = await runWorkflow(queryMissingTable, {}, { handlers: { dynamodb: ddb.client } });
    assert.equal(res.status, 'FAILED');
    assert.equal(res.error, 'DynamoDb.ResourceNotFoundException');
  });

  it('parses integration resources', () => {
    assert.deepEqual(parseResource('arn:aws:states:::aws-sdk:dynamodb:query'), {
      service: 'dynamodb',
      action: 'query',
      sdk: true,
      pattern: undefined,
    });
    assert.equal(parseResource('arn:aws:states:::states:startExecution.sync:2').pattern, 'sync');
    assert.equal(parseResource('arn:aws:states:::glue:startJobRun.sync').action, 'startJobRun');
    assert.equal(parseResource('arn:aws:lambda:us-east-1:123456789012:function:f').service, 'lambda');
  });
});
