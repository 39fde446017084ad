/**
 * A small, dependency-free EventBridge event-pattern matcher.
 *
 * Semantics follow the AWS EventBridge user guide pages "Amazon EventBridge event patterns"
 * (event pattern syntax, arrays / multiple field values, null values and empty strings) and
 * "Content filtering in Amazon EventBridge event patterns" (the comparison operators). Where
 * the guide is silent the behaviour of aws/event-ruler, the engine documented as behind
 * EventBridge, is followed; those choices are marked "(ruler)" below.
 *
 * Model
 *  - The event is flattened into leaf entries (dotted path, scalar value). Objects are not leaves
 *    and neither are empty arrays: a path whose value is an object or [] has no leaf values.
 *    Array elements become separate entries at the same path ("crushed out"), each tagged with
 *    the array element it came from.
 *  - The pattern is flattened into fields (dotted path, leaf array). Pattern keys are joined
 *    with "." exactly like EventBridge does, so {"detail":{"state":[..]}} and
 *    {"detail.state":[..]} are the same pattern (documented caveat, kept on purpose).
 *  - A pattern matches when every field matches (AND); a field matches when any element of its
 *    leaf array matches (OR) any leaf value at that path (an event array matches if any
 *    element matches). "$or" alternatives multiply out into separate AND-sets.
 *  - Array consistency (ruler): all fields of one AND-set must be satisfied by entries that do
 *    not come from different elements of the same event array.
 *
 * Supported leaf elements
 *  - exact "str" | number | true | false | null (strings case-sensitive, "" is not null)
 *  - {prefix: "s"} and {prefix: {"equals-ignore-case": "s"}}; same for {suffix}
 *  - {"equals-ignore-case": "s"}
 *  - {wildcard: "a*b"}: "*" = any run of characters (also none); a backslash before "*" is a
 *    literal star and a doubled backslash a literal backslash (JSON text "\\*", "\\\\");
 *    "**" and any other escape are invalid
 *  - {"anything-but": v} where v is a string, a number, a list of only strings or only numbers,
 *    {prefix: "s"}, {suffix: "s"}, {"equals-ignore-case": "s" | ["s", ..]} or
 *    {wildcard: "p" | ["p", ..]}. It needs the field to be present and matches any leaf value
 *    that the inner matcher does not match, including values of another type (ruler)
 *  - {numeric: [op, n]} or {numeric: [lowerOp, n, upperOp, m]}, ops "=", "<", "<=", ">", ">=";
 *    only JSON numbers match; bounds and event values must lie within [-5e9, 5e9]
 *  - {exists: true} (field has at least one leaf value; a null value counts as present (ruler))
 *    and {exists: false} (no leaf value at that path: absent, an object, or an empty array)
 *  - {cidr: "10.0.0.0/24"} for IPv4 and IPv6 (string event values only)
 *  - "$or": [pattern, pattern, ...] (two or more sub-patterns) at any level
 *
 * Not supported / known differences
 *  - Exact number matching compares the parsed JS numbers. The guide says EventBridge compares
 *    the textual form (300, 300.0 and 3.0e2 are NOT equal); once JSON is parsed that form is
 *    gone, so here they ARE equal. {numeric: ["=", 3.0e2]} is numeric in both.
 *  - Numeric matching uses IEEE doubles, not EventBridge's "15 digits / 6 decimal places".
 *  - Case folding for *-ignore-case uses String#toLowerCase (no locale-specific folding).
 *  - Pipes-only / newer operators ($not, suffix lists, anything-but prefix lists, ...) are
 *    reported by validatePattern as unknown and never match.
 *  - No size/complexity limits are enforced.
 */

export type PatternScalar = string | number | boolean | null;

export type IgnoreCase = { 'equals-ignore-case': string };

export type PatternOperator =
  | { prefix: string | IgnoreCase }
  | { suffix: string | IgnoreCase }
  | { 'equals-ignore-case': string }
  | { wildcard: string }
  | {
      'anything-but':
        | string
        | number
        | readonly string[]
        | readonly number[]
        | { prefix: string }
        | { suffix: string }
        | { 'equals-ignore-case': string | readonly string[] }
        | { wildcard: string | readonly string[] };
    }
  | { numeric: readonly (string | number)[] }
  | { exists: boolean }
  | { cidr: string };

