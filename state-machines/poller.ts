import * as pulumi from '@pulumi/pulumi';
import {
  batchSk,
  DOWNSTREAM_WATERMARK_SK,
  pipelinePk,
  STATUS_INDEX,
  statusGsiPk,
} from '../contracts/control-table';
import { EVENT_SCHEMA_VERSION, UPSTREAM_BATCH_SUCCEEDED } from '../contracts/events';
import type { IamStatement } from '../contracts/iam';
import type { PayloadTemplate, StateMachineDefinition } from './asl';
import {
  choice,
  dynamoGetItem,
  dynamoQuery,
  fail,
  map,
  pass,
  sfnStartExecution,
  workflow,
  type DynamoTable,
} from './tasks';
import { EXECUTION_ALREADY_EXISTS } from './intermediate';

export { EXECUTION_ALREADY_EXISTS };

/**
 * Trigger mode `schedule-poll`: a Scheduler cron starts this workflow (its input is ignored). It
 * finds upstream batches that SUCCEEDED after the pipeline's downstream watermark and starts the
 * downstream workflow (fire and forget, execution name = batch id) for each one that has no
 * downstream record yet, oldest first, one at a time.
 *
 * Why a watermark lower bound: upstream records keep `gsi1pk = PIPELINE#p#UPSTREAM#SUCCEEDED`
 * after the downstream has built them, so an unbounded oldest-first query with a Limit would keep
 * returning the same processed batches forever and never reach new ones. The bound is
 * `PIPELINE#p / WATERMARK#DOWNSTREAM`.batchId (the newest batch built downstream; written by the
 * downstream workflow, only read here). Batches at or below it are not re-examined: the
 * downstream's out-of-order guard would refuse them anyway, and a FAILED one is the operator's
 * rerun decision.
 *
 * Nothing to do: GetWatermark, HasWatermark, Query*, AnyUnprocessed, NothingToDo
 *   = 5 state transitions per tick (measured in tests/trigger-workflows.test.ts), ~14,400 a month
 *   at one tick every 15 minutes.
 *
 * Per batch (Map, MaxConcurrency 1, in query order = oldest first):
 *   - a downstream record exists (any status: CLAIMED, RUNNING, SUCCEEDED or FAILED) → skipped.
 *     Only an absent record is started: a FAILED run is the operator's rerun decision.
 *   - else StartExecution(Name = batchId, Input = a rebuilt UpstreamBatchSucceeded event);
 *     ExecutionAlreadyExists (a run by this name exists or ran within 90 days, e.g. one that is
 *     still before its claim) → treated as already started.
 *   - any other error fails the item, which fails the Map and the execution (PollFailed) without
 *     starting newer batches, so the next tick retries in order.
 *
 * Upstream record attributes read (DynamoDB AttributeValue form, from the GSI's ALL projection):
 *   pk.S, gsi1sk.S (= batch id; present on every item of the index, preferred over batchId.S),
 *   region.S, startedAt.S, completedAt.S, executionArn.S,
 *   tables.S (the JSON string MarkBatchSucceeded writes: States.JsonToString of the event's tables).
 * A record missing any of these fails the execution at that batch (States.Runtime on AWS) rather
 * than starting the downstream with a guessed event.
 *
 * Output: {considered, started}; `started` excludes skipped and already-started batches.
 */

/** What a Map iteration returns when it starts nothing (started ones return their batch id). */
export const NOT_STARTED = '-';

export interface PollerRefs {
  /** The control table (name for Parameters, ARN for IAM). */
  table: DynamoTable;
  /**
   * GSI on (gsi1pk, gsi1sk).
   * @default STATUS_INDEX.name
   */
  indexName?: string;
  pipeline: string;
  /** The downstream workflow in the same region. */
  downstream: { arn: pulumi.Input<string> };
  /** `source` of the rebuilt event (the platform's EventBridge source). */
  eventSource: string;
  /** Query Limit: most batches handled per tick (1..100). */
  batchLimit: number;
}

