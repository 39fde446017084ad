#!/usr/bin/env node
/**
 * etl-ops: the operator CLI of the platform (docs/ops-cli.md). Thin commander wiring; the logic
 * is in ops/commands/*, with clients injected.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import type { EventsOps, RegionClients, SchedulerOps, SqsOps } from './clients';
import { failover, type StackOps } from './commands/failover';
import { listDlqs, redriveQueue, showMessages } from './commands/dlq';
import { redrive } from './commands/redrive';
import { replay } from './commands/replay';
import { rerun } from './commands/rerun';
import { discoverDlqs, readFence, status } from './commands/status';
import { describeError } from './errors';
import { consoleIo, type Io, OpsError } from './io';
import {
  assertRegion,
  configFromStackFile,
  DEFAULT_STACKS,
  knownRegions,
  parseTime,
  pipelinesFromStackFile,
} from './settings';

export interface CliDeps {
  io: Io;
  clients: () => RegionClients;
  stackOps: (workDir: string) => StackOps;
  now?: () => Date;
  /** Repository root (Pulumi.yaml, Pulumi.<stack>.yaml). */
  workDir?: string;
  operator?: string;
}

/** An object whose every method throws `error`: lets `status` report a missing client per section. */
function failing<T extends object>(error: unknown): T {
  return new Proxy({} as T, {
    get: () => () => Promise.reject(error),
  });
}

function tryClient<T extends object>(make: () => T): T {
  try {
    return make();
  } catch (error) {
    return failing<T>(error);
  }
}

const regionOf = (queue: string): string | undefined =>
  queue.startsWith('arn:')
    ? queue.split(':')[3]
    : /^https:\/\/sqs\.([a-z0-9-]+)\.amazonaws\.com\//.exec(queue)?.[1];

/** What every command's action reads: the injected dependencies and the platform's regions. */
interface CliContext {
  readonly deps: CliDeps;
  readonly io: Io;
  readonly now: () => Date;
  readonly workDir: string;
  /** region → stack (contracts/regions.ts). */
  readonly stacks: Readonly<Record<string, string>>;
  readonly regions: readonly string[];
  /** The first region: the global table's home, and where failback goes. */
  readonly home: string;
  readonly operator: string;
}

/** Adds `--yes` and `--dry-run` to a command that changes something. */
const mutating = (cmd: Command) =>
  cmd
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--dry-run', 'print what would be done, change nothing');

/** `status`: batch records, the fence, rule/schedule states and DLQ depths per region. */
function addStatus(program: Command, ctx: CliContext): void {
  const { deps, io, now, workDir, stacks, regions, home } = ctx;
  program
    .command('status')
    .description(
      'batch records (control table GSI), the fence, rule/schedule states and DLQ depths per region',
    )
    .option('-p, --pipeline <name>', 'one pipeline (default: every pipeline in Pulumi.<stack>.yaml)')
    .option('--since <time>', 'batches scheduled at or after this (30m, 24h, 7d or ISO-8601)', '24h')
    .addOption(new Option('-r, --region <region>', 'only this region (its replica serves the records)'))
    .action(async (opts: { pipeline?: string; since: string; region?: string }) => {
      const clients = deps.clients();
      const shown = opts.region ? [assertRegion(opts.region, stacks)] : regions;
      const pipelines = opts.pipeline ? [opts.pipeline] : pipelinesFromStackFile(workDir, stacks[home]);
      if (pipelines.length === 0)
        throw new OpsError(`No pipelines found in Pulumi.${stacks[home]}.yaml; pass --pipeline.`);
      const problems = await status(io, {
        pipelines,
        since: parseTime(opts.since, now(), '--since'),
        records: clients.control(shown[0]),
        regions: shown.map((region) => ({
          region,
          control: clients.control(region),
          events: tryClient<EventsOps>(() => clients.events(region)),
          scheduler: tryClient<SchedulerOps>(() => clients.scheduler(region)),
          sqs: tryClient<SqsOps>(() => clients.sqs(region)),
        })),
      });
      if (problems > 0) throw new OpsError(`status: ${problems} section(s) could not be read (see above).`);
    });
}

