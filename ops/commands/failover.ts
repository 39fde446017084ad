import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeError, isPulumiMissing } from '../errors';
import { errorMessage, type Io, OpsError, planAndConfirm, type RunOptions } from '../io';

/** What failover needs from Pulumi: implemented with the Automation API in ops/stack-ops.ts. */
export interface StackOps {
  getConfig(stack: string, key: string): Promise<string | undefined>;
  setConfig(stack: string, key: string, value: string): Promise<void>;
  /** `pulumi up`; streams the engine's output lines. */
  up(stack: string, onOutput: (line: string) => void): Promise<void>;
  /** Stack outputs, unwrapped (`{failover: {...}}`). */
  outputs(stack: string): Promise<Record<string, unknown>>;
}

export interface FailoverOutputView {
  stack?: string;
  region?: string;
  role?: string;
  activeRegion?: string;
  fence?: { activeRegion?: string; epoch?: number };
  toggles?: Array<{ kind: string; name: string; state: string }>;
}

export type StepStatus = 'pending' | 'done' | 'skipped' | 'failed';

export interface StepRecord {
  id: string;
  description: string;
  status: StepStatus;
  startedAt?: string;
  endedAt?: string;
  message?: string;
}

export interface FailoverState {
  version: 1;
  command: 'failover' | 'failback';
  to: string;
  from: string;
  stacks: Record<string, string>;
  replaySince?: string;
  createdAt: string;
  updatedAt: string;
  steps: StepRecord[];
}

export interface FailoverArgs extends RunOptions {
  /** Which of the two the operator ran (recorded in the state file). */
  command: 'failover' | 'failback';
  /** Target region; failback passes the home region. */
  to: string;
  /**
   * Replay the new active region's archive from this time to now, as the last step.
   * @default no replay step
   */
  replaySince?: Date;
  /**
   * A state file of an earlier run to continue.
   * @default a new run
   */
  resume?: string;
}

export interface FailoverDeps {
  stacks: StackOps;
  /** region -> stack, the first entry is the home region. */
  stackFor: Readonly<Record<string, string>>;
  /** Is the region's control plane reachable (short timeout)? */
  probe(region: string): Promise<boolean>;
  /** Replays the region's archive from `since` to now (the replay command). */
  replay(region: string, since: Date): Promise<void>;
  stateDir: string;
  now?: () => Date;
  /**
   * A stack's config value from its committed Pulumi.<stack>.yaml: lets `--dry-run` print the plan
   * when the Pulumi CLI is missing.
   */
  configFromFile?(stack: string, key: string): string | undefined;
}

export const ACTIVE_REGION_KEY = 'activeRegion';

/** The steps, in order. */
export function planSteps(
  to: string,
  from: string,
  stackFor: Readonly<Record<string, string>>,
  replaySince?: Date,
): StepRecord[] {
  const newStack = stackFor[to];
  const oldStack = stackFor[from];
  return [
    {
      id: `config:${newStack}`,
      description: `pulumi config set ${ACTIVE_REGION_KEY} ${to} -s ${newStack}`,
      status: 'pending',
    },
    {
      id: `config:${oldStack}`,
      description: `pulumi config set ${ACTIVE_REGION_KEY} ${to} -s ${oldStack}`,
      status: 'pending',
    },
    {
      id: `up:${newStack}`,
      description: `pulumi up -s ${newStack} (new active region first: its fence writer moves the warehouse fence, then the DynamoDB fence; schedules, rules)`,
      status: 'pending',
    },
    {
      id: `verify:${newStack}`,
      description: `check ${newStack}'s failover output: fence names ${to}, every schedule and rule ENABLED`,
      status: 'pending',
    },
    {
      id: `up:${oldStack}`,
      description: `pulumi up -s ${oldStack} if ${from} is reachable (disables its schedules and rules); skipped otherwise`,
      status: 'pending',
    },
    {
      id: `replay:${to}`,
      description: replaySince
        ? `replay ${to}'s archive from ${replaySince.toISOString()} to now`
        : `replay: skipped (no --replay-since)`,
      status: 'pending',
    },
  ];
}

/** Why the stack's `failover` output does not show `to` as fully active, or [] when it does. */
export function verifyFailoverOutput(output: FailoverOutputView | undefined, to: string): string[] {
  if (!output) return ['the stack has no `failover` output'];
  const problems: string[] = [];
  if (output.activeRegion !== to) problems.push(`activeRegion is ${output.activeRegion}, expected ${to}`);
  if (output.fence?.activeRegion !== to)
    problems.push(`the fence names ${output.fence?.activeRegion ?? 'nothing'}, expected ${to}`);
  if (output.role !== undefined && output.role !== 'active')
    problems.push(`role is ${output.role}, expected active`);
  const toggles = output.toggles ?? [];
  if (toggles.length === 0) problems.push('no schedules or rules listed in toggles');
  for (const t of toggles) if (t.state !== 'ENABLED') problems.push(`${t.kind} ${t.name} is ${t.state}`);
  return problems;
}

