import { strict as assert } from 'assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { FENCE_KEY } from '../contracts/control-table';
import { platformEnvNames } from '../contracts/env';
import { ERROR_NAMES } from '../contracts/errors';
import { UPSTREAM_BATCH_SUCCEEDED } from '../contracts/events';
import { PIPELINE_NAME_BODY } from '../contracts/pipeline-name';

/**
 * The import graph's shape (docs/architecture.md), checked on every .ts file of the repository with
 * the TypeScript compiler's own pre-processor and parser:
 *   (a) each top-level folder imports only the folders below it (LAYERS);
 *   (b) no import cycle between files;
 *   (c) nothing outside tests/ imports tests/;
 *   (d) the facts contracts/ owns are spelt nowhere else (tests/ and docs may spell them).
 * KNOWN_VIOLATIONS lists what is still wrong, and must match exactly: a listed violation that
 * disappears fails too, so the list can only shrink.
 */

const ROOT = path.resolve(__dirname, '..');
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'bin', 'reports', '.git', '.venv']);

/**
 * What each top-level folder may import (besides itself). Bottom to top: contracts; the pure
 * layers (config, handlers, ASL builders); k8s; the components that compose them; index.ts.
 * A builder (state-machines) must not import config (regions): the components read settings and
 * pass the builders plain values. Tools and local engines sit beside the product and may use it,
 * never tests/.
 */
const PRODUCT = ['contracts', 'regions', 'handlers', 'state-machines', 'events', 'k8s', 'components'];
export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  contracts: [],
  types: [],
  regions: ['contracts'],
  handlers: ['contracts'],
  'state-machines': ['contracts'],
  events: ['contracts'],
  // dbt-app/env-contract.json: the app's own list of its variables (data, read by the Deployment).
  k8s: ['contracts', 'dbt-app'],
  components: ['contracts', 'regions', 'state-machines', 'handlers', 'k8s'],
  'index.ts': PRODUCT,
  ops: ['contracts'],
  local: PRODUCT,
  twin: [...PRODUCT, 'local', 'dbt-app'],
  bench: [...PRODUCT, 'local', 'twin'],
  scripts: [...PRODUCT, 'local', 'twin', 'index.ts'],
  tests: ['*'],
};

