import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { type IamCondition, type IamStatement, trustPolicy } from '../contracts/iam';

export interface ServiceRoleArgs {
  /** Physical name, from `iamRoleName` (IAM is global, so the name carries the region). */
  readonly roleName: string;
  /** The AWS service that assumes the role, such as `lambda.amazonaws.com`. */
  readonly service: string;
  /**
   * Narrows who may assume it (for example `aws:SourceAccount`, where the service supports it).
   * @default no condition
   */
  readonly condition?: IamCondition;
  /** The role's inline policy, rendered (see `identityPolicyJson`). */
  readonly policy: pulumi.Input<string>;
  /**
   * Tags on the role.
   * @default none
   */
  readonly tags?: Record<string, string>;
}

/** A role and its one inline policy; resources that must wait for the policy depend on `policy`. */
export interface ServiceRole {
  readonly role: aws.iam.Role;
  readonly policy: aws.iam.RolePolicy;
}

/** An identity policy document as JSON, statements in the order given. */
export function identityPolicyJson(statements: readonly IamStatement[]): pulumi.Output<string> {
  return pulumi.jsonStringify({ Version: '2012-10-17', Statement: statements });
}

/**
 * The one way the platform declares a role for an AWS service: `<name>-role` trusting only that
 * service (under the optional condition) and `<name>-policy` holding exactly what it may do.
 */
export function serviceRole(
  name: string,
  args: ServiceRoleArgs,
  opts: pulumi.CustomResourceOptions,
): ServiceRole {
  const trust = trustPolicy({ Service: args.service }, { condition: args.condition });
  const role = new aws.iam.Role(
    `${name}-role`,
    { name: args.roleName, assumeRolePolicy: pulumi.jsonStringify(trust), tags: args.tags },
    opts,
  );
  const policy = new aws.iam.RolePolicy(`${name}-policy`, { role: role.id, policy: args.policy }, opts);
  return { role, policy };
}
