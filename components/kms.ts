/**
 * KMS key policies. Administration is listed action by action (no `kms:*`); use is granted to the
 * account's IAM policies only through the named services, and to named service principals only
 * from this account.
 */

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

export interface KeyPolicyArgs {
  /** The account whose root administers and uses the key. */
  readonly accountId: string;
  /** The AWS partition, e.g. `aws`. */
  readonly partition: string;
  /** The key's region, for `kms:ViaService`. */
  readonly region: string;
  /** Services (e.g. "sns", "s3") through which the account's IAM principals may use the key. */
  readonly viaServices: readonly string[];
  /**
   * Service principals that use the key themselves (e.g. cloudwatch.amazonaws.com for alarms).
   * @default none
   */
  readonly servicePrincipals?: readonly string[];
}

export function keyPolicy(args: KeyPolicyArgs) {
  const root = `arn:${args.partition}:iam::${args.accountId}:root`;
  const statements: object[] = [
    // In a key policy "*" means "this key"; AWS requires it as the Resource.
    {
      Sid: 'AccountAdministersKey',
      Effect: 'Allow',
      Principal: { AWS: root },
      Action: KEY_ADMIN_ACTIONS,
      Resource: '*',
    },
    {
      Sid: 'AccountUsesKeyThroughServices',
      Effect: 'Allow',
      Principal: { AWS: root },
      Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey'],
      Resource: '*',
      Condition: {
        StringEquals: {
          'kms:ViaService': args.viaServices.map((service) => `${service}.${args.region}.amazonaws.com`),
          'kms:CallerAccount': args.accountId,
        },
      },
    },
  ];
  if (args.servicePrincipals && args.servicePrincipals.length > 0) {
    statements.push({
      Sid: 'ServicesUseKey',
      Effect: 'Allow',
      Principal: { Service: [...args.servicePrincipals] },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Resource: '*',
      Condition: { StringEquals: { 'aws:SourceAccount': args.accountId } },
    });
  }
  return { Version: '2012-10-17', Statement: statements };
}
