import * as pulumi from '@pulumi/pulumi';
import * as runtimeConfig from '@pulumi/pulumi/runtime/config';
import type { z } from 'zod';
import {
  CONFIG_KEYS,
  configSchema,
  type ParsedConfig,
  type PipelineConfig,
  SECRET_KEYS,
  type SecretKey,
  SNOWFLAKE_CREDENTIAL_FIELDS,
  STRING_KEYS,
} from './schema';
import { PROJECT } from '../contracts/naming';
import { DEFAULT_REGIONS } from '../contracts/regions';
import type { TriggerMode } from '../contracts/trigger-modes';
import { leaseProblem } from '../contracts/workflow-limits';
import { deriveRole, type RegionRole } from './role';
import { closest, configSetCommand, dstGapFindings, knownFieldsAt } from './config-hints';

/**
 * The one place that reads `pulumi.Config`. Everything downstream receives `PlatformSettings`
 * as plain, frozen values; components never read config themselves.
 */

export { PROJECT };

export interface PipelineSettings extends Omit<PipelineConfig, 'triggerMode'> {
  /** The pipeline's own mode, or the project default. */
  readonly triggerMode: TriggerMode;
}

export interface PlatformSettings extends Omit<ParsedConfig, 'aws:region' | 'pipelines'> {
  readonly stack: string;
  /** This stack's region (`aws:region`). */
  readonly region: string;
  readonly role: RegionRole;
  readonly eksClusterName: string;
  readonly network: ParsedConfig['lambdaNetwork'][string];
  readonly pipelines: readonly PipelineSettings[];
  /** Tags on every taggable resource. Deliberately role-free: failover must not re-tag. */
  readonly tags: Readonly<Record<string, string>>;
  readonly secrets: Readonly<Record<SecretKey, pulumi.Output<string>>>;
}

/** One problem with one key: the key, what was given, what is wrong and how to fix it. */
export interface ConfigProblem {
  readonly key: string;
  readonly value: unknown;
  readonly message: string;
}

export class ConfigValidationError extends Error {
  constructor(
    readonly stackName: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(
      `Invalid configuration for stack "${stackName}" (${problems.length} problem${problems.length === 1 ? '' : 's'}); nothing was deployed:\n` +
        problems.map((p) => `  - ${p.key} = ${render(p.value)}: ${p.message}`).join('\n'),
    );
    this.name = 'ConfigValidationError';
  }
}

function render(value: unknown): string {
  if (value === undefined) return '(not set)';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function fullKey(key: string): string {
  return key.includes(':') ? key : `${PROJECT}:${key}`;
}

/** Reads every key as raw values: JSON for structured keys, strings for the rest. */
export function readRawConfig(get: (fullKey: string) => string | undefined): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const text = get(fullKey(key));
    if (text === undefined) continue;
    if (STRING_KEYS.has(key)) {
      raw[key] = text;
      continue;
    }
    try {
      raw[key] = JSON.parse(text);
    } catch {
      raw[key] = text; // zod then reports the wrong type, with the key and the fix
    }
  }
  return raw;
}

function valueAt(raw: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let current = raw;
  for (const part of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[part];
  }
  return current;
}

function keyFor(path: ReadonlyArray<PropertyKey>): string {
  const [head, ...rest] = path;
  let key = fullKey(String(head));
  for (const part of rest) key += typeof part === 'number' ? `[${part}]` : `.${String(part)}`;
  return key;
}

function issuesToProblems(
  raw: Record<string, unknown>,
  issues: readonly z.core.$ZodIssue[],
): ConfigProblem[] {
  return issues.map((issue) => {
    const value = valueAt(raw, issue.path);
    let message = issue.message;
    if (issue.code === 'invalid_type' && value === undefined) {
      message =
        issue.path.length > 1
          ? `is required. Fix: add "${String(issue.path[issue.path.length - 1])}" (see docs/config.md)`
          : `is required. Fix: pulumi config set ${String(issue.path[0])} ... (see Pulumi.yaml for its description)`;
    } else if (issue.code === 'unrecognized_keys') {
      const known = knownFieldsAt(configSchema, issue.path);
      const hints = issue.keys.map((k) => {
        const near = closest(k, known);
        return near ? `${k} (did you mean ${near}?)` : k;
      });
      message = `has unknown field(s) ${hints.join(', ')}. Fix: rename or remove them; the fields are listed in docs/config.md`;
    } else if (issue.code === 'invalid_type' && quotedScalar(issue.expected, value) !== undefined) {
      // A number or boolean written in quotes (YAML "10"): say so, with the literal to write.
      const literal = quotedScalar(issue.expected, value) as string;
      message = `is a string; write ${literal} without quotes. Fix: ${configSetCommand(issue.path, literal)}`;
    } else if (issue.path[0] === 'eksClusters' && issue.path.length === 2) {
      message = `is empty. Fix: ${configSetCommand(issue.path, '<cluster-name>')}`;
    } else if (issue.code === 'invalid_type') {
      message = `${message.replace(/^Invalid input: /, 'has the wrong type: ')}${message.includes('Fix:') ? '' : '. Fix: see docs/config.md for this key'}`;
    }
    return { key: keyFor(issue.path), value, message };
  });
}

