import type { BuildRecord, FaultRecord, History } from './history';
import { batchSk } from '../../contracts/control-table';

/**
 * The history checker: judges a soak's history (history.ts) against the six invariants of issue J.
 *   1. at most one successful build per (pipeline, batch);
 *   2. no two builds of one pipeline overlap in time;
 *   3. the watermark never moves back (in any replica);
 *   4. no silent loss: before the operator, every due batch is built, or FAILED with an alert naming it;
 *   5. after healing and the runbooks' operator commands, every due batch is built (or, per
 *      consistency-failure.md, superseded: FAILED out of order while a newer batch is built);
 *   6. alerts stay in proportion: none about a batch no fault touched, at most `maxAlertsPerFault`
 *      per fault touching a batch, and in total.
 * A violation carries the minimal event window around it and the command that replays the seed.
 */

export const INVARIANTS = {
  1: 'at most one successful build per (pipeline, batch)',
  2: 'no two builds of one pipeline overlap in time',
  3: 'the watermark never moves back',
  4: 'no silent loss: every due batch is built, or FAILED with an alert',
  5: 'after healing, the runbooks bring every batch to built',
  6: 'alerts stay in proportion to injected faults',
} as const;
export type InvariantId = keyof typeof INVARIANTS;

export interface CheckOptions {
  /** Alerts allowed per fault touching a batch (and per injected fault in total). @default 3 */
  maxAlertsPerFault?: number;
  /** A fault without an end touches batches running up to this many virtual seconds after it. @default 1800 */
  faultReachSeconds?: number;
  /** Virtual seconds of history shown either side of a violation. @default 600 */
  windowSeconds?: number;
}

export interface Violation {
  invariant: InvariantId;
  pipeline?: string;
  batchId?: string;
  atVt: number;
  message: string;
  /** The events around it, one line each, in time order. */
  window: string[];
}

export interface Verdict {
  seed: number;
  ok: boolean;
  violations: Violation[];
  /** `npm run soak -- --seed S --batches N --pipelines P`: replays this history's schedule. */
  replay: string;
}

const pipelineOf = (batchId: string) => batchId.replace(/-\d{8}T\d{6}Z$/, '');

export function replayCommand(h: Pick<History, 'seed' | 'batches' | 'pipelines'>): string {
  return `npm run soak -- --seed ${h.seed} --batches ${h.batches} --pipelines ${h.pipelines.length}`;
}

export function check(h: History, options: CheckOptions = {}): Verdict {
  const opts = { maxAlertsPerFault: 3, faultReachSeconds: 1800, windowSeconds: 600, ...options };
  const found: Array<Omit<Violation, 'window'>> = [
    ...doubleBuilds(h),
    ...overlaps(h),
    ...watermarkRegressions(h),
    ...silentLosses(h),
    ...unresolved(h),
    ...alertStorms(h, opts),
  ];
  const violations = found.map((v) => ({ ...v, window: eventWindow(h, v, opts.windowSeconds) }));
  return { seed: h.seed, ok: violations.length === 0, violations, replay: replayCommand(h) };
}

// ---------------------------------------------------------------- the invariants

function doubleBuilds(h: History): Array<Omit<Violation, 'window'>> {
  const ok = new Map<string, BuildRecord[]>();
  for (const b of h.builds.filter((r) => r.status === 'SUCCEEDED'))
    ok.set(b.batch_id, [...(ok.get(b.batch_id) ?? []), b]);
  return [...ok.entries()]
    .filter(([, rows]) => rows.length > 1)
    .map(([batchId, rows]) => ({
      invariant: 1 as const,
      pipeline: rows[0].pipeline,
      batchId,
      atVt: rows[1].startVt,
      message: `${rows.length} successful builds: ${rows.map((r) => `${r.region} attempt ${r.attempt} epoch ${r.epoch} run ${r.run_id}`).join('; ')}`,
    }));
}

function overlaps(h: History): Array<Omit<Violation, 'window'>> {
  const out: Array<Omit<Violation, 'window'>> = [];
  for (const pipeline of h.pipelines) {
    const spans = h.builds.filter((b) => b.pipeline === pipeline).sort((a, b) => a.startVt - b.startVt);
    let latest: BuildRecord | undefined;
    for (const s of spans) {
      if (latest && latest.endVt > s.startVt)
        out.push({
          invariant: 2,
          pipeline,
          batchId: s.batch_id,
          atVt: s.startVt,
          message: `build of ${s.batch_id} (${s.region}, run ${s.run_id}) started at ${s.startVt.toFixed(1)} s while ${latest.batch_id} (${latest.region}, run ${latest.run_id}) ran until ${Number.isFinite(latest.endVt) ? `${latest.endVt.toFixed(1)} s` : 'never finished'}`,
        });
      if (!latest || s.endVt > latest.endVt) latest = s;
    }
  }
  return out;
}