/** Still wrong; helpers working on components/, state-machines/, twin/, bench/, scripts/ remove these. */
const KNOWN_VIOLATIONS: readonly string[] = [
  'test-import bench/downstream-transitions.ts -> tests/harness/dbt-callback.ts',
  'test-import bench/downstream-transitions.ts -> tests/harness/dynalite.ts',
  'test-import bench/downstream-transitions.ts -> tests/harness/fake-dbt-api.ts',
  'test-import bench/downstream-transitions.ts -> tests/harness/malformed-events.ts',
  'test-import bench/downstream-transitions.ts -> tests/harness/sfn-local.ts',
  'test-import bench/failover-blast.ts -> tests/harness/diff.ts',
  'test-import bench/failover-blast.ts -> tests/harness/program.ts',
  'test-import bench/lib.ts -> tests/harness/program.ts',
  'test-import bench/program-scale.ts -> tests/harness/program.ts',
  'test-import scripts/bad-input-doc.ts -> tests/config.test.ts',
  'test-import scripts/bad-input-doc.ts -> tests/harness/malformed-events.ts',
  'test-import scripts/bad-input-doc.ts -> tests/harness/program.ts',
  'test-import scripts/compare-triggers.ts -> tests/harness/program.ts',
  'test-import scripts/compare-triggers.ts -> tests/harness/trigger-fabric.ts',
  'test-import scripts/program-snapshot.ts -> tests/harness/program.ts',
  'test-import twin/exactly-once-scenarios.ts -> tests/harness/sfn-local.ts',
  'test-import twin/exactly-once.ts -> tests/harness/malformed-events.ts',
  'test-import twin/exactly-once.ts -> tests/harness/program.ts',
  'test-import twin/exactly-once.ts -> tests/harness/promise-polyfill.ts',
  'test-import twin/exactly-once.ts -> tests/harness/sfn-local.ts',
  'test-import twin/extract.ts -> tests/harness/program.ts',
  'test-import twin/extract.ts -> tests/harness/pulumi-mocks.ts',
  'test-import twin/glue.ts -> tests/harness/sfn-local.ts',
  'test-import twin/twin.ts -> tests/harness/dbt-callback.ts',
  'test-import twin/twin.ts -> tests/harness/fake-dbt-api.ts',
  'test-import twin/twin.ts -> tests/harness/program.ts',
  'test-import twin/twin.ts -> tests/harness/promise-polyfill.ts',
  'test-import twin/twin.ts -> tests/harness/pulumi-mocks.ts',
  'test-import twin/twin.ts -> tests/harness/sfn-local.ts',
  'fact bench/downstream-transitions.ts spells the env var CONTROL_TABLE_NAME',
  'fact bench/downstream-transitions.ts spells the env var DBT_API_TIMEOUT_MS',
  'fact bench/downstream-transitions.ts spells the env var DBT_API_TOKEN',
  'fact bench/downstream-transitions.ts spells the env var DBT_API_URL',
  'fact components/control-table.ts spells the FENCE key',
  'fact components/control-table.ts spells the env var CONTROL_TABLE_NAME',
  'fact components/control-table.ts spells the env var SNOWFLAKE_SECRET_ID',
  'fact components/dbt-functions.ts spells the env var CONTROL_TABLE_NAME',
  'fact components/dbt-functions.ts spells the env var DBT_API_ALLOW_PLAIN_HTTP',
  'fact components/dbt-functions.ts spells the env var DBT_API_TIMEOUT_MS',
  'fact components/dbt-functions.ts spells the env var DBT_API_TOKEN_SECRET_ARN',
  'fact components/dbt-functions.ts spells the env var DBT_API_URL',
  'fact components/downstream-trigger.ts spells the UpstreamBatchSucceeded event name',
  'fact components/downstream-trigger.ts spells the env var DOWNSTREAM_STATE_MACHINE_ARN',
  'fact components/downstream-trigger.ts spells the env var EVENT_SOURCE',
  'fact components/downstream-trigger.ts spells the env var PIPELINES',
  'fact components/handler-function.ts spells the env var POWERTOOLS_SERVICE_NAME',
  'fact components/regional-platform.ts spells the env var ALERTS_TOPIC_ARN',
  'fact components/regional-platform.ts spells the env var CONTROL_TABLE_NAME',
  'fact components/regional-platform.ts spells the env var EVENT_SOURCE',
  'fact components/regional-platform.ts spells the env var LOST_TRIGGER_MINUTES',
  'fact components/regional-platform.ts spells the env var MAX_DOWNSTREAM_MINUTES',
  'fact components/regional-platform.ts spells the env var PIPELINES_JSON',
  'fact local/dbt-pods.ts spells the env var DBT_API_TOKEN',
  'fact local/dbt-pods.ts spells the env var DBT_BIN',
  'fact scripts/bad-input-doc.ts spells the env var DOWNSTREAM_STATE_MACHINE_ARN',
  'fact scripts/bad-input-doc.ts spells the env var EVENT_SOURCE',
  'fact scripts/bad-input-doc.ts spells the env var PIPELINES',
  'fact scripts/compare-triggers.ts spells the UpstreamBatchSucceeded event name',
  'fact state-machines/downstream.ts spells the FENCE key',
  'fact state-machines/downstream.ts spells the UpstreamBatchSucceeded event name',
  'fact state-machines/downstream.ts spells the handler error name DbtApiRejected',
  'fact state-machines/downstream.ts spells the handler error name DbtApiUnavailable',
  'fact state-machines/downstream.ts spells the handler error name DbtRunFailed',
  'fact state-machines/downstream.ts spells the handler error name DbtRunNotFound',
  'fact state-machines/downstream.ts spells the handler error name InvalidInput',
  'fact state-machines/downstream.ts spells the handler error name MissingConfiguration',
  'fact state-machines/downstream.ts spells the pipeline-name regex',
  'fact state-machines/intermediate.ts spells the UpstreamBatchSucceeded event name',
  'fact state-machines/poller.ts spells the UpstreamBatchSucceeded event name',
  'fact state-machines/upstream.ts spells the FENCE key',
  'fact state-machines/upstream.ts spells the UpstreamBatchSucceeded event name',
  'fact state-machines/upstream.ts spells the handler error name InvalidInput',
  'fact state-machines/upstream.ts spells the pipeline-name regex',
  'fact twin/exactly-once-scenarios.ts spells the FENCE key',
  'fact twin/exactly-once-scenarios.ts spells the handler error name DbtRunFailed',
  'fact twin/exactly-once.ts spells the FENCE key',
  'fact twin/exactly-once.ts spells the env var DBT_API_TIMEOUT_MS',
  'fact twin/exactly-once.ts spells the env var DBT_API_TOKEN',
  'fact twin/exactly-once.ts spells the env var DBT_API_URL',
  'fact twin/exactly-once.ts spells the env var DBT_RUNS_TABLE',
  'fact twin/exactly-once.ts spells the env var DBT_RUN_TIMEOUT_SECONDS',
  'fact twin/exactly-once.ts spells the env var POWERTOOLS_METRICS_DISABLED',
  'fact twin/exactly-once.ts spells the env var QUEUE_POLL_SECONDS',
  'fact twin/exactly-once.ts spells the env var RUN_HEARTBEAT_SECONDS',
  'fact twin/exactly-once.ts spells the env var RUN_LOST_AFTER_SECONDS',
  'fact twin/exactly-once.ts spells the env var SHUTDOWN_GRACE_SECONDS',
  'fact twin/exactly-once.ts spells the env var SNOWFLAKE_SECRET_ID',
  'fact twin/exactly-once.ts spells the env var TASK_HEARTBEAT_SECONDS',
  'fact twin/exactly-once.ts spells the handler error name DbtApiUnavailable',
  'fact twin/extract.ts spells the env var CONTROL_TABLE_NAME',
  'fact twin/scenarios.ts spells the UpstreamBatchSucceeded event name',
  'fact twin/twin.ts spells the env var DBT_API_TOKEN',
  'fact twin/twin.ts spells the env var DBT_API_URL',
  'fact bench/downstream-transitions.ts spells the FENCE key',
];

