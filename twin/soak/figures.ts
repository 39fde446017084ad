import type { History } from './history';

/** RTO and RPO of one failover (or failback) of a soak, in virtual seconds and batches. */
export interface FailoverFigures {
  seed: number;
  command: 'failover' | 'failback';
  to: string;
  /** Virtual seconds from the command to the end of the first successful build in the survivor. */
  rtoSeconds: number | undefined;
  /** Batches in flight at the command (not built, per the survivor's replica) still not built before the operator. */
  rpoBatches: number;
  inFlight: number;
}

/**
 * For every failover of a history: RTO = first build that SUCCEEDED in the survivor after the
 * command, minus the command's time; RPO = of the batches in flight at the command, those that were
 * not built when the fault phase ended (before any operator command). The goal is RPO 0.
 */
export function failoverFigures(h: History): FailoverFigures[] {
  const builtBefore = new Set(h.beforeOperator.builtBatches);
  return h.failovers.map((f, i) => {
    const next = h.failovers[i + 1]?.atVt ?? Infinity;
    const first = h.builds
      .filter((b) => b.region === f.to && b.status === 'SUCCEEDED' && b.startVt >= f.atVt && b.endVt <= next)
      .sort((a, b) => a.endVt - b.endVt)[0];
    return {
      seed: h.seed,
      command: f.command,
      to: f.to,
      rtoSeconds: first ? first.endVt - f.atVt : undefined,
      rpoBatches: f.inFlight.filter((b) => !builtBefore.has(b)).length,
      inFlight: f.inFlight.length,
    };
  });
}

/** min / median / p90 / max of numbers, for the bench's distributions. */
export function distribution(values: number[]): {
  n: number;
  min: number;
  p50: number;
  p90: number;
  max: number;
} {
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  return v.length === 0
    ? { n: 0, min: NaN, p50: NaN, p90: NaN, max: NaN }
    : { n: v.length, min: v[0], p50: at(0.5), p90: at(0.9), max: v[v.length - 1] };
}