/** The unquoted literal a quoted number/boolean stands for, when that is what the schema wanted. */
function quotedScalar(expected: unknown, value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (expected === 'number' && text !== '' && Number.isFinite(Number(text))) return text;
  if (expected === 'boolean' && (text === 'true' || text === 'false')) return text;
  return undefined;
}

/**
 * Keys in the project's namespace that the program does not read: a misspelt key would otherwise
 * deploy with its default and no message.
 */
export function unknownKeyProblems(
  all: Readonly<Record<string, string>>,
  isSecret: (key: string) => boolean = () => false,
): ConfigProblem[] {
  const known = [...CONFIG_KEYS.filter((k) => !k.includes(':')), ...Object.keys(SECRET_KEYS)];
  const problems: ConfigProblem[] = [];
  for (const [key, text] of Object.entries(all)) {
    if (!key.startsWith(`${PROJECT}:`)) continue;
    const name = key.slice(PROJECT.length + 1);
    if ((known as string[]).includes(name)) continue;
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // a plain string
    }
    const near = closest(name, known);
    const secret = isSecret(key) || SECRET_KEYS[near as SecretKey] !== undefined;
    const isScalar = value === null || typeof value !== 'object';
    problems.push({
      key,
      value: secret ? '(secret)' : value,
      message: near
        ? `is not a key of this project; did you mean ${near}? Fix: pulumi config rm ${name}, then ${isScalar && !secret ? `pulumi config set ${near} ${text}` : `set ${near} instead`}`
        : `is not a key of this project. Fix: pulumi config rm ${name} (the keys are listed in docs/config.md)`,
    });
  }
  return problems;
}

const isStringArray = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((x) => typeof x === 'string');
const isRecord = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Rules that span keys. They run on the raw values, guarded by shape, so they are reported
 * together with any per-key problem.
 */
function crossKeyProblems(raw: Record<string, unknown>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const regions = isStringArray(raw.regions) ? raw.regions : [...DEFAULT_REGIONS];
  if (new Set(regions).size !== regions.length) {
    problems.push({
      key: fullKey('regions'),
      value: regions,
      message: 'lists a region twice. Fix: list two different regions, e.g. ["us-east-1", "us-west-1"]',
    });
  }
  if (typeof raw.activeRegion === 'string' && !regions.includes(raw.activeRegion)) {
    problems.push({
      key: fullKey('activeRegion'),
      value: raw.activeRegion,
      message: `is not one of the configured regions ${JSON.stringify(regions)}. Fix: pulumi config set activeRegion ${regions[0]}`,
    });
  }
  const awsRegion = raw['aws:region'];
  if (typeof awsRegion === 'string' && !regions.includes(awsRegion)) {
    problems.push({
      key: 'aws:region',
      value: awsRegion,
      message: `is not one of the configured regions ${JSON.stringify(regions)}. Fix: deploy this stack to one of them, or add it to regions`,
    });
  }
  for (const region of new Set(regions)) {
    if (isRecord(raw.eksClusters) && raw.eksClusters[region] === undefined) {
      problems.push({
        key: `${fullKey('eksClusters')}.${region}`,
        value: undefined,
        message: `names no EKS cluster for ${region}. Fix: pulumi config set --path 'eksClusters["${region}"]' <cluster-name>`,
      });
    }
    if (isRecord(raw.lambdaNetwork) && !raw.lambdaNetwork[region]) {
      problems.push({
        key: `${fullKey('lambdaNetwork')}.${region}`,
        value: undefined,
        message: `has no subnets and security groups for ${region}. Fix: add {subnetIds, securityGroupIds} for ${region}`,
      });
    }
  }
  const seen = new Map<unknown, number>();
  (Array.isArray(raw.pipelines) ? raw.pipelines : []).forEach((pipeline: unknown, index) => {
    const name = isRecord(pipeline) ? pipeline.name : undefined;
    if (typeof name !== 'string') return;
    const first = seen.get(name);
    if (first !== undefined) {
      problems.push({
        key: `${fullKey('pipelines')}[${index}].name`,
        value: name,
        message: `duplicates pipelines[${first}].name. Fix: give every pipeline its own name`,
      });
    } else {
      seen.set(name, index);
    }
  });
  const dbt = isRecord(raw.dbt) ? raw.dbt : {};
  problems.push(...dbtTlsProblems(raw, dbt));
  // The lock lease must cover the bounded replication wait before the app's first renewal.
  const num = (k: string, d: number) => (typeof dbt[k] === 'number' ? (dbt[k] as number) : d);
  const lease = leaseProblem({
    lockLeaseMinutes: num('lockLeaseMinutes', 15),
    replicationWaitMinutes: num('replicationWaitMinutes', 5),
  });
  if (lease)
    problems.push({
      key: `${fullKey('dbt')}.lockLeaseMinutes`,
      value: num('lockLeaseMinutes', 15),
      message: lease,
    });
  return problems;
}

