/**
 * Bundles every handler (AWS SDK clients included, see handlers/bundle.ts) to
 * dist/handlers/<name>/index.js and prints the sizes.
 *   npm run build:handlers
 * Exits 1 if a bundle is over its budget (300 KB; BUDGET_EXCEPTIONS in handlers/bundle.ts).
 */
import { BUNDLE_BUDGET_BYTES, bundleBudget, bundleHandler, bundleSize, HANDLERS } from '../handlers/bundle';

let over = 0;
for (const name of HANDLERS) {
  const dir = bundleHandler(name);
  const size = bundleSize(dir);
  const flag = size > bundleBudget(name) ? '  OVER BUDGET' : '';
  if (flag) over++;
  console.log(`${name.padEnd(20)} ${(size / 1024).toFixed(1).padStart(8)} KB  ${dir}/index.js${flag}`);
}
console.log(`budget ${BUNDLE_BUDGET_BYTES / 1024} KB (exceptions: handlers/bundle.ts BUDGET_EXCEPTIONS)`);
process.exit(over ? 1 : 0);
