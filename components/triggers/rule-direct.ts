import { UPSTREAM_BATCH_SUCCEEDED } from '../../contracts/events';
import { iamRoleName } from '../../contracts/naming';
import { AWS_DOCS, eventsRole, RuleWithTarget, ruleToggle, triggerRule } from './rule-with-target';
import { NO_TRIGGER_PARTS, type TriggerBuilder } from './types';

/** `rule-direct` (the default): one rule whose target is the downstream workflow. One hop, no code. */
export const ruleDirect: TriggerBuilder = {
  upstreamStartsDownstream: false,
  latency: () =>
    `one rule delivery: normally seconds; on target errors retried up to the target's retry policy (EventBridge default 24 h / 185 attempts) [EB retry](${AWS_DOCS.ebRetry})`,
  build(name, args, parent) {
    const role = eventsRole(
      `${name}-events`,
      {
        roleName: iamRoleName(`trigger-${args.pipeline}`, args.region),
        accountId: args.account.accountId,
        action: 'states:StartExecution',
        resources: [args.downstreamArn],
        tags: args.tags,
      },
      { parent },
    );
    const rule = new RuleWithTarget(
      `${name}-direct`,
      {
        ...triggerRule(args),
        description: `Starts the ${args.pipeline} downstream workflow on ${UPSTREAM_BATCH_SUCCEEDED}`,
        targetArn: args.downstreamArn,
        roleArn: role.arn,
      },
      { parent },
    );
    return { ...NO_TRIGGER_PARTS, toggles: [ruleToggle(args)], dlqNames: [rule.dlq.queue.name] };
  },
};
