/**
 * Writes what the program declares, per stack and activeRegion (and per trigger mode), as sorted
 * JSON: every resource's URN, type, region, provider and raw inputs (the workflows' ASL included).
 * Used to show that a refactor changes nothing a `pulumi up` would see:
 *   npm run snapshot -- /tmp/before
 *   ...refactor...
 *   npm run snapshot -- /tmp/after --against /tmp/before
 * `--against` compares each resource, found by type and logical name, with the baseline: inputs,
 * region and provider must be identical; a resource may only be added (a new component) and its
 * URN may move (then it needs an alias: tests/urn-aliases.test.ts). Exits 1 on any other change.
 */
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runProgram, type ProgramOptions } from '../local/program';
import { TRIGGER_MODES } from '../contracts/trigger-modes';

// The mock monitor computes each URN (parent chain included) but does not hand it to the mocks.
const registered: Array<{ urn: string; type: string; name: string }> = [];
function recordUrns(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { MockMonitor } = require('@pulumi/pulumi/runtime/mocks') as {
    MockMonitor: { prototype: { newUrn: (parent: string, type: string, name: string) => string } };
  };
  const original = MockMonitor.prototype.newUrn;
  MockMonitor.prototype.newUrn = function (
    this: unknown,
    parent: string,
    type: string,
    name: string,
  ): string {
    const urn = original.call(this, parent, type, name);
    registered.push({ urn, type, name });
    return urn;
  };
}

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

interface SnapshotResource {
  readonly urn: string;
  readonly type: string;
  readonly region: string;
  readonly provider: string;
  readonly inputs: unknown;
}
interface Snapshot {
  readonly outputs: unknown;
  readonly resources: readonly SnapshotResource[];
}

/** The differences between two snapshots of one variant that a `pulumi up` would act on. */
export function compareSnapshots(
  before: Snapshot,
  after: Snapshot,
): { changed: string[]; removed: string[]; added: string[]; moved: number } {
  const key = (r: SnapshotResource) => `${r.type}::${r.urn.slice(r.urn.lastIndexOf('::') + 2)}`;
  const deployed = (r: SnapshotResource) => JSON.stringify([r.region, r.provider, r.inputs]);
  const afterByKey = new Map(after.resources.map((r) => [key(r), r]));
  const beforeKeys = new Set(before.resources.map(key));
  const changed = JSON.stringify(before.outputs) === JSON.stringify(after.outputs) ? [] : ['stack outputs'];
  const removed: string[] = [];
  let moved = 0;
  for (const r of before.resources) {
    const now = afterByKey.get(key(r));
    if (!now) removed.push(key(r));
    else {
      if (deployed(now) !== deployed(r)) changed.push(key(r));
      if (now.urn !== r.urn) moved++;
    }
  }
  const added = after.resources.map(key).filter((k) => !beforeKeys.has(k));
  return { changed, removed, added, moved };
}

function compareWith(baseline: string, outDir: string, label: string): boolean {
  const read = (dir: string) =>
    JSON.parse(fs.readFileSync(path.join(dir, `${label}.json`), 'utf8')) as Snapshot;
  const { changed, removed, added, moved } = compareSnapshots(read(baseline), read(outDir));
  console.log(
    `  against ${baseline}: ${changed.length} changed, ${removed.length} removed, ${added.length} added` +
      `${added.length ? ` (${added.join(', ')})` : ''}, ${moved} URNs moved`,
  );
  for (const what of [...changed.map((k) => `changed ${k}`), ...removed.map((k) => `removed ${k}`)])
    console.log(`    ${what}`);
  return changed.length === 0 && removed.length === 0;
}

async function main(): Promise<void> {
  const command = new Command('snapshot')
    .argument('<outDir>', 'directory to write one JSON file per variant into')
    .option('--against <dir>', 'a baseline snapshot directory to compare with')
    .parse();
  const [outDir] = command.args;
  const { against } = command.opts<{ against?: string }>();
  fs.mkdirSync(outDir, { recursive: true });
  recordUrns();
  let same = true;
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
    if (against) same = compareWith(against, outDir, label) && same;
  }
  if (!same) process.exit(1);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
