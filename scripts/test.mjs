#!/usr/bin/env node
// `npm test`: sets up the Python env, then runs the independent parts side by side (they share no
// ports or files: every server in the suites binds port 0), prints each part's output as it ends,
// and a table of wall times at the end. Exits non-zero if any part failed.
//   node scripts/test.mjs            # everything
//   node scripts/test.mjs mocha py   # only these parts
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

// Suites that mostly wait (real app pods, scaled Step Functions time) run in mocha processes of
// their own beside the CPU-bound rest, so their waiting overlaps the rest's work.
const WAITING_GROUPS = {
  'mocha-world': ['tests/exactly-once-scenarios.test.ts', 'tests/twin-scenarios.test.ts'],
  'mocha-soak': ['tests/soak.test.ts'],
};
const WAITING_SUITES = Object.values(WAITING_GROUPS).flat();
const REAL_DBT_MODULES = {
  'py-dbt-project': 'dbt-app/local_warehouse/test_dbt_project.py',
  'py-app-dbt': 'dbt-app/tests/test_app_real_dbt.py',
};
const missing = [...WAITING_SUITES, ...Object.values(REAL_DBT_MODULES)].filter((file) => !existsSync(file));
if (missing.length) {
  console.error(`scripts/test.mjs names suites that do not exist: ${missing.join(', ')}`);
  process.exit(2);
}

// The same options as .mocharc.json, without its spec (a CLI spec is added to the config's, not
// substituted for it).
const mocharc = JSON.parse(readFileSync('.mocharc.json', 'utf8'));
const mochaOptions = [
  '--no-config',
  ...mocharc.require.flatMap((module) => ['--require', module]),
  ...mocharc.extension.flatMap((extension) => ['--extension', extension]),
  '--timeout',
  String(mocharc.timeout),
  '--reporter',
  mocharc.reporter,
];

const PARTS = {
  typecheck: ['npx', ['tsc', '--noEmit', '-p', '.']],
  lint: ['npm', ['run', '--silent', 'lint']],
  mocha: ['npx', ['mocha', ...WAITING_SUITES.flatMap((file) => ['--ignore', file])]],
  ...Object.fromEntries(
    Object.entries(WAITING_GROUPS).map(([name, files]) => [
      name,
      ['npx', ['mocha', ...mochaOptions, ...files]],
    ]),
  ),
  ...pytestParts(),
};

/**
 * pytest in three processes: each real-dbt module alone (the long poles: every dbt invocation parses
 * the project again), and everything else. Each module starts its own warehouse server on a free port.
 */
function pytestParts() {
  const parts = {};
  for (const [name, file] of Object.entries(REAL_DBT_MODULES))
    parts[name] = ['.venv/bin/pytest', ['-q', file]];
  parts.py = [
    '.venv/bin/pytest',
    ['-q', 'glue', 'dbt-app', ...Object.values(REAL_DBT_MODULES).map((f) => `--ignore=${f}`)],
  ];
  return parts;
}

function run(name, [command, args]) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      // No colours in the collected output: FORCE_COLOR=0 for Node, PY_COLORS=0 for pytest (which reads
      // any FORCE_COLOR, even 0, as "force").
      env: { ...process.env, FORCE_COLOR: '0', PY_COLORS: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code, signal) => {
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(
        `\n===== ${name} (${seconds.toFixed(1)} s, ${code === 0 ? 'ok' : `FAILED: ${signal ?? `exit ${code}`}`}) =====\n${output}`,
      );
      resolve({ name, seconds, ok: code === 0 });
    });
  });
}

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in PARTS));
if (unknown.length) {
  console.error(`unknown part(s): ${unknown.join(', ')}; known: ${Object.keys(PARTS).join(', ')}`);
  process.exit(2);
}
const started = Date.now();
const setup = await run('python env', ['bash', ['scripts/python-env.sh']]);
const results = setup.ok
  ? await Promise.all(
      Object.entries(PARTS)
        .filter(([n]) => !wanted.length || wanted.includes(n))
        .map(([n, c]) => run(n, c)),
    )
  : [];
const all = [setup, ...results];
console.log('\n===== times (wall; parts run in parallel) =====');
for (const r of all)
  console.log(`${r.name.padEnd(14)} ${r.seconds.toFixed(1).padStart(7)} s  ${r.ok ? 'ok' : 'FAILED'}`);
console.log(`${'total'.padEnd(14)} ${((Date.now() - started) / 1000).toFixed(1).padStart(7)} s`);
process.exit(all.every((r) => r.ok) ? 0 : 1);