// ---------------------------------------------------------------- the graph

interface Edge {
  readonly from: string;
  readonly to: string;
  readonly line: number;
}

function sourceFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIPPED_DIRS.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

const rel = (file: string) => path.relative(ROOT, file).split(path.sep).join('/');

/** The file a relative specifier names (TypeScript's resolution order), or undefined for a package. */
function resolveImport(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  const candidates = [`${base}.ts`, path.join(base, 'index.ts'), base];
  const found = candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile());
  return found ?? `${base}.ts`;
}

/** Every relative import of a file: static, `export from`, `import()`, `require()` and `import('x')` types. */
function importsOf(file: string, text: string): Edge[] {
  const info = ts.preProcessFile(text, true, true);
  const lineOf = (pos: number) => text.slice(0, pos).split('\n').length;
  return info.importedFiles.flatMap((ref) => {
    const target = resolveImport(file, ref.fileName);
    return target ? [{ from: rel(file), to: rel(target), line: lineOf(ref.pos) }] : [];
  });
}

/** The top-level folder of a repository path (`index.ts` is its own layer). */
const layerOf = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file);

function layerViolation(edge: Edge): string | undefined {
  const from = layerOf(edge.from);
  const to = layerOf(edge.to);
  if (from === to) return undefined;
  const allowed = LAYERS[from];
  if (!allowed) return `no layer for folder ${from}/: add it to LAYERS in tests/architecture.test.ts`;
  if (allowed.includes('*') || allowed.includes(to)) return undefined;
  return `${from}/ may import only ${allowed.length ? allowed.join(', ') : 'nothing internal'}`;
}

