/**
 * `npm run bench`: wall time of the whole twin scenario suite (target < 60 s on 2 cores), with
 * the part spent extracting the program (runProgram under mocks) reported separately.
 * Not part of npm test. `-- --no-all-modes` leaves out the per-trigger-mode table.
 */
import * as os from 'node:os';
import { extractStack } from '../twin/extract';
import { SCENARIOS } from '../twin/scenarios';

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

async function main(): Promise<void> {
  const skipModes = process.argv.includes('--no-all-modes');
  const t0 = Date.now();
  // Warm the extraction cache the way the first scenario would, to report it on its own.
  await extractStack({ stack: 'prod-east', activeRegion: 'us-east-1' });
  await extractStack({ stack: 'prod-west', activeRegion: 'us-east-1' });
  const extractMs = Date.now() - t0;
  const rows: Array<{ scenario: string; ms: number; ok: boolean }> = [];
  for (const [name, run] of Object.entries(SCENARIOS)) {
    if (skipModes && name === 'all-modes') continue;
    const t = Date.now();
    const r = await run();
    rows.push({ scenario: name, ms: Date.now() - t, ok: r.checks.every((c) => c.ok) });
  }
  const total = Date.now() - t0;
  console.log(`cpus: ${os.cpus().length} · node ${process.version}`);
  console.log(`extraction (2 stacks, cold): ${extractMs} ms`);
  for (const r of rows) console.log(`${r.scenario.padEnd(22)} ${String(r.ms).padStart(7)} ms  ${r.ok ? 'ok' : 'CHECKS FAILED'}`);
  console.log(`whole suite: ${total} ms (target < 60000 ms) ${total < 60_000 ? 'MET' : 'NOT MET'}`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
