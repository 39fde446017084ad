import * as path from 'node:path';
import { ROOT } from '../program';

/**
 * The Lambda runtime of the local platform: the real handler modules (handlers/), loaded once per
 * region, called with the function's environment, their CloudWatch EMF lines captured.
 */

/** What the platform calls on a handler module: its handler and the client hooks it exposes. */
export type HandlerModule = Record<string, any>;

const HANDLER_CACHE = new Map<string, HandlerModule>();
/** Each region's own copies of handlers/ modules (its Lambda containers), by module id. */
const REGION_MODULES = new Map<string, Map<string, NodeModule>>();
const HANDLERS_DIR = path.join(ROOT, 'handlers') + path.sep;

/** A new platform gets fresh handler modules: their module-level SDK clients bind to its endpoints. */
export function resetHandlerModules(): void {
  HANDLER_CACHE.clear();
  REGION_MODULES.clear();
  for (const id of Object.keys(require.cache)) if (id.startsWith(HANDLERS_DIR)) delete require.cache[id];
}

/** Moves every cached handlers/ module out of require.cache into the returned map. */
function takeHandlerModules(): Map<string, NodeModule> {
  const taken = new Map<string, NodeModule>();
  for (const id of Object.keys(require.cache)) {
    if (!id.startsWith(HANDLERS_DIR)) continue;
    taken.set(id, require.cache[id]!);
    delete require.cache[id];
  }
  return taken;
}

/**
 * The handler module as `region`'s Lambda runs it: module-level SDK clients (fence-writer's, for
 * one) bind to the endpoint of the first call's environment, so each region loads its own copies.
 */
export function handlerModule(name: string, region: string): HandlerModule {
  const key = `${region}|${name}`;
  let mod = HANDLER_CACHE.get(key);
  if (!mod) {
    const stash = takeHandlerModules();
    for (const [id, m] of REGION_MODULES.get(region) ?? []) require.cache[id] = m;
    mod = require(path.join(ROOT, 'handlers', `${name}.ts`)) as HandlerModule;
    REGION_MODULES.set(region, takeHandlerModules());
    for (const [id, m] of stash) require.cache[id] = m;
    HANDLER_CACHE.set(key, mod);
  }
  return mod;
}

/** Runs `body` with `env` set in process.env (Lambda's environment), restoring it afterwards. */
export async function withEnv<T>(env: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  try {
    return await body();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** A CloudWatch embedded-metric-format record as a handler prints it. */
export type EmfRecord = {
  _aws: { CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string; Unit?: string }> }> };
} & Record<string, unknown>;

/** `Name=value` per metric of an EMF record (seconds marked `s`). */
export function emfSummary(emf: EmfRecord): string[] {
  return emf._aws.CloudWatchMetrics.flatMap((m) => m.Metrics).map(
    (m) => `${m.Name}=${String(emf[m.Name])}${m.Unit === 'Seconds' ? 's' : ''}`,
  );
}

/**
 * Runs `body` with the EMF lines printed to stdout handed to `onMetric` instead (anything else
 * still prints): in Lambda they become CloudWatch metrics, here timeline entries.
 */
export async function withEmfCapture<T>(
  onMetric: (emf: EmfRecord) => void,
  body: () => Promise<T>,
): Promise<T> {
  const stdoutWrite = process.stdout.write;
  process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = String(chunk);
    if (text.startsWith('{"_aws"')) {
      try {
        onMetric(JSON.parse(text) as EmfRecord);
        return true;
      } catch {
        // not EMF after all: print it
      }
    }
    return (stdoutWrite as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
  }) as typeof process.stdout.write;
  try {
    return await body();
  } finally {
    process.stdout.write = stdoutWrite;
  }
}
