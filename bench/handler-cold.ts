/**
 * Benchmark 3: each handler bundle's size and cold init time. Bundles with handlers/bundle.ts
 * (as deployed: minified, AWS SDK clients inside), copies each index.js to a directory outside the
 * repo (no node_modules to fall back on, as in Lambda), then times require() of it in a fresh
 * `node -e` process with process.hrtime: module evaluation, including creating the module-level SDK
 * clients and loggers. Median of 7 processes. Target: < 300 KB and < 50 ms.
 *   npx ts-node --transpile-only bench/handler-cold.ts
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUNDLE_BUDGET_BYTES, bundleHandler, bundleSize, HANDLERS } from '../handlers/bundle';
import { exitWith } from './lib';

const RUNS = 7;

/** Wall and CPU (user+system) ms of require(file) in a fresh process. CPU time is what contention on a shared machine inflates least. */
function coldRequireMs(file: string): { wall: number; cpu: number } {
  const script = `const c=process.cpuUsage(),t=process.hrtime.bigint();require(${JSON.stringify(file)});const u=process.cpuUsage(c);process.stdout.write(JSON.stringify({wall:Number(process.hrtime.bigint()-t)/1e6,cpu:(u.user+u.system)/1e3}))`;
  const out = execFileSync(process.execPath, ['--no-warnings', '-e', script], {
    cwd: path.dirname(file),
    // What Lambda sets that the module-level code reads; no credentials are needed to construct clients.
    // AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: the SDK warns on this machine's Node 20, not on Lambda's 22.
    env: {
      PATH: process.env.PATH,
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      AWS_REGION: 'us-east-1',
      AWS_LAMBDA_FUNCTION_NAME: 'bench',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out.toString()) as { wall: number; cpu: number };
}

const buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-handlers-build-'));
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-handlers-run-'));
let ok = true;
console.log(
  `benchmark 3: handler bundles, SDK bundled (cold init = require() in a fresh node process outside the repo, median of ${RUNS})`,
);
console.log(
  'handler              size KB   wall ms (min-max)           cpu ms   target (<300 KB, <50 ms wall)',
);
for (const name of HANDLERS) {
  const dir = bundleHandler(name, buildDir);
  const size = bundleSize(dir);
  const file = path.join(runDir, name, 'index.js');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.copyFileSync(path.join(dir, 'index.js'), file);
  const runs = Array.from({ length: RUNS }, () => coldRequireMs(file));
  const times = runs.map((r) => r.wall).sort((a, b) => a - b);
  const median = times[Math.floor(RUNS / 2)];
  const cpu = runs.map((r) => r.cpu).sort((a, b) => a - b)[Math.floor(RUNS / 2)];
  const met = size < BUNDLE_BUDGET_BYTES && median < 50;
  ok &&= met;
  const range = `(${times[0].toFixed(1)}-${times[RUNS - 1].toFixed(1)})`;
  console.log(
    `${name.padEnd(20)} ${(size / 1024).toFixed(1).padStart(7)} ${median.toFixed(1).padStart(9)} ${range.padEnd(15)} ${cpu.toFixed(1).padStart(8)}   ${size < BUNDLE_BUDGET_BYTES ? '' : 'SIZE '}${median < 50 ? '' : 'TIME '}${met ? 'MET' : 'NOT MET'}`,
  );
}
fs.rmSync(buildDir, { recursive: true, force: true });
fs.rmSync(runDir, { recursive: true, force: true });
exitWith(ok);
