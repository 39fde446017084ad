import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { Alert, AlertPublisher } from './alert-publisher';

/**
 * The real AlertPublisher: SNS Publish to the platform's alerts topic. Needs `sns:Publish` on the
 * topic (and `kms:GenerateDataKey`/`kms:Decrypt` on its key when the topic is encrypted with a
 * customer managed key). Never import this statically from a handler: `handlers/watchdog.ts`
 * loads it with `await import()` in its default-publisher factory.
 */
export function createSnsPublisher(topicArn: string): AlertPublisher {
  const client = new SNSClient({});
  return {
    async publish(alert: Alert): Promise<void> {
      await client.send(
        new PublishCommand({ TopicArn: topicArn, Subject: alert.subject, Message: alert.message }),
      );
    },
  };
}
