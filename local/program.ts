import * as pulumi from '@pulumi/pulumi';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PROJECT } from '../contracts/naming';
import { STACK_REGION, type StackName } from '../contracts/regions';
import { type RecordedResource, RecordingMocks } from './pulumi-mocks';

/**
 * Runs the real program (index.ts) under Pulumi mocks for one stack, with the stack file's
 * config plus overrides. Shared by the tests and by the local twin's extraction.
 */

export const ROOT = path.resolve(__dirname, '..');

/** Test-only secret values, so tests can prove they never appear in plain text. */
export const TEST_SECRETS: Record<string, string> = {
  // With the key-pair private key the fence writer needs for the SQL API: the production shape.
  snowflakeCredentials: JSON.stringify({
    account: 'xy12345',
    user: 'ETL',
    password: 'sf-test-password-6d1f',
    warehouse: 'ETL_WH',
    database: 'RAW',
    role: 'ETL_ROLE',
    privateKey:
      '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAtest\n-----END PRIVATE KEY-----',
  }),
  dbtApiToken: 'dbt-test-token-3f9a7c2e',
};

export interface ProgramOptions {
  readonly stack: StackName;
  /** Shorthand for the `activeRegion` override. */
  readonly activeRegion?: string;
  /** Key (short, or with namespace) → value; `undefined` removes the key. Objects are stored as JSON. */
  readonly config?: Record<string, unknown>;
  /** Secret values; `false` sets none. @default TEST_SECRETS */
  readonly secrets?: Record<string, string> | false;
}

export interface ProgramRun {
  readonly resources: readonly RecordedResource[];
  readonly outputs: Record<string, any>;
  /** The error the program threw, if it threw (e.g. ConfigValidationError). */
  readonly error?: Error;
  readonly mocks: RecordingMocks;
  ofType(type: string): RecordedResource[];
  /** The one resource of this type whose logical name contains `namePart`; throws otherwise. */
  one(type: string, namePart?: string): RecordedResource;
}

function fullKey(key: string): string {
  return key.includes(':') ? key : `${PROJECT}:${key}`;
}

export function stackConfig(stack: StackName): Record<string, string> {
  const file = parseYaml(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), 'utf8')) as {
    config: Record<string, unknown>;
  };
  const config: Record<string, string> = {};
  for (const [key, value] of Object.entries(file.config))
    config[key] = typeof value === 'string' ? value : JSON.stringify(value);
  return config;
}

type CompilingModule = NodeModule & { _compile(code: string, filename: string): unknown };
type ExtensionHook = (module: CompilingModule, filename: string) => unknown;
const transpiled = new Map<string, string>();

/**
 * Each run re-requires the project's modules (config is read when they load), and ts-node would
 * transpile every one of them again. The source files do not change within a process, so the
 * JavaScript ts-node produced the first time is compiled directly on later runs.
 */
function cacheTranspilation(): void {
  const extensions = require.extensions as unknown as Record<string, ExtensionHook & { cached?: true }>;
  const tsNode = extensions['.ts'];
  if (!tsNode || tsNode.cached) return;
  const moduleCompile = (require('node:module') as { prototype: CompilingModule }).prototype._compile;
  const cached: ExtensionHook & { cached?: true } = (module, filename) => {
    const code = transpiled.get(filename);
    if (code !== undefined) return moduleCompile.call(module, code, filename);
    // ts-node wraps the module's _compile: it transpiles, then calls the one it found, this one.
    module._compile = function (this: CompilingModule, output: string, file: string) {
      transpiled.set(file, output);
      return moduleCompile.call(this, output, file);
    };
    return tsNode(module, filename);
  };
  cached.cached = true;
  extensions['.ts'] = cached;
}

function clearProjectModules(): void {
  cacheTranspilation();
  for (const id of Object.keys(require.cache)) {
    if (id.startsWith(ROOT) && !id.includes(`${path.sep}node_modules${path.sep}`)) delete require.cache[id];
  }
}

async function settle(
  mocks: RecordingMocks,
  exportsValue: Record<string, unknown>,
): Promise<Record<string, any>> {
  const outputs = await new Promise<Record<string, any>>((resolve) => {
    pulumi.output(exportsValue).apply((value) => {
      resolve(value as Record<string, any>);
      return value;
    });
  });
  // Registrations finish asynchronously; wait until the count stops moving.
  let stableTurns = 0;
  let last = -1;
  while (stableTurns < 20) {
    await new Promise((r) => setImmediate(r));
    if (mocks.resources.length === last) stableTurns++;
    else {
      stableTurns = 0;
      last = mocks.resources.length;
    }
  }
  return outputs;
}

