import * as assert from 'node:assert/strict';
import * as pulumi from '@pulumi/pulumi';
import { DeadLetterQueue, DLQ_RETENTION_SECONDS } from '../components/dead-letter-queue';
import { RecordingMocks } from '../local/pulumi-mocks';

/** Component-level tests: the component is built alone under mocks and its children inspected. */
async function record(build: () => pulumi.Output<unknown>): Promise<RecordingMocks> {
  const mocks = new RecordingMocks('us-east-1');
  await pulumi.runtime.setMocks(mocks, 'etl-platform', 'component-test', false);
  await new Promise((resolve) => build().apply(resolve));
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return mocks;
}

describe('DeadLetterQueue', () => {
  it('is an SSE queue with 14-day retention and a depth > 0 alarm to the alerts topic', async () => {
    const mocks = await record(() => {
      const dlq = new DeadLetterQueue('dlq-alarm-test', {
        purpose: 'policycenter schedule',
        alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:alerts',
      });
      return dlq.arn;
    });
    const queue = mocks.resources.find((r) => r.type === 'aws:sqs/queue:Queue')!;
    assert.equal(queue.inputs.messageRetentionSeconds, DLQ_RETENTION_SECONDS);
    assert.equal(queue.inputs.sqsManagedSseEnabled, true);
    const alarm = mocks.resources.find((r) => r.type === 'aws:cloudwatch/metricAlarm:MetricAlarm')!;
    assert.deepEqual(
      [
        alarm.inputs.metricName,
        alarm.inputs.comparisonOperator,
        alarm.inputs.threshold,
        alarm.inputs.dimensions.QueueName,
      ],
      ['ApproximateNumberOfMessagesVisible', 'GreaterThanThreshold', 0, queue.state.name],
    );
    assert.deepEqual(alarm.inputs.alarmActions, ['arn:aws:sns:us-east-1:123456789012:alerts']);
    assert.equal(mocks.resources.filter((r) => r.type === 'aws:sqs/queuePolicy:QueuePolicy').length, 0);
  });

  it('lets only the named rules send, through a queue policy', async () => {
    const rule = 'arn:aws:events:us-east-1:123456789012:rule/etl-platform/policycenter-trigger';
    const mocks = await record(() => {
      const dlq = new DeadLetterQueue('dlq-policy-test', {
        purpose: 'policycenter trigger',
        alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:alerts',
        senders: [{ service: 'events.amazonaws.com', sourceArns: [rule] }],
      });
      return dlq.arn;
    });
    const policy = JSON.parse(
      mocks.resources.find((r) => r.type === 'aws:sqs/queuePolicy:QueuePolicy')!.inputs.policy,
    );
    assert.deepEqual(policy.Statement, [
      {
        Sid: 'AllowSender0',
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: mocks.resources.find((r) => r.type === 'aws:sqs/queue:Queue')!.state.arn,
        Condition: { ArnEquals: { 'aws:SourceArn': [rule] } },
      },
    ]);
  });
});