function watermarkRegressions(h: History): Array<Omit<Violation, 'window'>> {
  const out: Array<Omit<Violation, 'window'>> = [];
  const last = new Map<string, string>();
  for (const s of [...h.watermarks].sort((a, b) => a.atVt - b.atVt)) {
    const key = `${s.region}/${s.pipeline}`;
    const prev = last.get(key);
    if (prev !== undefined && s.batchId < prev)
      out.push({
        invariant: 3,
        pipeline: s.pipeline,
        batchId: s.batchId,
        atVt: s.atVt,
        message: `${s.region}'s watermark of ${s.pipeline} went back from ${prev} to ${s.batchId}`,
      });
    if (prev === undefined || s.batchId > prev) last.set(key, s.batchId);
  }
  return out;
}

const named = (h: History, batchId: string) =>
  h.alerts.filter((a) => `${a.subject} ${a.message}`.includes(batchId));

function records(h: History, when: 'healed' | 'final', batchId: string): Record<string, unknown>[] {
  return Object.values(h.control[when]).flatMap((items) =>
    items.filter((i) => i.sk === batchSk(batchId, 'DOWNSTREAM')),
  );
}

function silentLosses(h: History): Array<Omit<Violation, 'window'>> {
  const built = new Set(h.beforeOperator.builtBatches);
  const out: Array<Omit<Violation, 'window'>> = [];
  for (const d of h.due) {
    if (built.has(d.batchId)) continue;
    const recs = records(h, 'healed', d.batchId);
    const failed = recs.some((r) => r.status === 'FAILED');
    const alerted = named(h, d.batchId).length > 0;
    if (failed && alerted) continue;
    const last = h.executions.filter((e) => e.batchId === d.batchId).pop();
    out.push({
      invariant: 4,
      ...d,
      atVt: last?.endVt ?? last?.startVt ?? 0,
      message: `not built and not FAILED with an alert before the operator: records ${recs.map((r) => `${r.status}${r.error ? ` ${r.error}` : ''}`).join(', ') || 'none'}, ${alerted ? 'alerted' : 'no alert'}`,
    });
  }
  return out;
}

function unresolved(h: History): Array<Omit<Violation, 'window'>> {
  const built = new Set(h.builds.filter((b) => b.status === 'SUCCEEDED').map((b) => b.batch_id));
  const out: Array<Omit<Violation, 'window'>> = [];
  for (const d of h.due) {
    if (built.has(d.batchId)) continue;
    const superseded =
      records(h, 'final', d.batchId).some(
        (r) => r.status === 'FAILED' && /out of order/.test(String(r.cause)),
      ) && h.due.some((o) => o.pipeline === d.pipeline && o.batchId > d.batchId && built.has(o.batchId));
    if (superseded) continue;
    const actions = h.operator.filter((a) => a.batchId === d.batchId);
    out.push({
      invariant: 5,
      ...d,
      atVt: h.executions.filter((e) => e.batchId === d.batchId).pop()?.endVt ?? 0,
      message: `not built after the operator: ${actions.map((a) => `${a.action}: ${a.detail}`).join(' | ') || 'no operator action'}; final records ${
        records(h, 'final', d.batchId)
          .map((r) => `${r.status} ${r.error ?? ''}`)
          .join(', ') || 'none'
      }`,
    });
  }
  return out;
}

function span(h: History, batchId: string): [number, number] | undefined {
  const ex = h.executions.filter((e) => e.batchId === batchId);
  if (ex.length === 0) return undefined;
  return [Math.min(...ex.map((e) => e.startVt)), Math.max(...ex.map((e) => e.endVt ?? Infinity))];
}

/** Faults that touch a batch: its own, and any other whose reach overlaps the batch's executions. */
export function faultsTouching(h: History, batchId: string, reach = 1800): FaultRecord[] {
  const s = span(h, batchId);
  return h.faults.filter((f) => {
    if (f.batchId === batchId) return true;
    if (!s) return false;
    const end = f.endVt ?? f.atVt + reach;
    return f.atVt <= s[1] && end >= s[0];
  });
}