export function pollerWorkflow(refs: PollerRefs): {
  definition: StateMachineDefinition;
  statements: IamStatement[];
} {
  if (!Number.isInteger(refs.batchLimit) || refs.batchLimit < 1 || refs.batchLimit > 100) {
    throw new Error(`pollerWorkflow: batchLimit must be an integer 1..100, got ${refs.batchLimit}`);
  }
  const indexName = refs.indexName ?? STATUS_INDEX.name;
  const pk = pipelinePk(refs.pipeline);
  const query = (bounded: boolean) =>
    dynamoQuery(
      refs.table,
      {
        IndexName: indexName,
        KeyConditionExpression: bounded ? 'gsi1pk = :pk AND gsi1sk > :after' : 'gsi1pk = :pk',
        ExpressionAttributeValues: {
          ':pk': { S: statusGsiPk(refs.pipeline, 'UPSTREAM', 'SUCCEEDED') },
          ...(bounded ? { ':after': { 'S.$': '$.Item.batchId.S' } } : {}),
        },
        ScanIndexForward: true,
        Limit: refs.batchLimit,
      },
      {
        next: 'AnyUnprocessed',
        // No ResultPath: the default replaces the input (the local engine mishandles an explicit '$').
        resultSelector: { summary: { 'considered.$': '$.Count', started: 0 }, 'items.$': '$.Items' },
        catchTo: 'PollFailed',
      },
    );

  const event: PayloadTemplate = {
    version: '0',
    'id.$': "States.Format('poller-{}', $.gsi1sk.S)",
    'detail-type': UPSTREAM_BATCH_SUCCEEDED,
    source: refs.eventSource,
    'time.$': '$.completedAt.S',
    'region.$': '$.region.S',
    resources: [],
    detail: {
      schemaVersion: EVENT_SCHEMA_VERSION,
      pipeline: refs.pipeline,
      'batchId.$': '$.gsi1sk.S',
      'region.$': '$.region.S',
      // The upstream stores the event's tables as a JSON string (MarkBatchSucceeded: States.JsonToString).
      'tables.$': 'States.StringToJson($.tables.S)',
      'startedAt.$': '$.startedAt.S',
      'completedAt.$': '$.completedAt.S',
      'upstreamExecutionArn.$': '$.executionArn.S',
    },
    'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id',
  };

  return workflow({
    comment: `schedule-poll trigger for pipeline ${refs.pipeline}: starts the downstream workflow for upstream batches not yet handed over`,
    startAt: 'GetWatermark',
    states: {
      GetWatermark: dynamoGetItem(
        refs.table,
        { Key: { pk: { S: pk }, sk: { S: DOWNSTREAM_WATERMARK_SK } }, ProjectionExpression: 'batchId' },
        { next: 'HasWatermark', catchTo: 'PollFailed' },
      ),
      HasWatermark: choice(
        [{ Variable: '$.Item.batchId.S', IsPresent: true, Next: 'QueryAfterWatermark' }],
        'QueryFromStart',
      ),
      QueryAfterWatermark: query(true),
      QueryFromStart: query(false),
      AnyUnprocessed: choice(
        [{ Variable: '$.summary.considered', NumericEquals: 0, Next: 'NothingToDo' }],
        'StartEach',
      ),
      NothingToDo: { Type: 'Succeed', OutputPath: '$.summary' },

      StartEach: map(
        {
          startAt: 'GetDownstreamRecord',
          states: {
            GetDownstreamRecord: dynamoGetItem(
              refs.table,
              {
                Key: {
                  pk: { 'S.$': '$.pk.S' },
                  sk: { 'S.$': `States.Format('${batchSk('{}', 'DOWNSTREAM')}', $.gsi1sk.S)` },
                },
                ConsistentRead: true,
                ProjectionExpression: 'sk',
              },
              { next: 'HasDownstreamRecord', resultPath: '$.downstream', catchTo: 'ItemFailed' },
            ),
            HasDownstreamRecord: choice(
              [{ Variable: '$.downstream.Item', IsPresent: true, Next: 'SkipHandled' }],
              'StartDownstreamRun',
            ),
            SkipHandled: pass({
              result: NOT_STARTED,
              comment: 'the downstream already claimed (or ran) this batch',
            }),
            StartDownstreamRun: sfnStartExecution(
              refs.downstream,
              { 'Name.$': '$.gsi1sk.S', Input: event },
              {
                resultSelector: { 'executionArn.$': '$.ExecutionArn' },
                resultPath: '$.start',
                outputPath: '$.gsi1sk.S',
                catch: [
                  { ErrorEquals: [EXECUTION_ALREADY_EXISTS], Next: 'StartedBefore', ResultPath: '$.start' },
                  { ErrorEquals: ['States.ALL'], Next: 'ItemFailed', ResultPath: '$.error' },
                ],
              },
            ),
            StartedBefore: pass({ result: NOT_STARTED, comment: 'ExecutionAlreadyExists: already started' }),
            ItemFailed: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
          },
        },
        {
          next: 'Summarize',
          itemsPath: '$.items',
          maxConcurrency: 1,
          resultPath: '$.results',
          catchTo: 'PollFailed',
        },
      ),
      // Results are batch ids (started) or NOT_STARTED. JSONPath filters fail on no match and
      // there is no array-sum intrinsic, so: distinct values, minus one if NOT_STARTED is among them.
      Summarize: pass({
        parameters: {
          'considered.$': '$.summary.considered',
          'distinct.$': 'States.ArrayLength(States.ArrayUnique($.results))',
          'anyNotStarted.$': `States.ArrayContains($.results, '${NOT_STARTED}')`,
        },
        next: 'CountStarted',
      }),
      CountStarted: choice(
        [{ Variable: '$.anyNotStarted', BooleanEquals: true, Next: 'SomeNotStarted' }],
        'AllStarted',
      ),
      SomeNotStarted: pass({
        parameters: { 'considered.$': '$.considered', 'started.$': 'States.MathAdd($.distinct, -1)' },
      }),
      AllStarted: pass({ parameters: { 'considered.$': '$.considered', 'started.$': '$.distinct' } }),
      PollFailed: fail({ errorPath: '$.error.Error', causePath: '$.error.Cause' }),
    },
  });
}
