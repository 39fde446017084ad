import { lastFireTime, parseSchedule, previousFireTimes } from '../../contracts/cron';

/**
 * Virtual time for the twin. Nothing sleeps: the clock moves when a scenario advances it (the
 * Scheduler fires what falls due) or when a component models a delay (a retry backoff, a Wait
 * state). Every timeline entry carries virtual time.
 */
export class VirtualClock {
  private nowMs: number;
  constructor(start: Date | string) {
    this.nowMs = new Date(start).getTime();
  }
  now(): number {
    return this.nowMs;
  }
  iso(): string {
    return new Date(this.nowMs).toISOString();
  }
  /** Moves forward (never back). */
  set(ms: number): void {
    if (ms > this.nowMs) this.nowMs = ms;
  }
  tick(ms: number): void {
    this.nowMs += ms;
  }
}

// ------------------------------------------------------------------ Scheduler firings

/**
 * The twin fires schedules with the product's own evaluator (contracts/cron.ts, the one the
 * lateness watchdog uses): Scheduler syntax, the schedule's time zone, DST gaps skipped and
 * ambiguous local times fired once. `rate()` ticks count from `createdAtMs`.
 */
export function firings(
  expression: string,
  timeZone: string,
  fromMs: number,
  toMs: number,
  createdAtMs = 0,
): number[] {
  const schedule = parseSchedule(expression);
  const anchor = new Date(createdAtMs);
  for (let count = 16; ; count *= 2) {
    const times = previousFireTimes(schedule, timeZone, new Date(toMs), count, { anchor }).map((t) =>
      t.getTime(),
    );
    if (times.length < count || times[times.length - 1] <= fromMs)
      return times.filter((t) => t > fromMs).reverse();
  }
}

/** True when the schedule fires at exactly the UTC minute `ms`. */
export function isDue(expression: string, ms: number, timeZone = 'UTC', createdAtMs = 0): boolean {
  return (
    lastFireTime(expression, timeZone, new Date(ms), { anchor: new Date(createdAtMs) })?.getTime() === ms
  );
}
