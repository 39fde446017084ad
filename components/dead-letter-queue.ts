import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { knownMetric } from './metric-names';

/** Who may send to the queue: an AWS service principal, for the named source ARNs only. */
export interface DeadLetterSender {
  /** Service principal, such as `events.amazonaws.com`. */
  readonly service: string;
  /** The rules (or other sources) allowed to send; checked with `aws:SourceArn`. */
  readonly sourceArns: pulumi.Input<pulumi.Input<string>[]>;
}

export interface DeadLetterQueueArgs {
  /** What the queue catches, for its description and alarm text (e.g. "policycenter schedule"). */
  readonly purpose: string;
  /** Topic that receives the depth alarm. */
  readonly alarmTopicArn: pulumi.Input<string>;
  /**
   * Services that deliver to the queue with a resource policy (EventBridge rule targets).
   * Senders that use their own role (Scheduler, Lambda destinations) need no entry here.
   * @default []
   */
  readonly senders?: readonly DeadLetterSender[];
  /**
   * Retention of undelivered messages. SQS's maximum, so nothing expires before an operator looks.
   * @default 1209600 (14 days)
   */
  readonly retentionSeconds?: number;
  /**
   * Extra tags, e.g. the pipeline.
   * @default none
   */
  readonly tags?: Record<string, string>;
}

export const DLQ_RETENTION_SECONDS = 1_209_600;

/** Queue policy statements for the senders; exported for tests and the IAM proofs. */
export function senderStatements(queueArn: pulumi.Input<string>, senders: readonly DeadLetterSender[]) {
  return senders.map((sender, index) => ({
    Sid: `AllowSender${index}`,
    Effect: 'Allow',
    Principal: { Service: sender.service },
    Action: 'sqs:SendMessage',
    Resource: queueArn,
    Condition: { ArnEquals: { 'aws:SourceArn': sender.sourceArns } },
  }));
}

/**
 * An encrypted SQS dead-letter queue with an alarm on depth > 0. Every async hop in the
 * platform (rule targets, schedules, async Lambdas) gets one, so nothing is dropped silently.
 */
export class DeadLetterQueue extends pulumi.ComponentResource {
  readonly queue: aws.sqs.Queue;
  readonly alarm: aws.cloudwatch.MetricAlarm;
  readonly arn: pulumi.Output<string>;
  readonly url: pulumi.Output<string>;

  constructor(name: string, args: DeadLetterQueueArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:messaging:DeadLetterQueue', name, {}, opts);
    const tags = args.tags ?? {};

    this.queue = new aws.sqs.Queue(
      `${name}-queue`,
      {
        messageRetentionSeconds: args.retentionSeconds ?? DLQ_RETENTION_SECONDS,
        sqsManagedSseEnabled: true,
        tags,
      },
      { parent: this },
    );
    this.arn = this.queue.arn;
    this.url = this.queue.url;

    const senders = args.senders ?? [];
    if (senders.length > 0) {
      new aws.sqs.QueuePolicy(
        `${name}-policy`,
        {
          queueUrl: this.queue.url,
          policy: pulumi.jsonStringify({
            Version: '2012-10-17',
            Statement: senderStatements(this.queue.arn, senders),
          }),
        },
        { parent: this },
      );
    }

    this.alarm = new aws.cloudwatch.MetricAlarm(
      `${name}-depth`,
      {
        alarmDescription: `Dead letters waiting: ${args.purpose}. See docs/runbooks/dlq-alarm.md`,
        namespace: 'AWS/SQS',
        metricName: knownMetric('AWS/SQS', 'ApproximateNumberOfMessagesVisible'),
        dimensions: { QueueName: this.queue.name },
        statistic: 'Maximum',
        period: 60,
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'notBreaching',
        alarmActions: [args.alarmTopicArn],
        okActions: [args.alarmTopicArn],
        tags,
      },
      { parent: this },
    );

    this.registerOutputs({ arn: this.arn, url: this.url });
  }
}
