import type { EventsOps } from '../clients';
import { type Io, OpsError, planAndConfirm, type RunOptions } from '../io';
import { PLATFORM } from '../settings';

/** Events reach the archive with a delay: replaying a window that ends later than this misses events. */
export const ARCHIVE_DELAY_MS = 10 * 60_000;

export interface ReplayArgs extends RunOptions {
  /** The region whose archive is replayed onto its bus. */
  region: string;
  /** Start of the replayed window. */
  since: Date;
  /** End of the replayed window (at least ARCHIVE_DELAY_MS ago, or events are missed). */
  until: Date;
  /**
   * Poll interval for DescribeReplay.
   * @default 15000
   */
  pollMs?: number;
  /**
   * Give up waiting after this long (the replay itself carries on in AWS).
   * @default 7200000 (2 h)
   */
  timeoutMs?: number;
}

export interface ReplayDeps {
  events: EventsOps;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

export function replayName(region: string, now: Date): string {
  // Replay names: [.\-_A-Za-z0-9]+, at most 64.
  return `etl-ops-${region}-${now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}`;
}

/** The archive-delay warning, or undefined when the window ended long enough ago. */
export function archiveDelayWarning(until: Date, now: Date): string | undefined {
  const age = now.getTime() - until.getTime();
  if (age >= ARCHIVE_DELAY_MS) return undefined;
  return (
    `WARNING: --until ${until.toISOString()} is ${Math.max(0, Math.round(age / 60_000))} minute(s) ago. Events reach the archive with a delay of up to about 10 minutes, ` +
    `so the newest events of this window may not be replayed. Replay again later for the last 10 minutes (--since ${new Date(until.getTime() - ARCHIVE_DELAY_MS).toISOString()}); duplicates are harmless (the claim dedupes).`
  );
}

/** StartReplay from the region's archive to its bus, then polls DescribeReplay until it ends. */
export async function replay(io: Io, args: ReplayArgs, deps: ReplayDeps): Promise<'COMPLETED' | 'dry-run'> {
  const now = deps.now ?? (() => new Date());
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  if (args.since.getTime() >= args.until.getTime())
    throw new OpsError(
      `--since ${args.since.toISOString()} must be before --until ${args.until.toISOString()}.`,
    );
  if (args.until.getTime() > now().getTime())
    throw new OpsError(
      `--until ${args.until.toISOString()} is in the future; StartReplay needs a window that has ended.`,
    );
  const warning = archiveDelayWarning(args.until, now());
  if (warning) io.err(warning);

  const archive = await readArchive(deps.events, args.region);
  const name = replayName(args.region, now());
  const plan = [
    `StartReplay ${name}: archive ${PLATFORM.archiveName} -> bus ${PLATFORM.busName} in ${args.region}, events from ${args.since.toISOString()} to ${args.until.toISOString()}`,
    'every rule on the bus sees the replayed events again; the downstream claim turns batches already built into DUPLICATE',
    'poll DescribeReplay until COMPLETED or FAILED',
  ];
  if (!(await planAndConfirm(io, plan, args, `Replay ${args.region}?`))) return 'dry-run';

  await deps.events.startReplay({
    replayName: name,
    eventSourceArn: archive.archiveArn,
    eventStartTime: args.since,
    eventEndTime: args.until,
    destinationArn: archive.eventSourceArn,
  });
  io.out(`Replay ${name} started.`);
  const pollMs = args.pollMs ?? 15_000;
  const deadline = now().getTime() + (args.timeoutMs ?? 2 * 3_600_000);
  const span = args.until.getTime() - args.since.getTime();
  let last = '';
  for (;;) {
    const d = await deps.events.describeReplay(name);
    const pct = d.eventLastReplayedTime
      ? Math.min(
          100,
          Math.max(0, Math.round(((d.eventLastReplayedTime.getTime() - args.since.getTime()) / span) * 100)),
        )
      : undefined;
    const line = `replay ${name}: ${d.state}${pct !== undefined ? ` ${pct}% (replayed up to ${d.eventLastReplayedTime?.toISOString()})` : ''}`;
    if (line !== last) io.out(line);
    last = line;
    if (d.state === 'COMPLETED') {
      io.out(
        `Replay completed. Check the batches: etl-ops status --since ${Math.ceil((now().getTime() - args.since.getTime()) / 3_600_000)}h`,
      );
      return 'COMPLETED';
    }
    if (d.state === 'FAILED' || d.state === 'CANCELLED')
      throw new OpsError(`Replay ${name} ended ${d.state}${d.stateReason ? `: ${d.stateReason}` : ''}.`);
    if (now().getTime() > deadline)
      throw new OpsError(
        `Replay ${name} still ${d.state} after the wait limit; it carries on in AWS. Check it with: aws events describe-replay --replay-name ${name} --region ${args.region}`,
      );
    await sleep(pollMs);
  }
}

async function readArchive(events: EventsOps, region: string) {
  try {
    return await events.describeArchive(PLATFORM.archiveName);
  } catch (error) {
    throw new OpsError(
      `Cannot read archive ${PLATFORM.archiveName} in ${region}: ${(error as Error).message}`,
    );
  }
}
