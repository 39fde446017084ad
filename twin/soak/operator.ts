import type { EventsOps, SfnOps, ControlTable } from '../../ops/clients';
import { type StackOps, failover, ACTIVE_REGION_KEY } from '../../ops/commands/failover';
import { replay } from '../../ops/commands/replay';
import { PLATFORM } from '../../ops/settings';
import { memoryIo, OpsError } from '../../ops/io';

/**
 * The operator's tools (ops/, the functions behind `etl-ops`) bound to the local engines, so the
 * soak runs the runbooks' commands themselves, not a re-implementation:
 * - SfnOps.startExecution starts the downstream workflow in the soak's world;
 * - EventsOps replays the soak's archive (every event put on a region's bus, with its time);
 * - StackOps is `pulumi config set activeRegion` + `pulumi up`: the stack's fence writer moves the
 *   warehouse fence, then the DynamoDB fence (in its own region's replica), and its rules follow.
 */

export interface ArchivedEvent {
  region: string;
  /** When it was put on the bus (wall ms). */
  at: number;
  pipeline: string;
  batchId: string;
}

/** What the adapters need from the soak driver. */
export interface OperatorWorld {
  control(region: string): ControlTable;
  stateMachineArn(region: string, name: string): string;
  /** Starts a downstream execution (not awaited); `cause` is recorded in the history. */
  start(region: string, pipeline: string, input: unknown, name: string, cause: 'replay' | 'rerun'): void;
  archive: ArchivedEvent[];
  /** Re-delivers an archived event to `region`'s bus (the bus's rules decide where it goes). */
  redeliver(region: string, event: ArchivedEvent): void;
  /** `pulumi up` of `region`'s stack with `activeRegion`: fence (if active) and rule states. */
  deployStack(region: string, activeRegion: string): Promise<void>;
  rulesEnabled(region: string): boolean;
  fenceRegion(region: string): Promise<string | undefined>;
  reachable(region: string): boolean;
  stateDir: string;
}

const STACK_OF: Record<string, string> = { 'us-east-1': 'prod-east', 'us-west-1': 'prod-west' };
const REGION_OF: Record<string, string> = { 'prod-east': 'us-east-1', 'prod-west': 'us-west-1' };

export function localSfn(w: OperatorWorld, region: string): SfnOps {
  const unused = (what: string) => () => Promise.reject(new OpsError(`${what} is not used by the soak`));
  return {
    stateMachineArn: async (name) => w.stateMachineArn(region, name),
    startExecution: async ({ stateMachineArn, name, input }) => {
      const pipeline = /etl-(.+)-downstream$/.exec(stateMachineArn)?.[1];
      if (!pipeline) throw new OpsError(`not a downstream workflow: ${stateMachineArn}`);
      const executionName = name ?? `rerun-${Date.now()}`;
      w.start(region, pipeline, JSON.parse(input), executionName, 'rerun');
      return { executionArn: `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${executionName}` };
    },
    describeExecution: unused('DescribeExecution'),
    describeStateMachine: unused('DescribeStateMachine'),
    describeStateMachineForExecution: unused('DescribeStateMachineForExecution'),
    redriveExecution: unused('RedriveExecution'),
  };
}

export function localEvents(w: OperatorWorld, region: string): EventsOps {
  const replays = new Map<string, { state: string; last?: Date }>();
  const unused = (what: string) => () => Promise.reject(new OpsError(`${what} is not used by the soak`));
  return {
    describeArchive: async (name) => ({
      archiveArn: `arn:aws:events:${region}:123456789012:archive/${name}`,
      eventSourceArn: `arn:aws:events:${region}:123456789012:event-bus/${PLATFORM.busName}`,
      state: 'ENABLED',
    }),
    startReplay: async ({ replayName, eventStartTime, eventEndTime }) => {
      const from = eventStartTime.getTime();
      const to = eventEndTime.getTime();
      const events = w.archive.filter((e) => e.region === region && e.at >= from && e.at <= to);
      for (const e of events) w.redeliver(region, e);
      replays.set(replayName, { state: 'COMPLETED', last: eventEndTime });
      return { replayArn: `arn:aws:events:${region}:123456789012:replay/${replayName}`, state: 'STARTING' };
    },
    describeReplay: async (name) => {
      const r = replays.get(name);
      return r
        ? { state: r.state, eventLastReplayedTime: r.last }
        : { state: 'FAILED', stateReason: 'unknown replay' };
    },
    listRules: unused('ListRules'),
    listTargets: unused('ListTargets'),
    putEvents: unused('PutEvents'),
  };
}

/** `pulumi config` and `pulumi up` of the two stacks, against the soak's world. */
export function localStacks(w: OperatorWorld, config: Record<string, string>): StackOps {
  return {
    getConfig: async (stack, key) => (key === ACTIVE_REGION_KEY ? config[stack] : undefined),
    setConfig: async (stack, key, value) => {
      if (key === ACTIVE_REGION_KEY) config[stack] = value;
    },
    up: async (stack, onOutput) => {
      const region = REGION_OF[stack];
      await w.deployStack(region, config[stack]);
      onOutput(
        `${stack}: activeRegion ${config[stack]}, rules ${w.rulesEnabled(region) ? 'ENABLED' : 'DISABLED'}`,
      );
    },
    outputs: async (stack) => {
      const region = REGION_OF[stack];
      const state = w.rulesEnabled(region) ? 'ENABLED' : 'DISABLED';
      return {
        failover: {
          stack,
          region,
          activeRegion: config[stack],
          role: config[stack] === region ? 'active' : 'passive',
          fence: { activeRegion: await w.fenceRegion(region) },
          toggles: [{ kind: 'rule', name: 'downstream-trigger', state }],
        },
      };
    },
  };
}

/** `etl-ops replay --region R --since S --until now --yes`, through ops' replay(). */
export async function runReplay(w: OperatorWorld, region: string, since: Date): Promise<string[]> {
  const io = memoryIo();
  const until = new Date();
  if (since.getTime() >= until.getTime()) return ['replay: empty window'];
  await replay(io, { region, since, until, yes: true, pollMs: 5 }, { events: localEvents(w, region) });
  return [...io.lines, ...io.errors];
}

/** `etl-ops failover|failback --to R [--replay-since S] --yes`, through ops' failover(). */
export async function runFailover(
  w: OperatorWorld,
  command: 'failover' | 'failback',
  to: string,
  config: Record<string, string>,
  replaySince: () => Promise<Date | undefined>,
): Promise<string[]> {
  const io = memoryIo();
  const since = await replaySince();
  await failover(
    io,
    { command, to, yes: true, ...(since ? { replaySince: since } : {}) },
    {
      stacks: localStacks(w, config),
      stackFor: STACK_OF,
      probe: async (region) => w.reachable(region),
      replay: async (region, s) => {
        io.lines.push(...(await runReplay(w, region, s)));
      },
      stateDir: w.stateDir,
    },
  );
  return [...io.lines, ...io.errors];
}
