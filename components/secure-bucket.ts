import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';

export interface SecureBucketArgs {
  /**
   * Explicit (globally unique) name when other stacks must find the bucket.
   * @default auto-named by Pulumi
   */
  readonly bucketName?: pulumi.Input<string>;
  /** SSE-KMS key; the bucket key is enabled to cut KMS request costs. */
  readonly kmsKeyArn: pulumi.Input<string>;
  /**
   * Lifecycle rules; none declares no lifecycle configuration.
   * @default []
   */
  readonly lifecycleRules?: aws.types.input.s3.BucketLifecycleConfigurationRule[];
  /**
   * Tags on the bucket.
   * @default none
   */
  readonly tags?: Record<string, string>;
}

/** Bucket policy denying any request that is not over TLS. */
export function tlsOnlyPolicy(bucketArn: string) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'DenyInsecureTransport',
        Effect: 'Deny',
        Principal: '*',
        Action: 's3:*',
        Resource: [bucketArn, `${bucketArn}/*`],
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      },
    ],
  };
}

/** Versioned, SSE-KMS, public access blocked, TLS-only, with lifecycle rules. */
export class SecureBucket extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;
  readonly versioning: aws.s3.BucketVersioning;
  readonly arn: pulumi.Output<string>;
  readonly name: pulumi.Output<string>;

  constructor(name: string, args: SecureBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:storage:SecureBucket', name, {}, opts);
    const parent = { parent: this };

    this.bucket = new aws.s3.Bucket(
      `${name}-bucket`,
      { bucket: args.bucketName, tags: args.tags ?? {} },
      parent,
    );
    this.arn = this.bucket.arn;
    this.name = this.bucket.bucket;

    this.versioning = new aws.s3.BucketVersioning(
      `${name}-versioning`,
      { bucket: this.bucket.id, versioningConfiguration: { status: 'Enabled' } },
      parent,
    );
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-sse`,
      {
        bucket: this.bucket.id,
        rules: [
          {
            applyServerSideEncryptionByDefault: { sseAlgorithm: 'aws:kms', kmsMasterKeyId: args.kmsKeyArn },
            bucketKeyEnabled: true,
          },
        ],
      },
      parent,
    );
    const publicAccess = new aws.s3.BucketPublicAccessBlock(
      `${name}-public-access`,
      {
        bucket: this.bucket.id,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      parent,
    );
    new aws.s3.BucketPolicy(
      `${name}-tls-only`,
      { bucket: this.bucket.id, policy: this.bucket.arn.apply((arn) => JSON.stringify(tlsOnlyPolicy(arn))) },
      { parent: this, dependsOn: [publicAccess] },
    );
    if (args.lifecycleRules && args.lifecycleRules.length > 0) {
      new aws.s3.BucketLifecycleConfiguration(
        `${name}-lifecycle`,
        { bucket: this.bucket.id, rules: args.lifecycleRules },
        { parent: this, dependsOn: [this.versioning] },
      );
    }
    this.registerOutputs({ arn: this.arn, name: this.name });
  }
}
