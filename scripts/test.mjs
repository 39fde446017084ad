#!/usr/bin/env node
// `npm test`: sets up the Python env, then runs the independent parts in two lanes side by side
// (they share no ports or files: every server in the suites binds port 0), prints each part's
// output as it ends, and a table of wall and CPU times at the end. Exits non-zero if any part failed.
//   node scripts/test.mjs            # everything
//   node scripts/test.mjs mocha py   # only these parts
//   TEST_JOBS=1 node scripts/test.mjs  # one CPU-bound part at a time (default 2)
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

const ALL_PARTS = {
  typecheck: ['npm', ['run', '--silent', 'typecheck']],
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

// Two queues run side by side. The waiting suites (WAITING_GROUPS) go one at a time in a lane of
// their own: they are mostly idle, so the CPU-bound parts fill their waits. The CPU-bound parts go
// TEST_JOBS at a time (default 2, one per core), longest first. Measured on 2 cores
// (docs/performance.md, row 6): everything at once took 203 s and 344 s CPU (contention costs CPU);
// these two lanes 176.5 s and 289 s.
const CPU_ORDER = ['py-dbt-project', 'mocha', 'py-app-dbt', 'py', 'typecheck', 'lint'];
const WAITING_ORDER = ['mocha-world', 'mocha-soak'];
if (
  [...CPU_ORDER, ...WAITING_ORDER].sort().join() !== Object.keys(ALL_PARTS).sort().join() ||
  WAITING_ORDER.join() !== Object.keys(WAITING_GROUPS).join()
) {
  console.error('scripts/test.mjs: CPU_ORDER and WAITING_ORDER must name every part exactly once');
  process.exit(2);
}
const DEFAULT_JOBS = 2;

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

/**
 * Runs one part; resolves with its wall time and CPU time (user + sys of the part and every process it
 * waited for, from bash's `times`, written to fd 3 so it never mixes with the part's output).
 */
function run(name, [command, args]) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', '"$@"; rc=$?; times >&3; exit $rc', name, command, ...args], {
      // No colours in the collected output: FORCE_COLOR=0 for Node, PY_COLORS=0 for pytest (which reads
      // any FORCE_COLOR, even 0, as "force"), NO_COLOR for ruff.
      env: { ...process.env, FORCE_COLOR: '0', PY_COLORS: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let output = '';
    let times = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.stdio[3].on('data', (d) => (times += d));
    child.on('close', (code, signal) => {
      const seconds = (Date.now() - started) / 1000;
      process.stdout.write(
        `\n===== ${name} (${seconds.toFixed(1)} s, ${code === 0 ? 'ok' : `FAILED: ${signal ?? `exit ${code}`}`}) =====\n${output}`,
      );
      resolve({ name, seconds, cpu: childrenCpuSeconds(times), ok: code === 0 });
    });
  });
}

/** The second line of bash's `times` (children's user and sys, e.g. `1m2.345s 0m1.200s`), in seconds. */
function childrenCpuSeconds(times) {
  const line = times.trim().split('\n')[1] ?? '';
  const spans = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map(([, m, s]) => Number(m) * 60 + Number(s));
  return spans.length === 2 ? spans[0] + spans[1] : undefined;
}

/** Runs the parts, at most `jobs` at a time, starting them in the order given. */
async function runAll(parts, jobs) {
  const queue = [...parts];
  const results = [];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) results.push(await run(...next));
  };
  await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, worker));
  return parts.map(([name]) => results.find((r) => r.name === name));
}

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in ALL_PARTS));
if (unknown.length) {
  console.error(`unknown part(s): ${unknown.join(', ')}; known: ${Object.keys(ALL_PARTS).join(', ')}`);
  process.exit(2);
}
const jobs = Number(process.env.TEST_JOBS ?? DEFAULT_JOBS);
if (!Number.isInteger(jobs) || jobs < 1) {
  console.error(
    `TEST_JOBS="${process.env.TEST_JOBS}" is not a positive whole number of parts to run at once`,
  );
  process.exit(2);
}
const started = Date.now();
const setup = await run('python env', ['bash', ['scripts/python-env.sh']]);
const chosen = (order) =>
  order.filter((n) => !wanted.length || wanted.includes(n)).map((n) => [n, ALL_PARTS[n]]);
const results = setup.ok
  ? (await Promise.all([runAll(chosen(CPU_ORDER), jobs), runAll(chosen(WAITING_ORDER), 1)])).flat()
  : [];
const all = [setup, ...results];
const cpu = (r) => (r.cpu === undefined ? '      ?' : r.cpu.toFixed(1).padStart(7));
console.log(
  `\n===== times (${jobs} CPU-bound part(s) at once beside one waiting suite; CPU = user + sys of the part's processes) =====`,
);
console.log(`${'part'.padEnd(14)} ${'wall'.padStart(9)} ${'CPU'.padStart(9)}`);
for (const r of all)
  console.log(
    `${r.name.padEnd(14)} ${r.seconds.toFixed(1).padStart(7)} s ${cpu(r)} s  ${r.ok ? 'ok' : 'FAILED'}`,
  );
const totalCpu = all.reduce((sum, r) => sum + (r.cpu ?? 0), 0);
console.log(
  `${'total'.padEnd(14)} ${((Date.now() - started) / 1000).toFixed(1).padStart(7)} s ${totalCpu.toFixed(1).padStart(7)} s`,
);
process.exit(all.every((r) => r.ok) ? 0 : 1);