/**
 * The dbt API's TLS: required unless plain HTTP is chosen explicitly. Every region needs an endpoint,
 * and ACM certificates are regional, so each certificate must be in its endpoint's region.
 */
function dbtTlsProblems(raw: Record<string, unknown>, dbt: Record<string, unknown>): ConfigProblem[] {
  const key = `${fullKey('dbt')}.tls`;
  const tls = isRecord(dbt.tls) ? dbt.tls : undefined;
  if (!tls) {
    if (dbt.allowPlainHttp === true) return [];
    return [
      {
        key,
        value: undefined,
        message:
          'is not set, so the API token would cross the VPC in plain HTTP. Fix: set dbt.tls {hostedZoneId, endpoints: {<region>: {hostname, certificateArn}}} ' +
          '(see docs/config.md), or, knowingly and unsafely, pulumi config set --path dbt.allowPlainHttp true',
      },
    ];
  }
  const problems: ConfigProblem[] = [];
  const endpoints = isRecord(tls.endpoints) ? tls.endpoints : {};
  for (const region of Array.isArray(raw.regions) ? raw.regions : []) {
    if (typeof region !== 'string') continue;
    const endpoint = endpoints[region];
    if (!isRecord(endpoint)) {
      problems.push({
        key: `${key}.endpoints`,
        value: Object.keys(endpoints),
        message: `has no endpoint for ${region}. Fix: add endpoints.${region} {hostname, certificateArn}`,
      });
      continue;
    }
    const arn = endpoint.certificateArn;
    const arnRegion = typeof arn === 'string' ? arn.split(':')[3] : undefined;
    if (arnRegion !== undefined && arnRegion !== region) {
      problems.push({
        key: `${key}.endpoints.${region}.certificateArn`,
        value: arn,
        message: `is in ${arnRegion}, but an NLB in ${region} can only use a certificate of its own region. Fix: issue or import the certificate in ${region}`,
      });
    }
  }
  return problems;
}

/**
 * Validates raw config and derives the region's role. Pure: tests call it directly.
 * All problems are reported at once, in one ConfigValidationError.
 */
