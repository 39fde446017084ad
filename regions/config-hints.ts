import type { z } from 'zod';
import { parseSchedule, skippedFireTimes } from '../contracts/cron';
import { scheduleExpressionProblem, timeZoneProblem } from './schedule-expression';

/**
 * Helpers that make config messages actionable: "did you mean" for misspelt keys, `pulumi config
 * set --path` arguments that work when pasted, and the daylight-saving check on schedules.
 */

/** Levenshtein distance with adjacent transpositions (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known name closest to `name` (case-insensitive), if it is close enough to be a typo. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined;
}

/**
 * A config path as `pulumi config set --path` takes it: `dbt.pollMaxSeconds`, `pipelines[0].glue`,
 * and bracket-quoted keys that are not plain identifiers: `eksClusters["us-east-1"]` (Pulumi's
 * `pulumi config set` docs: `--path '["parent.name"]["nested.name"]'`).
 */
export function pulumiPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(String(part)))
      out += out === '' ? String(part) : `.${String(part)}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

/** `pulumi config set ...` that sets `path` to the literal `value`, quoted for a POSIX shell. */
export function configSetCommand(path: ReadonlyArray<PropertyKey>, value: string): string {
  return path.length === 1
    ? `pulumi config set ${String(path[0])} ${value}`
    : `pulumi config set --path '${pulumiPath(path)}' ${value}`;
}

/** Field names the schema knows at `path` (objects only), walking through defaults, arrays and maps. */
/** The parts of zod 4's schema definitions this walk reads. */
interface SchemaDef {
  type: string;
  innerType?: SchemaNode;
  in?: SchemaNode;
  shape?: Record<string, SchemaNode>;
  element?: SchemaNode;
  valueType?: SchemaNode;
}
interface SchemaNode {
  _zod?: { def: SchemaDef };
}

export function knownFieldsAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  let current: SchemaNode | undefined = schema as unknown as SchemaNode;
  const unwrap = () => {
    while (
      current?._zod?.def &&
      ['default', 'optional', 'nullable', 'prefault', 'readonly', 'catch'].includes(current._zod.def.type)
    ) {
      current = current._zod.def.innerType;
    }
    if (current?._zod?.def.type === 'pipe') current = current._zod.def.in;
  };
  unwrap();
  for (const part of path) {
    const def: SchemaDef | undefined = current?._zod?.def;
    if (!def) return [];
    if (def.type === 'object') current = def.shape?.[String(part)];
    else if (def.type === 'array') current = def.element;
    else if (def.type === 'record') current = def.valueType;
    else return [];
    unwrap();
  }
  return current?._zod?.def.type === 'object' ? Object.keys(current._zod.def.shape ?? {}) : [];
}

// Month names keep the message the same from year to year (docs/bad-input.md is generated from it).
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

/** One pipeline schedule whose cron lands in a daylight-saving gap. */
export interface DstGapFinding {
  readonly index: number;
  readonly expression: string;
  readonly timezone: string;
  readonly allowed: boolean;
  readonly message: string;
}

/**
 * Schedules that can fire at a local time that does not exist (spring forward): Scheduler skips
 * that day's run. Evaluated with the product's own cron evaluator over the next `years` years.
 */
export function dstGapFindings(pipelines: unknown, now: Date, years = 5): DstGapFinding[] {
  if (!Array.isArray(pipelines)) return [];
  const findings: DstGapFinding[] = [];
  pipelines.forEach((pipeline: unknown, index) => {
    const schedule = (pipeline as { schedule?: Record<string, unknown> } | null)?.schedule;
    const expression = schedule?.expression;
    const timezone = schedule?.timezone ?? 'UTC';
    if (typeof expression !== 'string' || typeof timezone !== 'string') return;
    if (scheduleExpressionProblem(expression) || timeZoneProblem(timezone)) return; // reported elsewhere
    let skipped;
    try {
      skipped = skippedFireTimes(parseSchedule(expression), timezone, now, years);
    } catch {
      return; // forms the evaluator does not support are not ours to judge here
    }
    if (skipped.length === 0) return;
    const first = skipped[0];
    const [from, to] = first.gap;
    const times = [...new Set(skipped.map((s) => s.time))].join(', ');
    const fields = expression.slice(5, -1).trim().split(/\s+/);
    const gapEndHour = Number(to.slice(0, 2));
    const suggestion = /^\d{1,2}$/.test(fields[1])
      ? `cron(${[fields[0], String(gapEndHour), ...fields.slice(2)].join(' ')})`
      : undefined;
    const allowPath = ['pipelines', index, 'schedule', 'allowDstGap'];
    findings.push({
      index,
      expression,
      timezone,
      allowed: schedule?.allowDstGap === true,
      message:
        `fires at ${times} ${timezone}, which does not exist on the spring-forward day in ${MONTHS[Number(first.date.slice(5, 7)) - 1]} (clocks skip ${from}-${to}), so Scheduler skips that day's batch. ` +
        `Fix: schedule outside ${from}-${to} local${suggestion ? ` (e.g. "${suggestion}")` : ''} or use timezone "UTC"; ` +
        `to accept the skipped run: ${configSetCommand(allowPath, 'true')}`,
    });
  });
  return findings;
}
