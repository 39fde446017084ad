/**
 * The zod every schema that ends up in a handler bundle is built with: `zod/mini`, the same
 * library as classic zod with a functional API (`z.optional(s)`, `s.check(z.regex(...))` instead of
 * `s.optional()`, `s.regex(...)`), so esbuild keeps only the parts a handler uses (classic zod's
 * methods and JSON-schema code cannot be tree-shaken: ~90 KB in every bundle).
 *
 * zod/mini registers no error messages by itself (every default message would read "Invalid
 * input"), so this module configures the English locale classic zod uses: a default message reads
 * the same as before. Import it only as `import * as z from '../contracts/zod-mini'`, never
 * `import { z }` (a named import defeats tree-shaking; handlers/bundle.ts).
 *
 * regions/ validates config with classic zod (not bundled); both share one global config, and
 * classic zod installs the same English locale when nothing else has.
 */
import { en } from 'zod/locales';
import { config } from 'zod/mini';

config(en());

export * from 'zod/mini';
