import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { TriggerMode } from '../regions/limits';
import type { ToggleState } from '../regions/role';
import { intermediateWorkflow } from '../state-machines/intermediate';
import { pollerWorkflow } from '../state-machines/poller';
import { DeadLetterQueue } from './dead-letter-queue';
import { HandlerFunction } from './handler-function';
import { type AccountContext, iamRoleName } from './naming';
import { identityPolicyJson, serviceRole } from './service-role';
import { Workflow } from './workflow';
import { WorkflowSchedule } from './workflow-schedule';

export const UPSTREAM_SUCCEEDED = 'UpstreamBatchSucceeded';

/** The rule pattern every event-driven mode uses: this pipeline's successful upstream batches. */
export function triggerPattern(eventSource: string, pipeline: string) {
  return { source: [eventSource], 'detail-type': [UPSTREAM_SUCCEEDED], detail: { pipeline: [pipeline] } };
}

/**
 * Every platform event that originated in this region. Matching on `detail.region` keeps forwarded
 * events from being forwarded back, even if both regions' forwarding rules were ever enabled.
 */
export function forwardPattern(eventSource: string, region: string) {
  return { source: [eventSource], detail: { region: [region] } };
}

export interface TargetRetry {
  readonly maximumRetryAttempts: number;
  readonly maximumEventAgeSeconds: number;
}

