import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { FENCE_KEY, STATUS_INDEX, TABLE_KEY, TTL_ATTRIBUTE } from '../contracts/control-table';
import { HANDLER_ENV } from '../contracts/env';
import type { AccountContext } from '../contracts/naming';
import { HandlerFunction } from './handler-function';
import { arn } from './naming';

export interface ControlTableArgs {
  /** Deterministic, so the peer stack finds the same global table. */
  readonly tableName: string;
  /** This stack's region: the replica the ARNs name and the fence writer runs in. */
  readonly region: string;
  /** Declares the global table (home region) or refers to it by name (the peer). */
  readonly isHome: boolean;
  /** Where the home stack places the replica. */
  readonly peerRegion: string;
  /** The region the fence must name: this stack's view of `activeRegion`. */
  readonly activeRegion: string;
  /** This stack's name, recorded with the fence (who set it). */
  readonly stack: string;
  /** Account and partition of the deploying credentials. */
  readonly account: AccountContext;
  /** Retention of the fence writer's log group. */
  readonly logRetentionDays: number;
  /**
   * When this `up` asserts the fence; it is part of the invocation's input so that every `up`
   * invokes the fence writer.
   * @default the time the program runs
   */
  readonly assertedAt?: Date;
  /**
   * The Snowflake secret in this region (name and ARN pattern): the fence writer moves the
   * warehouse fence (CONTROL.FENCE) through the SQL API before the DynamoDB fence.
   */
  readonly snowflakeSecret: { readonly name: string; readonly arnPattern: pulumi.Input<string> };
  /**
   * Resources the invocation waits for (the secret's value on the home stack).
   * @default none
   */
  readonly fenceDependsOn?: pulumi.Resource[];
}

/**
 * The fence writer's invocation. `lifecycleScope: "CRUD"` invokes on update as well as on create
 * (passing `tf.action`), and `assertedAt` changes on every run, so every `pulumi up` is an update
 * that re-asserts the fence: a fence moved by the other stack (or by hand) is put back to this
 * stack's config. The write is idempotent, so the epoch moves only on a real change of region.
 * No `triggers`: a trigger change replaces the resource, and a CRUD replacement also invokes the
 * old one with `delete`. Cost: every preview shows this one resource as an update.
 */
export function fenceInvocationArgs(
  functionName: pulumi.Input<string>,
  activeRegion: string,
  stack: string,
  assertedAt: Date,
): aws.lambda.InvocationArgs {
  return {
    functionName,
    input: JSON.stringify({ activeRegion, stack, assertedAt: assertedAt.toISOString() }),
    lifecycleScope: 'CRUD',
  };
}

/** The global table's declaration, as a pure function of the config (tests call it directly). */
export function globalTableArgs(tableName: string, peerRegion: string): aws.dynamodb.TableArgs {
  return {
    name: tableName,
    billingMode: 'PAY_PER_REQUEST',
    hashKey: TABLE_KEY.hashKey,
    rangeKey: TABLE_KEY.rangeKey,
    attributes: [
      { name: TABLE_KEY.hashKey, type: 'S' },
      { name: TABLE_KEY.rangeKey, type: 'S' },
      { name: STATUS_INDEX.hashKey, type: 'S' },
      { name: STATUS_INDEX.rangeKey, type: 'S' },
    ],
    globalSecondaryIndexes: [
      {
        name: STATUS_INDEX.name,
        hashKey: STATUS_INDEX.hashKey,
        rangeKey: STATUS_INDEX.rangeKey,
        projectionType: 'ALL',
      },
    ],
    pointInTimeRecovery: { enabled: true },
    serverSideEncryption: { enabled: true },
    ttl: { attributeName: TTL_ATTRIBUTE, enabled: true },
    // Global tables replicate through streams.
    streamEnabled: true,
    streamViewType: 'NEW_AND_OLD_IMAGES',
    deletionProtectionEnabled: true,
    replicas: [{ regionName: peerRegion, pointInTimeRecovery: true, propagateTags: true }],
  };
}

/**
 * The control table (global table, owned by the home stack) and the failover fence.
 *
 * The fence is written by a small Lambda that `pulumi up` invokes in this stack's own region:
 * `aws.dynamodb.TableItem` cannot be shared by two stacks (its create fails when the item exists),
 * and each stack must be able to set the fence alone when the other region is unreachable.
 */
export class ControlTable extends pulumi.ComponentResource {
  readonly tableName: pulumi.Output<string>;
  /** The table's ARN in this region (this stack's replica). */
  readonly tableArn: pulumi.Output<string>;
  readonly statusIndexArn: pulumi.Output<string>;
  readonly fenceEpoch: pulumi.Output<number>;
  readonly fenceWriter: HandlerFunction;

  constructor(name: string, args: ControlTableArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:state:ControlTable', name, {}, opts);

    let dependsOn: pulumi.Resource[] = [];
    if (args.isHome) {
      const table = new aws.dynamodb.Table(
        `${name}-table`,
        globalTableArgs(args.tableName, args.peerRegion),
        {
          parent: this,
          protect: true,
        },
      );
      this.tableName = table.name;
      dependsOn = [table];
    } else {
      this.tableName = pulumi.output(args.tableName);
    }
    this.tableArn = arn(args.account, 'dynamodb', args.region, `table/${args.tableName}`);
    this.statusIndexArn = pulumi.interpolate`${this.tableArn}/index/${STATUS_INDEX.name}`;

    const writer = (this.fenceWriter = new HandlerFunction(
      `${name}-fence-writer`,
      {
        handler: 'fence-writer',
        purpose: 'fence-writer',
        // Room for its retries while IAM propagates on the first deployment.
        timeoutSeconds: 60,
        region: args.region,
        logRetentionDays: args.logRetentionDays,
        environment: {
          [HANDLER_ENV.CONTROL_TABLE_NAME]: args.tableName,
          [HANDLER_ENV.SNOWFLAKE_SECRET_ID]: args.snowflakeSecret.name,
        },
        statements: [
          {
            Sid: 'FenceItemOnly',
            Effect: 'Allow',
            Action: ['dynamodb:UpdateItem', 'dynamodb:GetItem'],
            Resource: [this.tableArn],
            Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [FENCE_KEY.pk] } },
          },
          // The warehouse fence's credentials (this region's copy of the Snowflake secret).
          {
            Sid: 'SnowflakeSecret',
            Effect: 'Allow',
            Action: ['secretsmanager:GetSecretValue'],
            Resource: [args.snowflakeSecret.arnPattern],
          },
        ],
      },
      { parent: this, dependsOn },
    ));

    const invocation = new aws.lambda.Invocation(
      `${name}-fence`,
      fenceInvocationArgs(writer.name, args.activeRegion, args.stack, args.assertedAt ?? new Date()),
      { parent: this, dependsOn: args.fenceDependsOn ?? [] },
    );
    this.fenceEpoch = invocation.result.apply((result) => Number(JSON.parse(result || '{}').epoch ?? 0));

    this.registerOutputs({ tableName: this.tableName, tableArn: this.tableArn });
  }
}
