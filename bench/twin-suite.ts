/**
 * `npm run bench`: runs the whole twin scenario suite several times (default 5, `-- --runs N`) and
 * must be green every time; exits 1 when any scenario fails a check or throws in any run. Prints
 * each run's wall time (target < 60 s on 2 cores, reported, not enforced) and the part spent
 * extracting the program (runProgram under mocks). Not part of npm test.
 * `-- --no-all-modes` leaves out the per-trigger-mode table; `-- --only a,b` runs those scenarios.
 */
import * as os from 'node:os';
import { extractStack } from '../local/extract';
import { SCENARIOS, type ScenarioResult } from '../twin/scenarios';

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

export interface SuiteRun {
  run: number;
  ms: number;
  rows: Array<{ scenario: string; ms: number; failed: string[] }>;
}

/** Runs `scenarios` `runs` times; a scenario that throws counts as failed with its error. */
export async function runSuite(
  scenarios: Record<string, () => Promise<ScenarioResult>>,
  runs: number,
  out: (line: string) => void = console.log,
): Promise<SuiteRun[]> {
  const results: SuiteRun[] = [];
  for (let run = 1; run <= runs; run++) {
    const t0 = Date.now();
    const rows: SuiteRun['rows'] = [];
    for (const [scenario, body] of Object.entries(scenarios)) {
      const t = Date.now();
      let failed: string[];
      try {
        failed = (await body()).checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      } catch (error) {
        failed = [`threw ${(error as Error)?.stack?.split('\n')[0] ?? String(error)}`];
      }
      rows.push({ scenario, ms: Date.now() - t, failed });
      out(
        `run ${run}/${runs}  ${scenario.padEnd(22)} ${String(Date.now() - t).padStart(7)} ms  ${failed.length ? `FAILED: ${failed[0]}` : 'ok'}`,
      );
    }
    const ms = Date.now() - t0;
    results.push({ run, ms, rows });
    out(`run ${run}/${runs}  whole suite: ${ms} ms (target < 60000 ms) ${ms < 60_000 ? 'MET' : 'NOT MET'}`);
  }
  return results;
}

/** 0 when every scenario passed in every run, else 1. */
export function suiteExitCode(results: readonly SuiteRun[]): number {
  return results.every((r) => r.rows.every((row) => row.failed.length === 0)) ? 0 : 1;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const value = (flag: string) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  const runs = Number(value('--runs') ?? 5);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`--runs ${value('--runs')}: give a whole number >= 1, e.g. --runs 5`);
  const only = value('--only')?.split(',');
  const unknown = only?.filter((n) => !SCENARIOS[n]) ?? [];
  if (unknown.length)
    throw new Error(
      `--only: unknown scenario(s) ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}`,
    );
  const chosen = Object.fromEntries(
    Object.entries(SCENARIOS).filter(([n]) =>
      only ? only.includes(n) : !(argv.includes('--no-all-modes') && n === 'all-modes'),
    ),
  );

  const t0 = Date.now();
  // Warm the extraction cache the way the first scenario would, to report it on its own.
  await extractStack({ stack: 'prod-east', activeRegion: 'us-east-1' });
  await extractStack({ stack: 'prod-west', activeRegion: 'us-east-1' });
  console.log(
    `cpus: ${os.cpus().length} · node ${process.version} · ${runs} run(s) of ${Object.keys(chosen).length} scenario(s)`,
  );
  console.log(`extraction (2 stacks, cold): ${Date.now() - t0} ms`);
  const results = await runSuite(chosen, runs);
  const green = results.filter((r) => r.rows.every((row) => row.failed.length === 0)).length;
  console.log(
    `green ${green} of ${runs} run(s); suite wall per run: ${results.map((r) => r.ms).join(', ')} ms`,
  );
  for (const r of results)
    for (const row of r.rows) for (const f of row.failed) console.log(`  run ${r.run} ${row.scenario}: ${f}`);
  return suiteExitCode(results);
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`twin-suite: ${(e as Error).message}`);
      process.exit(1);
    },
  );
}