interface RuleTargetArgs {
  readonly busName: pulumi.Input<string>;
  readonly ruleName: string;
  readonly description: string;
  readonly pattern: object;
  readonly state: ToggleState;
  readonly targetArn: pulumi.Input<string>;
  /** Role EventBridge assumes to deliver (workflows and buses); Lambda targets use a permission instead. */
  readonly roleArn?: pulumi.Input<string>;
  /**
   * The target's retry policy. Leave it out for event-bus targets: EventBridge supports none there
   * (CDK's EventBusProps: "Retry policy is not supported for Event bus targets"), only a DLQ and a role.
   */
  readonly retry?: TargetRetry;
  readonly alarmTopicArn: pulumi.Input<string>;
  readonly ruleArn: pulumi.Input<string>;
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

/** A role EventBridge assumes, allowed one action on exact resources. */
export function eventsRole(
  name: string,
  roleName: string,
  accountId: pulumi.Input<string>,
  action: string,
  resources: pulumi.Input<string>[],
  tags: Record<string, string>,
  opts: pulumi.CustomResourceOptions,
): aws.iam.Role {
  return serviceRole(
    name,
    {
      roleName,
      service: 'events.amazonaws.com',
      condition: { StringEquals: { 'aws:SourceAccount': accountId } },
      policy: identityPolicyJson([{ Effect: 'Allow', Action: [action], Resource: resources }]),
      tags,
    },
    opts,
  ).role;
}

export interface DownstreamTriggerArgs {
  readonly pipeline: string;
  readonly mode: TriggerMode;
  readonly region: string;
  readonly account: AccountContext;
  readonly eventSource: string;
  readonly bus: { readonly name: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  readonly downstreamArn: pulumi.Input<string>;
  readonly ruleState: ToggleState;
  readonly scheduleState: ToggleState;
  readonly scheduleRetry: TargetRetry;
  readonly scheduleGroupName: pulumi.Input<string>;
  readonly options: {
    readonly pollExpression: string;
    readonly pollBatchLimit: number;
    readonly intermediateMaxAttempts: number;
    readonly intermediateRetryWaitSeconds: number;
  };
  readonly controlTable: { readonly name: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  readonly alertKeyArn: pulumi.Input<string>;
  readonly logLevel: 'ERROR' | 'ALL';
  readonly retry: TargetRetry;
  readonly lambdaAsync: TargetRetry;
  readonly alarmTopicArn: pulumi.Input<string>;
  readonly logRetentionDays: number;
  readonly tags: Record<string, string>;
}

/**
 * Starts a pipeline's downstream workflow when its upstream batch succeeds, by the configured mode.
 * Every mode may deliver twice: the downstream workflow's fence, claim and lock make it exactly once.
 * Declares only the resources of its own mode.
 */
export class DownstreamTrigger extends pulumi.ComponentResource {
  /** Rules and schedules whose state follows the role, for the `failover` output. */
  readonly toggles: Array<{ kind: 'rule' | 'schedule'; name: string; state: ToggleState }> = [];
  /** What this mode declared, for alarms and the dashboard. */
  readonly workflows: Workflow[] = [];
  readonly functions: HandlerFunction[] = [];
  readonly ruleNames: string[] = [];
  readonly dlqNames: pulumi.Output<string>[] = [];

  constructor(name: string, args: DownstreamTriggerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:triggers:DownstreamTrigger', name, {}, opts);
    const parent = { parent: this };
    const { partition, accountId } = args.account;
    const ruleName = `${args.pipeline}-downstream-trigger`;
    const ruleArn = pulumi.interpolate`arn:${partition}:events:${args.region}:${accountId}:rule/${args.bus.name}/${ruleName}`;
    const rule = {
      busName: args.bus.name,
      ruleName,
      pattern: triggerPattern(args.eventSource, args.pipeline),
      state: args.ruleState,
      retry: args.retry,
      alarmTopicArn: args.alarmTopicArn,
      ruleArn,
      tags: args.tags,
    };

    switch (args.mode) {
      case 'rule-direct': {
        const role = eventsRole(
          `${name}-events`,
          iamRoleName(`trigger-${args.pipeline}`, args.region),
          accountId,
          'states:StartExecution',
          [args.downstreamArn],
          args.tags,
          parent,
        );
        this.track(
          new RuleWithTarget(
            `${name}-direct`,
            {
              ...rule,
              description: `Starts the ${args.pipeline} downstream workflow on UpstreamBatchSucceeded`,
              targetArn: args.downstreamArn,
              roleArn: role.arn,
            },
            parent,
          ),
        );
        this.toggles.push({ kind: 'rule', name: ruleName, state: args.ruleState });
        break;
      }
      case 'rule-lambda': {
        const dlq = new DeadLetterQueue(
          `${name}-async-dlq`,
          {
            purpose: `${args.pipeline} start-downstream async failures`,
            alarmTopicArn: args.alarmTopicArn,
            tags: args.tags,
          },
          parent,
        );
        const fn: HandlerFunction = new HandlerFunction(
          `${name}-starter`,
          {
            handler: 'start-downstream',
            purpose: `start-ds-${args.pipeline}`,
            region: args.region,
            logRetentionDays: args.logRetentionDays,
            environment: {
              DOWNSTREAM_STATE_MACHINE_ARN: args.downstreamArn,
              PIPELINES: args.pipeline,
              EVENT_SOURCE: args.eventSource,
            },
            statements: [
              {
                Sid: 'StartDownstream',
                Effect: 'Allow',
                Action: ['states:StartExecution'],
                Resource: [args.downstreamArn],
              },
              // The on-failure destination is written with the function's own role.
              {
                Sid: 'OnFailureDestination',
                Effect: 'Allow',
                Action: ['sqs:SendMessage'],
                Resource: [dlq.arn],
              },
            ],
            tags: args.tags,
          },
          parent,
        );
        this.functions.push(fn);
        new aws.lambda.FunctionEventInvokeConfig(
          `${name}-async`,
          {
            functionName: fn.name,
            maximumRetryAttempts: args.lambdaAsync.maximumRetryAttempts,
            maximumEventAgeInSeconds: args.lambdaAsync.maximumEventAgeSeconds,
            destinationConfig: { onFailure: { destination: dlq.arn } },
          },
          parent,
        );
        new aws.lambda.Permission(
          `${name}-invoke`,
          {
            action: 'lambda:InvokeFunction',
            function: fn.name,
            principal: 'events.amazonaws.com',
            sourceArn: ruleArn,
          },
          parent,
        );
        this.track(
          new RuleWithTarget(
            `${name}-lambda`,
            {
              ...rule,
              description: `Invokes the ${args.pipeline} downstream starter on UpstreamBatchSucceeded`,
              targetArn: fn.arn,
            },
            parent,
          ),
        );
        this.dlqNames.push(dlq.queue.name);
        this.toggles.push({ kind: 'rule', name: ruleName, state: args.ruleState });
        break;
      }
      case 'upstream-direct':
        // The upstream workflow's last state starts the downstream itself: no trigger resources.
        break;
      case 'rule-intermediate-sfn': {
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
          parent,
        );
        this.workflows.push(intermediate);
        const role = eventsRole(
          `${name}-events`,
          iamRoleName(`trigger-${args.pipeline}`, args.region),
          accountId,
          'states:StartExecution',
          [intermediate.arn],
          args.tags,
          parent,
        );
        this.track(
          new RuleWithTarget(
            `${name}-sfn`,
            {
              ...rule,
              description: `Starts the ${args.pipeline} intermediate trigger workflow on UpstreamBatchSucceeded`,
              targetArn: intermediate.arn,
              roleArn: role.arn,
            },
            parent,
          ),
        );
        this.toggles.push({ kind: 'rule', name: ruleName, state: args.ruleState });
        break;
      }
      case 'schedule-poll': {
        const built = pollerWorkflow({
          table: args.controlTable,
          pipeline: args.pipeline,
          downstream: { arn: args.downstreamArn },
          eventSource: args.eventSource,
          batchLimit: args.options.pollBatchLimit,
        });
        const poller = new Workflow(
          `${name}-poller`,
          {
            ...built,
            purpose: `${args.pipeline}-poller`,
            region: args.region,
            logLevel: args.logLevel,
            logRetentionDays: args.logRetentionDays,
            tags: args.tags,
          },
          parent,
        );
        this.workflows.push(poller);
        const scheduleName = `${args.pipeline}-downstream-poll`;
        const poll = new WorkflowSchedule(
          `${name}-poll`,
          {
            scheduleName,
            groupName: args.scheduleGroupName,
            description: `Polls for ${args.pipeline} batches whose downstream has not started`,
            expression: args.options.pollExpression,
            timezone: 'UTC',
            flexibleWindowMinutes: 0,
            state: args.scheduleState,
            targetArn: poller.arn,
            input: JSON.stringify({ pipeline: args.pipeline }),
            retry: args.scheduleRetry,
            roleName: iamRoleName(`poll-${args.pipeline}`, args.region),
            accountId,
            alarmTopicArn: args.alarmTopicArn,
            tags: args.tags,
          },
          parent,
        );
        this.dlqNames.push(poll.dlq.queue.name);
        this.toggles.push({ kind: 'schedule', name: scheduleName, state: args.scheduleState });
        break;
      }
    }
    this.ruleNames.push(...this.toggles.filter((t) => t.kind === 'rule').map((t) => t.name));
    this.registerOutputs({});
  }

  private track(rule: RuleWithTarget): void {
    this.dlqNames.push(rule.dlq.queue.name);
  }
}

export interface ForwardingArgs {
  readonly region: string;
  readonly peerRegion: string;
  readonly account: AccountContext;
  readonly eventSource: string;
  readonly busName: string;
  readonly ruleState: ToggleState;
  readonly alarmTopicArn: pulumi.Input<string>;
  readonly tags: Record<string, string>;
}

/**
 * Always-on forwarding of this region's platform events to the peer region's bus (same name), so
 * the standby's archive holds everything the active region saw and a replay after failover
 * re-delivers the gap. ENABLED only in the active region.
 */
export class CrossRegionForwarding extends pulumi.ComponentResource {
  readonly ruleName: string;
  readonly dlqName: pulumi.Output<string>;

