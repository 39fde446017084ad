import * as aws from '@pulumi/aws';
import * as awsx from '@pulumi/awsx';
import * as pulumi from '@pulumi/pulumi';

/**
 * The dbt app's container registry: one ECR repository of the same name in each region, and, in
 * the home region only and when opted in, the registry replication that copies every image pushed
 * there to the peer region. See docs/dbt-app.md ("Images and ECR replication") for why both stacks declare the
 * repository and what the deploy order must be.
 */

/** Same name in both regions: ECR replication keeps the repository name. */
export const DBT_REPOSITORY_NAME = 'etl-platform/dbt-app';

export interface DbtImageArgs {
  /** Whether this is the home region, which pushes (and, with `replicate`, replicates) images. */
  readonly isHome: boolean;
  /**
   * Declare the registry's replication configuration (home region only). ECR has ONE replication
   * configuration per registry and region, so this replaces any replication rule anyone else set up
   * in this account and region: it is opt-in (`dbt.ecrReplication`).
   * @default false
   */
  readonly replicate?: boolean;
  /** Where the home region replicates to. */
  readonly peerRegion: string;
  /** The account that owns both registries (replication stays in the account). */
  readonly accountId: pulumi.Input<string>;
  /**
   * Tagged images to keep; older ones expire.
   * @default 30
   */
  readonly keepImages?: number;
  /**
   * Days after which untagged images (superseded manifests, failed pushes) expire.
   * @default 7
   */
  readonly untaggedDays?: number;
  /**
   * The ECR repository's name, the same in both regions.
   * @default DBT_REPOSITORY_NAME
   */
  readonly repositoryName?: string;
}

/**
 * The lifecycle rules, in awsx's form. awsx only accepts `tagPrefixList` for tagged rules (and
 * ANDs multiple prefixes), so "keep the last N" is a `tagStatus: any` rule, which awsx gives the
 * lowest priority; untagged images are expired by the first rule long before they count.
 */
export function lifecycleRules(
  keepImages: number,
  untaggedDays: number,
): awsx.types.input.ecr.LifecyclePolicyRuleArgs[] {
  return [
    {
      description: `Expire untagged images after ${untaggedDays} days`,
      tagStatus: 'untagged',
      maximumAgeLimit: untaggedDays,
    },
    {
      description: `Keep the last ${keepImages} images`,
      tagStatus: 'any',
      maximumNumberOfImages: keepImages,
    },
  ];
}

/**
 * The registry's replication configuration: only this repository (prefix match on its exact name),
 * to the peer region of the same account. ECR allows one replication configuration per registry
 * and region; this resource owns it, so any other replication in the account must be added here.
 */
export function replicationRules(
  repositoryName: string,
  peerRegion: string,
  accountId: pulumi.Input<string>,
) {
  return {
    rules: [
      {
        destinations: [{ region: peerRegion, registryId: accountId }],
        repositoryFilters: [{ filter: repositoryName, filterType: 'PREFIX_MATCH' }],
      },
    ],
  };
}

export class DbtImage extends pulumi.ComponentResource {
  readonly repository: awsx.ecr.Repository;
  readonly replication?: aws.ecr.ReplicationConfiguration;
  /** `<account>.dkr.ecr.<region>.amazonaws.com/etl-platform/dbt-app`, without a tag. */
  readonly repositoryUrl: pulumi.Output<string>;
  readonly repositoryName: string;

  constructor(name: string, args: DbtImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:k8s:DbtImage', name, {}, opts);
    this.repositoryName = args.repositoryName ?? DBT_REPOSITORY_NAME;

    this.repository = new awsx.ecr.Repository(
      `${name}-repo`,
      {
        name: this.repositoryName,
        imageTagMutability: 'IMMUTABLE',
        imageScanningConfiguration: { scanOnPush: true },
        encryptionConfigurations: [{ encryptionType: 'AES256' }],
        // Never delete images with the stack: the peer region may be running from them.
        forceDelete: false,
        lifecyclePolicy: { rules: lifecycleRules(args.keepImages ?? 30, args.untaggedDays ?? 7) },
      },
      { parent: this },
    );
    this.repositoryUrl = this.repository.url;

    if (args.isHome && args.replicate === true) {
      this.replication = new aws.ecr.ReplicationConfiguration(
        `${name}-replication`,
        { replicationConfiguration: replicationRules(this.repositoryName, args.peerRegion, args.accountId) },
        { parent: this, dependsOn: [this.repository] },
      );
    }

    this.registerOutputs({ repositoryUrl: this.repositoryUrl });
  }
}
