import * as pulumi from '@pulumi/pulumi';
import { WORKFLOW_ERRORS } from '../contracts/errors';
import { EVENT_SCHEMA_VERSION, UPSTREAM_BATCH_SUCCEEDED } from '../contracts/events';
import type { IamStatement } from '../contracts/iam';
import type { ChoiceRule, Path, StateMachineDefinition } from './asl';
import { choice, fail, pass, sfnStartExecutionSync, snsPublish, succeed, wait, workflow } from './tasks';

/**
 * Trigger mode `rule-intermediate-sfn`: an EventBridge rule starts this workflow with the
 * `UpstreamBatchSucceeded` event; it runs the downstream workflow as a `.sync:2` child and reruns
 * it (fresh execution name per attempt) when the child fails.
 *
 *   ValidateEvent ─ malformed ─▶ InvalidTriggerEvent (Fail)
 *        │
 *   StartDownstream (<batchId>-a1, input = the event) ── succeeded (any outcome) ──▶ Done
 *        │ ExecutionAlreadyExists ─▶ AlreadyStarted (Succeed)
 *        │ failed
 *   FirstAttemptFailed ─▶ AttemptsLeft ─ attempt >= maxAttempts ─▶ NotifyRetriesExhausted ─▶ DownstreamRetriesExhausted (Fail)
 *        ▲                     │ else
 *        │               WaitBeforeRetry ─▶ NextAttempt ─▶ RerunDownstream (<batchId>-a<n>, input = {rerun}) ─▶ Done
 *        └──── failed ─────────────────────────────────────────────┘
 *
 * Happy path: ValidateEvent, StartDownstream, Done = 3 transitions (measured in
 * tests/trigger-workflows.test.ts).
 *
 * A child that ends Succeed is never retried, whatever its `outcome` (SUCCEEDED, DUPLICATE or
 * SKIPPED_NOT_ACTIVE): its own fence/claim/lock already decided. Only a failed child (the .sync:2
 * task fails with States.TaskFailed) or a failed StartExecution (after the toolkit's throttling
 * retries) counts as a failed attempt.
 */

/** Error name Step Functions reports when the optimized `states:startExecution` integration (any mode) is refused because the name is taken. */
export const EXECUTION_ALREADY_EXISTS = 'StepFunctions.ExecutionAlreadyExistsException';
export const INVALID_TRIGGER_EVENT = WORKFLOW_ERRORS.InvalidTriggerEvent;
export const DOWNSTREAM_RETRIES_EXHAUSTED = 'DownstreamRetriesExhausted';
export const INTERMEDIATE_RERUN_REASON = 'intermediate-retry';

export interface IntermediateRefs {
  /** The downstream workflow (same region: a state machine cannot start one in another region). */
  downstream: { arn: pulumi.Input<string> };
  /** Where the "retries exhausted" alert goes. */
  alertTopic: { arn: pulumi.Input<string>; kmsKeyArn?: pulumi.Input<string> };
  /** Whole downstream runs, including the first (>= 1). */
  maxAttempts: number;
  /** Wait between a failed run and the next attempt (>= 0). */
  retryWaitSeconds: number;
  /**
   * Expected detail-type.
   * @default UPSTREAM_BATCH_SUCCEEDED
   */
  detailType?: string;
}

/**
 * EventBridge envelope fields copied into the first child's input. ASL cannot add a key to `$`
 * without an extra state, so the event is rebuilt field by field (one transition saved on every
 * run); ValidateEvent requires all of them, and EventBridge always sets all of them.
 */
const ENVELOPE: Array<[string, Path]> = [
  ['version', '$.version'],
  ['id', '$.id'],
  ['detail-type', "$['detail-type']"],
  ['source', '$.source'],
  ['account', '$.account'],
  ['time', '$.time'],
  ['region', '$.region'],
  ['resources', '$.resources'],
  ['detail', '$.detail'],
];

const REQUIRED: Path[] = [
  ...ENVELOPE.map(([, p]) => p),
  '$.detail.schemaVersion',
  '$.detail.pipeline',
  '$.detail.batchId',
];

function validateRefs(refs: IntermediateRefs): void {
  if (!Number.isInteger(refs.maxAttempts) || refs.maxAttempts < 1) {
    throw new Error(`intermediateWorkflow: maxAttempts must be an integer >= 1, got ${refs.maxAttempts}`);
  }
  if (!Number.isInteger(refs.retryWaitSeconds) || refs.retryWaitSeconds < 0) {
    throw new Error(
      `intermediateWorkflow: retryWaitSeconds must be an integer >= 0, got ${refs.retryWaitSeconds}`,
    );
  }
}

/**
 * ValidateEvent's rules, tried in order: every IsPresent guard runs before any comparison reads the
 * path (on AWS a comparison on a missing path fails the execution with States.Runtime).
 */