/** The array at a pattern leaf: an OR of its elements. Never empty. */
export type PatternLeaf = readonly (PatternScalar | PatternOperator)[];

/** An EventBridge event pattern. "$or" holds alternative sub-patterns. */
export interface EventPattern {
  [field: string]: PatternLeaf | EventPattern | readonly EventPattern[];
}

const OPERATORS = [
  'prefix',
  'suffix',
  'equals-ignore-case',
  'wildcard',
  'anything-but',
  'numeric',
  'exists',
  'cidr',
] as const;

const NUMERIC_LIMIT = 5e9;

type Json = unknown;

const isObject = (v: Json): v is Record<string, Json> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isScalar = (v: Json): v is PatternScalar =>
  v === null ||
  typeof v === 'string' ||
  typeof v === 'boolean' ||
  (typeof v === 'number' && Number.isFinite(v));

/** "$or" is the OR primitive only in this shape (ruler); otherwise it is an ordinary field name. */
function isOrArray(v: Json): v is Record<string, Json>[] {
  return (
    Array.isArray(v) &&
    v.length >= 2 &&
    v.every(
      (alt) => isObject(alt) && !Object.keys(alt).some((k) => (OPERATORS as readonly string[]).includes(k)),
    )
  );
}

// ---------------------------------------------------------------------------------------------
// Validation

/** Problems that EventBridge would reject (or that this matcher cannot honour). [] = valid. */
export function validatePattern(pattern: unknown): string[] {
  const problems: string[] = [];
  if (!isObject(pattern)) return ['pattern must be a JSON object'];
  validateObject(pattern, '', problems);
  return problems;
}

function validateObject(obj: Record<string, Json>, path: string, problems: string[]): void {
  const keys = Object.keys(obj);
  if (keys.length === 0) problems.push(`${path || '(root)'}: empty object is not allowed`);
  for (const key of keys) {
    const value = obj[key];
    const here = path ? `${path}.${key}` : key;
    if (key === '$or') {
      if (isOrArray(value)) {
        value.forEach((alt, i) => validateObject(alt, `${here}[${i}]`, problems));
        continue;
      }
      problems.push(`${here}: "$or" must be an array of at least two pattern objects`);
      continue;
    }
    if (Array.isArray(value)) validateLeaf(value, here, problems);
    else if (isObject(value)) validateObject(value, here, problems);
    else
      problems.push(`${here}: value must be an array of match values or a nested object, got ${show(value)}`);
  }
}

function validateLeaf(leaf: Json[], path: string, problems: string[]): void {
  if (leaf.length === 0) problems.push(`${path}: empty array is not allowed`);
  for (const el of leaf) {
    if (isScalar(el)) continue;
    if (!isObject(el)) {
      problems.push(
        `${path}: match value must be a string, number, boolean, null or operator object, got ${show(el)}`,
      );
      continue;
    }
    const keys = Object.keys(el);
    if (keys.length !== 1) {
      problems.push(`${path}: an operator object must have exactly one key, got ${show(el)}`);
      continue;
    }
    const problem = operatorProblem(keys[0], el[keys[0]]);
    if (problem) problems.push(`${path}: ${problem}`);
  }
}

function operatorProblem(op: string, arg: Json): string | undefined {
  switch (op) {
    case 'prefix':
    case 'suffix':
      if (typeof arg === 'string') return undefined;
      if (isObject(arg) && Object.keys(arg).length === 1 && typeof arg['equals-ignore-case'] === 'string')
        return undefined;
      return `"${op}" takes a string or {"equals-ignore-case": string}, got ${show(arg)}`;
    case 'equals-ignore-case':
      return typeof arg === 'string' ? undefined : `"equals-ignore-case" takes a string, got ${show(arg)}`;
    case 'wildcard':
      return typeof arg === 'string' ? wildcardProblem(arg) : `"wildcard" takes a string, got ${show(arg)}`;
    case 'anything-but':
      return anythingButProblem(arg);
    case 'numeric':
      return numericProblem(arg);
    case 'exists':
      return typeof arg === 'boolean' ? undefined : `"exists" takes true or false, got ${show(arg)}`;
    case 'cidr':
      return typeof arg === 'string' && parseCidr(arg)
        ? undefined
        : `"cidr" takes an IPv4/IPv6 CIDR block, got ${show(arg)}`;
    default:
      return `unknown operator "${op}"`;
  }
}

