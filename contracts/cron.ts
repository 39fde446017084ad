import { InvalidScheduleExpression } from './errors';

/**
 * An evaluator for EventBridge Scheduler recurring expressions, pure (no I/O, no clock):
 * which instants did a schedule fire at, at or before a given instant?
 *
 * `cron(minutes hours day-of-month month day-of-week year)`, evaluated in an IANA time zone:
 *
 * | field        | values                      | supported                                            |
 * |--------------|-----------------------------|------------------------------------------------------|
 * | minutes      | 0-59                        | `*`, `n`, `a-b`, lists, `a/s`, `*\/s`, `a-b/s`        |
 * | hours        | 0-23                        | same                                                 |
 * | day-of-month | 1-31                        | same, `?`, `L` (last day), `nW` (nearest weekday), `LW` |
 * | month        | 1-12 or JAN-DEC             | `*`, `n`, `a-b`, lists, steps                        |
 * | day-of-week  | 1-7 or SUN-SAT (1 = Sunday) | `*`, `?`, `n`, `a-b`, lists, `L` (= 7, Saturday), `nL` (last such weekday), `n#k` (k-th such weekday) |
 * | year         | 1970-2199                   | `*`, `n`, `a-b`, lists, steps                        |
 *
 * Exactly one of day-of-month and day-of-week must be `?` (Scheduler's rule).
 * NOT supported (they throw `InvalidScheduleExpression` naming the field): wrap-around ranges
 * (`FRI-MON`, `22-2`), `L-n` offsets, `W` combined with lists or ranges, `L`/`#` inside lists,
 * steps on day-of-week. Scheduler accepts few of these anyway.
 *
 * Daylight saving (aws-facts: "a nonexistent local time is skipped in spring, and an ambiguous
 * one runs once in autumn"): a local time that does not exist on a spring-forward day yields no
 * fire time; a local time that occurs twice on a fall-back day yields one fire time, the first
 * occurrence (daylight time). Which occurrence Scheduler picks is not documented; if it is the
 * second, the watchdog expects a batch id one hour earlier than the real one and raises one false
 * "late" alert for that tick (see docs/watchdog.md).
 *
 * `rate(n minute(s)|hour(s)|day(s))` fires every fixed duration of absolute time (no time zone,
 * no DST) from the schedule's start, which the expression does not contain: pass `anchor`, any one
 * instant the schedule fired (or its StartDate). Without it a rate() expression throws.
 *
 * Precision is one minute (Scheduler's). Seconds of `before` are honoured: a fire time equal to
 * `before` counts as "at or before".
 */

export type Schedule =
  | { kind: 'cron'; expression: string; fields: CronFields }
  | { kind: 'rate'; expression: string; periodMs: number };

export interface CronFields {
  minutes: Set<number>;
  hours: Set<number>;
  months: Set<number>;
  /** undefined = any (`*`), else the set of years. */
  years?: Set<number>;
  dayOfMonth: DayOfMonthRule | undefined; // undefined when the field is `?`
  dayOfWeek: DayOfWeekRule | undefined; // undefined when the field is `?`
}

type DayOfMonthRule =
  | { kind: 'set'; days: Set<number> } // `*` is every day 1..31
  | { kind: 'last' } // L
  | { kind: 'lastWeekday' } // LW
  | { kind: 'nearestWeekday'; day: number }; // 15W

type DayOfWeekRule =
  | { kind: 'set'; days: Set<number> } // 1 = SUN .. 7 = SAT
  | { kind: 'last'; day: number } // 5L: last Thursday
  | { kind: 'nth'; day: number; nth: number }; // 2#1: first Monday

export interface FireTimeOptions {
  /** rate() only: an instant the schedule fired at (or its StartDate). */
  anchor?: Date;
}

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const MINUTE_MS = 60_000;
/** How far back previousFireTimes searches before giving up (covers `cron(0 0 29 2 ? *)` and sparse years). */
const MAX_LOOKBACK_DAYS = 366 * 9;

function invalid(expression: string, problem: string): InvalidScheduleExpression {
  return new InvalidScheduleExpression(`Schedule expression "${expression}": ${problem}`);
}

