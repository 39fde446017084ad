/**
 * `npm run demo [-- <scenario> ...]`: runs scenarios on the local twin, prints each timeline and
 * writes an HTML report under reports/. With no argument: happy, dbt-failure-rerun, region-loss.
 * `npm run demo -- list` lists the scenarios; `all` runs every one.
 */
import { DEFAULT_DEMO, listScenarios, SCENARIOS, type ScenarioResult } from './scenarios';
import { printScenario, writeHtmlReport } from './report';
import { ExactlyOnceWorld } from './exactly-once';
import { EXACTLY_ONCE_SCENARIOS, type ScenarioReport } from './exactly-once-scenarios';

// The handlers log through Powertools; the timeline is the readable log here.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args[0] === 'list') {
    for (const line of listScenarios()) console.log(line);
    for (const [name, s] of Object.entries(EXACTLY_ONCE_SCENARIOS))
      console.log(`${name.padEnd(26)} ${s.describe}`);
    return 0;
  }
  const known = [...Object.keys(SCENARIOS), ...Object.keys(EXACTLY_ONCE_SCENARIOS)];
  const names = args.length === 0 ? DEFAULT_DEMO : args[0] === 'all' ? known : args;
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) {
    console.error(`unknown scenario(s): ${unknown.join(', ')}. Known: ${known.join(', ')}`);
    return 2;
  }
  const results: ScenarioResult[] = [];
  for (const name of names.filter((n) => SCENARIOS[n])) {
    const r = await SCENARIOS[name]();
    printScenario(r);
    results.push(r);
  }
  // The exactly-once scenarios share one world: replicas, real dbt app pods, the shared warehouse.
  const exactly: ScenarioReport[] = [];
  const exactlyNames = names.filter((n) => EXACTLY_ONCE_SCENARIOS[n]);
  if (exactlyNames.length) {
    console.log(
      '\n== exactly-once world: a DynamoDB replica per region, 2 real dbt app pods per region, one warehouse ==',
    );
    const world = await ExactlyOnceWorld.start();
    try {
      for (const name of exactlyNames) {
        const started = Date.now();
        const r = await EXACTLY_ONCE_SCENARIOS[name].run(world);
        console.log(
          `\n## ${name} (${((Date.now() - started) / 1000).toFixed(1)} s): ${EXACTLY_ONCE_SCENARIOS[name].describe}`,
        );
        for (const n of r.notes) console.log(`   note: ${n}`);
        for (const c of r.checks)
          console.log(`   ${c.ok ? 'ok  ' : 'FAIL'} ${c.what}${c.detail ? ` (${c.detail})` : ''}`);
        exactly.push(r);
      }
    } finally {
      await world.stop();
    }
  }
  const file = results.length ? writeHtmlReport(results) : undefined;
  const failed = [...results, ...exactly].filter((r) => r.checks.some((c) => !c.ok)).map((r) => r.name);
  console.log('');
  if (file) console.log(`report: ${file}`);
  console.log(
    failed.length
      ? `FAILED checks in: ${failed.join(', ')}`
      : `all checks passed (${results.length + exactly.length} scenario(s))`,
  );
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
