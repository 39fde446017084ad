import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { HANDLER_ENV } from '../contracts/env';
import type { IamStatement } from '../contracts/iam';
import { iamRoleName, platformName } from '../contracts/naming';
import { bundleHandler, type HandlerName } from '../handlers/bundle';
import { identityPolicyJson, serviceRole } from './service-role';

/** Tag on every function naming its handler module (`handlers/<value>.ts`). */
export const HANDLER_TAG = 'etl-platform:handler';

// Kept on globalThis so it survives the test harness re-requiring the program's modules.
const globalBundles = globalThis as { __etlHandlerBundles?: Map<HandlerName, string> };
const bundled = (globalBundles.__etlHandlerBundles ??= new Map<HandlerName, string>());

/** One esbuild run per handler per program run, however many functions share it. */
function bundleOnce(handler: HandlerName): string {
  let dir = bundled.get(handler);
  if (!dir) {
    dir = bundleHandler(handler);
    bundled.set(handler, dir);
  }
  return dir;
}

export interface HandlerFunctionArgs {
  /** File name in `handlers/`, without `.ts`; bundled with esbuild when the program runs. */
  readonly handler: HandlerName;
  /** Short purpose used in the IAM role name, e.g. "fence-writer" (the region is appended). */
  readonly purpose: string;
  /** This stack's region; appended to the role name. */
  readonly region: string;
  /** What the function may do, on exact ARNs; logging is added here. */
  readonly statements: readonly IamStatement[];
  /**
   * Environment variables, next to `POWERTOOLS_SERVICE_NAME` (always set).
   * @default none
   */
  readonly environment?: Record<string, pulumi.Input<string>>;
  /** Retention of the function's log group. */
  readonly logRetentionDays: number;
  /**
   * Lambda timeout.
   * @default 30
   */
  readonly timeoutSeconds?: number;
  /**
   * Lambda memory (and so CPU share).
   * @default 256
   */
  readonly memoryMb?: number;
  /**
   * Subnets and security groups, for functions that call services inside the VPC.
   * @default none (the function runs outside any VPC)
   */
  readonly vpc?: { readonly subnetIds: readonly string[]; readonly securityGroupIds: readonly string[] };
  /**
   * Tags on the function, its role and log group (the handler tag is added).
   * @default none
   */
  readonly tags?: Record<string, string>;
}

/** The role's policy: the caller's statements plus writing to its own log group. */
export function functionPolicy(logGroupArn: pulumi.Input<string>, statements: readonly IamStatement[]) {
  return identityPolicyJson([
    {
      Sid: 'OwnLogs',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: [pulumi.interpolate`${logGroupArn}:*`],
    },
    ...statements,
  ]);
}

/**
 * A Node.js 22 arm64 Lambda built from `handlers/`, with its own log group (retention from
 * config), X-Ray, and a role that can do only what `statements` list.
 */
export class HandlerFunction extends pulumi.ComponentResource {
  readonly function: aws.lambda.Function;
  readonly role: aws.iam.Role;
  readonly arn: pulumi.Output<string>;
  readonly name: pulumi.Output<string>;
  readonly purpose: string;

  constructor(name: string, args: HandlerFunctionArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:compute:HandlerFunction', name, {}, opts);
    this.purpose = args.purpose;
    const tags = args.tags ?? {};

    // Created up front (not by Lambda on first log) so retention applies and the role can be scoped to it.
    const functionName = platformName(args.purpose);
    const logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { name: `/aws/lambda/${functionName}`, retentionInDays: args.logRetentionDays, tags },
      { parent: this },
    );

    const statements: IamStatement[] = [...args.statements];
    if (args.vpc) {
      // ENI management for VPC functions; AWS documents these actions with Resource "*" only.
      statements.push({
        Sid: 'VpcNetworkInterfaces',
        Effect: 'Allow',
        Action: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        Resource: ['*'],
      });
    }
    // X-Ray segment upload does not support resource-level permissions, so "*" is required.
    statements.push({
      Sid: 'XRay',
      Effect: 'Allow',
      Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
      Resource: ['*'],
    });

    const { role, policy } = serviceRole(
      name,
      {
        roleName: iamRoleName(args.purpose, args.region),
        service: 'lambda.amazonaws.com',
        policy: functionPolicy(logGroup.arn, statements),
        tags,
      },
      { parent: this },
    );
    this.role = role;

    this.function = new aws.lambda.Function(
      `${name}-fn`,
      {
        name: functionName,
        runtime: aws.lambda.Runtime.NodeJS22dX,
        architectures: ['arm64'],
        handler: 'index.handler',
        code: new pulumi.asset.FileArchive(bundleOnce(args.handler)),
        role: this.role.arn,
        timeout: args.timeoutSeconds ?? 30,
        memorySize: args.memoryMb ?? 256,
        tracingConfig: { mode: 'Active' },
        loggingConfig: { logFormat: 'JSON', logGroup: logGroup.name },
        environment: {
          variables: { [HANDLER_ENV.POWERTOOLS_SERVICE_NAME]: functionName, ...(args.environment ?? {}) },
        },
        vpcConfig: args.vpc
          ? { subnetIds: [...args.vpc.subnetIds], securityGroupIds: [...args.vpc.securityGroupIds] }
          : undefined,
        // Names the bundled module, so tools (the local twin) map a function to handlers/<name>.ts.
        tags: { ...tags, [HANDLER_TAG]: args.handler },
      },
      { parent: this, dependsOn: [policy, logGroup] },
    );
    this.arn = this.function.arn;
    this.name = this.function.name;

    this.registerOutputs({ arn: this.arn });
  }
}