/** `rerun`: a new attempt of a batch's downstream run. */
function addRerun(program: Command, ctx: CliContext): void {
  const { deps, io, now, stacks, home, operator } = ctx;
  mutating(
    program
      .command('rerun')
      .description("start a new attempt of a batch's downstream (FAILED; or SUCCEEDED with --force --reason)")
      .requiredOption('-p, --pipeline <name>', 'pipeline')
      .requiredOption('-b, --batch <batchId>', 'batch id, e.g. policycenter-20261127T020000Z')
      .option('--force', 'rerun a SUCCEEDED batch (needs --reason; recorded on the batch)')
      .option('--reason <text>', 'why (recorded as rerunReason, passed to the workflow)')
      .option('-r, --region <region>', 'region to run in (default: the region the fence names)'),
  ).action(
    async (opts: {
      pipeline: string;
      batch: string;
      force?: boolean;
      reason?: string;
      region?: string;
      yes?: boolean;
      dryRun?: boolean;
    }) => {
      const clients = deps.clients();
      let region = opts.region ? assertRegion(opts.region, stacks) : undefined;
      if (!region) {
        const fence = await readFence(clients.control(home));
        if (!fence) throw new OpsError(`No fence in the ${home} replica; pass --region.`);
        region = assertRegion(fence.activeRegion, stacks);
      }
      await rerun(
        io,
        {
          pipeline: opts.pipeline,
          batchId: opts.batch,
          force: opts.force,
          reason: opts.reason,
          operator,
          region,
          yes: opts.yes,
          dryRun: opts.dryRun,
        },
        { control: clients.control(region), sfn: clients.sfn(region), now },
      );
    },
  );
}

/** `redrive`: a stopped Standard execution. */
function addRedrive(program: Command, ctx: CliContext): void {
  const { deps, io, now } = ctx;
  mutating(
    program
      .command('redrive')
      .description(
        'redrive a stopped Standard execution (RedriveExecution), or explain why not and print the rerun to use',
      )
      .requiredOption('-e, --execution <arn>', 'execution ARN'),
  ).action(async (opts: { execution: string; yes?: boolean; dryRun?: boolean }) => {
    const clients = deps.clients();
    await redrive(
      io,
      { executionArn: opts.execution, yes: opts.yes, dryRun: opts.dryRun },
      (region) => clients.sfn(region),
      now,
    );
  });
}

/** `dlq list|show|redrive`. */
function addDlq(program: Command, ctx: CliContext): void {
  const { deps, io, stacks, home } = ctx;
  const dlq = program.command('dlq').description('dead-letter queues: list, show, redrive');
  dlq
    .command('list')
    .description("the region's DLQs (found on the bus rules' targets and the schedules) with their depth")
    .option('-r, --region <region>', 'region', home)
    .action(async (opts: { region: string }) => {
      const region = assertRegion(opts.region, stacks);
      const clients = deps.clients();
      const sqs = clients.sqs(region);
      const found = await discoverDlqs(clients.events(region), clients.scheduler(region), sqs);
      const withDepth = [];
      for (const d of found) {
        const depth = await sqs.depth(d.queueUrl);
        withDepth.push({ ...d, depth: depth.visible, inFlight: depth.inFlight });
      }
      io.out(`Dead-letter queues in ${region}:`);
      listDlqs(io, withDepth);
    });
  dlq
    .command('show')
    .description(
      'show the messages of a DLQ with RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE (a peek: nothing is deleted)',
    )
    .requiredOption('-q, --queue <queue>', 'queue URL, ARN or name')
    .option('-r, --region <region>', 'region (default: from the URL/ARN, else the home region)')
    .option('--max <n>', 'at most this many messages', '50')
    .action(async (opts: { queue: string; region?: string; max: string }) => {
      const region = assertRegion(opts.region ?? regionOf(opts.queue) ?? home, stacks);
      const sqs = deps.clients().sqs(region);
      await showMessages(io, sqs, await sqs.queueUrl(opts.queue), Number(opts.max));
    });
  mutating(
    dlq
      .command('redrive')
      .description(
        're-send every message to its original target; delete each only after its re-send succeeded',
      )
      .requiredOption('-q, --queue <queue>', 'queue URL, ARN or name')
      .option('-r, --region <region>', 'region (default: from the URL/ARN, else the home region)')
      .option('--max <n>', 'at most this many messages', '1000'),
  ).action(async (opts: { queue: string; region?: string; max: string; yes?: boolean; dryRun?: boolean }) => {
    const region = assertRegion(opts.region ?? regionOf(opts.queue) ?? home, stacks);
    const clients = deps.clients();
    const sqs = clients.sqs(region);
    await redriveQueue(
      io,
      { queueUrl: await sqs.queueUrl(opts.queue), max: Number(opts.max), yes: opts.yes, dryRun: opts.dryRun },
      {
        sqs,
        events: (r) => clients.events(r),
        sfn: (r) => clients.sfn(r),
      },
    );
  });
}

/** `replay`: a window of the archive onto the bus. */
function addReplay(program: Command, ctx: CliContext): void {
  const { deps, io, now, stacks } = ctx;
  mutating(
    program
      .command('replay')
      .description("replay a window of the region's archive onto its bus (StartReplay) and wait for it")
      .requiredOption('-r, --region <region>', 'region')
      .requiredOption('--since <time>', 'window start (30m, 24h, 7d or ISO-8601)')
      .option('--until <time>', 'window end (default: now; should be at least 10 minutes ago)', 'now'),
  ).action(
    async (opts: { region: string; since: string; until: string; yes?: boolean; dryRun?: boolean }) => {
      const region = assertRegion(opts.region, stacks);
      await replay(
        io,
        {
          region,
          since: parseTime(opts.since, now(), '--since'),
          until: parseTime(opts.until, now(), '--until'),
          yes: opts.yes,
          dryRun: opts.dryRun,
        },
        { events: deps.clients().events(region), now },
      );
    },
  );
}