function writeState(file: string, state: FailoverState, now: Date): void {
  state.updatedAt = now.toISOString();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

export function readState(file: string): FailoverState {
  let state: FailoverState;
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf8')) as FailoverState;
  } catch (error) {
    throw new OpsError(`Cannot read state file ${file}: ${errorMessage(error)}`);
  }
  if (state?.version !== 1 || !Array.isArray(state.steps) || !state.to)
    throw new OpsError(`${file} is not an etl-ops failover state file.`);
  return state;
}

/** The state of an interrupted run, read back from its file (`--resume`). */
function resumedState(io: Io, args: FailoverArgs, stateFile: string): FailoverState {
  const state = readState(stateFile);
  if (state.to !== args.to)
    throw new OpsError(
      `${stateFile} is a ${state.command} to ${state.to}, not to ${args.to}. Nothing changed.`,
    );
  io.out(`Resuming ${state.command} to ${state.to} from ${stateFile}:`);
  return state;
}

/** Each stack's current `activeRegion` (from the committed stack files for a dry run without the CLI). */
async function currentConfig(
  io: Io,
  args: FailoverArgs,
  deps: FailoverDeps,
  regions: readonly string[],
): Promise<{ current: Array<readonly [string, string | undefined]>; fromFiles: boolean }> {
  try {
    const current = await Promise.all(
      regions.map(
        async (r) => [r, await deps.stacks.getConfig(deps.stackFor[r], ACTIVE_REGION_KEY)] as const,
      ),
    );
    return { current, fromFiles: false };
  } catch (error) {
    // A dry run only prints the plan: the committed stack files are enough for that.
    if (!(args.dryRun && deps.configFromFile && isPulumiMissing(error))) throw error;
    io.out(
      'The Pulumi CLI is not installed: reading the current config from the committed Pulumi.<stack>.yaml files (the backend may differ). A real run needs the CLI.',
    );
    return {
      current: regions.map((r) => [r, deps.configFromFile?.(deps.stackFor[r], ACTIVE_REGION_KEY)] as const),
      fromFiles: true,
    };
  }
}

/** A new run's plan, after refusing one that has nothing to do. */
async function newState(
  io: Io,
  args: FailoverArgs,
  deps: FailoverDeps,
  regions: readonly string[],
  created: Date,
): Promise<{ state: FailoverState; stateFile: string }> {
  const from = regions.find((r) => r !== args.to) as string;
  const { current, fromFiles } = await currentConfig(io, args, deps, regions);
  io.out(
    `Current ${ACTIVE_REGION_KEY}: ${current.map(([r, v]) => `${deps.stackFor[r]}=${v ?? '(unset)'}`).join(', ')}`,
  );
  if (fromFiles && current.every(([, v]) => v === args.to)) {
    io.out(
      `The stack files already name ${args.to}; whether it is deployed can only be checked with the CLI.`,
    );
  } else if (current.every(([, v]) => v === args.to)) {
    const out = (await deps.stacks.outputs(deps.stackFor[args.to]).catch(() => ({}))) as Record<
      string,
      unknown
    >;
    if (verifyFailoverOutput(out.failover as FailoverOutputView, args.to).length === 0) {
      throw new OpsError(
        `${args.to} is already the active region (config on every stack and ${deps.stackFor[args.to]}'s failover output agree). Nothing changed.`,
      );
    }
    io.out(
      `Config already names ${args.to} but ${deps.stackFor[args.to]} has not been deployed with it: continuing an unfinished failover.`,
    );
  }
  const state: FailoverState = {
    version: 1,
    command: args.command,
    to: args.to,
    from,
    stacks: { ...deps.stackFor },
    replaySince: args.replaySince?.toISOString(),
    createdAt: created.toISOString(),
    updatedAt: created.toISOString(),
    steps: planSteps(args.to, from, deps.stackFor, args.replaySince),
  };
  const stateFile = path.join(
    deps.stateDir,
    `${args.command}-${created.toISOString().replace(/[:.]/g, '-')}.json`,
  );
  return { state, stateFile };
}

type StepOutcome = { status: 'done' | 'skipped'; message?: string };