/** The config a run evaluates: the stack file's, with the options' overrides and secrets applied. */
interface ResolvedOptions {
  readonly stack: StackName;
  readonly config: Record<string, string>;
  readonly secretKeys: string[];
}

function resolveOptions(options: ProgramOptions): ResolvedOptions {
  const config = stackConfig(options.stack);
  const overrides: Record<string, unknown> = { ...(options.config ?? {}) };
  if (options.activeRegion) overrides.activeRegion = options.activeRegion;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete config[fullKey(key)];
    else config[fullKey(key)] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  const secrets = options.secrets === false ? {} : (options.secrets ?? TEST_SECRETS);
  for (const [key, value] of Object.entries(secrets)) config[fullKey(key)] = value;
  return { stack: options.stack, config, secretKeys: Object.keys(secrets).map(fullKey).sort() };
}

/** Equal for options that give the same config, however they spell it (defaults written out, key order). */
export function runKey(options: ProgramOptions): string {
  const { stack, config, secretKeys } = resolveOptions(options);
  const sorted = Object.keys(config)
    .sort()
    .map((key) => [key, config[key]]);
  return JSON.stringify([stack, sorted, secretKeys]);
}

let running: Promise<unknown> = Promise.resolve();
const cache = new Map<string, Promise<ProgramRun>>();

/**
 * Runs are deterministic for the same config, so each distinct config is evaluated once per
 * process and the run is shared (read-only) by every test that asks for it: `{ stack: 'prod-east' }`
 * and `{ stack: 'prod-east', activeRegion: 'us-east-1' }` are one run.
 */
export function runProgram(options: ProgramOptions): Promise<ProgramRun> {
  const key = runKey(options);
  const cached = cache.get(key);
  if (cached) return cached;
  // Pulumi's runtime state is global: runs are serialised.
  const next = running.then(() => runOnce(resolveOptions(options)));
  running = next.catch(() => undefined);
  cache.set(key, next);
  return next;
}

async function runOnce({ stack, config, secretKeys }: ResolvedOptions): Promise<ProgramRun> {
  const stackRegion = config['aws:region'] ?? STACK_REGION[stack];
  const mocks = new RecordingMocks(stackRegion);
  await pulumi.runtime.setMocks(mocks, PROJECT, stack, false);
  pulumi.runtime.setAllConfig(config, secretKeys);

  clearProjectModules();
  let error: Error | undefined;
  let outputs: Record<string, any> = {};
  // Pulumi records a stack trace on every internal promise, and source-map-support makes each one
  // expensive: with traces off a run takes a fraction of the time. Errors keep their messages.
  // Resource.callsites() still takes an unlimited trace per resource (its source position, unused
  // under mocks); without ts-node's source-map formatter those are plain V8 traces, 3-6% less CPU
  // and garbage per resource (docs/performance.md, benchmark 1).
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const prepareStackTrace = Error.prepareStackTrace;
  (Error as { prepareStackTrace?: unknown }).prepareStackTrace = undefined;
  try {
    const program = require(path.join(ROOT, 'index.ts')) as Record<string, unknown>;
    outputs = await settle(mocks, program);
  } catch (caught) {
    error = caught as Error;
    await settle(mocks, {});
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
    Error.prepareStackTrace = prepareStackTrace;
  }

  const resources = mocks.resources;
  return {
    resources,
    outputs,
    error,
    mocks,
    ofType: (type) => resources.filter((r) => r.type === type),
    one: (type, namePart) => {
      const found = resources.filter(
        (r) => r.type === type && (namePart === undefined || r.name.includes(namePart)),
      );
      if (found.length !== 1) {
        throw new Error(
          `expected one ${type}${namePart ? ` named *${namePart}*` : ''}, found ${found.length}: ${found.map((r) => r.name).join(', ')}`,
        );
      }
      return found[0];
    },
  };
}

/** The dbt app container's env as the Deployment renders it, every secretKeyRef resolved from the Secret the program declares. */
export function renderedEnv(run: ProgramRun): Record<string, string> {
  const container = run.one('kubernetes:apps/v1:Deployment').inputs.spec.template.spec.containers[0];
  const secrets = run.ofType('kubernetes:core/v1:Secret');
  const env: Record<string, string> = {};
  for (const e of container.env as Array<{
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef: { name: string; key: string } };
  }>) {
    if (e.value !== undefined) env[e.name] = e.value;
    else {
      const ref = e.valueFrom!.secretKeyRef;
      const secret = secrets.find((s) => s.inputs.metadata.name === ref.name);
      if (!secret) throw new Error(`secretKeyRef ${ref.name} names no Secret the program declares`);
      env[e.name] = secret.inputs.stringData[ref.key];
    }
  }
  return env;
}
