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

// ------------------------------------------------------------------ cron (Scheduler syntax)

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

function fieldMatches(field: string, value: number, names?: string[], base = 0): boolean {
  if (field === '*' || field === '?') return true;
  return field.split(',').some((part) => {
    const [rangePart, stepPart] = part.split('/');
    const step = stepPart === undefined ? 1 : Number(stepPart);
    const num = (s: string) => {
      const i = names ? names.indexOf(s.toUpperCase()) : -1;
      return i >= 0 ? i + base : Number(s);
    };
    let lo: number;
    let hi: number;
    if (rangePart === '*') {
      lo = -Infinity;
      hi = Infinity;
    } else if (rangePart.includes('-')) {
      [lo, hi] = rangePart.split('-').map(num) as [number, number];
    } else {
      lo = num(rangePart);
      hi = stepPart === undefined ? lo : Infinity;
    }
    if (value < lo || value > hi) return false;
    return lo === -Infinity ? value % step === 0 : (value - lo) % step === 0;
  });
}

interface LocalParts {
  minute: number;
  hour: number;
  day: number;
  month: number;
  weekday: number;
  year: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function localParts(ms: number, timeZone: string): LocalParts {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      weekday: 'short',
    });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return {
    minute: Number(parts.minute),
    hour: Number(parts.hour),
    day: Number(parts.day),
    month: Number(parts.month),
    weekday: DAYS.indexOf(String(parts.weekday).toUpperCase()) + 1, // Scheduler: 1 = SUN
    year: Number(parts.year),
  };
}

/** True when `cron(...)`/`rate(...)` (Scheduler syntax) is due at the UTC minute `ms` in `timeZone`. */
export function isDue(expression: string, ms: number, timeZone = 'UTC', createdAtMs = 0): boolean {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (rate) {
    const unit = rate[2].startsWith('minute') ? 60_000 : rate[2].startsWith('hour') ? 3_600_000 : 86_400_000;
    return (ms - createdAtMs) % (Number(rate[1]) * unit) === 0;
  }
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (!cron) throw new Error(`unsupported schedule expression ${expression}`);
  const [mi, h, dom, mon, dow, yr] = cron[1].trim().split(/\s+/);
  const p = localParts(ms, timeZone);
  return (
    fieldMatches(mi, p.minute) &&
    fieldMatches(h, p.hour) &&
    fieldMatches(dom, p.day) &&
    fieldMatches(mon, p.month, MONTHS, 1) &&
    fieldMatches(dow.replace(/[L#].*$/, ''), p.weekday, DAYS, 1) &&
    fieldMatches(yr ?? '*', p.year)
  );
}

/**
 * Every firing time (UTC ms, whole minutes) of `expression` in (fromMs, toMs]. Scheduler's
 * precision is one minute; a local time that does not exist (spring forward) never matches, and
 * an ambiguous one (fall back) is reported once (the first UTC minute showing it).
 */
export function firings(expression: string, timeZone: string, fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  let t = Math.floor(fromMs / 60_000) * 60_000 + 60_000;
  const seenLocal = new Set<string>();
  for (; t <= toMs; t += 60_000) {
    if (!isDue(expression, t, timeZone)) continue;
    const p = localParts(t, timeZone);
    const key = `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
    if (seenLocal.has(key)) continue;
    seenLocal.add(key);
    out.push(t);
  }
  return out;
}
