import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { AccountContext } from './naming';

export interface AlertsArgs {
  /** Where alarms and workflow failures are sent (the on-call list). */
  readonly email: string;
  readonly account: AccountContext;
  readonly region: string;
}

/** Key administration, listed rather than `kms:*`, so even the key policy grants no blanket action. */
const KEY_ADMIN_ACTIONS = [
  'kms:Create*',
  'kms:Describe*',
  'kms:Enable*',
  'kms:List*',
  'kms:Put*',
  'kms:Update*',
  'kms:Revoke*',
  'kms:Disable*',
  'kms:Get*',
  'kms:Delete*',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
  'kms:RotateKeyOnDemand',
];

/** The alerts key's policy; exported so the security tests can read it. */
export function alertsKeyPolicy(accountId: string, partition: string, region: string) {
  const root = `arn:${partition}:iam::${accountId}:root`;
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'AccountAdministersKey',
        Effect: 'Allow',
        Principal: { AWS: root },
        Action: KEY_ADMIN_ACTIONS,
        // In a key policy "*" means "this key"; AWS requires it here.
        Resource: '*',
      },
      {
        Sid: 'AccountRolesUseKeyThroughSns',
        Effect: 'Allow',
        Principal: { AWS: root },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        Resource: '*',
        Condition: { StringEquals: { 'kms:ViaService': `sns.${region}.amazonaws.com`, 'kms:CallerAccount': accountId } },
      },
      {
        Sid: 'AlarmsAndRulesPublish',
        Effect: 'Allow',
        Principal: { Service: ['cloudwatch.amazonaws.com', 'events.amazonaws.com'] },
        Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        Resource: '*',
        Condition: { StringEquals: { 'aws:SourceAccount': accountId } },
      },
    ],
  };
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
          .apply(([accountId, partition]) => JSON.stringify(alertsKeyPolicy(accountId, partition, args.region))),
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
