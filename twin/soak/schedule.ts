import { Prng } from './prng';

/** Every fault kind the soak injects (docs/reliability.md says how each one is injected). */
export const FAULT_KINDS = [
  'duplicate-delivery',
  'delayed-delivery',
  'reordered-delivery',
  'archive-replay',
  'replication-lag',
  'partition',
  'failover',
  'failback',
  'pod-kill',
  'api-5xx',
  'api-timeout',
  'dynamodb-throttle',
  'lambda-throttle',
  'slow-dbt',
  'lost-callback',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const DYNAMO_OPS = ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem'] as const;

/** One batch of one pipeline and the faults its deliveries and run suffer. Times are virtual seconds. */
export interface BatchPlan {
  pipeline: string;
  /** Position within the pipeline (batches of one pipeline are played in this order). */
  index: number;
  batchId: string;
  /** Deliveries of the event beyond the first (0-5). */
  duplicates: number;
  /** Per delivery (the first included), virtual seconds before it reaches the bus. */
  delays: number[];
  /** Every delivery of this batch arrives after the pipeline's next batch was played (reordering). */
  late: boolean;
  /** Virtual seconds dbt takes. */
  dbtSeconds: number;
  slow: boolean;
  /** StartDbtRun POSTs answered 503 before reaching the app. */
  api5xx: number;
  /** StartDbtRun POSTs whose reply is lost after the app accepted them. */
  apiTimeouts: number;
  lambdaThrottles: number;
  dynamoThrottle?: { op: (typeof DYNAMO_OPS)[number]; n: number };
  lostCallback: boolean;
  /** SIGKILL of one app pod of the active region, `afterSeconds` into the batch; restart after `downSeconds`. */
  podKill?: { pod: number; afterSeconds: number; downSeconds: number };
}

/** Faults of the whole world, fired when the driver starts the `atBatch`-th batch (any pipeline). */
export type GlobalFault =
  | { kind: 'replication-lag'; atBatch: number; delaySeconds: number; lagSeconds: number }
  | { kind: 'partition'; atBatch: number; delaySeconds: number; healAfterSeconds: number }
  | { kind: 'failover' | 'failback'; atBatch: number; delaySeconds: number; to: 'us-east-1' | 'us-west-1' }
  | { kind: 'archive-replay'; atBatch: number; delaySeconds: number; windowSeconds: number };

export interface SoakPlan {
  seed: number;
  pipelines: string[];
  batches: BatchPlan[];
  global: GlobalFault[];
}

export interface DrawOptions {
  /** The PRNG's seed: the same seed gives the same schedule. */
  seed: number;
  /** Total batches, spread round-robin over the pipelines. */
  batches: number;
  /** The pipelines, in the order batches are dealt to them. */
  pipelines: readonly string[];
  /** Pods per region (a pod kill picks one). @default 2 */
  pods?: number;
}

/** Days between two seeds' first batches: batch ids stay distinct in one warehouse. */
const DAYS_PER_SEED = 1000;
const BASE = Date.UTC(2030, 0, 1, 7, 0, 0);

/** `<pipeline>-yyyyMMddT070000Z`: the seed picks a 1,000-day range, the index the day in it. */
export function batchIdOf(seed: number, pipeline: string, index: number): string {
  const day = (Math.abs(seed) % 2900) * DAYS_PER_SEED + index;
  const iso = new Date(BASE + day * 86_400_000).toISOString();
  return `${pipeline}-${iso.slice(0, 10).replace(/-/g, '')}T070000Z`;
}

function drawBatch(rng: Prng, pipeline: string, index: number, seed: number, pods: number): BatchPlan {
  const duplicates = rng.chance(0.5) ? rng.int(1, 5) : 0;
  const delays = Array.from({ length: duplicates + 1 }, () =>
    rng.chance(0.7) ? rng.float(0, 30) : rng.float(30, 900),
  );
  const slow = rng.chance(0.015);
  const plan: BatchPlan = {
    pipeline,
    index,
    batchId: batchIdOf(seed, pipeline, index),
    duplicates,
    delays,
    late: rng.chance(0.03),
    slow,
    dbtSeconds: slow ? rng.float(1800, 18_000) : rng.float(60, 240),
    api5xx: rng.chance(0.08) ? rng.int(1, 3) : 0,
    apiTimeouts: rng.chance(0.06) ? rng.int(1, 2) : 0,
    lambdaThrottles: rng.chance(0.06) ? rng.int(1, 3) : 0,
    lostCallback: rng.chance(0.03),
  };
  if (rng.chance(0.06)) plan.dynamoThrottle = { op: rng.pick(DYNAMO_OPS), n: rng.int(1, 5) };
  if (rng.chance(0.04))
    plan.podKill = {
      pod: rng.int(0, pods - 1),
      afterSeconds: rng.float(0, 300),
      downSeconds: rng.float(30, 300),
    };
  return plan;
}

function drawGlobal(rng: Prng, total: number): GlobalFault[] {
  const at = () => rng.int(1, Math.max(1, total - 1));
  const out: GlobalFault[] = [];
  for (let i = 0; i < Math.max(1, Math.round(total / 20)); i++)
    out.push({
      kind: 'replication-lag',
      atBatch: at(),
      delaySeconds: rng.float(0, 300),
      lagSeconds: rng.float(0, 60),
    });
  if (rng.chance(0.6))
    out.push({
      kind: 'partition',
      atBatch: at(),
      delaySeconds: rng.float(0, 300),
      healAfterSeconds: rng.float(60, 1800),
    });
  // Failover, then (more often than not) failback, at random points, often while runs are in flight.
  const switches = rng.chance(0.7) ? 2 : 1;
  // Distinct points, so the failback always fires after the failover it undoes.
  const points = Array.from({ length: switches }, at)
    .sort((a, b) => a - b)
    .map((p, i, all) => (i > 0 && p <= all[i - 1] ? all[i - 1] + 1 : p));
  points.forEach((atBatch, i) =>
    out.push({
      kind: i % 2 === 0 ? 'failover' : 'failback',
      atBatch,
      delaySeconds: rng.float(0, 300),
      to: i % 2 === 0 ? 'us-west-1' : 'us-east-1',
    }),
  );
  out.push({
    kind: 'archive-replay',
    atBatch: at(),
    delaySeconds: rng.float(0, 300),
    windowSeconds: rng.float(600, 7200),
  });
  return out.sort((a, b) => a.atBatch - b.atBatch || a.delaySeconds - b.delaySeconds);
}

/** The fault schedule: a pure function of the options (same seed, same schedule). */
export function drawSchedule(options: DrawOptions): SoakPlan {
  const { seed, batches, pipelines } = options;
  if (!Number.isInteger(batches) || batches < 1)
    throw new Error(`drawSchedule: batches must be >= 1, got ${batches}`);
  if (pipelines.length === 0) throw new Error('drawSchedule: no pipelines');
  const rng = new Prng(seed);
  const plans: BatchPlan[] = [];
  for (let i = 0; i < batches; i++) {
    const pipeline = pipelines[i % pipelines.length];
    plans.push(drawBatch(rng, pipeline, Math.floor(i / pipelines.length), seed, options.pods ?? 2));
  }
  return { seed, pipelines: [...pipelines], batches: plans, global: drawGlobal(rng, batches) };
}

/** How many faults the plan injects, by kind (the alert budget of invariant 6 is per fault). */
export function faultCounts(plan: SoakPlan): Record<FaultKind, number> {
  const n = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  for (const b of plan.batches) {
    n['duplicate-delivery'] += b.duplicates;
    n['delayed-delivery'] += b.delays.filter((d) => d >= 30).length;
    n['reordered-delivery'] += b.late ? 1 : 0;
    n['slow-dbt'] += b.slow ? 1 : 0;
    n['api-5xx'] += b.api5xx;
    n['api-timeout'] += b.apiTimeouts;
    n['lambda-throttle'] += b.lambdaThrottles;
    n['dynamodb-throttle'] += b.dynamoThrottle ? 1 : 0;
    n['lost-callback'] += b.lostCallback ? 1 : 0;
    n['pod-kill'] += b.podKill ? 1 : 0;
  }
  for (const g of plan.global) n[g.kind] += 1;
  return n;
}