/** Parses and validates an expression. Throws InvalidScheduleExpression with the reason. */
export function parseSchedule(expression: string): Schedule {
  const trimmed = expression.trim();
  const rate = /^rate\((.*)\)$/.exec(trimmed);
  if (rate) return { kind: 'rate', expression, periodMs: parseRate(expression, rate[1]) };
  const cron = /^cron\((.*)\)$/.exec(trimmed);
  if (cron) return { kind: 'cron', expression, fields: parseCron(expression, cron[1]) };
  if (/^at\(/.test(trimmed)) throw invalid(expression, 'one-time at() schedules have no cadence to watch');
  throw invalid(expression, 'it is neither cron(...) nor rate(...)');
}

function parseRate(expression: string, body: string): number {
  const m = /^(\d+) (minute|minutes|hour|hours|day|days)$/.exec(body.trim());
  if (!m) throw invalid(expression, 'rate() takes "<number> <minute(s)|hour(s)|day(s)>"');
  const value = Number(m[1]);
  if (value < 1) throw invalid(expression, 'a rate must be at least 1');
  const unit = m[2].replace(/s$/, '');
  if (value === 1 && m[2].endsWith('s')) throw invalid(expression, `use "1 ${unit}"`);
  if (value > 1 && !m[2].endsWith('s')) throw invalid(expression, `use "${value} ${unit}s"`);
  const unitMs = unit === 'minute' ? MINUTE_MS : unit === 'hour' ? 60 * MINUTE_MS : 24 * 60 * MINUTE_MS;
  return value * unitMs;
}

function parseCron(expression: string, body: string): CronFields {
  const parts = body.trim().split(/\s+/);
  if (parts.length !== 6) {
    throw invalid(
      expression,
      `cron() needs 6 fields (minutes hours day-of-month month day-of-week year), got ${parts.length}`,
    );
  }
  const [min, hour, dom, month, dow, year] = parts;
  if ((dom === '?') === (dow === '?')) {
    throw invalid(expression, 'exactly one of day-of-month and day-of-week must be "?"');
  }
  const years = year === '*' ? undefined : parseSet(expression, 'year', year, 1970, 2199);
  return {
    minutes: parseSet(expression, 'minutes', min, 0, 59),
    hours: parseSet(expression, 'hours', hour, 0, 23),
    months: parseSet(expression, 'month', month, 1, 12, MONTHS),
    years,
    dayOfMonth: dom === '?' ? undefined : parseDayOfMonth(expression, dom),
    dayOfWeek: dow === '?' ? undefined : parseDayOfWeek(expression, dow),
  };
}

function parseValue(
  expression: string,
  field: string,
  raw: string,
  lo: number,
  hi: number,
  names?: string[],
): number {
  const upper = raw.toUpperCase();
  const named = names ? names.indexOf(upper) : -1;
  const value = named >= 0 ? named + 1 : /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < lo || value > hi) {
    throw invalid(
      expression,
      `the ${field} field has "${raw}", expected ${lo}-${hi}${names ? ` or ${names[0]}-${names[names.length - 1]}` : ''}`,
    );
  }
  return value;
}

