/**
 * `npm run soak -- --seed S --batches N [--pipelines P] [--json FILE]`: plays a seeded fault schedule
 * through the exactly-once world (twin/soak), runs the runbooks' operator commands after healing,
 * and judges the history with the checker. Exits 1 on any violation, printing the seed, the minimal
 * event window around each violation and the command that replays it. Several seeds:
 * `--seed 1,2,3` (one world serves them all).
 */
import * as fs from 'node:fs';
import { Command } from 'commander';
import { ExactlyOnceWorld } from '../twin/exactly-once';
import { runSoak, soakWorldOptions } from '../twin/soak/driver';
import { check, formatVerdict } from '../twin/soak/checker';

async function main(argv: string[]): Promise<number> {
  const program = new Command('soak')
    .requiredOption('--seed <seeds>', 'seed, or comma-separated seeds', (v) =>
      v.split(',').map((s) => Number(s)),
    )
    .requiredOption('--batches <n>', 'batches per seed', (v) => Number(v))
    .option('--pipelines <n>', "how many of the program's pipelines (default: all)", (v) => Number(v))
    .option('--json <file>', 'write every history and verdict to this file')
    .parse(argv);
  const opts = program.opts<{ seed: number[]; batches: number; pipelines?: number; json?: string }>();
  if (opts.seed.some((s) => !Number.isInteger(s)) || !Number.isInteger(opts.batches) || opts.batches < 1) {
    console.error('--seed takes integers and --batches a whole number >= 1');
    return 2;
  }
  const world = await ExactlyOnceWorld.start(soakWorldOptions());
  let failed = 0;
  const out: unknown[] = [];
  try {
    for (const seed of opts.seed) {
      const t = Date.now();
      const history = await runSoak(world, {
        seed,
        batches: opts.batches,
        ...(opts.pipelines ? { pipelines: opts.pipelines } : {}),
        log: (l) => console.error(l),
      });
      const verdict = check(history);
      if (!verdict.ok) failed++;
      for (const line of formatVerdict(verdict)) console.log(line);
      console.log(
        `  ${history.batches} batches, ${history.faults.length} faults, ${history.alerts.length} alerts, ${((Date.now() - t) / 1000).toFixed(1)} s wall`,
      );
      out.push({ history, verdict });
    }
  } finally {
    await world.stop();
  }
  if (opts.json)
    fs.writeFileSync(
      opts.json,
      JSON.stringify(out, (_k, v) => (v === Infinity ? 'Infinity' : v), 1),
    );
  return failed === 0 ? 0 : 1;
}

if (require.main === module)
  main(process.argv).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e);
      process.exit(2);
    },
  );