/** Strongly connected components with more than one file (Tarjan), each as one cycle through it. */
export function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = (graph.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) components.push(component);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return components.map((c) => cycleThrough(graph, new Set(c))).sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/** One concrete cycle inside a component, starting at its first file by name (a stable label). */
function cycleThrough(graph: ReadonlyMap<string, readonly string[]>, members: ReadonlySet<string>): string[] {
  const start = [...members].sort()[0];
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(previous.get(path[0])!);
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

// ---------------------------------------------------------------- facts

interface Fact {
  readonly name: string;
  /** Whether a string or regex literal's text spells the fact. */
  readonly inLiteral: (text: string) => boolean;
  /** Whether an identifier naming a property (`{ X: ... }`, `process.env.X`) spells it. */
  readonly asPropertyName?: (text: string) => boolean;
}

const exactly = (value: string) => (text: string) => text === value;
export const FACTS: readonly Fact[] = [
  { name: 'the pipeline-name regex', inLiteral: (text) => text.includes(PIPELINE_NAME_BODY) },
  { name: `the ${UPSTREAM_BATCH_SUCCEEDED} event name`, inLiteral: exactly(UPSTREAM_BATCH_SUCCEEDED) },
  { name: 'the FENCE key', inLiteral: exactly(FENCE_KEY.pk) },
  ...Object.values(ERROR_NAMES).map((error) => ({
    name: `the handler error name ${error}`,
    inLiteral: exactly(error),
  })),
  ...platformEnvNames().map((env) => ({
    name: `the env var ${env}`,
    inLiteral: exactly(env),
    asPropertyName: exactly(env),
  })),
];

/** Files where facts may be spelt. */
const FACT_OWNERS = (file: string) => file.startsWith('contracts/') || file.startsWith('tests/');

/** The contracts/ maps whose properties are the facts themselves. */
const CONTRACT_MAPS = new Set(['HANDLER_ENV', 'DBT_APP_ENV', 'ERROR_NAMES']);

function isPropertyNamePosition(node: ts.Identifier): boolean {
  const parent = node.parent;
  return (
    (ts.isPropertyAssignment(parent) && parent.name === node) ||
    ts.isShorthandPropertyAssignment(parent) ||
    // process.env.X, deploymentEnv.X; but HANDLER_ENV.X names it through the contract
    (ts.isPropertyAccessExpression(parent) &&
      parent.name === node &&
      !(ts.isIdentifier(parent.expression) && CONTRACT_MAPS.has(parent.expression.text)))
  );
}

/** `[fact name, line]` for every spelling of a fact in one file's code (comments are not code). */
export function factSpellings(
  fileName: string,
  text: string,
  facts: readonly Fact[] = FACTS,
): Array<[string, number]> {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: Array<[string, number]> = [];
  const lineOf = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  const visit = (node: ts.Node): void => {
    let literal: string | undefined;
    if (
      ts.isStringLiteralLike(node) ||
      ts.isTemplateLiteralToken(node) ||
      ts.isRegularExpressionLiteral(node)
    )
      literal = node.text;
    if (
      literal !== undefined &&
      !ts.isImportDeclaration(node.parent) &&
      !ts.isExportDeclaration(node.parent)
    ) {
      for (const fact of facts) if (fact.inLiteral(literal)) found.push([fact.name, lineOf(node)]);
    }
    if (ts.isIdentifier(node) && isPropertyNamePosition(node)) {
      for (const fact of facts) if (fact.asPropertyName?.(node.text)) found.push([fact.name, lineOf(node)]);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

// ---------------------------------------------------------------- the checks

interface Finding {
  /** Stable across edits (no line numbers): what KNOWN_VIOLATIONS lists. */
  readonly id: string;
  /** Where, e.g. `twin/twin.ts:12,40`. */
  readonly where: string;
  /** The rule broken, and the fix. */
  readonly rule: string;
}

function scanRepository() {
  const files = sourceFiles().sort();
  const texts = new Map(files.map((f) => [rel(f), fs.readFileSync(f, 'utf8')]));
  const edges = files.flatMap((f) => importsOf(f, texts.get(rel(f))!));
  return { texts, edges };
}

/** One finding per id, with every line it occurs on. */
function merged(items: ReadonlyArray<{ id: string; file: string; line?: number; rule: string }>): Finding[] {
  const byId = new Map<string, { file: string; lines: Set<number>; rule: string }>();
  for (const { id, file, line, rule } of items) {
    const entry = byId.get(id) ?? { file, lines: new Set<number>(), rule };
    if (line !== undefined) entry.lines.add(line);
    byId.set(id, entry);
  }
  return [...byId].map(([id, { file, lines, rule }]) => ({
    id,
    where: lines.size ? `${file}:${[...lines].join(',')}` : file,
    rule,
  }));
}

function layerFindings(edges: readonly Edge[]): Finding[] {
  return merged(
    edges.flatMap((edge) => {
      if (layerOf(edge.to) === 'tests') return []; // (c) reports these
      const broken = layerViolation(edge);
      return broken
        ? [{ id: `layer ${edge.from} -> ${edge.to}`, file: edge.from, line: edge.line, rule: broken }]
        : [];
    }),
  );
}

function testImportFindings(edges: readonly Edge[]): Finding[] {
  return merged(
    edges
      .filter((edge) => layerOf(edge.to) === 'tests' && layerOf(edge.from) !== 'tests')
      .map((edge) => ({
        id: `test-import ${edge.from} -> ${edge.to}`,
        file: edge.from,
        line: edge.line,
        rule: 'only tests/ may import tests/ (move what it needs to local/)',
      })),
  );
}

function cycleFindings(edges: readonly Edge[]): Finding[] {
  const graph = new Map<string, string[]>();
  for (const edge of edges) graph.set(edge.from, [...(graph.get(edge.from) ?? []), edge.to]);
  return importCycles(graph).map((cycle) => ({
    id: `cycle ${cycle.join(' -> ')}`,
    where: cycle[0],
    rule: 'files that import each other cannot be read (or loaded) one at a time: break the cycle',
  }));
}

function factFindings(texts: ReadonlyMap<string, string>): Finding[] {
  const items = [...texts].flatMap(([file, text]) =>
    FACT_OWNERS(file)
      ? []
      : factSpellings(file, text).map(([fact, line]) => ({
          id: `fact ${file} spells ${fact}`,
          file,
          line,
          rule: 'import it from contracts/ instead',
        })),
  );
  return merged(items);
}

/**
 * Fails on a finding not in KNOWN_VIOLATIONS, and on a listed one (of this kind) that is gone. A new
 * one prints as a line to paste into KNOWN_VIOLATIONS, with where it is and the rule it breaks.
 */
function assertOnlyKnown(kind: string, findings: readonly Finding[]): void {
  const known = KNOWN_VIOLATIONS.filter((id) => id.startsWith(`${kind} `));
  const ids = new Set(findings.map((f) => f.id));
  const fresh = findings.filter((f) => !known.includes(f.id));
  const gone = known.filter((id) => !ids.has(id));
  const report = [
    ...fresh.map((f) => `  NEW    '${f.id}', // ${f.where}: ${f.rule}`),
    ...gone.map((id) => `  FIXED  '${id}': remove it from KNOWN_VIOLATIONS`),
  ];
  assert.ok(report.length === 0, `\n${report.join('\n')}\n`);
}

describe('architecture (docs/architecture.md)', () => {
  const { texts, edges } = scanRepository();

  it('reads the whole repository', () => {
    assert.ok(texts.size > 150, `only ${texts.size} files`);
    assert.ok(edges.some((e) => e.from === 'index.ts' && e.to.startsWith('components/')));
    for (const folder of new Set([...texts.keys()].map(layerOf)))
      assert.ok(folder in LAYERS, `no layer for folder ${folder}/: add it to LAYERS`);
  });

  it('(a) every import runs down the layers', () => {
    assertOnlyKnown('layer', layerFindings(edges));
  });

  it('(b) there is no import cycle', () => {
    assertOnlyKnown('cycle', cycleFindings(edges));
  });

  it('(c) nothing outside tests/ imports tests/', () => {
    assertOnlyKnown('test-import', testImportFindings(edges));
  });

  it('(d) the facts contracts/ owns are spelt only there', () => {
    assertOnlyKnown('fact', factFindings(texts));
  });

  describe('the checks themselves', () => {
    it('find a planted spelling of each kind of fact, and ignore comments and imports', () => {
      const planted = [
        `// ${UPSTREAM_BATCH_SUCCEEDED} 'FENCE' in a comment`,
        `import { x } from './FENCE';`,
        `const a = /^${PIPELINE_NAME_BODY}$/;`,
        `const b = \`\${p}-${UPSTREAM_BATCH_SUCCEEDED}\`, c = '${UPSTREAM_BATCH_SUCCEEDED}';`,
        `const d = { pk: 'FENCE' }, e = { CONTROL_TABLE_NAME: 'x' }, f = process.env.CONTROL_TABLE_NAME;`,
        `throw Object.assign(new Error(), { name: '${ERROR_NAMES.DbtApiRejected}' });`,
        `const CONTROL_TABLE_NAME = 1; use(CONTROL_TABLE_NAME, HANDLER_ENV.CONTROL_TABLE_NAME);`,
        `const g = deploymentEnv.DBT_RUNS_TABLE;`,
      ].join('\n');
      assert.deepEqual(factSpellings('x.ts', planted), [
        ['the pipeline-name regex', 3],
        [`the ${UPSTREAM_BATCH_SUCCEEDED} event name`, 4],
        ['the FENCE key', 5],
        ['the env var CONTROL_TABLE_NAME', 5],
        ['the env var CONTROL_TABLE_NAME', 5],
        [`the handler error name ${ERROR_NAMES.DbtApiRejected}`, 6],
        ['the env var DBT_RUNS_TABLE', 8],
      ]);
    });

    it('flag an upward import and accept a downward one', () => {
      const edge = (from: string, to: string): Edge => ({ from, to, line: 1 });
      assert.match(
        layerViolation(edge('contracts/a.ts', 'handlers/b.ts'))!,
        /contracts\/ may import only nothing internal/,
      );
      assert.match(
        layerViolation(edge('state-machines/a.ts', 'regions/settings.ts'))!,
        /may import only contracts/,
      );
      assert.equal(layerViolation(edge('components/a.ts', 'state-machines/b.ts')), undefined);
      assert.match(
        layerViolation(edge('newfolder/a.ts', 'contracts/b.ts'))!,
        /no layer for folder newfolder/,
      );
    });

    it('find a cycle and print it in order', () => {
      const graph = new Map([
        ['a', ['b']],
        ['b', ['c']],
        ['c', ['a', 'd']],
        ['d', []],
        ['e', ['e']],
      ]);
      assert.deepEqual(importCycles(graph), [
        ['a', 'b', 'c', 'a'],
        ['e', 'e'],
      ]);
    });
  });
});