/** Runs one step of the plan; throws when it fails. */
async function runStep(
  io: Io,
  step: StepRecord,
  state: FailoverState,
  deps: FailoverDeps,
): Promise<StepOutcome> {
  const newStack = state.stacks[state.to];
  const oldStack = state.stacks[state.from];
  const [kind] = step.id.split(':');
  if (kind === 'config') {
    await deps.stacks.setConfig(step.id.slice('config:'.length), ACTIVE_REGION_KEY, state.to);
  } else if (kind === 'up' && step.id === `up:${newStack}`) {
    await deps.stacks.up(newStack, (line) => io.out(`    ${line.trimEnd()}`));
  } else if (kind === 'verify') {
    const out = await deps.stacks.outputs(newStack);
    const problems = verifyFailoverOutput(out.failover as FailoverOutputView, state.to);
    if (problems.length > 0)
      throw new Error(`${newStack}'s failover output is wrong: ${problems.join('; ')}`);
    const fo = out.failover as FailoverOutputView;
    return {
      status: 'done',
      message: `fence ${fo.fence?.activeRegion} epoch ${fo.fence?.epoch}; ${fo.toggles?.length} toggles ENABLED`,
    };
  } else if (kind === 'up') {
    if (!(await deps.probe(state.from)))
      return {
        status: 'skipped',
        message: `${state.from} is unreachable: skipped. Its rules may still be enabled; the fence stops it from claiming. When it is back, run: pulumi up -s ${oldStack}`,
      };
    await deps.stacks.up(oldStack, (line) => io.out(`    ${line.trimEnd()}`));
  } else if (kind === 'replay') {
    if (!state.replaySince)
      return {
        status: 'skipped',
        message: 'no --replay-since given; replay later with etl-ops replay if batches were missed',
      };
    await deps.replay(state.to, new Date(state.replaySince));
  } else {
    throw new Error(`unknown step ${step.id}`);
  }
  return { status: 'done' };
}

/**
 * Fails over (or back) to `args.to`, step by step, recording each step in a state file so an
 * interrupted run continues with --resume. Stops at the first failing step.
 */
export async function failover(
  io: Io,
  args: FailoverArgs,
  deps: FailoverDeps,
): Promise<{ stateFile?: string; state: FailoverState }> {
  const now = deps.now ?? (() => new Date());
  const regions = Object.keys(deps.stackFor);
  if (!regions.includes(args.to))
    throw new OpsError(
      `Unknown region "${args.to}". This platform runs in: ${regions.join(', ')}. Nothing changed.`,
    );
  const { state, stateFile } = args.resume
    ? { state: resumedState(io, args, args.resume), stateFile: args.resume }
    : await newState(io, args, deps, regions, now());

  const plan = state.steps.map(
    (s) =>
      `${s.status === 'done' || s.status === 'skipped' ? `[${s.status}, skipping] ` : ''}${s.description}`,
  );
  const question = `${state.command === 'failback' ? 'Fail back' : 'Fail over'} to ${state.to}?`;
  if (!(await planAndConfirm(io, plan, args, question))) return { state };
  writeState(stateFile, state, now());
  io.out(`State file: ${stateFile}`);

  const total = state.steps.length;
  for (const [index, step] of state.steps.entries()) {
    const tag = `[${index + 1}/${total}] ${step.id}`;
    if (step.status === 'done' || step.status === 'skipped') {
      io.out(`${tag}: already ${step.status}`);
      continue;
    }
    step.status = 'pending';
    step.startedAt = now().toISOString();
    step.message = undefined;
    writeState(stateFile, state, now());
    io.out(`${tag}: ${step.description}`);
    try {
      const outcome = await runStep(io, step, state, deps);
      step.status = outcome.status;
      step.message = outcome.message;
      step.endedAt = now().toISOString();
      writeState(stateFile, state, now());
      io.out(`${tag}: ${outcome.status}${outcome.message ? ` (${outcome.message})` : ''}`);
    } catch (error) {
      step.status = 'failed';
      step.message = describeError(error).replace('\n', ' ');
      step.endedAt = now().toISOString();
      writeState(stateFile, state, now());
      throw new OpsError(
        `${tag} failed: ${step.message}\nLater steps were not run. Fix the cause, then continue with: etl-ops ${state.command}${state.command === 'failover' ? ` --to ${state.to}` : ''} --resume ${stateFile}`,
      );
    }
  }
  io.out(
    `${state.command === 'failback' ? 'Failback' : 'Failover'} to ${state.to} complete. State: ${stateFile}`,
  );
  return { stateFile, state };
}
