/**
 * The one IAM statement type, and the trust policy every role's `assumeRolePolicy` is built from.
 * Bottom layer: nothing here imports from the rest of the project (only Pulumi's `Input` type), so
 * the workflows' builders, components and k8s/ can all depend on it.
 */
import type { Input } from '@pulumi/pulumi';

/** An IAM condition block: operator → condition key → value(s), e.g. `{ StringEquals: { 'aws:SourceAccount': id } }`. */
export type IamCondition = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/**
 * One statement of an identity policy. Resources are Inputs, so ARNs of resources being declared
 * can be passed as they are; a policy document resolves them.
 */
export interface IamStatement {
  /** Names the statement in the rendered policy (and in least-privilege test failures). */
  readonly Sid?: string;
  readonly Effect: 'Allow' | 'Deny';
  readonly Action: readonly string[];
  readonly Resource: readonly Input<string>[];
  readonly Condition?: IamCondition;
}

/** Who may assume a role: an AWS service, or a federated identity provider (EKS's OIDC provider for IRSA). */
export type TrustedPrincipal = { readonly Service: string } | { readonly Federated: Input<string> };

/** How the principal assumes the role. */
export interface TrustOptions {
  /**
   * The assume action; web identity for IRSA.
   * @default 'sts:AssumeRole'
   */
  readonly action?: 'sts:AssumeRole' | 'sts:AssumeRoleWithWebIdentity';
  /**
   * Narrows who may assume it, e.g. `aws:SourceAccount` against the confused-deputy problem.
   * @default no condition
   */
  readonly condition?: IamCondition;
}

/**
 * A role's trust policy document: one Allow statement for one principal. Key order is fixed
 * (Effect, Principal, Action, Condition) because the rendered JSON is what AWS and the stack
 * state compare.
 */
export function trustPolicy(principal: TrustedPrincipal, options: TrustOptions = {}) {
  return {
    Version: '2012-10-17' as const,
    Statement: [
      {
        Effect: 'Allow' as const,
        Principal: principal,
        Action: options.action ?? 'sts:AssumeRole',
        ...(options.condition ? { Condition: options.condition } : {}),
      },
    ],
  };
}
