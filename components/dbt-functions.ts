import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { HANDLER_ENV } from '../contracts/env';
import { HandlerFunction } from './handler-function';

export const DBT_TOKEN_SECRET_NAME = 'etl-platform/dbt-api-token';

export interface DbtFunctionsArgs {
  /** This stack's region; appended to the functions' role names. */
  readonly region: string;
  /** The bearer token (a Pulumi secret from config), stored in this region's Secrets Manager. */
  readonly apiToken: pulumi.Output<string>;
  /** The dbt app's internal load balancer URL in this region. */
  readonly apiUrl: pulumi.Input<string>;
  /**
   * The explicit, unsafe `dbt.allowPlainHttp`: lets the client call an `http://` URL.
   * @default false
   */
  readonly allowPlainHttp?: boolean;
  /** The control table the consistency gate reads. */
  readonly controlTable: { readonly name: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  /** The Lambda subnets and security groups (config `lambdaNetwork`): the dbt API is internal. */
  readonly network: { readonly subnetIds: readonly string[]; readonly securityGroupIds: readonly string[] };
  /** Retention of the functions' log groups. */
  readonly logRetentionDays: number;
  /**
   * Tags on the functions and the token secret.
   * @default none
   */
  readonly tags?: Record<string, string>;
}

/**
 * The Lambdas the downstream workflows call: the consistency gate, and the two dbt API calls.
 * One set per region, shared by every pipeline; each function may touch only what it reads.
 */
export class DbtFunctions extends pulumi.ComponentResource {
  readonly checkConsistency: HandlerFunction;
  readonly startDbtRun: HandlerFunction;
  readonly getDbtRun: HandlerFunction;
  readonly tokenSecretArn: pulumi.Output<string>;

  constructor(name: string, args: DbtFunctionsArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:downstream:DbtFunctions', name, {}, opts);
    const parent = { parent: this };
    const tags = args.tags ?? {};

    // Each stack writes its own region's copy: both stacks hold the token in config.
    const secret = new aws.secretsmanager.Secret(
      `${name}-token`,
      {
        name: DBT_TOKEN_SECRET_NAME,
        description: 'Bearer token for the dbt app API',
        recoveryWindowInDays: 7,
        tags,
      },
      parent,
    );
    new aws.secretsmanager.SecretVersion(
      `${name}-token-value`,
      { secretId: secret.id, secretString: args.apiToken },
      parent,
    );
    this.tokenSecretArn = secret.arn;

    const dbtEnv = {
      [HANDLER_ENV.DBT_API_URL]: args.apiUrl,
      [HANDLER_ENV.DBT_API_TOKEN_SECRET_ARN]: secret.arn,
      [HANDLER_ENV.DBT_API_TIMEOUT_MS]: '10000',
      ...(args.allowPlainHttp ? { [HANDLER_ENV.DBT_API_ALLOW_PLAIN_HTTP]: 'true' } : {}),
    };
    const readToken = {
      Sid: 'ReadApiToken',
      Effect: 'Allow' as const,
      Action: ['secretsmanager:GetSecretValue'],
      Resource: [secret.arn],
    };
    const common = { region: args.region, logRetentionDays: args.logRetentionDays, tags };

    this.checkConsistency = new HandlerFunction(
      `${name}-check-consistency`,
      {
        ...common,
        handler: 'check-consistency',
        purpose: 'check-consistency',
        environment: { [HANDLER_ENV.CONTROL_TABLE_NAME]: args.controlTable.name },
        statements: [
          {
            Sid: 'ReadControlRecords',
            Effect: 'Allow',
            Action: ['dynamodb:GetItem', 'dynamodb:Query'],
            Resource: [args.controlTable.arn],
          },
        ],
      },
      parent,
    );
    // The dbt API is internal: these two run in the VPC subnets the app's NetworkPolicy admits.
    const vpc = { subnetIds: args.network.subnetIds, securityGroupIds: args.network.securityGroupIds };
    this.startDbtRun = new HandlerFunction(
      `${name}-start-dbt-run`,
      {
        ...common,
        handler: 'start-dbt-run',
        purpose: 'start-dbt-run',
        environment: dbtEnv,
        statements: [readToken],
        vpc,
        timeoutSeconds: 30,
      },
      parent,
    );
    this.getDbtRun = new HandlerFunction(
      `${name}-get-dbt-run`,
      {
        ...common,
        handler: 'get-dbt-run',
        purpose: 'get-dbt-run',
        environment: dbtEnv,
        statements: [readToken],
        vpc,
        timeoutSeconds: 30,
      },
      parent,
    );
    this.registerOutputs({ tokenSecretArn: this.tokenSecretArn });
  }
}
