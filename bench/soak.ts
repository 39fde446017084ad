/**
 * The soak benchmark (issue J): >= 1,000 batches over >= 20 seeds through the exactly-once world,
 * one world for all seeds. Prints each seed's verdict and wall time, batches per minute, and the
 * RTO / RPO distributions over every failover. Exits 1 on any violation (the 10-minute target is
 * reported, not enforced). Figures go to docs/reliability.md.
 *   npx ts-node --transpile-only bench/soak.ts [--seeds 20] [--batches 50] [--first-seed 1001]
 */
import * as os from 'node:os';
import { Command } from 'commander';
import { ExactlyOnceWorld } from '../twin/exactly-once';
import { runSoak, soakWorldOptions, SOAK_MS_PER_SECOND } from '../twin/soak/driver';
import { check, formatVerdict } from '../twin/soak/checker';
import { distribution, failoverFigures, type FailoverFigures } from '../twin/soak/figures';
import { faultCounts, drawSchedule } from '../twin/soak/schedule';

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

async function main(): Promise<number> {
  const opts = new Command('bench-soak')
    .option('--seeds <n>', 'seeds', (v) => Number(v), 20)
    .option('--batches <n>', 'batches per seed', (v) => Number(v), 50)
    .option('--first-seed <n>', 'first seed', (v) => Number(v), 1001)
    .parse(process.argv)
    .opts<{ seeds: number; batches: number; firstSeed: number }>();
  console.log(
    `soak bench: ${opts.seeds} seeds × ${opts.batches} batches, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}, ${SOAK_MS_PER_SECOND} ms per virtual second`,
  );
  const t0 = Date.now();
  const world = await ExactlyOnceWorld.start(soakWorldOptions());
  const startMs = Date.now() - t0;
  const figures: FailoverFigures[] = [];
  const kinds: Record<string, number> = {};
  let failed = 0;
  let batches = 0;
  const tSoak = Date.now();
  try {
    for (let seed = opts.firstSeed; seed < opts.firstSeed + opts.seeds; seed++) {
      const t = Date.now();
      const history = await runSoak(world, { seed, batches: opts.batches });
      const verdict = check(history);
      batches += history.batches;
      if (!verdict.ok) failed++;
      const mine = failoverFigures(history);
      figures.push(...mine);
      for (const f of mine)
        console.log(
          `  ${f.command} to ${f.to}: RTO ${f.rtoSeconds === undefined ? '-' : `${(f.rtoSeconds / 60).toFixed(1)} min`}, RPO ${f.rpoBatches} of ${f.inFlight} in flight`,
        );
      const plan = drawSchedule({ seed, batches: opts.batches, pipelines: history.pipelines });
      for (const [k, n] of Object.entries(faultCounts(plan))) kinds[k] = (kinds[k] ?? 0) + n;
      const [head, ...rest] = formatVerdict(verdict);
      console.log(
        `${head}  (${((Date.now() - t) / 1000).toFixed(1)} s, ${history.faults.length} faults, ${history.alerts.length} alerts, ${history.operator.filter((a) => a.action !== 'none').length} operator actions)`,
      );
      for (const line of rest) console.log(line);
    }
  } finally {
    await world.stop();
  }
  const soakMin = (Date.now() - tSoak) / 60_000;
  console.log(
    `\nworld start ${(startMs / 1000).toFixed(1)} s; soak ${soakMin.toFixed(2)} min for ${batches} batches = ${(batches / soakMin).toFixed(1)} batches/min`,
  );
  console.log(`verdicts: ${opts.seeds - failed} of ${opts.seeds} seeds clean`);
  console.log(
    `faults injected by kind: ${Object.entries(kinds)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}`,
  );
  const rto = distribution(figures.filter((f) => f.rtoSeconds !== undefined).map((f) => f.rtoSeconds! / 60));
  const rpo = distribution(figures.map((f) => f.rpoBatches));
  console.log(
    `failovers+failbacks: ${figures.length} (${figures.filter((f) => f.rtoSeconds === undefined).length} without a build in the survivor before the next switch)`,
  );
  console.log(
    `RTO (virtual minutes): n ${rto.n}, min ${rto.min.toFixed(1)}, p50 ${rto.p50.toFixed(1)}, p90 ${rto.p90.toFixed(1)}, max ${rto.max.toFixed(1)}`,
  );
  console.log(
    `RPO (batches not built without an operator): n ${rpo.n}, min ${rpo.min}, p50 ${rpo.p50}, p90 ${rpo.p90}, max ${rpo.max}; in flight at the command: ${figures.reduce((s, f) => s + f.inFlight, 0)}`,
  );
  console.log(
    `target 1,000 batches in < 10 min: ${batches >= 1000 && soakMin < 10 ? 'met' : `not met (${soakMin.toFixed(1)} min for ${batches})`}`,
  );
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
