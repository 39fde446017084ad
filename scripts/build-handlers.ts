/**
 * Bundles every handler to dist/handlers/<name>/index.js and prints the sizes.
 *   npm run build:handlers            # @aws-sdk external (the default, see handlers/bundle.ts)
 *   npm run build:handlers -- --bundle-sdk
 * Exits 1 if a bundle is over the 300 KB budget.
 */
import { BUNDLE_BUDGET_BYTES, bundleHandler, bundleSize, HANDLERS } from '../handlers/bundle';

const bundleSdk = process.argv.includes('--bundle-sdk');
let over = 0;
for (const name of HANDLERS) {
  const dir = bundleHandler(name, undefined, { bundleSdk });
  const size = bundleSize(dir);
  const flag = size > BUNDLE_BUDGET_BYTES ? '  OVER BUDGET' : '';
  if (flag) over++;
  console.log(`${name.padEnd(20)} ${(size / 1024).toFixed(1).padStart(8)} KB  ${dir}/index.js${flag}`);
}
console.log(`@aws-sdk/* ${bundleSdk ? 'bundled' : 'external (runtime-provided)'}; budget ${BUNDLE_BUDGET_BYTES / 1024} KB`);
process.exit(over ? 1 : 0);
