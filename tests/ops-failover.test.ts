import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { failover, type FailoverDeps, readState, type StackOps } from '../ops/commands/failover';
import { memoryIo, OpsError } from '../ops/io';

const STACKS = { 'us-east-1': 'prod-east', 'us-west-1': 'prod-west' };

/** A fake Pulumi: config per stack; `up` makes the stack's failover output follow its config. */
function fakeStacks(opts: { failOn?: string; upBreaksToggle?: boolean } = {}) {
  const calls: string[] = [];
  const config: Record<string, string> = { 'prod-east': 'us-east-1', 'prod-west': 'us-east-1' };
  const deployed: Record<string, string> = { ...config };
  const region: Record<string, string> = { 'prod-east': 'us-east-1', 'prod-west': 'us-west-1' };
  const maybeFail = (call: string) => {
    if (opts.failOn === call) throw new Error(`${call} exploded`);
  };
  const ops: StackOps = {
    getConfig: async (stack, key) => {
      assert.equal(key, 'activeRegion');
      return config[stack];
    },
    setConfig: async (stack, key, value) => {
      calls.push(`setConfig ${stack} ${key}=${value}`);
      maybeFail(`setConfig ${stack}`);
      config[stack] = value;
    },
    up: async (stack, onOutput) => {
      calls.push(`up ${stack}`);
      onOutput(`Updating (${stack}):`);
      maybeFail(`up ${stack}`);
      deployed[stack] = config[stack];
    },
    outputs: async (stack) => {
      calls.push(`outputs ${stack}`);
      const active = deployed[stack];
      const state = active === region[stack] ? 'ENABLED' : 'DISABLED';
      return {
        failover: {
          stack,
          region: region[stack],
          role: active === region[stack] ? 'active' : 'passive',
          activeRegion: active,
          fence: { activeRegion: active, epoch: active === 'us-east-1' ? 3 : 4 },
          toggles: [
            {
              kind: 'schedule',
              name: 'policycenter-upstream',
              state: opts.upBreaksToggle ? 'DISABLED' : state,
            },
            { kind: 'rule', name: 'policycenter-downstream-trigger', state },
          ],
        },
      };
    },
  };
  return { ops, calls, config };
}

