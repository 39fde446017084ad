import * as pulumi from '@pulumi/pulumi';
import type { IamStatement } from '../contracts/iam';

/** An unconditional Allow statement with every resource resolved: what `mergeStatements` works on. */
export interface ResolvedStatement {
  readonly Effect: 'Allow';
  readonly Action: readonly string[];
  readonly Resource: readonly string[];
}

/** A statement rendered as it is (Deny or conditioned), its inputs resolved. */
type RenderedStatement = Omit<IamStatement, 'Resource'> & { readonly Resource: readonly string[] };

export interface PolicyDocument {
  readonly Version: '2012-10-17';
  readonly Statement: ReadonlyArray<ResolvedStatement | RenderedStatement>;
}

type HasStatements = { statements: readonly IamStatement[] };

/** Flattens statements from task results (`{ state, statements }`), arrays, or single statements. */
export function collectStatements(
  ...parts: Array<HasStatements | IamStatement | readonly IamStatement[]>
): IamStatement[] {
  const out: IamStatement[] = [];
  for (const p of parts) {
    if (isStatementList(p)) out.push(...p);
    else if ('statements' in p) out.push(...p.statements);
    else out.push(p);
  }
  return out;
}

function isStatementList(p: unknown): p is readonly IamStatement[] {
  return Array.isArray(p);
}

/**
 * Pure merge: explode into (action, resource) pairs, dedupe, then group resources that share
 * the same action set into one statement. Output is sorted so diffs stay stable.
 */
export function mergeStatements(statements: readonly ResolvedStatement[]): ResolvedStatement[] {
  const actionsByResource = new Map<string, Set<string>>();
  for (const s of statements) {
    for (const r of s.Resource) {
      const set = actionsByResource.get(r) ?? new Set<string>();
      for (const a of s.Action) set.add(a);
      actionsByResource.set(r, set);
    }
  }
  const resourcesByActions = new Map<string, string[]>();
  for (const [resource, actions] of actionsByResource) {
    const key = JSON.stringify([...actions].sort());
    const list = resourcesByActions.get(key) ?? [];
    list.push(resource);
    resourcesByActions.set(key, list);
  }
  return [...resourcesByActions.entries()]
    .map(([key, resources]) => ({
      Effect: 'Allow' as const,
      Action: JSON.parse(key) as string[],
      Resource: resources.sort(),
    }))
    .sort((a, b) => a.Resource[0].localeCompare(b.Resource[0]));
}

/** Merged statements lose their Sid; a Deny or a Condition must keep its statement's scope, so it is not merged. */
function mergeable(s: IamStatement): boolean {
  return s.Effect === 'Allow' && s.Condition === undefined;
}

/**
 * Resolves Inputs and returns the policy document: unconditional Allow statements merged (see
 * `mergeStatements`), then any Deny or conditioned statement as given.
 */
export function policyDocument(statements: readonly IamStatement[]): pulumi.Output<PolicyDocument> {
  const merged = statements.filter(mergeable);
  const verbatim = statements.filter((s) => !mergeable(s));
  return pulumi
    .all([pulumi.all(merged.map((s) => pulumi.all([...s.Resource]))), pulumi.output(verbatim)])
    .apply(([resolved, rendered]) => ({
      Version: '2012-10-17' as const,
      Statement: [
        ...mergeStatements(
          merged.map((s, i) => ({ Effect: 'Allow' as const, Action: s.Action, Resource: resolved[i] })),
        ),
        ...(rendered as unknown as RenderedStatement[]),
      ],
    }));
}

/** One merged IAM policy document as JSON, ready for `aws.iam.RolePolicy.policy`. */
export function policyFromStatements(statements: readonly IamStatement[]): pulumi.Output<string> {
  return policyDocument(statements).apply((doc) => JSON.stringify(doc));
}

/**
 * Statements every state machine role needs for CloudWatch Logs delivery and X-Ray tracing.
 * AWS requires Resource "*" for these: the Logs *LogDelivery* and resource-policy actions do not
 * support resource-level permissions, nor do the X-Ray trace/sampling actions.
 */
export function observabilityStatements(opts: { logs?: boolean; xray?: boolean } = {}): IamStatement[] {
  const out: IamStatement[] = [];
  if (opts.logs ?? true) {
    out.push({
      Effect: 'Allow',
      Action: [
        'logs:CreateLogDelivery',
        'logs:GetLogDelivery',
        'logs:UpdateLogDelivery',
        'logs:DeleteLogDelivery',
        'logs:ListLogDeliveries',
        'logs:PutResourcePolicy',
        'logs:DescribeResourcePolicies',
        'logs:DescribeLogGroups',
      ],
      Resource: ['*'],
    });
  }
  if (opts.xray ?? true) {
    out.push({
      Effect: 'Allow',
      Action: [
        'xray:PutTraceSegments',
        'xray:PutTelemetryRecords',
        'xray:GetSamplingRules',
        'xray:GetSamplingTargets',
      ],
      Resource: ['*'],
    });
  }
  return out;
}