function eventRules(detailType: string): ChoiceRule[] {
  const missing: ChoiceRule[] = REQUIRED.map((p) => ({
    Not: { Variable: p, IsPresent: true },
    Next: 'InvalidTriggerEvent',
  }));
  const wellFormed: ChoiceRule = {
    And: [
      { Variable: "$['detail-type']", StringEquals: detailType },
      { Variable: '$.detail.schemaVersion', StringEquals: EVENT_SCHEMA_VERSION },
      { Variable: '$.detail.pipeline', IsString: true },
      { Variable: '$.detail.batchId', IsString: true },
      // <pipeline>-<yyyyMMdd>T<HHmmss>Z; StringMatches has only the `*` wildcard.
      { Variable: '$.detail.batchId', StringMatches: '*-*T*Z' },
    ],
    Next: 'StartDownstream',
  };
  return [...missing, wellFormed];
}

export function intermediateWorkflow(refs: IntermediateRefs): {
  definition: StateMachineDefinition;
  statements: IamStatement[];
} {
  validateRefs(refs);
  const detailType = refs.detailType ?? UPSTREAM_BATCH_SUCCEEDED;
  const link = { 'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id' };
  const childResult = {
    resultSelector: { 'executionArn.$': '$.ExecutionArn', 'output.$': '$.Output' },
    resultPath: '$.child',
  };

  return workflow({
    comment: `rule-intermediate-sfn trigger: runs the downstream workflow for one ${UPSTREAM_BATCH_SUCCEEDED} event, rerunning it on failure`,
    startAt: 'ValidateEvent',
    states: {
      ValidateEvent: choice(eventRules(detailType), 'InvalidTriggerEvent'),
      InvalidTriggerEvent: fail({
        error: INVALID_TRIGGER_EVENT,
        cause: `input is not an EventBridge ${detailType} event with schemaVersion ${EVENT_SCHEMA_VERSION}`,
      }),

      StartDownstream: sfnStartExecutionSync(
        refs.downstream,
        {
          'Name.$': "States.Format('{}-a1', $.detail.batchId)",
          Input: { ...Object.fromEntries(ENVELOPE.map(([k, p]) => [`${k}.$`, p])), ...link },
        },
        {
          next: 'Done',
          ...childResult,
          catch: [
            {
              ErrorEquals: [EXECUTION_ALREADY_EXISTS],
              Next: 'AlreadyStarted',
              ResultPath: '$.alreadyStarted',
            },
            { ErrorEquals: ['States.ALL'], Next: 'FirstAttemptFailed', ResultPath: '$.error' },
          ],
        },
      ),
      Done: { Type: 'Succeed', OutputPath: '$.child' },
      AlreadyStarted: succeed(
        'Same execution name already used: a duplicate delivery of this event (or another intermediate run) started this attempt.',
      ),

      FirstAttemptFailed: pass({
        parameters: {
          'pipeline.$': '$.detail.pipeline',
          'batchId.$': '$.detail.batchId',
          attempt: 1,
          'lastError.$': '$.error',
        },
        next: 'AttemptsLeft',
      }),
      AttemptsLeft: choice(
        [
          {
            Variable: '$.attempt',
            NumericGreaterThanEquals: refs.maxAttempts,
            Next: 'NotifyRetriesExhausted',
          },
        ],
        'WaitBeforeRetry',
      ),
      WaitBeforeRetry: wait({ seconds: refs.retryWaitSeconds }, 'NextAttempt'),
      NextAttempt: pass({
        parameters: {
          'pipeline.$': '$.pipeline',
          'batchId.$': '$.batchId',
          'attempt.$': 'States.MathAdd($.attempt, 1)',
          'lastError.$': '$.lastError',
        },
        next: 'RerunDownstream',
      }),
      // Closed execution names stay taken for 90 days, so every attempt gets its own name.
      RerunDownstream: sfnStartExecutionSync(
        refs.downstream,
        {
          'Name.$': "States.Format('{}-a{}', $.batchId, $.attempt)",
          Input: {
            rerun: {
              'pipeline.$': '$.pipeline',
              'batchId.$': '$.batchId',
              reason: INTERMEDIATE_RERUN_REASON,
            },
            ...link,
          },
        },
        {
          next: 'Done',
          ...childResult,
          catch: [
            {
              ErrorEquals: [EXECUTION_ALREADY_EXISTS],
              Next: 'AlreadyStarted',
              ResultPath: '$.alreadyStarted',
            },
            { ErrorEquals: ['States.ALL'], Next: 'AttemptsLeft', ResultPath: '$.lastError' },
          ],
        },
      ),

      NotifyRetriesExhausted: snsPublish(
        refs.alertTopic,
        {
          Subject: 'etl-platform: downstream retries exhausted',
          'Message.$':
            "States.Format('Downstream workflow for batch {} (pipeline {}) failed {} times; last error {}. Intermediate execution: {}', $.batchId, $.pipeline, $.attempt, $.lastError.Error, $$.Execution.Id)",
        },
        {
          next: 'DownstreamRetriesExhausted',
          resultPath: null,
          catchTo: 'DownstreamRetriesExhausted',
          errorResultPath: '$.alertError',
        },
      ),
      DownstreamRetriesExhausted: fail({
        error: DOWNSTREAM_RETRIES_EXHAUSTED,
        cause: `the downstream workflow failed ${refs.maxAttempts} time(s); an alert was published`,
      }),
    },
  });
}
