import * as aws from '@pulumi/aws';
import { HANDLER_ENV } from '../../contracts/env';
import { UPSTREAM_BATCH_SUCCEEDED } from '../../contracts/events';
import { DeadLetterQueue } from '../dead-letter-queue';
import { HandlerFunction } from '../handler-function';
import { AWS_DOCS, RuleWithTarget, ruleToggle, triggerRule } from './rule-with-target';
import type { TriggerBuilder } from './types';

/**
 * `rule-lambda`: the rule invokes a small function (handlers/start-downstream.ts) that starts the
 * downstream; the place for custom logic before the start. Its async failures land in their own DLQ.
 */
export const ruleLambda: TriggerBuilder = {
  upstreamStartsDownstream: false,
  latency: () =>
    `rule delivery, then async Lambda: on function errors 2 retries (1 min, then 2 min), throttling retried up to 6 h [Lambda async](${AWS_DOCS.lambdaAsync})`,
  build(name, args, parent) {
    const rule = triggerRule(args);
    const dlq = new DeadLetterQueue(
      `${name}-async-dlq`,
      {
        purpose: `${args.pipeline} start-downstream async failures`,
        alarmTopicArn: args.alarmTopicArn,
        tags: args.tags,
      },
      { parent },
    );
    const starter = new HandlerFunction(
      `${name}-starter`,
      {
        handler: 'start-downstream',
        purpose: `start-ds-${args.pipeline}`,
        region: args.region,
        logRetentionDays: args.logRetentionDays,
        environment: {
          [HANDLER_ENV.DOWNSTREAM_STATE_MACHINE_ARN]: args.downstreamArn,
          [HANDLER_ENV.PIPELINES]: args.pipeline,
          [HANDLER_ENV.EVENT_SOURCE]: args.eventSource,
        },
        statements: [
          {
            Sid: 'StartDownstream',
            Effect: 'Allow',
            Action: ['states:StartExecution'],
            Resource: [args.downstreamArn],
          },
          // The on-failure destination is written with the function's own role.
          { Sid: 'OnFailureDestination', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: [dlq.arn] },
        ],
        tags: args.tags,
      },
      { parent },
    );
    new aws.lambda.FunctionEventInvokeConfig(
      `${name}-async`,
      {
        functionName: starter.name,
        maximumRetryAttempts: args.lambdaAsync.maximumRetryAttempts,
        maximumEventAgeInSeconds: args.lambdaAsync.maximumEventAgeSeconds,
        destinationConfig: { onFailure: { destination: dlq.arn } },
      },
      { parent },
    );
    new aws.lambda.Permission(
      `${name}-invoke`,
      {
        action: 'lambda:InvokeFunction',
        function: starter.name,
        principal: 'events.amazonaws.com',
        sourceArn: rule.ruleArn,
      },
      { parent },
    );
    const target = new RuleWithTarget(
      `${name}-lambda`,
      {
        ...rule,
        description: `Invokes the ${args.pipeline} downstream starter on ${UPSTREAM_BATCH_SUCCEEDED}`,
        targetArn: starter.arn,
      },
      { parent },
    );
    return {
      toggles: [ruleToggle(args)],
      workflows: [],
      functions: [starter],
      dlqNames: [target.dlq.queue.name, dlq.queue.name],
    };
  },
};
