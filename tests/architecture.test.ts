import { strict as assert } from 'assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import {
  batchSk,
  DOWNSTREAM_WATERMARK_SK,
  FENCE_KEY,
  lateMarkerSk,
  lockSk,
  pipelinePk,
  STATUS_INDEX,
} from '../contracts/control-table';
import { platformEnvNames } from '../contracts/env';
import { ERROR_NAMES } from '../contracts/errors';
import {
  DOWNSTREAM_RUN_FAILED,
  DOWNSTREAM_RUN_SUCCEEDED,
  UPSTREAM_BATCH_FAILED,
  UPSTREAM_BATCH_SUCCEEDED,
} from '../contracts/events';
import { PIPELINE_NAME_BODY } from '../contracts/pipeline-name';

/**
 * The import graph's shape (docs/architecture.md), checked on every .ts file of the repository with
 * the TypeScript compiler's own pre-processor and parser:
 *   (a) each top-level folder imports only the folders below it (LAYERS);
 *   (b) no import cycle between files;
 *   (c) nothing outside tests/ imports tests/;
 *   (d) the facts contracts/ owns are spelt nowhere else (tests/ and docs may spell them).
 * There is no list of accepted violations: each check finds none, and prints what it finds as
 * `what (file:lines): rule`, with the fix.
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
  // The soak's operator runs the runbooks' own etl-ops commands against the local engines.
  twin: [...PRODUCT, 'local', 'dbt-app', 'ops'],
  bench: [...PRODUCT, 'local', 'twin', 'ops'],
  scripts: [...PRODUCT, 'local', 'twin', 'index.ts', 'ops'],
  tests: ['*'],
};

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
/** `PIPELINE#`, `BATCH#`, `LOCK#`, `WATERMARK#`, `ALERT#`: each kind of control-table key, by its first part. */
const KEY_PREFIXES = [
  pipelinePk('p'),
  batchSk('b', 'UPSTREAM'),
  lockSk('UPSTREAM'),
  DOWNSTREAM_WATERMARK_SK,
  lateMarkerSk('b'),
].map((key) => key.slice(0, key.indexOf('#') + 1));
const EVENT_NAMES = [
  UPSTREAM_BATCH_SUCCEEDED,
  UPSTREAM_BATCH_FAILED,
  DOWNSTREAM_RUN_SUCCEEDED,
  DOWNSTREAM_RUN_FAILED,
];

export const FACTS: readonly Fact[] = [
  { name: 'the pipeline-name regex', inLiteral: (text) => text.includes(PIPELINE_NAME_BODY) },
  ...EVENT_NAMES.map((event) => ({ name: `the ${event} event name`, inLiteral: exactly(event) })),
  { name: 'the FENCE key', inLiteral: exactly(FENCE_KEY.pk) },
  ...KEY_PREFIXES.map((prefix) => ({
    name: `a control-table key (${prefix}…)`,
    inLiteral: (text: string) => text.includes(prefix),
  })),
  { name: 'the status index name', inLiteral: exactly(STATUS_INDEX.name) },
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
  /** What is wrong, without line numbers: one finding per id, with every line in `where`. */
  readonly id: string;
  /** Where, e.g. `local/platform/twin.ts:12,40`. */
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

/** Fails on any finding, one line each: what, where, and the rule it breaks. */
function assertNone(findings: readonly Finding[]): void {
  const report = findings.map((f) => `  ${f.id} (${f.where}): ${f.rule}`);
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
    assertNone(layerFindings(edges));
  });

  it('(b) there is no import cycle', () => {
    assertNone(cycleFindings(edges));
  });

  it('(c) nothing outside tests/ imports tests/', () => {
    assertNone(testImportFindings(edges));
  });

  it('(d) the facts contracts/ owns are spelt only there', () => {
    assertNone(factFindings(texts));
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
        `const h = { pk: \`PIPELINE#\${p}\`, sk: 'LOCK#DOWNSTREAM' }, i = 'byPipelineStatus';`,
        `publish('${DOWNSTREAM_RUN_FAILED}', 'a DownstreamRunFailed event');`,
      ].join('\n');
      assert.deepEqual(factSpellings('x.ts', planted), [
        ['the pipeline-name regex', 3],
        [`the ${UPSTREAM_BATCH_SUCCEEDED} event name`, 4],
        ['the FENCE key', 5],
        ['the env var CONTROL_TABLE_NAME', 5],
        ['the env var CONTROL_TABLE_NAME', 5],
        [`the handler error name ${ERROR_NAMES.DbtApiRejected}`, 6],
        ['the env var DBT_RUNS_TABLE', 8],
        ['a control-table key (PIPELINE#…)', 9],
        ['a control-table key (LOCK#…)', 9],
        ['the status index name', 9],
        [`the ${DOWNSTREAM_RUN_FAILED} event name`, 10],
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
