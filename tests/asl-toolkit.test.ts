import { strict as assert } from 'assert';
import * as pulumi from '@pulumi/pulumi';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { StateMachineDefinition, TaskState } from '../state-machines/asl';
import { checkGraph } from '../state-machines/graph';
import {
  collectStatements,
  observabilityStatements,
  policyDocument,
  type PolicyDocument,
} from '../state-machines/policy';
import {
  choice,
  dynamoPutItem,
  dynamoQuery,
  eventsPutEvents,
  fail,
  glueStartJobRunSync,
  lambdaInvoke,
  map,
  renderDefinition,
  sfnStartExecutionSync,
  snsPublish,
  succeed,
  workflow,
} from '../state-machines/tasks';
import { validateAsl } from './harness/asl-validate';
import { STATUS_INDEX } from '../contracts/control-table';
import { startDynalite, type LocalDynamo } from '../local/dynalite';
import { runWorkflow, StatesError } from '../local/sfn-local';

const ACCOUNT = '123456789012';
const TABLE_NAME = 'etl-platform-control';
const TABLE_ARN = `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/${TABLE_NAME}`;
const FN_ARN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:load-table`;
const BUS_ARN = `arn:aws:events:us-east-1:${ACCOUNT}:event-bus/etl-platform`;
const TOPIC_ARN = `arn:aws:sns:us-east-1:${ACCOUNT}:etl-alerts`;
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

function resolve<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((res) => o.apply((v) => res(v)));
}

/** conditional claim → Map(lambda per table) → query GSI → putEvents → Succeed; errors → Choice → SNS → Fail. */
function sampleWorkflow() {
  // The table ARN as an Output: statements must accept what Pulumi resources expose.
  const table = { name: TABLE_NAME, arn: pulumi.output(TABLE_ARN) };
  return workflow({
    startAt: 'ClaimBatch',
    states: {
      ClaimBatch: dynamoPutItem(
        table,
        {
          Item: {
            pk: { 'S.$': "States.Format('PIPELINE#{}', $.pipeline)" },
            sk: { 'S.$': "States.Format('BATCH#{}#UPSTREAM', $.batchId)" },
            status: { S: 'RUNNING' },
            gsi1pk: { 'S.$': "States.Format('PIPELINE#{}#UPSTREAM#RUNNING', $.pipeline)" },
            gsi1sk: { 'S.$': '$.batchId' },
            executionArn: { 'S.$': '$$.Execution.Id' },
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
        { next: 'LoadTables', catchTo: 'ClassifyError', resultPath: null },
      ),
      LoadTables: map(
        {
          startAt: 'LoadTable',
          states: {
            LoadTable: lambdaInvoke({ arn: FN_ARN }, { catch: false }),
          },
        },
        {
          next: 'CountRunning',
          catchTo: 'ClassifyError',
          itemsPath: '$.tables',
          itemSelector: { 'table.$': '$$.Map.Item.Value', 'batchId.$': '$.batchId' },
          maxConcurrency: 2,
          resultPath: '$.loads',
        },
      ),
      CountRunning: dynamoQuery(
        table,
        {
          IndexName: STATUS_INDEX.name,
          KeyConditionExpression: 'gsi1pk = :pk',
          ExpressionAttributeValues: {
            ':pk': { 'S.$': "States.Format('PIPELINE#{}#UPSTREAM#RUNNING', $.pipeline)" },
          },
        },
        {
          next: 'Publish',
          catchTo: 'ClassifyError',
          resultSelector: { 'count.$': '$.Count' },
          resultPath: '$.running',
        },
      ),
      Publish: eventsPutEvents(
        { arn: BUS_ARN },
        [{ Source: 'etl.upstream', DetailType: 'BatchLoaded', Detail: { 'batchId.$': '$.batchId' } }],
        { next: 'Done', catchTo: 'ClassifyError', resultPath: null },
      ),
      Done: succeed(),
      ClassifyError: choice(
        [
          {
            Variable: '$.error.Error',
            StringEquals: 'DynamoDB.ConditionalCheckFailedException',
            Next: 'AlreadyClaimed',
          },
        ],
        'Alert',
      ),
      AlreadyClaimed: succeed('duplicate delivery of the same batch: nothing to do'),
      Alert: snsPublish(
        { arn: TOPIC_ARN, kmsKeyArn: KEY_ARN },
        { 'Message.$': 'States.JsonToString($.error)', Subject: 'upstream batch failed' },
        { next: 'Failed', catchTo: 'Failed', resultPath: null },
      ),
      Failed: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
    },
  });
}

const GRAPH_OPTS = { allowNoCatch: ['LoadTable'] };

describe('ASL toolkit', () => {
  const { definition, statements } = sampleWorkflow();

  describe('static checks', () => {
    it('passes asl-validator, and the validator does reject a broken definition', () => {
      assert.deepEqual(validateAsl(definition), []);
      const broken = structuredClone(definition);
      (broken.States.Publish as TaskState & { Next: string }).Next = 'Nowhere';
      assert.ok(validateAsl(broken).some((p) => p.includes('Nowhere')));
      // validateAsl must not leak asl-validator's mutation into the caller's object.
      assert.equal('QueryLanguage' in definition.States.ClaimBatch, false);
    });

    it('passes checkGraph with the explicit opt-out, and flags the Map task without it', () => {
      assert.deepEqual(checkGraph(definition, GRAPH_OPTS), []);
      assert.deepEqual(checkGraph(definition), ['LoadTables/LoadTable: Task has no Catch']);
    });

    it('checkGraph catches a broken Next and the state it orphans', () => {
      const broken = structuredClone(definition);
      (broken.States.Publish as TaskState & { Next: string }).Next = 'Nowhere';
      const problems = checkGraph(broken, GRAPH_OPTS);
      assert.ok(problems.includes('Publish: transition to missing state "Nowhere"'), problems.join('\n'));
      assert.ok(problems.includes('Done: unreachable from StartAt'), problems.join('\n'));
    });

    it('checkGraph catches a Task without Catch or Retry, and a bad StartAt / terminal', () => {
      const broken = structuredClone(definition) as StateMachineDefinition;
      const claim = broken.States.ClaimBatch as TaskState;
      delete claim.Catch;
      delete claim.Retry;
      broken.States.Orphan = { Type: 'Pass' } as never; // neither Next nor End
      const problems = checkGraph(broken, GRAPH_OPTS);
      assert.ok(problems.includes('ClaimBatch: Task has no Catch'));
      assert.ok(problems.includes('ClaimBatch: Task has no Retry'));
      assert.ok(problems.includes('Orphan: needs exactly one of Next or End'));
      assert.ok(problems.includes('Orphan: unreachable from StartAt'));
      assert.ok(
        checkGraph({ ...definition, StartAt: 'Missing' }).some((p) => p.includes('StartAt "Missing"')),
      );
    });

    it('helpers turn Retry (with full jitter) and Catch on by default', () => {
      const claim = definition.States.ClaimBatch as TaskState;
      assert.equal(claim.Retry?.[0].JitterStrategy, 'FULL');
      assert.ok(claim.Retry?.[0].ErrorEquals.includes('DynamoDB.ProvisionedThroughputExceededException'));
      assert.ok(!claim.Retry?.[0].ErrorEquals.includes('DynamoDB.ConditionalCheckFailedException'));
      assert.deepEqual(claim.Catch, [
        { ErrorEquals: ['States.ALL'], Next: 'ClassifyError', ResultPath: '$.error' },
      ]);
      const lambda = (
        definition.States.LoadTables as { ItemProcessor: { States: Record<string, TaskState> } }
      ).ItemProcessor.States.LoadTable;
      assert.deepEqual(lambda.Retry?.[0].ErrorEquals, [
        'Lambda.ServiceException',
        'Lambda.AWSLambdaException',
        'Lambda.SdkClientException',
        'Lambda.TooManyRequestsException',
      ]);
      assert.deepEqual(lambda.ResultSelector, { 'Payload.$': '$.Payload' });
    });
  });

  it('renderDefinition resolves Outputs embedded in Parameters', async () => {
    const { definition: d } = workflow({
      startAt: 'Invoke',
      states: { Invoke: lambdaInvoke({ arn: pulumi.output(FN_ARN) }, { catch: false }) },
    });
    const json = JSON.parse(await resolve(renderDefinition(d)));
    assert.equal(json.States.Invoke.Parameters.FunctionName, FN_ARN);
    assert.equal(json.States.Invoke.End, true);
  });

  describe('IAM', () => {
    it('derives exactly the expected actions per ARN, with no wildcard action', async () => {
      const doc: PolicyDocument = await resolve(policyDocument(collectStatements(statements)));
      const perResource: Record<string, string[]> = {};
      for (const s of doc.Statement) {
        for (const a of s.Action) assert.ok(!a.includes('*'), `wildcard action ${a}`);
        for (const r of s.Resource) perResource[r] = [...(perResource[r] ?? []), ...s.Action].sort();
      }
      assert.deepEqual(perResource, {
        [TABLE_ARN]: ['dynamodb:PutItem'],
        [`${TABLE_ARN}/index/${STATUS_INDEX.name}`]: ['dynamodb:Query'],
        [FN_ARN]: ['lambda:InvokeFunction'],
        [`${FN_ARN}:*`]: ['lambda:InvokeFunction'],
        [BUS_ARN]: ['events:PutEvents'],
        [TOPIC_ARN]: ['sns:Publish'],
        [KEY_ARN]: ['kms:Decrypt', 'kms:GenerateDataKey'],
      });
      // Resources sharing an action set merge into one statement.
      assert.equal(doc.Statement.filter((s) => s.Action.includes('lambda:InvokeFunction')).length, 1);
    });

    it('derives .sync child-execution and Glue permissions as AWS documents them', async () => {
      const sm = `arn:aws:states:eu-west-1:${ACCOUNT}:stateMachine:downstream`;
      const job = `arn:aws:glue:eu-west-1:${ACCOUNT}:job/cda-load`;
      const parts = collectStatements(
        sfnStartExecutionSync({ arn: pulumi.output(sm) }, { 'Input.$': '$' }, { catchTo: 'X' }),
        glueStartJobRunSync({ name: 'cda-load', arn: job }, {}, { catchTo: 'X' }),
      );
      const doc = await resolve(policyDocument(parts));
      const byRes = Object.fromEntries(
        doc.Statement.flatMap((s) => s.Resource.map((r) => [r, [...s.Action].sort()])),
      );
      assert.deepEqual(byRes, {
        [sm]: ['states:StartExecution'],
        [`arn:aws:states:eu-west-1:${ACCOUNT}:execution:downstream:*`]: [
          'states:DescribeExecution',
          'states:StopExecution',
        ],
        [`arn:aws:events:eu-west-1:${ACCOUNT}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule`]: [
          'events:DescribeRule',
          'events:PutRule',
          'events:PutTargets',
        ],
        [job]: ['glue:BatchStopJobRun', 'glue:GetJobRun', 'glue:GetJobRuns', 'glue:StartJobRun'],
      });
    });

    it('keeps "*" resources to the logs/X-Ray actions that require it', () => {
      const obs = observabilityStatements();
      for (const s of obs) {
        assert.deepEqual(s.Resource, ['*']);
        assert.ok(s.Action.every((a) => a.startsWith('logs:') || a.startsWith('xray:')));
      }
      assert.ok(obs.some((s) => s.Action.includes('xray:PutTraceSegments')));
      assert.equal(observabilityStatements({ xray: false }).length, 1);
    });
  });

  describe('local execution (aws-local-stepfunctions + dynalite)', () => {
    let ddb: LocalDynamo;
    before(async () => {
      ddb = await startDynalite();
    });
    after(async () => {
      await ddb.close();
    });

    const input = (batchId: string) => ({ pipeline: 'policycenter', batchId, tables: ['policy', 'claim'] });

    it('claims, loads each table, publishes; a duplicate run hits the real conditional write and takes the Catch/Choice path', async () => {
      const loaded: string[] = [];
      const handlers = {
        dynamodb: ddb.client,
        lambda: (payload: unknown) => {
          const p = payload as { table: string; batchId: string };
          loaded.push(p.table);
          return { rows: 10 };
        },
      };
      const batchId = 'policycenter-20261127T020000Z';
      const first = await runWorkflow(definition, input(batchId), {
        handlers,
        context: { Execution: { Name: batchId } },
      });
      assert.equal(first.status, 'SUCCEEDED', `${first.error}: ${first.cause}`);
      assert.deepEqual(loaded.sort(), ['claim', 'policy']);
      const out = first.output as { loads: Array<{ Payload: { rows: number } }>; running: { count: number } };
      assert.deepEqual(
        out.loads.map((l) => l.Payload.rows),
        [10, 10],
      );
      assert.equal(out.running.count, 1, 'the GSI query sees the claimed batch');
      assert.equal(first.router.putEvents.length, 1);
      assert.equal(first.router.putEvents[0].EventBusName, BUS_ARN);
      assert.deepEqual(first.router.putEvents[0].Detail, { batchId });

      const item = await ddb.client.send(
        new GetItemCommand({
          TableName: TABLE_NAME,
          Key: { pk: { S: 'PIPELINE#policycenter' }, sk: { S: `BATCH#${batchId}#UPSTREAM` } },
        }),
      );
      assert.equal(item.Item?.status.S, 'RUNNING');
      assert.equal(item.Item?.executionArn.S?.endsWith(`:${batchId}`), true);

      const second = await runWorkflow(definition, input(batchId), { handlers });
      assert.equal(second.status, 'SUCCEEDED');
      const entered = second.events
        .filter((e) => e.type === 'StateEntered')
        .map((e) => (e.state as { name: string }).name);
      assert.deepEqual(entered, ['ClaimBatch', 'ClassifyError', 'AlreadyClaimed']);
      assert.equal(
        (second.output as { error: { Error: string } }).error.Error,
        'DynamoDB.ConditionalCheckFailedException',
      );
      assert.equal(second.router.putEvents.length, 0);
      assert.equal(loaded.length, 2, 'no table reloaded on the duplicate');
      assert.equal(second.transitions, 3);
    });

    it('retries a throttled Lambda (counting the retry as a transition), then succeeds', async () => {
      let calls = 0;
      const res = await runWorkflow(definition, input('policycenter-20261127T030000Z'), {
        handlers: {
          dynamodb: ddb.client,
          lambda: () => {
            calls++;
            if (calls === 1) throw new StatesError('Lambda.TooManyRequestsException', 'Rate exceeded');
            return { rows: 1 };
          },
        },
      });
      assert.equal(res.status, 'SUCCEEDED', `${res.error}: ${res.cause}`);
      assert.equal(calls, 3);
      assert.equal(res.events.filter((e) => e.type === 'StateRetried').length, 1);
      const entered = res.events.filter((e) => e.type === 'StateEntered').length;
      assert.equal(res.transitions, entered + 1);
    });

    it('routes a non-retryable Lambda error through Catch → Choice → SNS → Fail and reports, not throws', async () => {
      const res = await runWorkflow(definition, input('policycenter-20261127T040000Z'), {
        handlers: {
          dynamodb: ddb.client,
          lambda: () => {
            throw new StatesError('TableLoadFailed', 'glue crawler missing');
          },
        },
      });
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'TableLoadFailed');
      assert.match(res.cause ?? '', /glue crawler missing/);
      assert.equal(res.router.snsMessages.length, 1);
      assert.equal(res.router.snsMessages[0].TopicArn, TOPIC_ARN);
      assert.match(String(res.router.snsMessages[0].Message), /TableLoadFailed/);
      assert.equal(res.router.putEvents.length, 0);
    });

    it('refuses to run a definition whose resources have no handler', async () => {
      await assert.rejects(
        runWorkflow(definition, input('x'), { handlers: { lambda: () => ({}) } }),
        /no handler routes resource "arn:aws:states:::dynamodb:putItem" \(state "ClaimBatch"\)/,
      );
    });
  });
});
