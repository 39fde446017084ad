import * as pulumi from '@pulumi/pulumi';
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
import type { TriggerMode } from './limits';
import { deriveRole, type RegionRole } from './role';
import { leaseProblem } from '../state-machines/downstream';

/**
 * The one place that reads `pulumi.Config`. Everything downstream receives `PlatformSettings`
 * as plain, frozen values; components never read config themselves.
 */

export const PROJECT = 'etl-platform';

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

function issuesToProblems(raw: Record<string, unknown>, issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  return issues.map((issue) => {
    const value = valueAt(raw, issue.path);
    let message = issue.message;
    if (issue.code === 'invalid_type' && value === undefined) {
      message =
        issue.path.length > 1
          ? `is required. Fix: add "${String(issue.path[issue.path.length - 1])}" (see docs/config.md)`
          : `is required. Fix: pulumi config set ${String(issue.path[0])} ... (see Pulumi.yaml for its description)`;
    } else if (issue.code === 'unrecognized_keys') {
      message = `has unknown field(s) ${issue.keys.join(', ')}. Fix: remove them or check the spelling against docs/config.md`;
    } else if (issue.code === 'invalid_type') {
      message = `${message.replace(/^Invalid input: /, 'has the wrong type: ')}${message.includes('Fix:') ? '' : '. Fix: see docs/config.md for this key'}`;
    }
    return { key: keyFor(issue.path), value, message };
  });
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isRecord = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Rules that span keys. They run on the raw values, guarded by shape, so they are reported
 * together with any per-key problem.
 */
function crossKeyProblems(raw: Record<string, unknown>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const regions = isStringArray(raw.regions) ? raw.regions : ['us-east-1', 'us-west-1'];
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
    if (isRecord(raw.eksClusters) && !raw.eksClusters[region]) {
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
    maxRunMinutes: num('maxRunMinutes', 240),
    maxQueueMinutes: num('maxQueueMinutes', 60),
    heartbeatSeconds: num('heartbeatSeconds', 300),
    maxLostRetries: num('maxLostRetries', 1),
    lockWaitMinutes: num('lockWaitMinutes', 60),
    lockLeaseMinutes: num('lockLeaseMinutes', 15),
    replicationWaitMinutes: num('replicationWaitMinutes', 5),
  });
  if (lease) problems.push({ key: `${fullKey('dbt')}.lockLeaseMinutes`, value: num('lockLeaseMinutes', 15), message: lease });
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
      problems.push({ key: `${key}.endpoints`, value: Object.keys(endpoints), message: `has no endpoint for ${region}. Fix: add endpoints.${region} {hostname, certificateArn}` });
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
): PlatformSettings {
  const parsed = configSchema.safeParse(raw);
  const problems: ConfigProblem[] = [
    ...(parsed.success ? [] : issuesToProblems(raw, parsed.error.issues)),
    ...crossKeyProblems(raw),
  ];
  for (const [key, command] of Object.entries(SECRET_KEYS)) {
    if (!secrets.present.has(key as SecretKey)) {
      problems.push({ key: fullKey(key), value: undefined, message: `is a required secret. Fix: ${command}` });
    }
  }
  const snowflake = secrets.plaintext?.snowflakeCredentials;
  if (snowflake !== undefined) {
    const missing = snowflakeCredentialProblem(snowflake);
    if (missing) problems.push({ key: fullKey('snowflakeCredentials'), value: '(secret)', message: `${missing}. Fix: ${SECRET_KEYS.snowflakeCredentials}` });
  }
  if (!parsed.success || problems.length > 0) throw new ConfigValidationError(stack, problems);

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
  const missing = SNOWFLAKE_CREDENTIAL_FIELDS.filter((field) => typeof value[field] !== 'string' || value[field] === '');
  return missing.length > 0 ? `lacks ${missing.join(', ')}` : undefined;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !pulumi.Output.isInstance(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
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
  return parseSettings(pulumi.getStack(), raw, { present, values, plaintext });
}
