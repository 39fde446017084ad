/**
 * `npm run demo [-- <scenario> ...]`: runs scenarios on the local twin, prints each timeline and
 * writes an HTML report under reports/. With no argument: happy, dbt-failure-rerun, region-loss.
 * `npm run demo -- list` lists the scenarios; `all` runs every one.
 */
import { DEFAULT_DEMO, listScenarios, SCENARIOS, type ScenarioResult } from './scenarios';
import { printScenario, writeHtmlReport } from './report';

// The handlers log through Powertools; the timeline is the readable log here.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args[0] === 'list') {
    for (const line of listScenarios()) console.log(line);
    return 0;
  }
  const names = args.length === 0 ? DEFAULT_DEMO : args[0] === 'all' ? Object.keys(SCENARIOS) : args;
  const unknown = names.filter((n) => !SCENARIOS[n]);
  if (unknown.length) {
    console.error(`unknown scenario(s): ${unknown.join(', ')}. Known: ${Object.keys(SCENARIOS).join(', ')}`);
    return 2;
  }
  const results: ScenarioResult[] = [];
  for (const name of names) {
    const r = await SCENARIOS[name]();
    printScenario(r);
    results.push(r);
  }
  const file = writeHtmlReport(results);
  const failed = results.filter((r) => r.checks.some((c) => !c.ok)).map((r) => r.name);
  console.log('');
  console.log(`report: ${file}`);
  console.log(failed.length ? `FAILED checks in: ${failed.join(', ')}` : `all checks passed (${results.length} scenario(s))`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
