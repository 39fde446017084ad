/**
 * Checks EventBridge Scheduler expressions the way Scheduler does, so a typo fails at
 * `pulumi preview` instead of at `CreateSchedule`. Returns a problem description, or undefined.
 */

const CRON_FIELDS: ReadonlyArray<{ name: string; pattern: RegExp }> = [
  { name: 'minutes', pattern: /^(\*|([0-5]?\d)([-/,][0-5]?\d)*)$|^\*\/\d+$/ },
  { name: 'hours', pattern: /^(\*|(1?\d|2[0-3])([-/,](1?\d|2[0-3]))*)$|^\*\/\d+$/ },
  {
    name: 'day-of-month',
    pattern: /^(\*|\?|L|W|([1-9]|[12]\d|3[01])W?([-/,]([1-9]|[12]\d|3[01]))*)$|^\*\/\d+$/,
  },
  {
    name: 'month',
    pattern:
      /^(\*|((1[0-2]|[1-9])|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)([-/,]((1[0-2]|[1-9])|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))*)$|^\*\/\d+$/i,
  },
  {
    name: 'day-of-week',
    pattern:
      /^(\*|\?|L|([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT)(L|#[1-5])?([-,]([1-7]|SUN|MON|TUE|WED|THU|FRI|SAT))*)$/i,
  },
  { name: 'year', pattern: /^(\*|(19[7-9]\d|2[01]\d\d)([-/,](19[7-9]\d|2[01]\d\d|\d+))*)$|^\*\/\d+$/ },
];

export function scheduleExpressionProblem(expression: string): string | undefined {
  const rate = /^rate\((.*)\)$/.exec(expression);
  if (rate) return rateProblem(rate[1]);
  const cron = /^cron\((.*)\)$/.exec(expression);
  if (cron) return cronProblem(cron[1]);
  if (/^at\(/.test(expression)) return 'one-time at() schedules cannot drive a recurring pipeline';
  return 'it is neither cron(...) nor rate(...)';
}

function rateProblem(body: string): string | undefined {
  const match = /^(\d+) (minute|minutes|hour|hours|day|days)$/.exec(body.trim());
  if (!match) return 'rate() takes "<number> <minute(s)|hour(s)|day(s)>"';
  const value = Number(match[1]);
  if (value < 1) return 'a rate must be at least 1';
  const singular = !match[2].endsWith('s');
  if (value === 1 && !singular) return `use "1 ${match[2].slice(0, -1)}", Scheduler rejects "1 ${match[2]}"`;
  if (value > 1 && singular) return `use "${value} ${match[2]}s"`;
  return undefined;
}

function cronProblem(body: string): string | undefined {
  const fields = body.trim().split(/\s+/);
  if (fields.length !== 6) {
    return `cron() needs 6 fields (minutes hours day-of-month month day-of-week year), got ${fields.length}`;
  }
  for (const [index, field] of fields.entries()) {
    const spec = CRON_FIELDS[index];
    if (!spec.pattern.test(field)) return `the ${spec.name} field "${field}" is not valid`;
  }
  const dayOfMonth = fields[2];
  const dayOfWeek = fields[4];
  if ((dayOfMonth === '?') === (dayOfWeek === '?')) {
    return 'exactly one of day-of-month and day-of-week must be "?"';
  }
  return undefined;
}

/** IANA zone names that this Node.js runtime (and so Scheduler's tz database) knows. */
export function timeZoneProblem(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return undefined;
  } catch {
    return 'it is not an IANA time zone name';
  }
}
