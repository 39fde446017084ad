/**
 * Benchmark 1: evaluation time of the real program (index.ts) under the recording mocks, both
 * stacks, at 1, 10 and 50 generated pipelines.
 *
 * Each evaluation runs in its own fresh process (as `pulumi up` evaluates the program once per
 * process), after one warm-up evaluation of 2 pipelines that pays module loading; the median of
 * BENCH_REPS processes (default 3) is reported. Earlier in-process runs retained every previous
 * run's heap, which made later, larger runs pay more garbage collection.
 *
 * Targets, judged on CPU time (user+system of the evaluation), which contention on a shared machine
 * inflates far less than wall time (both are printed):
 * - linear: marginal ms per pipeline from 10 to 50 at most 1.5x that from 1 to 10;
 * - 50 pipelines under 10 s.
 *   npx ts-node --transpile-only bench/program-scale.ts
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { STACKS, type StackName } from '../contracts/regions';
import { runProgram } from '../local/program';
import { exitWith, generatePipelines, ms } from './lib';

const SIZES = [1, 10, 50];
const REPS = Number(process.env.BENCH_REPS ?? 3);

interface Sample {
  resources: number;
  wall: number;
  cpu: number;
}

/** Child mode: `program-scale.ts --one <stack> <n>` prints one Sample as JSON. */
async function one(stack: StackName, n: number): Promise<void> {
  await runProgram({ stack, config: { pipelines: generatePipelines(stack, 2) } });
  const c = process.cpuUsage();
  const t = process.hrtime.bigint();
  const run = await runProgram({ stack, config: { pipelines: generatePipelines(stack, n) } });
  const u = process.cpuUsage(c);
  if (run.error) throw run.error;
  const sample: Sample = {
    resources: run.resources.length,
    wall: ms(process.hrtime.bigint() - t),
    cpu: (u.user + u.system) / 1000,
  };
  process.stdout.write(JSON.stringify(sample));
}

function measure(stack: StackName, n: number): Sample {
  const samples = Array.from({ length: REPS }, () => {
    const out = execFileSync(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', __filename, '--one', stack, String(n)],
      {
        cwd: path.resolve(__dirname, '..'),
        env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    return JSON.parse(out.toString()) as Sample;
  });
  const median = (k: 'wall' | 'cpu') => samples.map((s) => s[k]).sort((a, b) => a - b)[Math.floor(REPS / 2)];
  return { resources: samples[0].resources, wall: median('wall'), cpu: median('cpu') };
}

function main(): void {
  let ok = true;
  console.log(
    `benchmark 1: program evaluation under mocks (fresh process per evaluation, median of ${REPS})`,
  );
  console.log('stack      pipelines  resources   cpu ms  wall ms  cpu ms/pipeline');
  for (const stack of STACKS) {
    const at: Record<number, Sample> = {};
    for (const n of SIZES) {
      const s = (at[n] = measure(stack, n));
      console.log(
        `${stack.padEnd(10)} ${String(n).padStart(9)} ${String(s.resources).padStart(10)} ${s.cpu.toFixed(0).padStart(8)} ${s.wall.toFixed(0).padStart(8)} ${(s.cpu / n).toFixed(0).padStart(16)}`,
      );
    }
    const early = (at[10].cpu - at[1].cpu) / 9;
    const late = (at[50].cpu - at[10].cpu) / 40;
    const linear = late <= early * 1.5;
    const under = at[50].cpu < 10_000;
    const perPipeline = at[50].cpu / 50 / (at[10].cpu / 10);
    ok &&= linear && under;
    console.log(
      `${stack}: marginal cpu ${early.toFixed(0)} ms/pipeline (1→10), ${late.toFixed(0)} ms/pipeline (10→50) = ${(late / early).toFixed(2)}x: ${linear ? 'linear (≤ 1.5x)' : 'SUPERLINEAR'}; ` +
        `cost per pipeline at 50 = ${perPipeline.toFixed(2)}x that at 10; 50 pipelines ${at[50].cpu.toFixed(0)} ms cpu (target < 10000) ${under ? 'MET' : 'NOT MET'}`,
    );
  }
  exitWith(ok);
}

if (process.argv[2] === '--one') {
  one(process.argv[3] as StackName, Number(process.argv[4])).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main();
}