function anythingButProblem(arg: Json): string | undefined {
  if (typeof arg === 'string') return undefined;
  if (typeof arg === 'number')
    return Number.isFinite(arg) ? undefined : '"anything-but" number must be finite';
  if (Array.isArray(arg)) {
    if (arg.length === 0) return '"anything-but" list must not be empty';
    if (arg.every((v) => typeof v === 'string')) return undefined;
    if (arg.every((v) => typeof v === 'number' && Number.isFinite(v))) return undefined;
    return `"anything-but" list must hold only strings or only numbers, got ${show(arg)}`;
  }
  if (isObject(arg) && Object.keys(arg).length === 1) {
    const [inner] = Object.keys(arg);
    const v = arg[inner];
    const strings = (x: Json) =>
      typeof x === 'string' || (Array.isArray(x) && x.length > 0 && x.every((s) => typeof s === 'string'));
    if ((inner === 'prefix' || inner === 'suffix') && typeof v === 'string') return undefined;
    if (inner === 'equals-ignore-case' && strings(v)) return undefined;
    if (inner === 'wildcard' && strings(v)) {
      for (const p of typeof v === 'string' ? [v] : (v as string[])) {
        const problem = wildcardProblem(p);
        if (problem) return `"anything-but": ${problem}`;
      }
      return undefined;
    }
    return `"anything-but" does not support ${show(arg)}`;
  }
  return `"anything-but" takes a string, number, list, or {prefix|suffix|equals-ignore-case|wildcard}, got ${show(arg)}`;
}

const LOWER_OPS = ['>', '>='];
const UPPER_OPS = ['<', '<='];

function numericProblem(arg: Json): string | undefined {
  if (!Array.isArray(arg) || (arg.length !== 2 && arg.length !== 4)) {
    return `"numeric" takes [op, number] or [op, number, op, number], got ${show(arg)}`;
  }
  for (let i = 0; i < arg.length; i += 2) {
    const op = arg[i];
    const n = arg[i + 1];
    if (typeof op !== 'string' || !['=', ...LOWER_OPS, ...UPPER_OPS].includes(op))
      return `"numeric": unknown operator ${show(op)}`;
    if (typeof n !== 'number' || !Number.isFinite(n)) return `"numeric": ${show(n)} is not a number`;
    if (Math.abs(n) > NUMERIC_LIMIT) return `"numeric": ${n} is outside [-5e9, 5e9]`;
  }
  if (arg.length === 4) {
    const ops = [arg[0], arg[2]] as string[];
    const oneLowerOneUpper =
      ops.filter((o) => LOWER_OPS.includes(o)).length === 1 &&
      ops.filter((o) => UPPER_OPS.includes(o)).length === 1;
    if (!oneLowerOneUpper)
      return `"numeric": a range needs one lower (>, >=) and one upper (<, <=) bound, got ${show(arg)}`;
    const lower = LOWER_OPS.includes(ops[0]) ? (arg[1] as number) : (arg[3] as number);
    const upper = LOWER_OPS.includes(ops[0]) ? (arg[3] as number) : (arg[1] as number);
    if (lower > upper) return `"numeric": empty range ${show(arg)}`;
  }
  return undefined;
}

function wildcardProblem(p: string): string | undefined {
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '\\') {
      if (p[i + 1] !== '*' && p[i + 1] !== '\\')
        return `"wildcard": invalid escape in ${show(p)} (only \\* and \\\\)`;
      i++;
    } else if (p[i] === '*' && p[i + 1] === '*') {
      return `"wildcard": consecutive wildcard characters in ${show(p)}`;
    }
  }
  return undefined;
}

const show = (v: Json): string => (v === undefined ? 'undefined' : JSON.stringify(v));

// ---------------------------------------------------------------------------------------------
// Matching

