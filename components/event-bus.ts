import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { type AccountContext, archiveName } from '../contracts/naming';

export interface PlatformEventBusArgs {
  /** Same name in both regions: EventBridge global endpoints and bus-to-bus forwarding rely on it. */
  readonly busName: string;
  /** The platform's event source; the archive keeps every event from it. */
  readonly eventSource: string;
  /** Archive retention; 0 keeps events forever. */
  readonly archiveRetentionDays: number;
  /** Account and partition of the deploying credentials (the bus policy admits only this account). */
  readonly account: AccountContext;
}

/** Only this account may put events; any other account is refused explicitly. */
export function busPolicy(busArn: string, accountId: string, partition: string) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'ThisAccountPublishes',
        Effect: 'Allow',
        Principal: { AWS: `arn:${partition}:iam::${accountId}:root` },
        Action: 'events:PutEvents',
        Resource: busArn,
      },
      {
        Sid: 'OtherAccountsRefused',
        Effect: 'Deny',
        Principal: '*',
        Action: 'events:PutEvents',
        Resource: busArn,
        Condition: { StringNotEquals: { 'aws:PrincipalAccount': accountId } },
      },
    ],
  };
}

/** The platform bus, its policy and an archive of every platform event, for replay after failover. */
export class PlatformEventBus extends pulumi.ComponentResource {
  readonly bus: aws.cloudwatch.EventBus;
  readonly archive: aws.cloudwatch.EventArchive;
  readonly busName: pulumi.Output<string>;
  readonly busArn: pulumi.Output<string>;
  readonly archiveName: pulumi.Output<string>;

  constructor(name: string, args: PlatformEventBusArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:events:PlatformEventBus', name, {}, opts);

    this.bus = new aws.cloudwatch.EventBus(
      `${name}-bus`,
      { name: args.busName, description: 'ETL platform events: upstream and downstream batch lifecycle' },
      { parent: this },
    );
    this.busName = this.bus.name;
    this.busArn = this.bus.arn;

    new aws.cloudwatch.EventBusPolicy(
      `${name}-policy`,
      {
        eventBusName: this.bus.name,
        policy: pulumi
          .all([this.bus.arn, args.account.accountId, args.account.partition])
          .apply(([busArn, accountId, partition]) => JSON.stringify(busPolicy(busArn, accountId, partition))),
      },
      { parent: this },
    );

    this.archive = new aws.cloudwatch.EventArchive(
      `${name}-archive`,
      {
        // Deterministic, so replay tooling finds it in either region.
        name: archiveName(args.busName),
        description: 'Every platform event, kept for replay after a failover',
        eventSourceArn: this.bus.arn,
        eventPattern: JSON.stringify({ source: [args.eventSource] }),
        retentionDays: args.archiveRetentionDays,
      },
      { parent: this },
    );
    this.archiveName = this.archive.name;

    this.registerOutputs({ busName: this.busName, busArn: this.busArn, archiveName: this.archiveName });
  }
}
