import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { runSuite, suiteExitCode } from '../bench/twin-suite';
import { copyMermaid, formatTable, MERMAID_SCRIPT, writeHtmlReport } from '../twin/report';
import {
  KNOWN_DEFECTS,
  listScenarios,
  modeVerdict,
  SCENARIO_DESCRIPTIONS,
  SCENARIOS,
  TRIGGER_MODES_UNDER_TEST,
  type ScenarioResult,
} from '../twin/scenarios';
import { startDynalite } from './harness/dynalite';
import { EXACTLY_ONCE_SCENARIOS } from '../twin/exactly-once-scenarios';

/** What an operator sees of the twin: the report, the tables, the list, the bench's verdict. */

const ROOT = path.join(__dirname, '..');
const result = (name: string, ok = true): ScenarioResult => ({
  name,
  title: `${name} title`,
  figures: { hops: 1, transitions: 2, lambdaCalls: 3, dbtRuns: 1, alerts: 0, dlqMessages: 0, executions: 2 },
  checks: [{ name: 'a check', ok, detail: ok ? '= 1' : 'expected 1, got 2' }],
  timeline: [
    {
      t: Date.parse('2026-11-27T07:00:00Z'),
      region: 'us-east-1',
      component: 'Scheduler',
      text: 'fires',
      to: 'etl-policycenter-upstream',
    },
  ] as ScenarioResult['timeline'],
  wallMs: 5,
});

describe('twin report works offline', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'twin-report-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('loads mermaid from the npm package copied beside the report, and no script from http(s)', () => {
    const file = writeHtmlReport([result('happy')], dir);
    const html = fs.readFileSync(file, 'utf8');
    assert.doesNotMatch(html, /<script[^>]*\bsrc\s*=\s*["']?(https?:)?\/\//i, 'no remote script');
    assert.doesNotMatch(html, /import[^;]*from\s*["']https?:/i, 'no remote module import');
    assert.match(html, new RegExp(`<script src="${MERMAID_SCRIPT}"></script>`));
    assert.match(html, /<pre class="mermaid">\nsequenceDiagram/);
    const copied = path.join(dir, MERMAID_SCRIPT);
    const source = require.resolve(`mermaid/dist/${MERMAID_SCRIPT}`);
    assert.equal(fs.statSync(copied).size, fs.statSync(source).size);
    assert.match(fs.readFileSync(copied, 'utf8').slice(0, 200_000), /sequenceDiagram|mermaid/);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    assert.match(
      pkg.devDependencies.mermaid ?? '',
      /^~11\.\d+\.\d+$/,
      'mermaid pinned to a minor (11.x installs on Node 20)',
    );
    // A second report reuses the copy.
    const mtime = fs.statSync(copied).mtimeMs;
    copyMermaid(dir);
    assert.equal(fs.statSync(copied).mtimeMs, mtime);
  });

  it('docs/local-twin.md shows the screenshot of a rendered report (PNG < 300 KB)', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'local-twin.md'), 'utf8');
    const ref = /!\[[^\]]*\]\(([^)]+\.png)\)/.exec(doc)?.[1];
    assert.ok(ref, 'an image reference');
    const png = fs.readFileSync(path.join(ROOT, 'docs', ref));
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.ok(png.length < 300 * 1024, `${png.length} bytes`);
  });
});