interface Entry {
  value: PatternScalar;
  /** array id -> element index, for every event array this entry sits inside. */
  arrays: Map<number, number>;
}

type Field = { path: string; leaf: Json[] };

/**
 * Does `event` match `pattern`? An invalid pattern (see validatePattern) never matches;
 * EventBridge would have refused to create the rule. Call validatePattern to learn why.
 */
export function matchesPattern(pattern: EventPattern, event: unknown): boolean {
  if (validatePattern(pattern).length > 0) return false;
  const entries = flattenEvent(event);
  return compile(pattern as Record<string, Json>, '').some((fields) => satisfy(fields, 0, entries, []));
}

function flattenEvent(event: Json): Map<string, Entry[]> {
  const out = new Map<string, Entry[]>();
  let nextArrayId = 0;
  const walk = (v: Json, path: string, arrays: Map<number, number>): void => {
    if (Array.isArray(v)) {
      const id = nextArrayId++;
      v.forEach((el, i) => walk(el, path, new Map(arrays).set(id, i)));
    } else if (isObject(v)) {
      for (const [k, child] of Object.entries(v)) walk(child, path ? `${path}.${k}` : k, arrays);
    } else if (isScalar(v) && path) {
      const list = out.get(path) ?? [];
      list.push({ value: v, arrays });
      out.set(path, list);
    }
  };
  walk(event, '', new Map());
  return out;
}

/** Flatten a pattern into its alternative AND-sets of (path, leaf) fields. */
function compile(obj: Record<string, Json>, prefix: string): Field[][] {
  let alternatives: Field[][] = [[]];
  const cross = (subs: Field[][]) => {
    alternatives = alternatives.flatMap((a) => subs.map((s) => [...a, ...s]));
  };
  for (const [key, value] of Object.entries(obj)) {
    if (key === '$or' && isOrArray(value)) {
      cross(value.flatMap((alt) => compile(alt, prefix)));
      continue;
    }
    const path = prefix ? `${prefix}.${key}` : key;
    if (Array.isArray(value)) cross([[{ path, leaf: value }]]);
    else cross(compile(value as Record<string, Json>, path));
  }
  return alternatives;
}

const consistent = (a: Entry, b: Entry): boolean => {
  for (const [id, index] of a.arrays) {
    const other = b.arrays.get(id);
    if (other !== undefined && other !== index) return false;
  }
  return true;
};

/** Backtracking: pick, for every field, either "absent" or one entry, keeping arrays consistent. */
function satisfy(fields: Field[], i: number, entries: Map<string, Entry[]>, chosen: Entry[]): boolean {
  if (i === fields.length) return true;
  const { path, leaf } = fields[i];
  const candidates = entries.get(path) ?? [];
  if (candidates.length === 0 && leaf.some((el) => isObject(el) && el.exists === false)) {
    if (satisfy(fields, i + 1, entries, chosen)) return true;
  }
  for (const entry of candidates) {
    if (!chosen.every((c) => consistent(c, entry))) continue;
    if (!leaf.some((el) => matchesElement(el, entry.value))) continue;
    if (satisfy(fields, i + 1, entries, [...chosen, entry])) return true;
  }
  return false;
}

function matchesElement(el: Json, v: PatternScalar): boolean {
  if (!isObject(el)) return v === el; // exact: strings, numbers (parsed), booleans, null
  const [op] = Object.keys(el);
  const arg = el[op];
  switch (op) {
    case 'prefix':
    case 'suffix':
      return affix(op, arg, v);
    case 'equals-ignore-case':
      return typeof v === 'string' && v.toLowerCase() === (arg as string).toLowerCase();
    case 'wildcard':
      return typeof v === 'string' && wildcardRegExp(arg as string).test(v);
    case 'anything-but':
      return !anythingButInner(arg, v);
    case 'numeric':
      return numeric(arg as (string | number)[], v);
    case 'exists':
      return arg === true; // an entry exists; exists:false is handled as absence in satisfy()
    case 'cidr':
      return typeof v === 'string' && inCidr(arg as string, v);
    default:
      return false;
  }
}

