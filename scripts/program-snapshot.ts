/**
 * Writes what the program declares, per stack and activeRegion (and per trigger mode), as sorted
 * JSON: every resource's URN, type, region, provider and raw inputs (the workflows' ASL included).
 * Used to show that a refactor changes nothing a `pulumi up` would see:
 *   npx ts-node --transpile-only scripts/program-snapshot.ts /tmp/before
 *   ...refactor...
 *   npx ts-node --transpile-only scripts/program-snapshot.ts /tmp/after && diff -r /tmp/before /tmp/after
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runProgram, type ProgramOptions } from '../local/program';
import { TRIGGER_MODES } from '../contracts/trigger-modes';

// The mock monitor computes each URN (parent chain included) but does not hand it to the mocks.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { MockMonitor } = require('@pulumi/pulumi/runtime/mocks') as {
  MockMonitor: { prototype: { newUrn: (parent: string, type: string, name: string) => string } };
};
const registered: Array<{ urn: string; type: string; name: string; aliases: unknown[] }> = [];
const original = MockMonitor.prototype.newUrn;
MockMonitor.prototype.newUrn = function (this: unknown, parent: string, type: string, name: string): string {
  const urn = original.call(this, parent, type, name);
  registered.push({ urn, type, name, aliases: [] });
  return urn;
};

const variants: Array<[string, ProgramOptions]> = [
  ['prod-east.active-east', { stack: 'prod-east', activeRegion: 'us-east-1' }],
  ['prod-east.active-west', { stack: 'prod-east', activeRegion: 'us-west-1' }],
  ['prod-west.active-east', { stack: 'prod-west', activeRegion: 'us-east-1' }],
  ['prod-west.active-west', { stack: 'prod-west', activeRegion: 'us-west-1' }],
  ...TRIGGER_MODES.map((mode): [string, ProgramOptions] => [
    `prod-east.mode-${mode}`,
    { stack: 'prod-east', config: { defaultTriggerMode: mode } },
  ]),
];

async function main(): Promise<void> {
  const outDir = process.argv[2];
  if (!outDir) throw new Error('usage: program-snapshot.ts <output directory>');
  fs.mkdirSync(outDir, { recursive: true });
  for (const [label, options] of variants) {
    registered.length = 0;
    const run = await runProgram(options);
    if (run.error) throw new Error(`${label}: ${run.error.message}`);
    const urns = new Map<string, string[]>();
    for (const r of registered)
      urns.set(`${r.type}::${r.name}`, [...(urns.get(`${r.type}::${r.name}`) ?? []), r.urn]);
    const resources = run.resources
      .map((r) => ({
        urn: (urns.get(`${r.type}::${r.name}`) ?? ['?']).join(' | '),
        type: r.type,
        region: r.region,
        provider: r.provider,
        inputs: r.inputs,
      }))
      .sort((a, b) => (a.urn < b.urn ? -1 : a.urn > b.urn ? 1 : 0));
    // The fence writer's per-update trigger carries the time of the update: the one intended difference.
    const text = JSON.stringify({ outputs: run.outputs, resources }, null, 1).replace(
      /(assertedAt\\":\\")[^\\]+/g,
      '$1<time>',
    );
    fs.writeFileSync(path.join(outDir, `${label}.json`), text + '\n');
    console.log(`${label}: ${resources.length} resources`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
