/**
 * Proves that moving resources under new components (PipelineStack, LatenessWatchdog) replaces
 * nothing in a deployed stack: every URN the stacks held before the move is still claimed, by the
 * resource's own URN or by one of its aliases, by exactly one resource.
 *
 * URNs are computed the way the Pulumi engine computes them (the parent's whole type chain, as the
 * SDK's `createUrn` does), not the way the mock monitor does (only the direct parent's type), and
 * aliases the way the engine resolves them: a resource's own alias specs, plus one alias per alias
 * of its parent (the SDK's `allAliases`/`inheritedChildAlias`), so a component's `aliases` carry
 * its whole subtree.
 *
 * The fixture tests/fixtures/deployed-urns.json lists the URNs of the program before the move (the
 * URNs deployed stacks hold). After a deliberate resource change, or once the stacks have been
 * updated and the aliases removed, rewrite it with `UPDATE_URN_FIXTURE=1` and review its diff.
 */
import { strict as assert } from 'assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as prettier from 'prettier';
import { PROJECT } from '../contracts/naming';
import { runProgram, TEST_SECRETS, type ProgramOptions } from '../local/program';

/** One RegisterResource call as the engine receives it. */
export interface Registration {
  readonly mockUrn: string;
  readonly type: string;
  readonly name: string;
  /** The parent's mock URN, or "" at the top. */
  readonly parent: string;
  readonly custom: boolean;
  readonly aliases: readonly AliasRecord[];
}

export type AliasRecord =
  | { readonly urn: string }
  | {
      readonly spec: {
        readonly name: string;
        readonly type: string;
        /** The alias's parent as a mock URN ("" with `noParent` or when unset). */
        readonly parent: string;
        readonly noParent: boolean;
      };
    };

interface AliasProto {
  hasSpec(): boolean;
  getUrn(): string;
  getSpec():
    | {
        getName(): string;
        getType(): string;
        getStack(): string;
        getProject(): string;
        getParenturn(): string;
        getNoparent(): boolean;
      }
    | undefined;
}
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getCustom(): boolean;
  getAliasesList(): AliasProto[];
}
interface MockMonitorShape {
  mocks: object;
  newUrn(parent: string, type: string, name: string): string;
  registerResource(req: RegisterRequest, callback: unknown): Promise<void>;
}

// Registrations per run, keyed by the run's mocks object (ProgramRun.mocks).
const registrationsByRun = new WeakMap<object, Registration[]>();
const { MockMonitor } = require('@pulumi/pulumi/runtime/mocks') as {
  MockMonitor: { prototype: MockMonitorShape };
};
const originalRegister = MockMonitor.prototype.registerResource;
MockMonitor.prototype.registerResource = function (this: MockMonitorShape, req, callback) {
  const list = registrationsByRun.get(this.mocks) ?? [];
  registrationsByRun.set(this.mocks, list);
  list.push({
    mockUrn: this.newUrn(req.getParent(), req.getType(), req.getName()),
    type: req.getType(),
    name: req.getName(),
    parent: req.getParent(),
    custom: req.getCustom(),
    aliases: req.getAliasesList().map((alias): AliasRecord => {
      const spec = alias.getSpec();
      if (!alias.hasSpec() || !spec) return { urn: alias.getUrn() };
      // Aliases across stacks or projects are not used here; the resolver below would ignore them.
      assert.equal(spec.getStack() + spec.getProject(), '', `${req.getName()}: alias to another stack`);
      return {
        spec: {
          name: spec.getName(),
          type: spec.getType(),
          parent: spec.getParenturn(),
          noParent: spec.getNoparent(),
        },
      };
    }),
  });
  return originalRegister.call(this, req, callback);
};

const typeOf = (urn: string) => urn.split('::')[2].split('$').pop() as string;
const nameOf = (urn: string) => urn.slice(urn.lastIndexOf('::') + 2);