/** `*`, `n`, `a-b`, `a/s`, `*\/s`, `a-b/s` and comma lists of them. */
function parseSet(
  expression: string,
  field: string,
  raw: string,
  lo: number,
  hi: number,
  names?: string[],
): Set<number> {
  const out = new Set<number>();
  for (const item of raw.split(',')) {
    if (item === '') throw invalid(expression, `the ${field} field "${raw}" has an empty list item`);
    const [rangePart, stepPart, extra] = item.split('/');
    if (extra !== undefined) throw invalid(expression, `the ${field} field item "${item}" has two "/"`);
    let step = 1;
    if (stepPart !== undefined) {
      if (!/^\d+$/.test(stepPart) || Number(stepPart) < 1) {
        throw invalid(expression, `the ${field} field item "${item}" has an invalid step "${stepPart}"`);
      }
      step = Number(stepPart);
    }
    let from: number;
    let to: number;
    if (rangePart === '*') {
      from = lo;
      to = hi;
    } else if (rangePart.includes('-')) {
      const [a, b, more] = rangePart.split('-');
      if (more !== undefined || a === '' || b === '') {
        throw invalid(expression, `the ${field} field item "${item}" is not a range a-b`);
      }
      from = parseValue(expression, field, a, lo, hi, names);
      to = parseValue(expression, field, b, lo, hi, names);
      if (from > to) {
        throw invalid(
          expression,
          `the ${field} field range "${rangePart}" wraps around, which is not supported: split it into two ranges`,
        );
      }
    } else {
      from = parseValue(expression, field, rangePart, lo, hi, names);
      // `a/s` means a, a+s, ... up to the field's maximum.
      to = stepPart !== undefined ? hi : from;
    }
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

function parseDayOfMonth(expression: string, raw: string): DayOfMonthRule {
  const upper = raw.toUpperCase();
  if (upper === 'L') return { kind: 'last' };
  if (upper === 'LW') return { kind: 'lastWeekday' };
  const w = /^(\d+)W$/.exec(upper);
  if (w) return { kind: 'nearestWeekday', day: parseValue(expression, 'day-of-month', w[1], 1, 31) };
  if (/[LW#]/.test(upper)) {
    throw invalid(
      expression,
      `the day-of-month form "${raw}" is not supported (use L, LW, nW, or numbers, ranges, lists and steps)`,
    );
  }
  return { kind: 'set', days: parseSet(expression, 'day-of-month', raw, 1, 31) };
}

function parseDayOfWeek(expression: string, raw: string): DayOfWeekRule {
  const upper = raw.toUpperCase();
  if (upper === 'L') return { kind: 'set', days: new Set([7]) };
  const last = /^([A-Z]{3}|\d)L$/.exec(upper);
  if (last) return { kind: 'last', day: parseValue(expression, 'day-of-week', last[1], 1, 7, DAYS) };
  const nth = /^([A-Z]{3}|\d)#(\d)$/.exec(upper);
  if (nth) {
    const k = Number(nth[2]);
    if (k < 1 || k > 5)
      throw invalid(expression, `the day-of-week "${raw}": the occurrence after # must be 1-5`);
    return { kind: 'nth', day: parseValue(expression, 'day-of-week', nth[1], 1, 7, DAYS), nth: k };
  }
  if (/[L#W/]/.test(upper.replace(/SUN|MON|TUE|WED|THU|FRI|SAT/g, ''))) {
    throw invalid(
      expression,
      `the day-of-week form "${raw}" is not supported (use names or 1-7, ranges, lists, L, nL or n#k)`,
    );
  }
  return { kind: 'set', days: parseSet(expression, 'day-of-week', raw, 1, 7, DAYS) };
}

// ---------------------------------------------------------------- calendar helpers (UTC-based, zone-free)

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** 1 = Sunday .. 7 = Saturday, as cron counts. */
function weekday(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1;
}

function isWeekday(year: number, month: number, day: number): boolean {
  const d = weekday(year, month, day);
  return d >= 2 && d <= 6;
}

/** Quartz/Scheduler `nW`: the weekday nearest day n, never crossing into another month. */
function nearestWeekday(year: number, month: number, day: number): number | undefined {
  const last = daysInMonth(year, month);
  if (day > last) return undefined;
  const d = weekday(year, month, day);
  if (d === 7) return day === 1 ? 3 : day - 1; // Saturday → Friday, or Monday the 3rd
  if (d === 1) return day === last ? day - 2 : day + 1; // Sunday → Monday, or Friday before
  return day;
}

function dayMatches(f: CronFields, year: number, month: number, day: number): boolean {
  if (f.years && !f.years.has(year)) return false;
  if (!f.months.has(month)) return false;
  const dom = f.dayOfMonth;
  if (dom) {
    const last = daysInMonth(year, month);
    switch (dom.kind) {
      case 'set':
        return dom.days.has(day);
      case 'last':
        return day === last;
      case 'lastWeekday': {
        let d = last;
        while (!isWeekday(year, month, d)) d--;
        return day === d;
      }
      case 'nearestWeekday':
        return nearestWeekday(year, month, dom.day) === day;
    }
  }
  const dow = f.dayOfWeek;
  if (dow) {
    const wd = weekday(year, month, day);
    switch (dow.kind) {
      case 'set':
        return dow.days.has(wd);
      case 'last':
        return wd === dow.day && day + 7 > daysInMonth(year, month);
      case 'nth':
        return wd === dow.day && Math.ceil(day / 7) === dow.nth;
    }
  }
  return false;
}

// ---------------------------------------------------------------- time zones (Intl only)

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
      });
    } catch {
      throw new InvalidScheduleExpression(`Time zone "${timeZone}" is not an IANA time zone name`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
}

/** The wall-clock time in `timeZone` at instant `ms` (to the minute). */
export function localTime(ms: number, timeZone: string): LocalTime {
  const parts = formatter(timeZone).formatToParts(new Date(ms));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  return {
    year: get('year'),
    month: get('month'),
    day: get('day'),
    hour: get('hour') % 24,
    minute: get('minute'),
  };
}

/** Offset of `timeZone` from UTC at instant `ms`, in ms (local = utc + offset). */
function offsetAt(ms: number, timeZone: string): number {
  const t = localTime(ms, timeZone);
  const asUtc = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute);
  return asUtc - Math.floor(ms / MINUTE_MS) * MINUTE_MS;
}

/**
 * The instants at which the wall clock in `timeZone` shows the given local minute: none (spring
 * gap), one, or two (autumn overlap), ascending.
 */
export function localToInstants(t: LocalTime, timeZone: string): number[] {
  const naive = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute);
  // Any offset in force within a day either side; zones change offset at most once a day.
  const offsets = new Set([
    offsetAt(naive - 86_400_000, timeZone),
    offsetAt(naive, timeZone),
    offsetAt(naive + 86_400_000, timeZone),
  ]);
  const found: number[] = [];
  for (const offset of offsets) {
    const candidate = naive - offset;
    const back = localTime(candidate, timeZone);
    if (
      back.year === t.year &&
      back.month === t.month &&
      back.day === t.day &&
      back.hour === t.hour &&
      back.minute === t.minute
    ) {
      if (!found.includes(candidate)) found.push(candidate);
    }
  }
  return found.sort((a, b) => a - b);
}

