import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { UPSTREAM_BATCH_SUCCEEDED } from '../../contracts/events';
import { downstreamRuleName } from '../../contracts/naming';
import type { ToggleState } from '../../regions/role';
import { DeadLetterQueue } from '../dead-letter-queue';
import { identityPolicyJson, serviceRole } from '../service-role';
import type { DownstreamTriggerArgs, TargetRetry, RoleToggle } from './types';

/** AWS's documentation of each mode's delivery behaviour, cited by `TriggerBuilder.latency`. */
export const AWS_DOCS = {
  ebRetry: 'https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html',
  scheduler: 'https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html',
  lambdaAsync: 'https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html',
  sfnStart: 'https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html',
};

/** The rule pattern every event-driven mode uses: this pipeline's successful upstream batches. */
export function triggerPattern(eventSource: string, pipeline: string) {
  return {
    source: [eventSource],
    'detail-type': [UPSTREAM_BATCH_SUCCEEDED],
    detail: { pipeline: [pipeline] },
  };
}

/**
 * Every platform event that originated in this region. Matching on `detail.region` keeps forwarded
 * events from being forwarded back, even if both regions' forwarding rules were ever enabled.
 */
export function forwardPattern(eventSource: string, region: string) {
  return { source: [eventSource], detail: { region: [region] } };
}

export interface RuleTargetArgs {
  /** The bus the rule listens on. */
  readonly busName: pulumi.Input<string>;
  /** The rule's physical name (operators and the `failover` output find it by name). */
  readonly ruleName: string;
  /** The rule's description in the console. */
  readonly description: string;
  /** The event pattern, rendered to JSON. */
  readonly pattern: object;
  /** ENABLED only in the active region. */
  readonly state: ToggleState;
  /** What the rule delivers to: a workflow, a function or a bus. */
  readonly targetArn: pulumi.Input<string>;
  /**
   * Role EventBridge assumes to deliver (workflows and buses); Lambda targets use a permission instead.
   * @default none
   */
  readonly roleArn?: pulumi.Input<string>;
  /**
   * The target's retry policy. Leave it out for event-bus targets: EventBridge supports none there
   * (CDK's EventBusProps: "Retry policy is not supported for Event bus targets"), only a DLQ and a role.
   * @default none (EventBridge's own: 24 h, 185 attempts)
   */
  readonly retry?: TargetRetry;
  /** Topic that receives the DLQ's depth alarm. */
  readonly alarmTopicArn: pulumi.Input<string>;
  /** The rule's ARN, known before it exists: only this rule may send to the DLQ. */
  readonly ruleArn: pulumi.Input<string>;
  /** Tags on the rule and the DLQ. */
  readonly tags: Record<string, string>;
}

/** A rule with one target, its retry policy (if the target takes one) and its own DLQ (only this rule may send to it). */
export class RuleWithTarget extends pulumi.ComponentResource {
  readonly rule: aws.cloudwatch.EventRule;
  readonly dlq: DeadLetterQueue;

  constructor(name: string, args: RuleTargetArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:triggers:RuleWithTarget', name, {}, opts);
    this.rule = new aws.cloudwatch.EventRule(
      `${name}-rule`,
      {
        name: args.ruleName,
        eventBusName: args.busName,
        description: args.description,
        eventPattern: JSON.stringify(args.pattern),
        state: args.state,
        tags: args.tags,
      },
      { parent: this },
    );
    this.dlq = new DeadLetterQueue(
      `${name}-dlq`,
      {
        purpose: `rule ${args.ruleName}`,
        alarmTopicArn: args.alarmTopicArn,
        senders: [{ service: 'events.amazonaws.com', sourceArns: [args.ruleArn] }],
        tags: args.tags,
      },
      { parent: this },
    );
    new aws.cloudwatch.EventTarget(
      `${name}-target`,
      {
        rule: this.rule.name,
        eventBusName: args.busName,
        arn: args.targetArn,
        roleArn: args.roleArn,
        ...(args.retry
          ? {
              retryPolicy: {
                maximumRetryAttempts: args.retry.maximumRetryAttempts,
                maximumEventAgeInSeconds: args.retry.maximumEventAgeSeconds,
              },
            }
          : {}),
        deadLetterConfig: { arn: this.dlq.arn },
      },
      { parent: this },
    );
    this.registerOutputs({ ruleArn: this.rule.arn });
  }
}

/** A role EventBridge assumes (from this account only), allowed one action on exact resources. */
export function eventsRole(
  name: string,
  grant: {
    readonly roleName: string;
    readonly accountId: pulumi.Input<string>;
    readonly action: string;
    readonly resources: pulumi.Input<string>[];
    readonly tags: Record<string, string>;
  },
  opts: pulumi.CustomResourceOptions,
): aws.iam.Role {
  return serviceRole(
    name,
    {
      roleName: grant.roleName,
      service: 'events.amazonaws.com',
      condition: { StringEquals: { 'aws:SourceAccount': grant.accountId } },
      policy: identityPolicyJson([{ Effect: 'Allow', Action: [grant.action], Resource: grant.resources }]),
      tags: grant.tags,
    },
    opts,
  ).role;
}

/** The pipeline's trigger rule, as every rule-based mode declares it (without description and target). */
export function triggerRule(args: DownstreamTriggerArgs) {
  const { partition, accountId } = args.account;
  const ruleName = downstreamRuleName(args.pipeline);
  return {
    busName: args.bus.name,
    ruleName,
    pattern: triggerPattern(args.eventSource, args.pipeline),
    state: args.ruleState,
    retry: args.retry,
    alarmTopicArn: args.alarmTopicArn,
    ruleArn: pulumi.interpolate`arn:${partition}:events:${args.region}:${accountId}:rule/${args.bus.name}/${ruleName}`,
    tags: args.tags,
  };
}

/** The trigger rule's entry in the `failover` output. */
export function ruleToggle(args: DownstreamTriggerArgs): RoleToggle {
  return { kind: 'rule', name: downstreamRuleName(args.pipeline), state: args.ruleState };
}
