#!/usr/bin/env node
// The etl-ops bin: runs ops/cli.ts through ts-node (transpile only, no type check), so the CLI
// works straight after `npm ci` with no build step. Type errors are caught by `npm run typecheck`.
'use strict';
const path = require('node:path');

require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
require('../ops/cli.ts').main(process.argv.slice(2));
