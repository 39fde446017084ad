/**
 * Benchmark 2: failover blast radius. For each stack, the recorded inputs of every resource with
 * activeRegion us-east-1 vs us-west-1 (local/program-diff.ts diffRuns): resources added/removed,
 * changed resources, changed properties by path, and changes to known force-new (replacement-
 * causing) properties. Target: only the state flips (plus replica counts and the fence);
 * 0 replacements, 0 deletions.
 *   npx ts-node --transpile-only bench/failover-blast.ts
 */
import { diffRuns } from '../local/program-diff';
import { runProgram } from '../local/program';
import { STACKS } from '../contracts/regions';
import { exitWith } from './lib';

/**
 * Properties whose change forces replacement, per resource type (from the providers' schemas:
 * names and keys are create-only). A path matches a prefix at a path boundary. `*` = any type.
 * Not force-new (in-place): rule/schedule `state`, Deployment `spec.replicas`, and the fence
 * `aws:lambda/invocation` input/triggers — the Invocation is updated in place, which RE-INVOKES
 * the fence writer (that re-invocation is the failover's fence flip, by design).
 */
export const FORCE_NEW: Record<string, readonly string[]> = {
  '*': ['name', 'namePrefix'],
  'aws:sfn/stateMachine:StateMachine': ['name'],
  'aws:s3/bucket:Bucket': ['bucket', 'bucketPrefix'],
  'aws:s3/bucketV2:BucketV2': ['bucket', 'bucketPrefix'],
  'aws:dynamodb/table:Table': ['name', 'hashKey', 'rangeKey'],
  'aws:iam/role:Role': ['name', 'path'],
  'aws:sqs/queue:Queue': ['name', 'fifoQueue'],
  'aws:cloudwatch/eventRule:EventRule': ['name', 'eventBusName'],
  'aws:cloudwatch/eventTarget:EventTarget': ['rule', 'eventBusName', 'targetId'],
  'aws:cloudwatch/eventBus:EventBus': ['name'],
  'aws:scheduler/schedule:Schedule': ['name', 'groupName'],
  'aws:lambda/function:Function': ['name'],
  'aws:kms/key:Key': ['customerMasterKeySpec'],
  'kubernetes:core/v1:Namespace': ['metadata.name'],
  'kubernetes:apps/v1:Deployment': ['metadata.name', 'metadata.namespace', 'spec.selector'],
  'kubernetes:core/v1:Service': ['metadata.name', 'metadata.namespace'],
  'kubernetes:core/v1:ServiceAccount': ['metadata.name', 'metadata.namespace'],
  'kubernetes:core/v1:Secret': ['metadata.name', 'metadata.namespace'],
  'kubernetes:core/v1:ConfigMap': ['metadata.name', 'metadata.namespace'],
};

const matches = (path: string, prefix: string) =>
  path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
function forceNew(type: string, path: string): boolean {
  const own = FORCE_NEW[type] ?? [];
  const generic = type.startsWith('kubernetes:') ? ['metadata.name', 'metadata.namespace'] : FORCE_NEW['*'];
  return [...own, ...generic].some((p) => matches(path, p));
}
/** Paths with array indices collapsed, for grouping. */
const shape = (path: string) => path.replace(/\[\d+\]/g, '[]');

async function main(): Promise<void> {
  let ok = true;
  console.log('benchmark 2: failover blast radius (activeRegion us-east-1 → us-west-1)');
  for (const stack of STACKS) {
    const east = await runProgram({ stack, activeRegion: 'us-east-1' });
    const west = await runProgram({ stack, activeRegion: 'us-west-1' });
    if (east.error || west.error) throw east.error ?? west.error;
    const { added, removed, changes } = diffRuns(east.resources, west.resources);
    const changedResources = new Set(changes.map((c) => c.resource));
    const replacements = changes.filter((c) => forceNew(c.resource.split('::')[0], c.path));
    const byPath = new Map<string, { count: number; examples: Set<string> }>();
    for (const c of changes) {
      const k = `${c.resource.split('::')[0]} ${shape(c.path)}`;
      const e = byPath.get(k) ?? { count: 0, examples: new Set<string>() };
      e.count++;
      e.examples.add(`${JSON.stringify(c.before)}→${JSON.stringify(c.after)}`);
      byPath.set(k, e);
    }
    console.log(
      `\n${stack}: ${east.resources.length} resources; changed ${changedResources.size}, added ${added.length}, deleted ${removed.length}, property changes ${changes.length}, replacement-causing ${replacements.length}`,
    );
    for (const [k, e] of [...byPath].sort())
      console.log(
        `  ${String(e.count).padStart(3)} × ${k}   ${[...e.examples].slice(0, 2).join(', ').slice(0, 120)}`,
      );
    for (const r of replacements)
      console.log(
        `  REPLACEMENT ${r.resource} ${r.path}: ${JSON.stringify(r.before)} → ${JSON.stringify(r.after)}`,
      );
    for (const a of [...added, ...removed]) console.log(`  ${added.includes(a) ? 'ADDED' : 'DELETED'} ${a}`);
    const expected = [...byPath.keys()].every((k) =>
      / state$| spec\.replicas$|aws:lambda\/invocation:Invocation (input|triggers)/.test(k),
    );
    if (!expected)
      console.log('  UNEXPECTED: changes other than state / replicas / fence invocation (see above)');
    const met = replacements.length === 0 && removed.length === 0 && added.length === 0 && expected;
    console.log(
      `  target (only state/replicas/fence; 0 replacements, 0 deletions): ${met ? 'MET' : 'NOT MET'}`,
    );
    ok &&= met;
  }
  exitWith(ok);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