function affix(op: 'prefix' | 'suffix', arg: Json, v: PatternScalar): boolean {
  if (typeof v !== 'string') return false;
  const ignoreCase = isObject(arg);
  const needle = ignoreCase ? (arg['equals-ignore-case'] as string).toLowerCase() : (arg as string);
  const hay = ignoreCase ? v.toLowerCase() : v;
  return op === 'prefix' ? hay.startsWith(needle) : hay.endsWith(needle);
}

/** True when v is one of the things "anything-but" excludes. */
function anythingButInner(arg: Json, v: PatternScalar): boolean {
  if (typeof arg === 'string' || typeof arg === 'number') return v === arg;
  if (Array.isArray(arg)) return arg.includes(v);
  const [inner] = Object.keys(arg as object);
  const value = (arg as Record<string, Json>)[inner];
  const list = typeof value === 'string' ? [value] : (value as string[]);
  switch (inner) {
    case 'prefix':
    case 'suffix':
      return affix(inner, value, v);
    case 'equals-ignore-case':
      return typeof v === 'string' && list.some((s) => s.toLowerCase() === v.toLowerCase());
    case 'wildcard':
      return typeof v === 'string' && list.some((p) => wildcardRegExp(p).test(v));
    default:
      return true; // unreachable for validated patterns
  }
}

function numeric(arg: (string | number)[], v: PatternScalar): boolean {
  if (typeof v !== 'number' || Math.abs(v) > NUMERIC_LIMIT) return false;
  for (let i = 0; i < arg.length; i += 2) {
    const n = arg[i + 1] as number;
    const ok =
      arg[i] === '='
        ? v === n
        : arg[i] === '<'
          ? v < n
          : arg[i] === '<='
            ? v <= n
            : arg[i] === '>'
              ? v > n
              : v >= n;
    if (!ok) return false;
  }
  return true;
}

function wildcardRegExp(p: string): RegExp {
  let src = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') src += escapeRegExp(p[++i]);
    else if (c === '*') src += '[\\s\\S]*';
    else src += escapeRegExp(c);
  }
  return new RegExp(`^${src}$`);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

// --- CIDR ------------------------------------------------------------------------------------

type Ip = { v6: boolean; bits: bigint };

function parseIpv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let out = 0n;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    out = (out << 8n) | BigInt(Number(part));
  }
  return out;
}

function parseIpv6(s: string): bigint | undefined {
  let text = s;
  let tail: bigint[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.') && lastColon >= 0) {
    // embedded IPv4 tail (e.g. ::ffff:10.0.0.1) = the last two 16-bit groups
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = [v4 >> 16n, v4 & 0xffffn];
    text = text.slice(0, lastColon);
    if (text.endsWith(':')) text += ':';
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const group = (h: string) => (h === '' ? [] : h.split(':'));
  const head = group(halves[0]);
  const rest = halves.length === 2 ? group(halves[1]) : [];
  if ([...head, ...rest].some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const explicit = head.length + rest.length + tail.length;
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return undefined;
  const groups = [
    ...head.map((g) => BigInt(parseInt(g, 16))),
    ...Array<bigint>(8 - explicit).fill(0n),
    ...rest.map((g) => BigInt(parseInt(g, 16))),
    ...tail,
  ];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

function parseIp(s: string): Ip | undefined {
  const v4 = parseIpv4(s);
  if (v4 !== undefined) return { v6: false, bits: v4 };
  const v6 = s.includes(':') ? parseIpv6(s) : undefined;
  return v6 === undefined ? undefined : { v6: true, bits: v6 };
}

function parseCidr(s: string): { ip: Ip; prefix: number } | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const ip = parseIp(m[1]);
  const prefix = Number(m[2]);
  if (!ip || prefix > (ip.v6 ? 128 : 32)) return undefined;
  return { ip, prefix };
}

function inCidr(cidr: string, value: string): boolean {
  const block = parseCidr(cidr);
  const ip = parseIp(value);
  if (!block || !ip || ip.v6 !== block.ip.v6) return false;
  const width = BigInt(ip.v6 ? 128 : 32);
  const shift = width - BigInt(block.prefix);
  return ip.bits >> shift === block.ip.bits >> shift;
}