/** The engine's URN of a resource: its parent's whole qualified type chain, then its own type. */
function engineUrn(stack: string, parentUrn: string | undefined, type: string, name: string): string {
  const prefix = parentUrn
    ? `${parentUrn.slice(0, parentUrn.lastIndexOf('::'))}$`
    : `urn:pulumi:${stack}::${PROJECT}::`;
  return `${prefix}${type}::${name}`;
}

/** For every registration: its engine URN and every URN the engine would accept as its old identity. */
export function resolveUrns(
  stack: string,
  registrations: readonly Registration[],
): Map<Registration, { urn: string; aliases: Set<string> }> {
  const byMockUrn = new Map<string, Registration>();
  for (const r of registrations) {
    assert.ok(!byMockUrn.has(r.mockUrn), `two registrations share ${r.mockUrn}`);
    byMockUrn.set(r.mockUrn, r);
  }
  const parentOf = (mockUrn: string): Registration => {
    const found = byMockUrn.get(mockUrn);
    assert.ok(found, `parent ${mockUrn} was never registered`);
    return found;
  };
  const out = new Map<Registration, { urn: string; aliases: Set<string> }>();
  const resolve = (r: Registration): { urn: string; aliases: Set<string> } => {
    const done = out.get(r);
    if (done) return done;
    const parent = r.parent ? resolve(parentOf(r.parent)) : undefined;
    const urn = engineUrn(stack, parent?.urn, r.type, r.name);
    const own = r.aliases.map((alias) => {
      if ('urn' in alias) return alias.urn;
      const { spec } = alias;
      const aliasParent = spec.noParent
        ? undefined
        : spec.parent
          ? resolve(parentOf(spec.parent)).urn
          : parent?.urn;
      return engineUrn(stack, aliasParent, spec.type || r.type, spec.name || r.name);
    });
    const aliases = new Set(own);
    // A parent's alias moves its children too; a child named after its parent follows a renamed parent.
    if (parent && r.parent) {
      const parentName = parentOf(r.parent).name;
      const inherit = (childType: string, childName: string, parentAlias: string) =>
        engineUrn(
          stack,
          parentAlias,
          childType,
          childName.startsWith(parentName)
            ? nameOf(parentAlias) + childName.slice(parentName.length)
            : childName,
        );
      for (const parentAlias of parent.aliases) {
        aliases.add(inherit(r.type, r.name, parentAlias));
        for (const alias of own) aliases.add(inherit(typeOf(alias), nameOf(alias), parentAlias));
      }
    }
    const resolved = { urn, aliases };
    out.set(r, resolved);
    return resolved;
  };
  for (const r of registrations) resolve(r);
  return out;
}

/** The stack and trigger-mode variants whose resource sets differ; activeRegion changes no URN. */
const VARIANTS: Record<string, ProgramOptions> = {
  'prod-east': { stack: 'prod-east' },
  'prod-east.rule-intermediate-sfn': {
    stack: 'prod-east',
    config: { defaultTriggerMode: 'rule-intermediate-sfn' },
  },
  'prod-east.schedule-poll': { stack: 'prod-east', config: { defaultTriggerMode: 'schedule-poll' } },
  'prod-east.upstream-direct': { stack: 'prod-east', config: { defaultTriggerMode: 'upstream-direct' } },
  'prod-east.rule-lambda': { stack: 'prod-east', config: { defaultTriggerMode: 'rule-lambda' } },
  'prod-west': { stack: 'prod-west' },
};

const FIXTURE = path.join(__dirname, 'fixtures', 'deployed-urns.json');

async function registrationsOf(options: ProgramOptions): Promise<readonly Registration[]> {
  // The same inputs as the default secrets, spelt out: a run of its own, so this file's recorder
  // saw every registration even if another suite ran the default options first.
  const run = await runProgram({ ...options, secrets: TEST_SECRETS });
  assert.equal(run.error, undefined);
  const registrations = registrationsByRun.get(run.mocks);
  assert.ok(registrations && registrations.length > 0, 'the recorder saw no registrations');
  return registrations;
}