// ---------------------------------------------------------------- fire times

/**
 * Up to `count` fire times at or before `before`, newest first. An expression that never fires
 * in the last ~9 years returns fewer (possibly none).
 */
export function previousFireTimes(
  expression: string | Schedule,
  timezone: string,
  before: Date,
  count: number,
  options: FireTimeOptions = {},
): Date[] {
  const schedule = typeof expression === 'string' ? parseSchedule(expression) : expression;
  const limit = before.getTime();
  if (Number.isNaN(limit)) throw new RangeError('previousFireTimes: `before` is not a valid date');
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError('previousFireTimes: count must be a positive integer');

  if (schedule.kind === 'rate') {
    if (!options.anchor || Number.isNaN(options.anchor.getTime())) {
      throw invalid(
        schedule.expression,
        'rate() fire times depend on when the schedule started: pass an anchor (a known fire time or the StartDate)',
      );
    }
    const anchor = Math.floor(options.anchor.getTime() / MINUTE_MS) * MINUTE_MS;
    const k = Math.floor((limit - anchor) / schedule.periodMs);
    return Array.from({ length: count }, (_, i) => new Date(anchor + (k - i) * schedule.periodMs));
  }

  formatter(timezone); // validate the zone up front
  const f = schedule.fields;
  const hours = [...f.hours].sort((a, b) => b - a);
  const minutes = [...f.minutes].sort((a, b) => b - a);
  const out: number[] = [];
  // Walk local calendar days backwards from the local date of `before` (plus one for safety).
  const start = localTime(limit, timezone);
  const cursor = new Date(Date.UTC(start.year, start.month - 1, start.day + 1));
  for (
    let i = 0;
    i < MAX_LOOKBACK_DAYS && out.length < count;
    i++, cursor.setUTCDate(cursor.getUTCDate() - 1)
  ) {
    const year = cursor.getUTCFullYear();
    const month = cursor.getUTCMonth() + 1;
    const day = cursor.getUTCDate();
    if (f.years && year < Math.min(...f.years)) break;
    if (!dayMatches(f, year, month, day)) continue;
    const instants: number[] = [];
    for (const hour of hours) {
      for (const minute of minutes) {
        // Nonexistent local time → no instant (skipped); ambiguous → the first occurrence only.
        const [first] = localToInstants({ year, month, day, hour, minute }, timezone);
        if (first !== undefined && first <= limit) instants.push(first);
      }
    }
    instants.sort((a, b) => b - a);
    for (const t of instants) {
      if (out.length === count) break;
      if (!out.includes(t)) out.push(t);
    }
  }
  return out.map((t) => new Date(t));
}

