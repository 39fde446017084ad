/**
 * Regenerates docs/bad-input.md from the cases themselves: BAD_CONFIG_CASES
 * (local/fixtures/bad-config.ts) run through the real program under mocks, and MALFORMED_EVENTS
 * (local/fixtures/malformed-events.ts)
 * fed to start-downstream for its exact message. tests/bad-input-matrix.test.ts checks the doc.
 *
 *   npx ts-node --transpile-only scripts/bad-input-doc.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HANDLER_ENV } from '../contracts/env';

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

async function main(): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { BAD_CONFIG_CASES } =
    require('../local/fixtures/bad-config') as typeof import('../local/fixtures/bad-config');
  const { runProgram } = require('../local/program') as typeof import('../local/program');
  const { MALFORMED_EVENTS } =
    require('../local/fixtures/malformed-events') as typeof import('../local/fixtures/malformed-events');
  const { handler, setSfnClient } =
    require('../handlers/start-downstream') as typeof import('../handlers/start-downstream');
  /* eslint-enable @typescript-eslint/no-require-imports */

  const configRows: string[] = [];
  let i = 0;
  for (const c of BAD_CONFIG_CASES) {
    const run = await runProgram({ stack: 'prod-east', config: c.config, secrets: c.secrets });
    if (!run.error) throw new Error(`${c.title}: the program accepted it`);
    const problems = run.error.message
      .split('\n')
      .slice(1)
      .map((l) => l.replace(/^\s*-\s*/, ''))
      .join(' / ');
    configRows.push(`| ${++i} | ${c.title} | \`${cell(problems)}\` | ${run.resources.length} |`);
  }

  Object.assign(process.env, {
    [HANDLER_ENV.DOWNSTREAM_STATE_MACHINE_ARN]:
      'arn:aws:states:us-east-1:123456789012:stateMachine:etl-platform-downstream-policycenter',
    [HANDLER_ENV.PIPELINES]: 'policycenter,billingcenter',
    [HANDLER_ENV.EVENT_SOURCE]: 'com.insurer.etl-platform',
  });
  setSfnClient({ send: async () => ({ executionArn: 'arn:x' }) });
  const eventRows: string[] = [];
  for (const m of MALFORMED_EVENTS) {
    let lambda: string;
    try {
      const out = await handler(m.input());
      lambda = `${out.status} (StartExecution called)`;
    } catch (e) {
      const err = e as Error;
      lambda = `${err.name}: \`${cell(err.message.length > 240 ? `${err.message.slice(0, 240)}…` : err.message)}\``;
    }
    const input = JSON.stringify(m.input()) ?? 'undefined';
    const shown =
      input.length > 90 ? `${input.slice(0, 90)}… (${Math.round(input.length / 1024)} KB)` : input;
    const workflow = m.accepted
      ? 'SUCCEEDED: accepted, one dbt run (see note)'
      : `Fail \`${m.workflow}\`; nothing written, no dbt call`;
    eventRows.push(`| ${m.kind} | \`${cell(shown)}\` | ${workflow} | ${lambda} |`);
  }

  const template = fs.readFileSync(path.join(__dirname, 'bad-input-doc.template.md'), 'utf8');
  const doc = template
    .replace('<!-- CONFIG_ROWS -->', configRows.join('\n'))
    .replace('<!-- EVENT_ROWS -->', eventRows.join('\n'));
  fs.writeFileSync(path.join(__dirname, '..', 'docs', 'bad-input.md'), doc);
  console.log(`docs/bad-input.md: ${configRows.length} config cases, ${eventRows.length} malformed events`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