describe('etl-ops failover / failback (fake StackOps)', () => {
  let dir: string;
  const NOW = new Date('2026-11-27T12:00:00Z');
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-ops-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function deps(stacks: StackOps, calls: string[], reachable = true, replayFails = false): FailoverDeps {
    return {
      stacks,
      stackFor: STACKS,
      probe: async (region) => {
        calls.push(`probe ${region}`);
        return reachable;
      },
      replay: async (region, since) => {
        calls.push(`replay ${region} since ${since.toISOString()}`);
        if (replayFails) throw new Error('archive unavailable');
      },
      stateDir: dir,
      now: () => NOW,
    };
  }
  const args = {
    command: 'failover' as const,
    to: 'us-west-1',
    replaySince: new Date('2026-11-27T09:00:00Z'),
    yes: true,
  };

  it('runs the steps in order: config both, up new active, verify, up old if reachable, replay', async () => {
    const { ops, calls } = fakeStacks();
    const io = memoryIo();
    const { state, stateFile } = await failover(io, args, deps(ops, calls));
    assert.deepEqual(calls, [
      'setConfig prod-west activeRegion=us-west-1',
      'setConfig prod-east activeRegion=us-west-1',
      'up prod-west',
      'outputs prod-west',
      'probe us-east-1',
      'up prod-east',
      'replay us-west-1 since 2026-11-27T09:00:00.000Z',
    ]);
    assert.deepEqual(
      state.steps.map((s) => [s.id, s.status]),
      [
        ['config:prod-west', 'done'],
        ['config:prod-east', 'done'],
        ['up:prod-west', 'done'],
        ['verify:prod-west', 'done'],
        ['up:prod-east', 'done'],
        ['replay:us-west-1', 'done'],
      ],
    );
    assert.equal(stateFile, path.join(dir, 'failover-2026-11-27T12-00-00-000Z.json'));
    assert.deepEqual(
      readState(stateFile as string).steps.map((s) => s.status),
      ['done', 'done', 'done', 'done', 'done', 'done'],
    );
    assert.match(io.text(), /\[4\/6\] verify:prod-west: done \(fence us-west-1 epoch 4; 2 toggles ENABLED\)/);
    assert.match(io.text(), / {4}Updating \(prod-west\):/);
  });

  it('stops at the first failure: no later step runs, the state file records it', async () => {
    const { ops, calls } = fakeStacks({ failOn: 'up prod-west' });
    const io = memoryIo();
    await assert.rejects(
      failover(io, args, deps(ops, calls)),
      (e: Error) =>
        e instanceof OpsError &&
        /\[3\/6\] up:prod-west failed: up prod-west exploded.*--resume /s.test(e.message),
    );
    assert.deepEqual(calls, [
      'setConfig prod-west activeRegion=us-west-1',
      'setConfig prod-east activeRegion=us-west-1',
      'up prod-west',
    ]);
    const files = fs.readdirSync(dir);
    assert.equal(files.length, 1);
    assert.deepEqual(
      readState(path.join(dir, files[0])).steps.map((s) => s.status),
      ['done', 'done', 'failed', 'pending', 'pending', 'pending'],
    );
  });

  it('fails verification when a toggle is not ENABLED, and does not touch the old region', async () => {
    const { ops, calls } = fakeStacks({ upBreaksToggle: true });
    await assert.rejects(
      failover(memoryIo(), args, deps(ops, calls)),
      /verify:prod-west failed: prod-west's failover output is wrong: schedule policycenter-upstream is DISABLED/,
    );
    assert.ok(
      !calls.includes('up prod-east') && !calls.some((c) => c.startsWith('probe') || c.startsWith('replay')),
    );
  });

  it('skips the old region when it is unreachable, says so, and carries on to the replay', async () => {
    const { ops, calls } = fakeStacks();
    const io = memoryIo();
    const { state } = await failover(io, args, deps(ops, calls, false));
    assert.ok(!calls.includes('up prod-east'));
    assert.equal(calls[calls.length - 1], 'replay us-west-1 since 2026-11-27T09:00:00.000Z');
    assert.equal(state.steps[4].status, 'skipped');
    assert.match(
      io.text(),
      /us-east-1 is unreachable: skipped\..*When it is back, run: pulumi up -s prod-east/,
    );
  });

  it('--resume skips completed steps and continues from the failed one', async () => {
    const first = fakeStacks();
    await assert.rejects(
      failover(memoryIo(), args, deps(first.ops, first.calls, true, true)),
      /replay:us-west-1 failed: archive unavailable/,
    );
    const file = path.join(dir, fs.readdirSync(dir)[0]);
    const calls: string[] = [];
    const io = memoryIo();
    const { state } = await failover(
      io,
      { ...args, replaySince: undefined, resume: file },
      deps(first.ops, calls),
    );
    assert.deepEqual(calls, ['replay us-west-1 since 2026-11-27T09:00:00.000Z']);
    assert.ok(state.steps.every((s) => s.status === 'done'));
    assert.match(io.text(), /\[1\/6\] config:prod-west: already done/);
    // a state file of another target is refused
    await assert.rejects(
      failover(memoryIo(), { ...args, to: 'us-east-1', resume: file }, deps(first.ops, [])),
      /not to us-east-1/,
    );
  });

  it('refuses the region that is already active, changing nothing', async () => {
    const { ops, calls } = fakeStacks();
    await assert.rejects(
      failover(memoryIo(), { ...args, command: 'failback', to: 'us-east-1' }, deps(ops, calls)),
      (e: Error) =>
        e instanceof OpsError && /us-east-1 is already the active region.*Nothing changed/.test(e.message),
    );
    assert.deepEqual(calls, ['outputs prod-east']);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('refuses an unknown region, changing nothing', async () => {
    const { ops, calls } = fakeStacks();
    await assert.rejects(
      failover(memoryIo(), { ...args, to: 'eu-west-1' }, deps(ops, calls)),
      /Unknown region "eu-west-1".*us-east-1, us-west-1\. Nothing changed/,
    );
    assert.deepEqual(calls, []);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('--dry-run prints the plan and changes nothing; failback after a failover goes back to us-east-1', async () => {
    const { ops, calls } = fakeStacks();
    const io = memoryIo();
    await failover(io, { ...args, yes: false, dryRun: true }, deps(ops, calls));
    assert.deepEqual(calls, []);
    assert.match(
      io.text(),
      /Plan \(dry run, nothing will be changed\):\n {2}- pulumi config set activeRegion us-west-1 -s prod-west/,
    );
    // The order of the fences: the survivor's up moves the warehouse fence, then the DynamoDB fence,
    // before the old region is touched (the order inside the up: tests/warehouse-fence.test.ts).
    const plan = io
      .text()
      .split('\n')
      .filter((l) => l.startsWith('  - '));
    assert.match(
      plan[2],
      /pulumi up -s prod-west \(new active region first: its fence writer moves the warehouse fence, then the DynamoDB fence;/,
    );
    assert.match(plan[4], /pulumi up -s prod-east if us-east-1 is reachable/);
    await failover(memoryIo(), { ...args, replaySince: undefined }, deps(ops, calls));
    calls.length = 0;
    const { state } = await failover(
      memoryIo(),
      { command: 'failback', to: 'us-east-1', yes: true },
      deps(ops, calls),
    );
    assert.deepEqual(calls, [
      'setConfig prod-east activeRegion=us-east-1',
      'setConfig prod-west activeRegion=us-east-1',
      'up prod-east',
      'outputs prod-east',
      'probe us-west-1',
      'up prod-west',
    ]);
    assert.equal(state.steps[5].status, 'skipped');
  });
});
