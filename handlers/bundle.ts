import { buildSync } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Bundles one handler for the nodejs22.x arm64 runtime: platform node, target node22, CommonJS,
 * minified, tree-shaken, no sourcemap, with the AWS SDK clients inside (our lockfile's version, not
 * the runtime's), because loading the runtime's SDK from its many files cost 50-95 ms of cold init.
 *
 * What keeps the bundles small (measured in docs/performance.md):
 * - `mainFields: ['module', 'main']`: the SDK's ESM builds tree-shake; its CJS builds do not
 *   (and drag in browser-only code such as bowser).
 * - `@aws-sdk/credential-provider-node` is replaced by handlers/lib/sdk-credentials.ts: the
 *   environment credentials Lambda provides, falling back to the full chain at run time.
 * - `@smithy/core/event-streams` stays a run-time `import()` that no handler reaches: only
 *   event-stream operations load it, and none is used.
 * - no `keepNames`: the errors the workflows match on set `name` explicitly (ours in
 *   contracts/errors.ts, the SDK's from the service's error code), so minified class names
 *   change nothing a caller sees.
 *
 * - zod/mini, not classic zod: every schema a handler parses with (contracts/events.ts, handlers/)
 *   is built with contracts/zod-mini.ts, imported as `import * as z from '../contracts/zod-mini'`.
 *   Classic zod's methods and JSON-schema code cannot be tree-shaken (~90 KB in every bundle);
 *   zod/mini's functions can (19-33 KB, the English messages included). A named `import { z }`
 *   defeats tree-shaking and pulls in all of zod's locales (~440 KB).
 */

/** Every deployable handler: file name under handlers/ without .ts. */
export const HANDLERS = [
  'start-dbt-run',
  'get-dbt-run',
  'check-consistency',
  'start-downstream',
  'batch-context',
  'fence-writer',
  'watchdog',
] as const;
export type HandlerName = (typeof HANDLERS)[number];

export const BUNDLE_BUDGET_BYTES = 300 * 1024;

/**
 * Handlers allowed over BUNDLE_BUDGET_BYTES, with their own ceiling: none. The watchdog (280.0 KB)
 * was the last one (340.3 KB) until its alerts left through a workflow instead of the SNS client
 * (docs/performance.md, note 3).
 */
export const BUDGET_EXCEPTIONS: Partial<Record<HandlerName, number>> = {};

/** The size ceiling for one handler's bundle. */
export function bundleBudget(name: HandlerName): number {
  return BUDGET_EXCEPTIONS[name] ?? BUNDLE_BUDGET_BYTES;
}
const ROOT = path.resolve(__dirname, '..');

/** Run-time requires a bundle may keep: lazy fallbacks never reached at init (see above). */
export const RUNTIME_REQUIRES = ['@aws-sdk/credential-provider-node', '@smithy/core/event-streams'] as const;

/** Bundles handlers/<name>.ts to <outDir>/<name>/index.js and returns that directory. */
export function bundleHandler(name: string, outDir = path.join(ROOT, 'dist', 'handlers')): string {
  const entry = path.join(ROOT, 'handlers', `${name}.ts`);
  if (!fs.existsSync(entry)) throw new Error(`No handler ${name}: ${entry} does not exist`);
  const dir = path.join(outDir, name);
  fs.mkdirSync(dir, { recursive: true });
  const result = buildSync({
    entryPoints: [entry],
    outfile: path.join(dir, 'index.js'),
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    mainFields: ['module', 'main'],
    minify: true,
    treeShaking: true,
    sourcemap: false,
    alias: { '@aws-sdk/credential-provider-node': path.join(ROOT, 'handlers', 'lib', 'sdk-credentials.ts') },
    external: ['@smithy/core/event-streams'],
    legalComments: 'none',
    logLevel: 'silent',
    metafile: false,
  });
  if (result.errors.length)
    throw new Error(`esbuild failed for ${name}: ${result.errors.map((e) => e.text).join('; ')}`);
  return dir;
}

/** Size in bytes of a bundled handler's index.js. */
export function bundleSize(dir: string): number {
  return fs.statSync(path.join(dir, 'index.js')).size;
}