/**
 * The fixture stores the first variant in full and every other one as its difference from the
 * first (most URNs are shared), with the `urn:pulumi:<stack>::<project>::` prefix left out.
 */
interface UrnFixture {
  readonly base: { readonly variant: string; readonly urns: readonly string[] };
  readonly variants: Record<
    string,
    { readonly added: readonly string[]; readonly removed: readonly string[] }
  >;
}

function toFixture(urns: Record<string, string[]>): UrnFixture {
  const [baseLabel, ...others] = Object.keys(urns);
  const base = new Set(urns[baseLabel]);
  const variants: UrnFixture['variants'] = {};
  for (const label of others) {
    const own = new Set(urns[label]);
    variants[label] = {
      added: urns[label].filter((u) => !base.has(u)),
      removed: urns[baseLabel].filter((u) => !own.has(u)),
    };
  }
  return { base: { variant: baseLabel, urns: urns[baseLabel] }, variants };
}

function fromFixture(fixture: UrnFixture, label: string): Set<string> {
  if (label === fixture.base.variant) return new Set(fixture.base.urns);
  const delta = fixture.variants[label];
  assert.ok(delta, `the fixture has no variant ${label}`);
  const removed = new Set(delta.removed);
  return new Set([...fixture.base.urns.filter((u) => !removed.has(u)), ...delta.added]);
}

const strip = (stack: string, urn: string) => urn.replace(`urn:pulumi:${stack}::${PROJECT}::`, '');

