import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { keyPolicy } from './kms';
import type { AccountContext } from '../contracts/naming';

export interface AlertsArgs {
  /** Where alarms and workflow failures are sent (the on-call list). */
  readonly email: string;
  /** Account and partition of the deploying credentials (the key policy names the account). */
  readonly account: AccountContext;
  /** This stack's region (the key policy's `kms:ViaService`). */
  readonly region: string;
}

/** The alerts key's policy; exported so the security tests can read it. */
export function alertsKeyPolicy(accountId: string, partition: string, region: string) {
  return keyPolicy({
    accountId,
    partition,
    region,
    viaServices: ['sns'],
    servicePrincipals: ['cloudwatch.amazonaws.com', 'events.amazonaws.com'],
  });
}

/** A KMS-encrypted SNS topic for every alarm and failure alert, with the on-call e-mail subscribed. */
export class Alerts extends pulumi.ComponentResource {
  readonly topic: aws.sns.Topic;
  readonly key: aws.kms.Key;
  readonly topicArn: pulumi.Output<string>;

  constructor(name: string, args: AlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:alerts:Alerts', name, {}, opts);

    this.key = new aws.kms.Key(
      `${name}-key`,
      {
        description: 'Encrypts the ETL platform alerts topic',
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        policy: pulumi
          .all([args.account.accountId, args.account.partition])
          .apply(([accountId, partition]) =>
            JSON.stringify(alertsKeyPolicy(accountId, partition, args.region)),
          ),
      },
      { parent: this },
    );

    this.topic = new aws.sns.Topic(`${name}-topic`, { kmsMasterKeyId: this.key.arn }, { parent: this });
    this.topicArn = this.topic.arn;

    new aws.sns.TopicSubscription(
      `${name}-email`,
      { topic: this.topic.arn, protocol: 'email', endpoint: args.email },
      { parent: this },
    );

    this.registerOutputs({ topicArn: this.topicArn });
  }
}
