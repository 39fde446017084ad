/**
 * Benchmark 1: evaluation time of the real program (index.ts) under the recording mocks, both
 * stacks, at 1, 10 and 50 generated pipelines. Target: linear growth; 50 pipelines under 10 s.
 *   npx ts-node --transpile-only bench/program-scale.ts
 */
import { runProgram } from '../tests/harness/program';
import { exitWith, generatePipelines, ms, STACKS } from './lib';

const SIZES = [1, 10, 50];

async function main(): Promise<void> {
  // Warm-up: the first run pays module loading (TypeScript transpile, providers); not counted.
  await runProgram({ stack: 'prod-east', config: { pipelines: generatePipelines('prod-east', 2) } });
  let ok = true;
  console.log('benchmark 1: program evaluation under mocks');
  console.log('stack      pipelines  resources      ms   ms/pipeline');
  for (const stack of STACKS) {
    const times: Record<number, number> = {};
    for (const n of SIZES) {
      const t = process.hrtime.bigint();
      const run = await runProgram({ stack, config: { pipelines: generatePipelines(stack, n) } });
      const took = ms(process.hrtime.bigint() - t);
      if (run.error) throw run.error;
      times[n] = took;
      console.log(`${stack.padEnd(10)} ${String(n).padStart(9)} ${String(run.resources.length).padStart(10)} ${took.toFixed(0).padStart(7)} ${(took / n).toFixed(0).padStart(13)}`);
    }
    // Linear: the marginal cost per pipeline from 10 to 50 is not above 1.5x that from 1 to 10.
    const early = (times[10] - times[1]) / 9;
    const late = (times[50] - times[10]) / 40;
    const linear = late <= early * 1.5;
    const under = times[50] < 10_000;
    ok &&= linear && under;
    console.log(
      `${stack}: marginal ${early.toFixed(0)} ms/pipeline (1→10), ${late.toFixed(0)} ms/pipeline (10→50): ${linear ? 'linear' : 'SUPERLINEAR'}; ` +
        `50 pipelines ${times[50].toFixed(0)} ms (target < 10000) ${under ? 'MET' : 'NOT MET'}`,
    );
  }
  exitWith(ok);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
