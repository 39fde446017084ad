import type { RecordedResource } from './pulumi-mocks';

/** One input that differs between two runs of the program. */
export interface InputChange {
  readonly resource: string;
  readonly path: string;
  readonly before: unknown;
  readonly after: unknown;
}

function key(r: RecordedResource): string {
  return `${r.type}::${r.name}`;
}

function walk(
  path: string,
  a: unknown,
  b: unknown,
  out: Array<{ path: string; before: unknown; after: unknown }>,
): void {
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    for (const k of keys) {
      walk(Array.isArray(a) ? `${path}[${k}]` : path ? `${path}.${k}` : k, (a as any)[k], (b as any)[k], out);
    }
    return;
  }
  // JSON documents (policies, definitions, event patterns) are compared by content.
  if (typeof a === 'string' && typeof b === 'string' && a !== b && /^[[{]/.test(a) && /^[[{]/.test(b)) {
    try {
      walk(path, JSON.parse(a), JSON.parse(b), out);
      return;
    } catch {
      // not JSON after all
    }
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, before: a, after: b });
}

/** Resources added, removed, and every input path that changed between two runs. */
export function diffRuns(before: readonly RecordedResource[], after: readonly RecordedResource[]) {
  const beforeByKey = new Map(before.map((r) => [key(r), r]));
  const afterByKey = new Map(after.map((r) => [key(r), r]));
  const added = [...afterByKey.keys()].filter((k) => !beforeByKey.has(k));
  const removed = [...beforeByKey.keys()].filter((k) => !afterByKey.has(k));
  const changes: InputChange[] = [];
  for (const [k, b] of beforeByKey) {
    const a = afterByKey.get(k);
    if (!a) continue;
    const out: Array<{ path: string; before: unknown; after: unknown }> = [];
    walk('', b.inputs, a.inputs, out);
    if (b.provider !== a.provider) out.push({ path: '(provider)', before: b.provider, after: a.provider });
    for (const change of out) changes.push({ resource: k, ...change });
  }
  return { added, removed, changes };
}