/** The newest fire time at or before `before`, or undefined if none in the search window. */
export function lastFireTime(
  expression: string | Schedule,
  timezone: string,
  before: Date,
  options: FireTimeOptions = {},
): Date | undefined {
  return previousFireTimes(expression, timezone, before, 1, options)[0];
}

// ---------------------------------------------------------------- daylight-saving gaps

/** One local fire time that does not exist: Scheduler skips that run. */
export interface SkippedFireTime {
  /** Local date of the spring-forward day, YYYY-MM-DD. */
  readonly date: string;
  /** The local time the expression names, HH:MM. */
  readonly time: string;
  /** The missing local hour(s): `[from, to)`, HH:MM. */
  readonly gap: readonly [string, string];
}

const pad = (n: number) => String(n).padStart(2, '0');
const hhmm = (naiveMs: number) => {
  const d = new Date(naiveMs);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
};

/**
 * The local fire times of a cron() expression that fall into a daylight-saving gap of `timezone`
 * (a spring-forward hour that the wall clock skips) between `from` and `from + years`. Scheduler
 * skips those runs (aws-facts). rate() expressions run on absolute time and have none.
 * Transitions are found from the zone's own offsets (Intl), so any zone's rules apply.
 */
export function skippedFireTimes(
  expression: string | Schedule,
  timezone: string,
  from: Date,
  years = 5,
): SkippedFireTime[] {
  const schedule = typeof expression === 'string' ? parseSchedule(expression) : expression;
  if (schedule.kind === 'rate') return [];
  const f = schedule.fields;
  const out: SkippedFireTime[] = [];
  for (const { gapStart, gapEnd } of springForwardGaps(timezone, from, years)) {
    // Local wall-clock minutes [gapStart, gapEnd) do not exist (as naive UTC ms).
    for (let local = gapStart; local < gapEnd; local += MINUTE_MS) {
      const d = new Date(local);
      const year = d.getUTCFullYear();
      const month = d.getUTCMonth() + 1;
      const day = d.getUTCDate();
      if (!f.hours.has(d.getUTCHours()) || !f.minutes.has(d.getUTCMinutes()) || !f.months.has(month))
        continue;
      if (f.years && !f.years.has(year)) continue;
      if (!dayMatches(f, year, month, day)) continue;
      out.push({
        date: `${year}-${pad(month)}-${pad(day)}`,
        time: hhmm(local),
        gap: [hhmm(gapStart), hhmm(gapEnd)],
      });
    }
  }
  return out;
}

/** A spring-forward gap: the local wall-clock minutes [gapStart, gapEnd) (naive UTC ms) do not exist. */
interface SpringForwardGap {
  readonly gapStart: number;
  readonly gapEnd: number;
}

// Per zone and window: the gaps do not depend on the expression, and config validation asks for the
// same zone once per pipeline on every program evaluation (~1,800 Intl lookups each).
const gapCache = new Map<string, readonly SpringForwardGap[]>();

/** The spring-forward gaps of `timezone` from the UTC day of `from` for `years` years. */
function springForwardGaps(timezone: string, from: Date, years: number): readonly SpringForwardGap[] {
  formatter(timezone); // validate the zone up front
  const DAY = 86_400_000;
  const start = Math.floor(from.getTime() / DAY) * DAY;
  const key = `${timezone}|${start}|${years}`;
  const cached = gapCache.get(key);
  if (cached) return cached;
  const gaps: SpringForwardGap[] = [];
  const end = start + Math.ceil(years * 366) * DAY;
  let before = offsetAt(start, timezone);
  for (let t = start; t < end; t += DAY) {
    const after = offsetAt(t + DAY, timezone);
    if (after > before) {
      // Spring forward within (t, t + DAY]: find the first minute on the new offset.
      let lo = t;
      let hi = t + DAY;
      while (hi - lo > MINUTE_MS) {
        const mid = lo + Math.floor((hi - lo) / 2 / MINUTE_MS) * MINUTE_MS;
        if (offsetAt(mid, timezone) === after) hi = mid;
        else lo = mid;
      }
      gaps.push({ gapStart: hi + before, gapEnd: hi + after });
    }
    before = after;
  }
  gapCache.set(key, gaps);
  return gaps;
}