describe('twin output is honest', () => {
  it('tables are aligned: every column starts at the same offset on every line, numbers right-aligned', () => {
    const lines = formatTable([
      { mode: 'rule-direct', result: 'built once', dbtRuns: 1 },
      { mode: 'rule-intermediate-sfn', result: 'KNOWN DEFECT: something long', dbtRuns: 12 },
    ]);
    const starts = (line: string) =>
      [...line.matchAll(/(?:^|\s{2})(\S)/g)].map((m) => (m.index ?? 0) + m[0].length - 1);
    const ruler = starts(lines[1]);
    assert.equal(ruler.length, 3);
    for (const line of [lines[0], lines[2], lines[3]])
      for (const col of ruler.slice(0, 2)) assert.notEqual(line[col], ' ', `${line}\n${lines[1]}`);
    assert.equal(lines[2].length, lines[3].length, 'numbers end at the same column');
  });

  it('"built once" only when the batch had exactly one dbt build', () => {
    assert.equal(modeVerdict(undefined, true, 1), 'built once');
    assert.equal(modeVerdict(undefined, true, 2), 'built 2 times');
    assert.equal(modeVerdict(undefined, true, 0), 'built 0 times');
    assert.equal(modeVerdict(undefined, false, 1), 'FAILED');
    assert.match(modeVerdict({ what: 'x' }, true, 0), /^KNOWN DEFECT: x/);
  });

  it('demo list says what each scenario shows, and docs/local-twin.md lists the same scenarios', () => {
    const lines = listScenarios();
    assert.deepEqual(Object.keys(SCENARIO_DESCRIPTIONS).sort(), Object.keys(SCENARIOS).sort());
    for (const [i, name] of Object.keys(SCENARIOS).entries()) {
      assert.ok(lines[i].startsWith(name), lines[i]);
      assert.ok(lines[i].includes(SCENARIO_DESCRIPTIONS[name]), lines[i]);
    }
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'local-twin.md'), 'utf8');
    const documented = [...doc.matchAll(/^\| `([a-z0-9-]+)` +\|/gm)].map((m) => m[1]);
    assert.deepEqual(
      documented.sort(),
      [...Object.keys(SCENARIOS), ...Object.keys(EXACTLY_ONCE_SCENARIOS)].sort(),
    );
  });

  it('docs/local-twin.md calls open only the mode defects KNOWN_DEFECTS still asserts', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'local-twin.md'), 'utf8');
    const findings = doc.slice(doc.indexOf('## Findings'), doc.indexOf('Fixed ('));
    assert.ok(findings.length > 0);
    for (const mode of TRIGGER_MODES_UNDER_TEST) {
      if (!KNOWN_DEFECTS[mode])
        assert.doesNotMatch(
          findings,
          new RegExp(`\\*\\*${mode}`),
          `${mode} is described as open but has no known defect`,
        );
    }
  });
});

describe('twin reliability', () => {
  it("the local DynamoDB client retries a reset connection (the SDK's normal retry, not maxAttempts 1)", async () => {
    const db = await startDynalite();
    try {
      let resets = 0;
      db.client.middlewareStack.add(
        (next) => async (args) => {
          if (resets === 0) {
            resets++;
            throw Object.assign(new Error('read ECONNRESET'), {
              code: 'ECONNRESET',
              name: 'TimeoutError',
              $metadata: {},
            });
          }
          return next(args);
        },
        { step: 'deserialize', name: 'resetOnce', priority: 'high' },
      );
      const out = await db.client.send(new ListTablesCommand({}));
      assert.equal(resets, 1);
      assert.ok(out.TableNames?.includes(db.tableName));
      assert.ok((await db.client.config.maxAttempts()) >= 3);
    } finally {
      await db.close();
    }
  });

  it('the twin bench exits non-zero when a scenario fails or throws in any run', async () => {
    const lines: string[] = [];
    let calls = 0;
    const flaky = async () => result('flaky', ++calls !== 2);
    const runs = await runSuite({ happy: async () => result('happy'), flaky }, 3, (l) => lines.push(l));
    assert.equal(runs.length, 3);
    assert.equal(suiteExitCode(runs), 1);
    assert.match(lines.join('\n'), /run 2\/3 {2}flaky .* FAILED: a check: expected 1, got 2/);
    const thrown = await runSuite(
      { boom: async () => Promise.reject(new Error('dynalite: read ECONNRESET')) },
      1,
      () => undefined,
    );
    assert.equal(suiteExitCode(thrown), 1);
    assert.match(thrown[0].rows[0].failed[0], /threw Error: dynalite: read ECONNRESET/);
    assert.equal(
      suiteExitCode(await runSuite({ happy: async () => result('happy') }, 2, () => undefined)),
      0,
    );
  });
});
