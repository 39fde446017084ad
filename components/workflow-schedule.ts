import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { ToggleState } from '../regions/role';
import { DeadLetterQueue } from './dead-letter-queue';
import { identityPolicyJson, serviceRole } from './service-role';

export interface WorkflowScheduleArgs {
  /** The schedule's physical name, listed in the `failover` output. */
  readonly scheduleName: string;
  /** The region's schedule group. */
  readonly groupName: pulumi.Input<string>;
  /** The schedule's description in the console. */
  readonly description: string;
  /** A Scheduler `cron(...)` or `rate(...)` expression. */
  readonly expression: string;
  /** IANA time zone the expression is read in. */
  readonly timezone: string;
  /** 0 turns the flexible window off. */
  readonly flexibleWindowMinutes: number;
  /** ENABLED only in the active region. */
  readonly state: ToggleState;
  /** What the schedule starts: a workflow (default) or a Lambda function. */
  readonly targetArn: pulumi.Input<string>;
  /**
   * The action the schedule's role may perform on the target.
   * @default 'states:StartExecution'
   */
  readonly targetAction?: 'states:StartExecution' | 'lambda:InvokeFunction';
  /** The execution input; may use Scheduler context attributes such as `<aws.scheduler.scheduled-time>`. */
  readonly input: string;
  /** The target's retry policy; what is still undelivered after it goes to the DLQ. */
  readonly retry: { readonly maximumRetryAttempts: number; readonly maximumEventAgeSeconds: number };
  /** The schedule role's physical name, from `iamRoleName`. */
  readonly roleName: string;
  /** Only this account's Scheduler may assume the role (`aws:SourceAccount`). */
  readonly accountId: pulumi.Input<string>;
  /** Topic that receives the DLQ's depth alarm. */
  readonly alarmTopicArn: pulumi.Input<string>;
  /** Tags on the DLQ and the role. */
  readonly tags: Record<string, string>;
}

/**
 * An EventBridge Scheduler schedule that starts a workflow (or invokes a function), with a retry
 * policy, a DLQ (alarmed) and a role that may start only that target and write only that DLQ.
 */
export class WorkflowSchedule extends pulumi.ComponentResource {
  readonly schedule: aws.scheduler.Schedule;
  readonly dlq: DeadLetterQueue;

  constructor(name: string, args: WorkflowScheduleArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:scheduling:WorkflowSchedule', name, {}, opts);
    const parent = { parent: this };

    this.dlq = new DeadLetterQueue(
      `${name}-dlq`,
      { purpose: `schedule ${args.scheduleName}`, alarmTopicArn: args.alarmTopicArn, tags: args.tags },
      parent,
    );

    const { role } = serviceRole(
      name,
      {
        roleName: args.roleName,
        service: 'scheduler.amazonaws.com',
        condition: { StringEquals: { 'aws:SourceAccount': args.accountId } },
        policy: identityPolicyJson([
          {
            Sid: 'StartTarget',
            Effect: 'Allow',
            Action: [args.targetAction ?? 'states:StartExecution'],
            Resource: [args.targetArn],
          },
          // Scheduler delivers dead letters with the schedule's own role.
          { Sid: 'DeadLetters', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: [this.dlq.arn] },
        ]),
        tags: args.tags,
      },
      parent,
    );

    const window = args.flexibleWindowMinutes;
    this.schedule = new aws.scheduler.Schedule(
      `${name}-schedule`,
      {
        name: args.scheduleName,
        groupName: args.groupName,
        description: args.description,
        scheduleExpression: args.expression,
        scheduleExpressionTimezone: args.timezone,
        flexibleTimeWindow:
          window > 0 ? { mode: 'FLEXIBLE', maximumWindowInMinutes: window } : { mode: 'OFF' },
        state: args.state,
        target: {
          arn: args.targetArn,
          roleArn: role.arn,
          input: args.input,
          retryPolicy: {
            maximumRetryAttempts: args.retry.maximumRetryAttempts,
            maximumEventAgeInSeconds: args.retry.maximumEventAgeSeconds,
          },
          deadLetterConfig: { arn: this.dlq.arn },
        },
      },
      parent,
    );
    this.registerOutputs({ scheduleName: args.scheduleName });
  }
}
