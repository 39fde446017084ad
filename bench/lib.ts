/** Shared bits of the benchmarks in bench/ (not part of npm test). */
import type { StackName } from '../contracts/regions';
import { stackConfig } from '../local/program';

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

/** `n` pipelines shaped like the stack's first one, with distinct names, tables and schedules. */
export function generatePipelines(stack: StackName, n: number): unknown[] {
  const template = (
    JSON.parse(stackConfig(stack)['etl-platform:pipelines']) as Array<Record<string, unknown>>
  )[0];
  return Array.from({ length: n }, (_, i) => ({
    ...template,
    name: `pipe${String(i).padStart(3, '0')}`,
    tables: [`p${i}_a`, `p${i}_b`, `p${i}_c`],
    schedule: {
      expression: `cron(${i % 60} ${Math.floor(i / 60) % 24} * * ? *)`,
      timezone: 'America/New_York',
      flexibleWindowMinutes: 10,
    },
    dbtSelect: `tag:pipe${i}`,
  }));
}

export function ms(hr: bigint): number {
  return Number(hr) / 1e6;
}

export function exitWith(ok: boolean): never {
  process.exit(ok ? 0 : 1);
}
