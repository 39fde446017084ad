/**
 * The metric names each AWS namespace actually publishes, spelt as the AWS docs spell them.
 * CloudWatch matches names case-sensitively and accepts an alarm on any name, so a misspelt one
 * (`InvocationsSentToDLQ`) is never breached; with `treatMissingData: notBreaching` it stays OK
 * forever. Alarms and dashboards take their names from here, and tests check every alarm against it.
 * Only the names this project uses or may plausibly use are listed; add others from the same pages.
 */
export const METRIC_NAMES = {
  // https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html (EventBridge metrics)
  'AWS/Events': [
    'DeadLetterInvocations',
    'FailedInvocations',
    'Invocations',
    'InvocationAttempts',
    'InvocationsCreated',
    'InvocationsFailedToBeSentToDlq',
    'InvocationsSentToDlq',
    'MatchedEvents',
    'RetryInvocationAttempts',
    'ThrottledRules',
    'TriggeredRules',
  ],
  // https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html (execution metrics;
  // note the singular "ExecutionThrottled", also in CloudWatch's appinsights-metrics-step-functions page)
  'AWS/States': [
    'ExecutionTime',
    'ExecutionThrottled',
    'ExecutionsAborted',
    'ExecutionsFailed',
    'ExecutionsStarted',
    'ExecutionsSucceeded',
    'ExecutionsTimedOut',
  ],
  // https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html (invocation metrics)
  'AWS/Lambda': [
    'Invocations',
    'Errors',
    'DeadLetterErrors',
    'DestinationDeliveryFailures',
    'Throttles',
    'Duration',
    'ConcurrentExecutions',
  ],
  // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
  'AWS/SQS': [
    'ApproximateAgeOfOldestMessage',
    'ApproximateNumberOfMessagesDelayed',
    'ApproximateNumberOfMessagesNotVisible',
    'ApproximateNumberOfMessagesVisible',
    'NumberOfEmptyReceives',
    'NumberOfMessagesDeleted',
    'NumberOfMessagesReceived',
    'NumberOfMessagesSent',
    'SentMessageSize',
  ],
  // https://docs.aws.amazon.com/scheduler/latest/UserGuide/monitoring-cloudwatch.html (list of metrics)
  'AWS/Scheduler': [
    'InvocationAttemptCount',
    'TargetErrorCount',
    'TargetErrorThrottledCount',
    'InvocationThrottleCount',
    'InvocationDroppedCount',
    'InvocationsSentToDeadLetterCount',
    'InvocationsFailedToBeSentToDeadLetterCount',
  ],
} as const;

export type MetricNamespace = keyof typeof METRIC_NAMES;
export type MetricName<N extends MetricNamespace> = (typeof METRIC_NAMES)[N][number];

/** True when `namespace` publishes `metricName` (exact, case-sensitive). */
export function isPublishedMetric(namespace: string, metricName: string): boolean {
  const names = (METRIC_NAMES as Record<string, readonly string[]>)[namespace];
  return names !== undefined && names.includes(metricName);
}

/** A metric name, checked at compile time against its namespace's table. */
export const knownMetric = <N extends MetricNamespace>(_namespace: N, name: MetricName<N>): MetricName<N> =>
  name;