/** `failover` and `failback`. */
function addFailover(program: Command, ctx: CliContext): void {
  const { deps, io, now, workDir, stacks, home } = ctx;
  const failoverDeps = () => {
    const clients = deps.clients();
    return {
      stacks: deps.stackOps(workDir),
      stackFor: stacks,
      probe: (region: string) => clients.reachable(region),
      replay: async (region: string, since: Date) => {
        await replay(io, { region, since, until: now(), yes: true }, { events: clients.events(region), now });
      },
      stateDir: path.join(workDir, '.etl-ops'),
      now,
      configFromFile: (stack: string, key: string) => configFromStackFile(workDir, stack, key),
    };
  };
  mutating(
    program
      .command('failover')
      .description(
        'make REGION active: config on both stacks, up the new active stack, verify, up the old one if reachable, replay the gap',
      )
      .requiredOption('--to <region>', 'the region to make active')
      .option('--replay-since <time>', "replay the new active region's archive from this time (the gap)")
      .option(
        '--resume <file>',
        'continue an interrupted run from its state file (.etl-ops/failover-*.json)',
      ),
  ).action(
    async (opts: { to: string; replaySince?: string; resume?: string; yes?: boolean; dryRun?: boolean }) => {
      await failover(
        io,
        {
          command: 'failover',
          to: opts.to,
          replaySince: opts.replaySince ? parseTime(opts.replaySince, now(), '--replay-since') : undefined,
          resume: opts.resume,
          yes: opts.yes,
          dryRun: opts.dryRun,
        },
        failoverDeps(),
      );
    },
  );
  mutating(
    program
      .command('failback')
      .description(`make the home region (${home}) active again: the failover steps towards ${home}`)
      .option('--replay-since <time>', "replay the home region's archive from this time")
      .option(
        '--resume <file>',
        'continue an interrupted run from its state file (.etl-ops/failback-*.json)',
      ),
  ).action(async (opts: { replaySince?: string; resume?: string; yes?: boolean; dryRun?: boolean }) => {
    await failover(
      io,
      {
        command: 'failback',
        to: home,
        replaySince: opts.replaySince ? parseTime(opts.replaySince, now(), '--replay-since') : undefined,
        resume: opts.resume,
        yes: opts.yes,
        dryRun: opts.dryRun,
      },
      failoverDeps(),
    );
  });
}

export function buildProgram(deps: CliDeps): Command {
  const { io } = deps;
  const stacks = DEFAULT_STACKS;
  const regions = knownRegions(stacks);
  const ctx: CliContext = {
    deps,
    io,
    now: deps.now ?? (() => new Date()),
    workDir: deps.workDir ?? process.cwd(),
    stacks,
    regions,
    home: regions[0],
    operator: deps.operator ?? process.env.USER ?? process.env.USERNAME ?? 'unknown',
  };

  const program = new Command('etl-ops')
    .description('Operate the etl-platform: batch status, reruns, redrives, DLQs, archive replay, failover.')
    .showHelpAfterError()
    .exitOverride();
  program.configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
  for (const add of [addStatus, addRerun, addRedrive, addDlq, addReplay, addFailover]) add(program, ctx);
  return program;
}

/** The nearest directory at or above `start` holding Pulumi.yaml (the program's root). */
export function findProjectRoot(start: string): string | undefined {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'Pulumi.yaml'))) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** Runs the CLI; resolves to the exit code (never throws). */
export async function run(argv: string[], deps: CliDeps): Promise<number> {
  try {
    await buildProgram(deps).parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version exit 0; usage errors were already printed by commander.
      return error.exitCode;
    }
    if (error instanceof OpsError) {
      deps.io.err(`error: ${error.message}`);
      return error.exitCode;
    }
    deps.io.err(`error: ${describeError(error)}`);
    return 1;
  }
}

/** The process entry: `npm run ops`, and bin/etl-ops.js (which registers ts-node first). */
export function main(argv: string[] = process.argv.slice(2)): void {
  // Operators cannot act on the SDK's Node-version notice; it would bury the command's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // Lazy: the AWS and Pulumi modules load only for the commands that use them.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const io = consoleIo();
  run(argv, {
    io,
    clients: () => (require('./aws-clients') as typeof import('./aws-clients')).awsClients(),
    stackOps: (workDir) =>
      (require('./stack-ops') as typeof import('./stack-ops')).automationStackOps(workDir),
    workDir: findProjectRoot(process.cwd()) ?? findProjectRoot(__dirname) ?? process.cwd(),
  }).then((code) => {
    process.exitCode = code;
  });
}

if (require.main === module) main();
