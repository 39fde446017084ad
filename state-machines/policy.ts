import * as pulumi from '@pulumi/pulumi';

/** An IAM statement a state needs. Resources are Inputs so callers can pass resource ARNs directly. */
export interface PolicyStatement {
  Effect: 'Allow';
  Action: string[];
  Resource: pulumi.Input<string>[];
}

/** The same statement with every resource resolved. */
export interface ResolvedStatement {
  Effect: 'Allow';
  Action: string[];
  Resource: string[];
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: ResolvedStatement[];
}

type HasStatements = { statements: PolicyStatement[] };

/** Flattens statements from task results (`{ state, statements }`), arrays, or single statements. */
export function collectStatements(
  ...parts: Array<HasStatements | PolicyStatement | PolicyStatement[]>
): PolicyStatement[] {
  const out: PolicyStatement[] = [];
  for (const p of parts) {
    if (Array.isArray(p)) out.push(...p);
    else if ('statements' in p) out.push(...p.statements);
    else out.push(p);
  }
  return out;
}

/**
 * Pure merge: explode into (action, resource) pairs, dedupe, then group resources that share
 * the same action set into one statement. Output is sorted so diffs stay stable.
 */
export function mergeStatements(statements: ResolvedStatement[]): ResolvedStatement[] {
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

/** Resolves Inputs and returns the merged policy document. */
export function policyDocument(statements: PolicyStatement[]): pulumi.Output<PolicyDocument> {
  return pulumi.all(statements.map((s) => pulumi.all(s.Resource))).apply((resolved) => ({
    Version: '2012-10-17' as const,
    Statement: mergeStatements(
      statements.map((s, i) => ({ Effect: s.Effect, Action: s.Action, Resource: resolved[i] })),
    ),
  }));
}

/** One merged IAM policy document as JSON, ready for `aws.iam.RolePolicy.policy`. */
export function policyFromStatements(statements: PolicyStatement[]): pulumi.Output<string> {
  return policyDocument(statements).apply((doc) => JSON.stringify(doc));
}

/**
 * Statements every state machine role needs for CloudWatch Logs delivery and X-Ray tracing.
 * AWS requires Resource "*" for these: the Logs *LogDelivery* and resource-policy actions do not
 * support resource-level permissions, nor do the X-Ray trace/sampling actions.
 */
export function observabilityStatements(opts: { logs?: boolean; xray?: boolean } = {}): PolicyStatement[] {
  const out: PolicyStatement[] = [];
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