  constructor(name: string, args: ForwardingArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:triggers:CrossRegionForwarding', name, {}, opts);
    const { partition, accountId } = args.account;
    const peerBusArn = pulumi.interpolate`arn:${partition}:events:${args.peerRegion}:${accountId}:event-bus/${args.busName}`;
    this.ruleName = `forward-to-${args.peerRegion}`;
    const role = eventsRole(
      `${name}-events`,
      iamRoleName('forward-events', args.region),
      accountId,
      'events:PutEvents',
      [peerBusArn],
      args.tags,
      { parent: this },
    );
    const forward = new RuleWithTarget(
      `${name}-forward`,
      {
        busName: args.busName,
        ruleName: this.ruleName,
        description: `Forwards this region's platform events to ${args.peerRegion}`,
        pattern: forwardPattern(args.eventSource, args.region),
        state: args.ruleState,
        targetArn: peerBusArn,
        roleArn: role.arn,
        // No retry policy: the target is an event bus (see RuleTargetArgs.retry). The DLQ stays.
        alarmTopicArn: args.alarmTopicArn,
        ruleArn: pulumi.interpolate`arn:${partition}:events:${args.region}:${accountId}:rule/${args.busName}/${this.ruleName}`,
        tags: args.tags,
      },
      { parent: this },
    );
    this.dlqName = forward.dlq.queue.name;
    this.registerOutputs({});
  }
}
