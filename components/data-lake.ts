import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { keyPolicy } from './kms';
import { type AccountContext, iamRoleName } from '../contracts/naming';
import { SecureBucket } from './secure-bucket';
import { identityPolicyJson, serviceRole } from './service-role';

export const LAKE_KEY_ALIAS = 'alias/etl-lake';
const GLUE_DIR = path.resolve(__dirname, '..', 'glue');

/** Deterministic, so the peer stack can name it as its replication destination. */
export function lakeBucketName(accountId: string, region: string): string {
  return `etl-lake-${accountId}-${region}`;
}

/** Job scripts and the logic module they import; tests stay in the repo. */
export function glueScriptFiles(): string[] {
  return fs
    .readdirSync(GLUE_DIR)
    .filter((file) => file.endsWith('.py') && !file.startsWith('test_'))
    .sort();
}

export const LAKE_LIFECYCLE: aws.types.input.s3.BucketLifecycleConfigurationRule[] = [
  {
    id: 'raw-tiering',
    status: 'Enabled',
    filter: { prefix: 'raw/' },
    transitions: [
      { days: 30, storageClass: 'STANDARD_IA' },
      { days: 180, storageClass: 'GLACIER_IR' },
    ],
  },
  { id: 'run-results', status: 'Enabled', filter: { prefix: '_runs/' }, expiration: { days: 400 } },
  {
    id: 'noncurrent-versions',
    status: 'Enabled',
    filter: { prefix: '' },
    noncurrentVersionExpiration: { noncurrentDays: 90 },
  },
  {
    id: 'incomplete-uploads',
    status: 'Enabled',
    filter: { prefix: '' },
    abortIncompleteMultipartUpload: { daysAfterInitiation: 7 },
  },
];

export interface DataLakeArgs {
  /** This stack's region: part of the buckets' names. */
  readonly region: string;
  /** The region the lake replicates to. */
  readonly peerRegion: string;
  /** Account and partition of the deploying credentials (bucket names carry the account). */
  readonly account: AccountContext;
  /**
   * Replicate the lake to the peer region's lake bucket. S3 refuses a replication rule whose
   * destination does not exist yet, so the very first deployment of the first stack turns it off.
   * @default true
   */
  readonly replicateToPeer: boolean;
  /**
   * Tags on the buckets, keys and the replication role.
   * @default none
   */
  readonly tags?: Record<string, string>;
}

/**
 * The region's data-lake bucket (replicated to the peer, so the passive region has the data after
 * failover), its KMS key, and the artifacts bucket holding the Glue scripts from `glue/`.
 */
export class DataLake extends pulumi.ComponentResource {
  readonly key: aws.kms.Key;
  readonly lake: SecureBucket;
  readonly artifacts: SecureBucket;
  readonly scriptLocations: Record<string, pulumi.Output<string>> = {};

  constructor(name: string, args: DataLakeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:storage:DataLake', name, {}, opts);
    const parent = { parent: this };
    const { accountId, partition } = args.account;

    this.key = new aws.kms.Key(
      `${name}-key`,
      {
        description: 'Encrypts the ETL data lake and Glue artifacts',
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        policy: pulumi
          .all([accountId, partition])
          .apply(([a, p]) =>
            JSON.stringify(
              keyPolicy({ accountId: a, partition: p, region: args.region, viaServices: ['s3'] }),
            ),
          ),
      },
      parent,
    );
    // The alias has the same name in both regions: replication names the peer's key by it.
    new aws.kms.Alias(`${name}-key-alias`, { name: LAKE_KEY_ALIAS, targetKeyId: this.key.keyId }, parent);

    this.lake = new SecureBucket(
      `${name}-lake`,
      {
        bucketName: accountId.apply((a) => lakeBucketName(a, args.region)),
        kmsKeyArn: this.key.arn,
        lifecycleRules: LAKE_LIFECYCLE,
        tags: args.tags,
      },
      parent,
    );

    this.artifacts = new SecureBucket(
      `${name}-artifacts`,
      {
        kmsKeyArn: this.key.arn,
        lifecycleRules: [
          { id: 'glue-temp', status: 'Enabled', filter: { prefix: 'tmp/' }, expiration: { days: 7 } },
          {
            id: 'noncurrent-versions',
            status: 'Enabled',
            filter: { prefix: '' },
            noncurrentVersionExpiration: { noncurrentDays: 30 },
          },
        ],
        tags: args.tags,
      },
      parent,
    );
    for (const file of glueScriptFiles()) {
      const object = new aws.s3.BucketObjectv2(
        `${name}-script-${file.replace(/\.py$/, '').replace(/_/g, '-')}`,
        {
          bucket: this.artifacts.name,
          key: `glue/${file}`,
          source: new pulumi.asset.FileAsset(path.join(GLUE_DIR, file)),
          contentType: 'text/x-python',
        },
        parent,
      );
      this.scriptLocations[file] = pulumi.interpolate`s3://${object.bucket}/${object.key}`;
    }

    if (args.replicateToPeer) this.replicate(name, args);
    this.registerOutputs({ lakeBucket: this.lake.name, artifactsBucket: this.artifacts.name });
  }

  private replicate(name: string, args: DataLakeArgs): void {
    const { accountId, partition } = args.account;
    const peerBucketArn = pulumi.interpolate`arn:${partition}:s3:::etl-lake-${accountId}-${args.peerRegion}`;
    const peerKeyAlias = pulumi.interpolate`arn:${partition}:kms:${args.peerRegion}:${accountId}:${LAKE_KEY_ALIAS}`;
    const { role } = serviceRole(
      `${name}-replication`,
      {
        roleName: iamRoleName('lake-replication', args.region),
        service: 's3.amazonaws.com',
        policy: identityPolicyJson([
          {
            Effect: 'Allow',
            Action: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
            Resource: [this.lake.arn],
          },
          {
            Effect: 'Allow',
            Action: [
              's3:GetObjectVersionForReplication',
              's3:GetObjectVersionAcl',
              's3:GetObjectVersionTagging',
            ],
            Resource: [pulumi.interpolate`${this.lake.arn}/*`],
          },
          {
            Effect: 'Allow',
            Action: ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags'],
            Resource: [pulumi.interpolate`${peerBucketArn}/*`],
          },
          { Effect: 'Allow', Action: ['kms:Decrypt'], Resource: [this.key.arn] },
          {
            // The peer's key is only known by its alias here.
            Effect: 'Allow',
            Action: ['kms:Encrypt', 'kms:GenerateDataKey'],
            Resource: [pulumi.interpolate`arn:${partition}:kms:${args.peerRegion}:${accountId}:key/*`],
            Condition: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': LAKE_KEY_ALIAS } },
          },
        ]),
        tags: args.tags ?? {},
      },
      { parent: this },
    );
    new aws.s3.BucketReplicationConfig(
      `${name}-replication`,
      {
        bucket: this.lake.bucket.id,
        role: role.arn,
        rules: [
          {
            id: 'to-peer-region',
            status: 'Enabled',
            filter: { prefix: '' },
            deleteMarkerReplication: { status: 'Enabled' },
            sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
            destination: {
              bucket: peerBucketArn,
              storageClass: 'STANDARD',
              encryptionConfiguration: { replicaKmsKeyId: peerKeyAlias },
            },
          },
        ],
      },
      { parent: this, dependsOn: [this.lake.versioning] },
    );
  }
}