describe('URNs: every deployed resource keeps its identity (aliases)', function () {
  if (process.env.UPDATE_URN_FIXTURE) {
    it('rewrites tests/fixtures/deployed-urns.json from the current program', async () => {
      const urns: Record<string, string[]> = {};
      for (const [label, options] of Object.entries(VARIANTS)) {
        const resolved = resolveUrns(options.stack, await registrationsOf(options));
        urns[label] = [...resolved.values()].map((r) => strip(options.stack, r.urn)).sort();
      }
      // Written as `npm run lint` checks it (prettier --check).
      const text = JSON.stringify(toFixture(urns), null, 2);
      const style = await prettier.resolveConfig(FIXTURE);
      fs.writeFileSync(FIXTURE, await prettier.format(text, { ...style, filepath: FIXTURE }));
    });
    return;
  }

  /** Components this re-layering inserted: new URNs, holding no cloud resource of their own. */
  const INSERTED_COMPONENTS = [
    'etl-platform:pipeline:PipelineStack',
    'etl-platform:watchdog:LatenessWatchdog',
  ];
  /**
   * Resources added after the fixture was taken (they were never deployed, so they claim nothing):
   * the watchdog's alert workflow (its component, log group, role, policy and state machine) and
   * its alarms.
   */
  const isAddedSinceFixture = (r: Registration): boolean =>
    r.name.startsWith('etl-watchdog-alerts') || r.name.startsWith('etl-observability-watchdog-alerts-');
  const fixture = JSON.parse(fs.readFileSync(FIXTURE, 'utf8')) as UrnFixture;

  /** Which deployed URNs each resource claims (by its URN or an alias), and which nobody claims. */
  function claims(stack: string, registrations: readonly Registration[], before: Set<string>) {
    const resolved = resolveUrns(stack, registrations);
    const claimedBy = new Map<string, string[]>();
    const perResource = registrations.map((r) => {
      const { urn, aliases } = resolved.get(r)!;
      const claimed = [urn, ...aliases].map((u) => strip(stack, u)).filter((u) => before.has(u));
      for (const u of claimed) claimedBy.set(u, [...(claimedBy.get(u) ?? []), strip(stack, urn)]);
      return { registration: r, urn: strip(stack, urn), claimed: [...new Set(claimed)] };
    });
    return { perResource, claimedBy, unclaimed: [...before].filter((u) => !claimedBy.has(u)) };
  }

  for (const [label, options] of Object.entries(VARIANTS)) {
    describe(label, () => {
      it('every deployed URN is claimed by exactly one resource; only the inserted components and the resources added since are new', async () => {
        const before = fromFixture(fixture, label);
        const { perResource, claimedBy, unclaimed } = claims(
          options.stack,
          await registrationsOf(options),
          before,
        );
        assert.deepEqual(unclaimed, [], 'deployed resources nothing claims: a `pulumi up` would delete them');
        for (const [deployed, by] of claimedBy) assert.equal(by.length, 1, `${deployed} is claimed by ${by}`);
        for (const r of perResource) {
          if (INSERTED_COMPONENTS.includes(r.registration.type)) {
            assert.equal(r.registration.custom, false);
            assert.deepEqual(r.claimed, [], `${r.urn}: an inserted component claims a deployed URN`);
          } else if (isAddedSinceFixture(r.registration))
            assert.deepEqual(r.claimed, [], `${r.urn}: a new resource claims a deployed URN`);
          else assert.equal(r.claimed.length, 1, `${r.urn} claims ${r.claimed.length} deployed URNs`);
        }
      });

      it('the aliases are what keeps the moved resources: without them those would be replaced', async () => {
        const registrations = await registrationsOf(options);
        const withoutAliases = registrations.map((r) => ({ ...r, aliases: [] }));
        const { unclaimed } = claims(options.stack, withoutAliases, fromFixture(fixture, label));
        const moved = claims(options.stack, registrations, fromFixture(fixture, label)).perResource.filter(
          (r) => r.claimed.length === 1 && r.claimed[0] !== r.urn,
        );
        assert.ok(
          moved.some((r) => r.registration.custom),
          'no cloud resource moved: nothing was tested',
        );
        assert.deepEqual(unclaimed.sort(), moved.map((r) => r.claimed[0]).sort());
      });
    });
  }

  it("the resolver follows the engine: a child inherits its parent's alias, renamed with it", () => {
    const stack = 'prod-east';
    const mock = (type: string, name: string, parent?: Registration) =>
      `urn:pulumi:${stack}::${PROJECT}::${parent ? `${parent.type}$` : ''}${type}::${name}`;
    const root: Registration = {
      mockUrn: mock('x:index:Root', 'app'),
      type: 'x:index:Root',
      name: 'app',
      parent: '',
      custom: false,
      aliases: [],
    };
    const inserted: Registration = {
      mockUrn: mock('x:index:Group', 'app-g', root),
      type: 'x:index:Group',
      name: 'app-g',
      parent: root.mockUrn,
      custom: false,
      aliases: [],
    };
    const moved: Registration = {
      mockUrn: mock('x:index:Part', 'app-part', inserted),
      type: 'x:index:Part',
      name: 'app-part',
      parent: inserted.mockUrn,
      custom: false,
      aliases: [{ spec: { name: '', type: '', parent: root.mockUrn, noParent: false } }],
    };
    const leaf: Registration = {
      mockUrn: mock('aws:s3/bucket:Bucket', 'app-part-bucket', moved),
      type: 'aws:s3/bucket:Bucket',
      name: 'app-part-bucket',
      parent: moved.mockUrn,
      custom: true,
      aliases: [],
    };
    const resolved = resolveUrns(stack, [root, inserted, moved, leaf]);
    const prefix = `urn:pulumi:${stack}::${PROJECT}::`;
    assert.equal(
      resolved.get(leaf)!.urn,
      `${prefix}x:index:Root$x:index:Group$x:index:Part$aws:s3/bucket:Bucket::app-part-bucket`,
    );
    assert.deepEqual(
      [...resolved.get(leaf)!.aliases],
      [`${prefix}x:index:Root$x:index:Part$aws:s3/bucket:Bucket::app-part-bucket`],
    );
  });
});
