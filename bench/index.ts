/**
 * Runs every benchmark, each in its own process (Pulumi's runtime state is global), in order:
 * 1 program-scale, 2 failover-blast, 3 handler-cold, 4 downstream-transitions, 5 twin-suite, 6 soak.
 * Exits non-zero if any benchmark misses its target or fails. Extra args go to twin-suite.
 *   npx ts-node --transpile-only bench/index.ts
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const BENCHMARKS = [
  'program-scale',
  'failover-blast',
  'handler-cold',
  'downstream-transitions',
  'twin-suite',
  'soak',
];
const tsNode = require.resolve('ts-node/dist/bin.js');
const results: Array<[string, number | null]> = [];
console.log(`benchmarks · ${new Date().toISOString()} · node ${process.version}`);
for (const name of BENCHMARKS) {
  console.log(`\n=== ${name}`);
  const args = [
    tsNode,
    '--transpile-only',
    path.join(__dirname, `${name}.ts`),
    ...(name === 'twin-suite' ? process.argv.slice(2) : []),
  ];
  const r = spawnSync(process.execPath, args, {
    stdio: 'inherit',
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT', NODE_NO_WARNINGS: '1' },
  });
  results.push([name, r.status]);
}
console.log('\n=== summary');
for (const [name, status] of results)
  console.log(`${name.padEnd(24)} ${status === 0 ? 'ok / target met' : 'TARGET NOT MET or failed'}`);
process.exit(results.every(([, s]) => s === 0) ? 0 : 1);
