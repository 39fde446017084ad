import { buildSync } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Bundles one handler for the nodejs22.x arm64 runtime: platform node, target node22, CommonJS,
 * minified, no sourcemap.
 *
 * `@aws-sdk/*` is EXTERNAL: the nodejs22.x runtime ships SDK v3 and the handlers use it.
 * Measured here (esbuild 0.28.2, minified): with the SDK bundled, the handlers are 583-696 KB
 * (406-451 KB even with ESM-first resolution), all over the 300 KB budget; with it external they
 * are 118-133 KB. The trade-off: the SDK version is the runtime's, not our lockfile's. The
 * handlers use only long-stable calls (GetSecretValue, Query, GetItem, StartExecution).
 * `{ bundleSdk: true }` (or `--bundle-sdk` on the script) pins the SDK anyway.
 *
 * zod must be imported as `import * as z from 'zod'` in handler code: `import { z }` defeats
 * tree-shaking and pulls in all of zod's locales (~440 KB).
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
const ROOT = path.resolve(__dirname, '..');

export interface BundleOptions {
  /** Bundle @aws-sdk/* too instead of using the runtime's copy (default false). */
  bundleSdk?: boolean;
}

/** Bundles handlers/<name>.ts to <outDir>/<name>/index.js and returns that directory. */
export function bundleHandler(name: string, outDir = path.join(ROOT, 'dist', 'handlers'), options: BundleOptions = {}): string {
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
    minify: true,
    sourcemap: false,
    external: options.bundleSdk ? [] : ['@aws-sdk/*'],
    // Keep class names: the error classes' names are also set explicitly, but stack traces read better.
    keepNames: true,
    legalComments: 'none',
    logLevel: 'silent',
    metafile: false,
  });
  if (result.errors.length) throw new Error(`esbuild failed for ${name}: ${result.errors.map((e) => e.text).join('; ')}`);
  return dir;
}

/** Size in bytes of a bundled handler's index.js. */
export function bundleSize(dir: string): number {
  return fs.statSync(path.join(dir, 'index.js')).size;
}