function alertStorms(h: History, opts: Required<CheckOptions>): Array<Omit<Violation, 'window'>> {
  const out: Array<Omit<Violation, 'window'>> = [];
  const budget = opts.maxAlertsPerFault;
  if (h.alerts.length > budget * h.faults.length)
    out.push({
      invariant: 6,
      atVt: h.alerts[budget * h.faults.length]?.atVt ?? 0,
      message: `${h.alerts.length} alerts for ${h.faults.length} injected faults (at most ${budget} per fault)`,
    });
  for (const d of h.due) {
    const alerts = named(h, d.batchId);
    if (alerts.length === 0) continue;
    const touching = faultsTouching(h, d.batchId, opts.faultReachSeconds).length;
    if (alerts.length > budget * touching)
      out.push({
        invariant: 6,
        ...d,
        atVt: alerts[0].atVt,
        message:
          touching === 0
            ? `${alerts.length} alert(s) about a batch no fault touched: ${alerts[0].subject}`
            : `${alerts.length} alerts about it for ${touching} fault(s) touching it (at most ${budget} per fault)`,
      });
  }
  return out;
}

// ---------------------------------------------------------------- the window

/**
 * The violation's story: every event of its batch, whenever it happened, and the events of its
 * pipeline and of the whole world (failovers, partitions) within ±`seconds` of it, in time order.
 */
export function eventWindow(h: History, v: Omit<Violation, 'window'>, seconds: number): string[] {
  const near = (x: number) => x >= v.atVt - seconds && x <= v.atVt + seconds;
  const relevant = (x: number, batchId?: string, pipeline?: string) =>
    (v.batchId !== undefined && batchId === v.batchId) ||
    (near(x) &&
      (v.batchId === undefined ||
        (batchId === undefined && pipeline === undefined) ||
        (pipeline ?? (batchId ? pipelineOf(batchId) : undefined)) === v.pipeline));
  const lines: Array<[number, string]> = [];
  const t = (x: number) => `${x.toFixed(1).padStart(8)} s`;
  // Pod kills and throttles hit whichever run comes next, of any pipeline: shown like world events.
  const regionWide = new Set(['pod-kill', 'lambda-throttle', 'dynamodb-throttle']);
  for (const f of h.faults)
    if (regionWide.has(f.kind) ? near(f.atVt) : relevant(f.atVt, f.batchId, f.pipeline))
      lines.push([f.atVt, `${t(f.atVt)} fault ${f.kind}${f.batchId ? ` ${f.batchId}` : ''}: ${f.detail}`]);
  for (const e of h.executions) {
    if (relevant(e.startVt, e.batchId, e.pipeline))
      lines.push([e.startVt, `${t(e.startVt)} start ${e.region} ${e.name} (${e.cause})`]);
    if (e.endVt !== undefined && relevant(e.endVt, e.batchId, e.pipeline))
      lines.push([
        e.endVt,
        `${t(e.endVt)} end   ${e.region} ${e.name}: ${e.status}${e.error ? ` ${e.error}` : ''}${e.outcome ? ` ${e.outcome}` : ''}`,
      ]);
  }
  for (const b of h.builds)
    if (relevant(b.startVt, b.batch_id, b.pipeline))
      lines.push([
        b.startVt,
        `${t(b.startVt)} build ${b.batch_id} ${b.region} attempt ${b.attempt} epoch ${b.epoch}: ${b.status} until ${Number.isFinite(b.endVt) ? b.endVt.toFixed(1) : '-'}${b.endedBy ? ` (${b.endedBy})` : ''}`,
      ]);
  for (const a of h.alerts)
    if (v.batchId === undefined ? near(a.atVt) : `${a.subject} ${a.message}`.includes(v.batchId))
      lines.push([a.atVt, `${t(a.atVt)} alert ${a.region}: ${a.message.slice(0, 160)}`]);
  for (const f of h.failovers) if (near(f.atVt)) lines.push([f.atVt, `${t(f.atVt)} ${f.command} to ${f.to}`]);
  for (const a of h.operator.filter((o) => o.batchId === v.batchId))
    lines.push([Infinity, `  operator ${a.action}: ${a.detail.slice(0, 200)}`]);
  return lines.sort((a, b) => a[0] - b[0]).map(([, l]) => l);
}

/** The verdict as printed by `npm run soak`: seed, each violation with its window, the replay command. */
export function formatVerdict(v: Verdict): string[] {
  if (v.ok) return [`seed ${v.seed}: OK (all ${Object.keys(INVARIANTS).length} invariants hold)`];
  const out = [`seed ${v.seed}: ${v.violations.length} violation(s)`];
  for (const x of v.violations) {
    out.push(
      `  invariant ${x.invariant} (${INVARIANTS[x.invariant]}): ${x.batchId ?? ''} ${x.message}`.trimEnd(),
    );
    for (const line of x.window.slice(0, 30)) out.push(`      ${line}`);
    if (x.window.length > 30) out.push(`      … ${x.window.length - 30} more`);
  }
  out.push(`  replay: ${v.replay}`);
  return out;
}