export function parseSettings(
  stack: string,
  raw: Record<string, unknown>,
  secrets: {
    present: ReadonlySet<SecretKey>;
    values: Record<SecretKey, pulumi.Output<string>>;
    /** Plaintext, only to check the shape; never echoed in a message. */
    plaintext?: Partial<Record<SecretKey, string>>;
  },
  options: {
    /** Every config key of the stack (full key → text), to refuse unknown ones. */
    readonly allConfig?: Readonly<Record<string, string>>;
    /** Whether a full key holds a secret (its value is never echoed). @default none */
    readonly isSecret?: (key: string) => boolean;
    /** Where accepted-but-risky settings are reported. @default no-op */
    readonly warn?: (message: string) => void;
    /** Start of the daylight-saving check window. @default new Date() */
    readonly now?: Date;
  } = {},
): PlatformSettings {
  const parsed = configSchema.safeParse(raw);
  const dst = dstGapFindings(raw.pipelines, options.now ?? new Date());
  const problems: ConfigProblem[] = [
    ...unknownKeyProblems(options.allConfig ?? {}, options.isSecret),
    ...(parsed.success ? [] : issuesToProblems(raw, parsed.error.issues)),
    ...crossKeyProblems(raw),
    ...dst
      .filter((f) => !f.allowed)
      .map((f) => ({
        key: `${fullKey('pipelines')}[${f.index}].schedule.expression`,
        value: f.expression,
        message: f.message,
      })),
  ];
  for (const [key, command] of Object.entries(SECRET_KEYS)) {
    if (!secrets.present.has(key as SecretKey)) {
      problems.push({
        key: fullKey(key),
        value: undefined,
        message: `is a required secret. Fix: ${command}`,
      });
    }
  }
  const snowflake = secrets.plaintext?.snowflakeCredentials;
  if (snowflake !== undefined) {
    const missing = snowflakeCredentialProblem(snowflake);
    if (missing)
      problems.push({
        key: fullKey('snowflakeCredentials'),
        value: '(secret)',
        message: `${missing}. Fix: ${SECRET_KEYS.snowflakeCredentials}`,
      });
  }
  if (!parsed.success || problems.length > 0) throw new ConfigValidationError(stack, problems);
  for (const f of dst.filter((d) => d.allowed)) {
    options.warn?.(
      `${fullKey('pipelines')}[${f.index}].schedule.expression = ${render(f.expression)}: ${f.message.replace(/ Fix: .*$/, '')} (accepted: allowDstGap is true)`,
    );
  }

  const config = parsed.data;
  const region = config['aws:region'];
  const { 'aws:region': _region, pipelines, ...rest } = config;
  const settings: PlatformSettings = {
    ...rest,
    stack,
    region,
    role: deriveRole(region, config.regions, config.activeRegion, config.dbtReplicas),
    eksClusterName: config.eksClusters[region],
    network: config.lambdaNetwork[region],
    pipelines: pipelines.map((p) => ({ ...p, triggerMode: p.triggerMode ?? config.defaultTriggerMode })),
    tags: { app: PROJECT, stack, region, 'managed-by': 'pulumi' },
    secrets: secrets.values,
  };
  return deepFreeze(settings);
}

function snowflakeCredentialProblem(json: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return 'is not JSON';
  }
  if (!isRecord(value)) return 'is not a JSON object';
  const missing = SNOWFLAKE_CREDENTIAL_FIELDS.filter(
    (field) => typeof value[field] !== 'string' || value[field] === '',
  );
  if (missing.length > 0) return `lacks ${missing.join(', ')}`;
  // The fence writer's key pair (SQL API v2); checked when present, its absence fails the fence writer.
  const key = value.privateKey;
  if (
    key !== undefined &&
    (typeof key !== 'string' || !/^-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/.test(key.trim()))
  ) {
    return 'has a privateKey that is not a PKCS#8 PEM private key ("-----BEGIN PRIVATE KEY-----…")';
  }
  return undefined;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !pulumi.Output.isInstance(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Whether a full config key holds a secret. The runtime's check is internal (not in its typings);
 * if it is ever missing, every unknown key is treated as secret, so no value is echoed.
 */
function isConfigSecret(key: string): boolean {
  const check = (runtimeConfig as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
  return typeof check === 'function' ? check(key) : true;
}

/** Reads this stack's config from Pulumi and validates it before any resource is declared. */
export function loadSettings(): PlatformSettings {
  const raw = readRawConfig((key) => pulumi.runtime.getConfig(key));
  const config = new pulumi.Config(PROJECT);
  const present = new Set<SecretKey>();
  const values = {} as Record<SecretKey, pulumi.Output<string>>;
  for (const key of Object.keys(SECRET_KEYS) as SecretKey[]) {
    if (pulumi.runtime.getConfig(fullKey(key)) !== undefined) present.add(key);
    values[key] = pulumi.secret(config.getSecret(key)).apply((v) => v ?? '');
  }
  const plaintext = { snowflakeCredentials: pulumi.runtime.getConfig(fullKey('snowflakeCredentials')) };
  return parseSettings(
    pulumi.getStack(),
    raw,
    { present, values, plaintext },
    {
      allConfig: pulumi.runtime.allConfig(),
      isSecret: isConfigSecret,
      warn: (message) => void pulumi.log.warn(message),
    },
  );
}
