/**
 * Benchmark 3: each handler bundle's size and cold require time. Bundles with handlers/bundle.ts
 * (as deployed: minified, @aws-sdk external — node_modules provides the SDK the runtime ships),
 * then for each handler a fresh `node -e` child process times require() of the bundle with
 * process.hrtime (median of 5 processes). Target: < 300 KB and < 50 ms.
 *   npx ts-node --transpile-only bench/handler-cold.ts
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUNDLE_BUDGET_BYTES, bundleHandler, bundleSize, HANDLERS } from '../handlers/bundle';
import { exitWith } from './lib';

const ROOT = path.resolve(__dirname, '..');
const RUNS = 5;

/** `preload`: modules required before the clock starts (to separate the SDK's share). */
function coldRequireMs(file: string, preload: string[] = []): number {
  const pre = preload.map((m) => `require(${JSON.stringify(m)});`).join('');
  const script = `${pre}const t=process.hrtime.bigint();require(${JSON.stringify(file)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
  // cwd = repo root so the external @aws-sdk/* resolve from node_modules, as from the runtime's.
  const out = execFileSync(process.execPath, ['-e', script], {
    cwd: ROOT,
    env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules'), POWERTOOLS_LOG_LEVEL: 'SILENT', AWS_REGION: 'us-east-1' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return Number(out.toString());
}

const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-handlers-'));
let ok = true;
console.log('benchmark 3: handler bundles (cold require = fresh node process, median of 5)');
console.log('handler              size KB   cold require ms   of which bundle only (SDK preloaded)   target (<300 KB, <50 ms)');
for (const name of HANDLERS) {
  const dir = bundleHandler(name, outDir);
  const size = bundleSize(dir);
  const times = Array.from({ length: RUNS }, () => coldRequireMs(path.join(dir, 'index.js'))).sort((a, b) => a - b);
  const median = times[Math.floor(RUNS / 2)];
  const sdk = [...new Set(fs.readFileSync(path.join(dir, 'index.js'), 'utf8').match(/@aws-sdk\/[a-z0-9-]+/g) ?? [])];
  const own = Array.from({ length: RUNS }, () => coldRequireMs(path.join(dir, 'index.js'), sdk)).sort((a, b) => a - b)[Math.floor(RUNS / 2)];
  const met = size < BUNDLE_BUDGET_BYTES && median < 50;
  ok &&= met;
  console.log(`${name.padEnd(20)} ${(size / 1024).toFixed(1).padStart(7)} ${median.toFixed(1).padStart(17)} ${own.toFixed(1).padStart(38)}   ${met ? 'MET' : 'NOT MET'}`);
}
fs.rmSync(outDir, { recursive: true, force: true });
exitWith(ok);
