import { UPSTREAM_BATCH_SUCCEEDED } from '../../contracts/events';
import { iamRoleName } from '../../contracts/naming';
import { intermediateWorkflow } from '../../state-machines/intermediate';
import { Workflow } from '../workflow';
import { AWS_DOCS, eventsRole, RuleWithTarget, ruleToggle, triggerRule } from './rule-with-target';
import { NO_TRIGGER_PARTS, type TriggerBuilder } from './types';

/**
 * `rule-intermediate-sfn`: the rule starts a small workflow that starts the downstream and, when
 * the downstream fails, starts it again (N times, with a wait) before it alerts.
 */
export const ruleIntermediateSfn: TriggerBuilder = {
  upstreamStartsDownstream: false,
  latency: () =>
    `rule delivery as rule-direct, plus one StartExecution from the intermediate [EB retry](${AWS_DOCS.ebRetry})`,
  build(name, args, parent) {
    const built = intermediateWorkflow({
      downstream: { arn: args.downstreamArn },
      alertTopic: { arn: args.alarmTopicArn, kmsKeyArn: args.alertKeyArn },
      maxAttempts: args.options.intermediateMaxAttempts,
      retryWaitSeconds: args.options.intermediateRetryWaitSeconds,
    });
    const intermediate = new Workflow(
      `${name}-intermediate`,
      {
        ...built,
        purpose: `${args.pipeline}-trigger-sfn`,
        region: args.region,
        logLevel: args.logLevel,
        logRetentionDays: args.logRetentionDays,
        tags: args.tags,
      },
      { parent },
    );
    const role = eventsRole(
      `${name}-events`,
      {
        roleName: iamRoleName(`trigger-${args.pipeline}`, args.region),
        accountId: args.account.accountId,
        action: 'states:StartExecution',
        resources: [intermediate.arn],
        tags: args.tags,
      },
      { parent },
    );
    const rule = new RuleWithTarget(
      `${name}-sfn`,
      {
        ...triggerRule(args),
        description: `Starts the ${args.pipeline} intermediate trigger workflow on ${UPSTREAM_BATCH_SUCCEEDED}`,
        targetArn: intermediate.arn,
        roleArn: role.arn,
      },
      { parent },
    );
    return {
      ...NO_TRIGGER_PARTS,
      toggles: [ruleToggle(args)],
      workflows: [intermediate],
      dlqNames: [rule.dlq.queue.name],
    };
  },
};
