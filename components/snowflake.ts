import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import type { AccountContext } from '../contracts/naming';

export const SNOWFLAKE_SECRET_NAME = 'etl-platform/snowflake';

export interface SnowflakeCredentials {
  readonly account: string;
  readonly user: string;
  readonly password: string;
  readonly warehouse: string;
  readonly database: string;
  readonly role: string;
  /**
   * PEM (PKCS#8) private key of a key pair registered on `user` (ALTER USER … SET RSA_PUBLIC_KEY):
   * the fence writer reaches Snowflake through the SQL API v2, which takes key-pair JWTs, not
   * passwords.
   */
  readonly privateKey?: string;
}

/**
 * The secret's JSON, read by two consumers: the Glue Snowflake connector (its v1 connection keys,
 * `sf*`) and the dbt app (dbt-app/credentials.py: `account, user, password, role, warehouse,
 * database`, which it hands to dbt's profiles.yml). The account is in it because the dbt app has
 * no Glue connection to carry the host.
 */
export function snowflakeSecretValue(credentials: SnowflakeCredentials): Record<string, string> {
  return {
    sfUser: credentials.user,
    sfPassword: credentials.password,
    sfWarehouse: credentials.warehouse,
    sfDatabase: credentials.database,
    sfRole: credentials.role,
    account: credentials.account,
    user: credentials.user,
    password: credentials.password,
    role: credentials.role,
    warehouse: credentials.warehouse,
    database: credentials.database,
    ...(credentials.privateKey ? { private_key: credentials.privateKey } : {}),
  };
}

export interface SnowflakeArgs {
  /** The JSON from `pulumi config set --secret snowflakeCredentials`. */
  readonly credentials: pulumi.Output<string>;
  /** This stack's region: where the Glue connection lives. */
  readonly region: string;
  /** Where the home stack replicates the secret. */
  readonly peerRegion: string;
  /** The home stack owns the secret; the peer reads its replica. */
  readonly isHome: boolean;
  /** Account and partition of the deploying credentials. */
  readonly account: AccountContext;
}

/**
 * The Snowflake secret (owned by the home stack, replicated by Secrets Manager to the peer, so it
 * is readable there when the home region is gone) and this region's Glue Snowflake connection.
 */
export class Snowflake extends pulumi.ComponentResource {
  readonly secretName: string = SNOWFLAKE_SECRET_NAME;
  /** ARN pattern of the secret in this region: the 6-character suffix is AWS-generated. */
  readonly secretArnPattern: pulumi.Output<string>;
  readonly connectionName: pulumi.Output<string>;
  readonly connectionArn: pulumi.Output<string>;
  /** The secret's value (home stack only): the fence invocation waits for it. */
  readonly secretReady: pulumi.Resource[] = [];

  constructor(name: string, args: SnowflakeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:snowflake:Snowflake', name, {}, opts);
    const { accountId, partition } = args.account;
    const credentials = args.credentials.apply((json) => JSON.parse(json) as SnowflakeCredentials);

    const dependsOn: pulumi.Resource[] = [];
    if (args.isHome) {
      const secret = new aws.secretsmanager.Secret(
        `${name}-secret`,
        {
          name: SNOWFLAKE_SECRET_NAME,
          description: 'Snowflake credentials for the Glue Snowflake connection and the dbt app',
          replicas: [{ region: args.peerRegion }],
          recoveryWindowInDays: 30,
        },
        { parent: this },
      );
      const version = new aws.secretsmanager.SecretVersion(
        `${name}-secret-value`,
        {
          secretId: secret.id,
          secretString: pulumi.secret(credentials.apply((c) => JSON.stringify(snowflakeSecretValue(c)))),
        },
        { parent: this },
      );
      dependsOn.push(version);
      this.secretReady.push(version);
    }
    this.secretArnPattern = pulumi.interpolate`arn:${partition}:secretsmanager:${args.region}:${accountId}:secret:${SNOWFLAKE_SECRET_NAME}-??????`;

    const connection = new aws.glue.Connection(
      `${name}-connection`,
      {
        name: 'etl-snowflake',
        connectionType: 'SNOWFLAKE',
        connectionProperties: pulumi.secret(
          credentials.apply((c) => ({
            HOST: `${c.account}.snowflakecomputing.com`,
            SECRET_ID: SNOWFLAKE_SECRET_NAME,
          })),
        ),
      },
      { parent: this, dependsOn },
    );
    this.connectionName = connection.name;
    this.connectionArn = pulumi.interpolate`arn:${partition}:glue:${args.region}:${accountId}:connection/${connection.name}`;
    this.registerOutputs({ connectionName: this.connectionName });
  }
}
