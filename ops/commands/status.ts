import { GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import {
  batchSk,
  FENCE_KEY,
  pipelinePk,
  RECORD_STATUSES,
  type Side,
  statusGsiPk,
} from '../../contracts/control-table';
import type { ControlTable, EventsOps, SchedulerOps, SqsOps } from '../clients';
import { explainError } from '../errors';
import { type Io, table } from '../io';
import { batchIdAt, formatDuration, PLATFORM } from '../settings';

/** One control record as stored (docs/control-table.md). */
export interface BatchRecord {
  pk: string;
  sk: string;
  pipeline?: string;
  batchId?: string;
  status?: string;
  attempt?: number;
  region?: string;
  executionArn?: string;
  startedAt?: string;
  completedAt?: string;
  error?: string;
  cause?: string;
  rerunReason?: string;
  forcedBy?: string;
  [key: string]: unknown;
}

export interface BatchRow {
  pipeline: string;
  batchId: string;
  upstream?: BatchRecord;
  downstream?: BatchRecord;
}

export interface Fence {
  activeRegion: string;
  epoch: number;
  changedAt?: string;
  changedBy?: string;
}

export const batchKey = (pipeline: string, batchId: string, part: Side) => ({
  pk: pipelinePk(pipeline),
  sk: batchSk(batchId, part),
});

export const statusGsiKey = statusGsiPk;

/** Every batch record of a pipeline with a batch id at or after `since`, via the GSI byPipelineStatus. */
export async function loadBatches(control: ControlTable, pipeline: string, since: Date): Promise<BatchRow[]> {
  const from = batchIdAt(pipeline, since);
  const rows = new Map<string, BatchRow>();
  const parts: Array<[Side, readonly string[]]> = [
    ['UPSTREAM', RECORD_STATUSES.UPSTREAM],
    ['DOWNSTREAM', RECORD_STATUSES.DOWNSTREAM],
  ];
  for (const [part, statuses] of parts) {
    for (const status of statuses) {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await control.doc.send(
          new QueryCommand({
            TableName: control.tableName,
            IndexName: PLATFORM.statusIndex,
            KeyConditionExpression: 'gsi1pk = :pk AND gsi1sk >= :from',
            ExpressionAttributeValues: { ':pk': statusGsiKey(pipeline, part, status), ':from': from },
            ExclusiveStartKey: startKey,
          }),
        );
        for (const item of (page.Items ?? []) as BatchRecord[]) {
          const batchId = String(item.batchId ?? item.gsi1sk);
          const row = rows.get(batchId) ?? { pipeline, batchId };
          if (part === 'UPSTREAM') row.upstream = item;
          else row.downstream = item;
          rows.set(batchId, row);
        }
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }
  }
  return [...rows.values()].sort((a, b) => b.batchId.localeCompare(a.batchId));
}

export async function getBatch(control: ControlTable, pipeline: string, batchId: string): Promise<BatchRow> {
  const [upstream, downstream] = await Promise.all(
    (['UPSTREAM', 'DOWNSTREAM'] as const).map(async (part) => {
      const result = await control.doc.send(
        new GetCommand({
          TableName: control.tableName,
          Key: batchKey(pipeline, batchId, part),
          ConsistentRead: true,
        }),
      );
      return result.Item as BatchRecord | undefined;
    }),
  );
  return { pipeline, batchId, upstream, downstream };
}

export async function readFence(control: ControlTable): Promise<Fence | undefined> {
  const result = await control.doc.send(
    new GetCommand({
      TableName: control.tableName,
      Key: FENCE_KEY,
      ConsistentRead: true,
    }),
  );
  if (!result.Item) return undefined;
  return {
    activeRegion: String(result.Item.activeRegion),
    epoch: Number(result.Item.epoch ?? 0),
    changedAt: result.Item.changedAt as string | undefined,
    changedBy: result.Item.changedBy as string | undefined,
  };
}

const duration = (r?: BatchRecord) =>
  r?.startedAt
    ? formatDuration((r.completedAt ? Date.parse(r.completedAt) : Number.NaN) - Date.parse(r.startedAt))
    : '-';

const oneLine = (text: string, max = 60) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

/** The status table's rows: batch, upstream, downstream, attempt, region, durations, error. */
export function batchTable(rows: BatchRow[]): string[] {
  return table(
    ['BATCH', 'UPSTREAM', 'DOWNSTREAM', 'ATTEMPT', 'REGION', 'UP TIME', 'DOWN TIME', 'ERROR'],
    rows.map((row) => {
      const up = row.upstream;
      const down = row.downstream;
      const failed = down?.status === 'FAILED' ? down : up?.status === 'FAILED' ? up : undefined;
      const error = failed
        ? oneLine([failed.error, failed.cause].filter(Boolean).join(': '))
        : down?.rerunReason
          ? oneLine(`rerun: ${down.rerunReason}`)
          : '';
      return [
        row.batchId,
        up?.status ?? '-',
        down?.status ?? (up?.status === 'SUCCEEDED' ? 'NOT TRIGGERED' : '-'),
        down?.attempt !== undefined ? String(down.attempt) : '-',
        String(down?.region ?? up?.region ?? '-'),
        duration(up),
        duration(down),
        error,
      ];
    }),
  );
}

export interface RegionView {
  region: string;
  control: ControlTable;
  events?: EventsOps;
  scheduler?: SchedulerOps;
  sqs?: SqsOps;
}

export interface StatusArgs {
  /** The pipelines to report on. */
  pipelines: string[];
  /** Report batches scheduled since this time. */
  since: Date;
  /** Replica to read the batch records from. */
  records: ControlTable;
  /** Each region's clients and names: fence, rules, schedules, DLQs, executions. */
  regions: RegionView[];
}

/** Prints the status report. Returns the number of sections that could not be read (exit 1 if > 0). */
export async function status(io: Io, args: StatusArgs): Promise<number> {
  let problems = 0;
  const fixes = new Set<string>();
  const unavailable = (error: unknown): string => {
    const e = explainError(error);
    if (e.fix) fixes.add(e.fix);
    return e.summary;
  };
  io.out(
    `Batches since ${args.since.toISOString()} (control table ${args.records.tableName}, ${args.records.region} replica), pipelines: ${args.pipelines.join(', ')}`,
  );
  for (const pipeline of args.pipelines) {
    io.out('');
    io.out(`Pipeline ${pipeline}`);
    try {
      const rows = await loadBatches(args.records, pipeline, args.since);
      if (rows.length === 0) io.out('  (no batches in this window)');
      else for (const line of batchTable(rows)) io.out(`  ${line}`);
    } catch (error) {
      problems++;
      io.err(`  could not read batches: ${unavailable(error)}`);
    }
  }
  for (const view of args.regions) {
    io.out('');
    io.out(`Region ${view.region}`);
    problems += await regionStatus(io, view, unavailable);
  }
  // Each distinct fix once, after the sections it explains.
  for (const fix of fixes) io.err(`\n${fix}`);
  return problems;
}

async function section(
  io: Io,
  title: string,
  body: () => Promise<string[]>,
  unavailable: (error: unknown) => string,
): Promise<number> {
  try {
    const lines = await body();
    io.out(`  ${title}:`);
    for (const line of lines) io.out(`    ${line}`);
    return 0;
  } catch (error) {
    io.err(`  ${title}: unavailable (${unavailable(error)})`);
    return 1;
  }
}

async function regionStatus(
  io: Io,
  view: RegionView,
  unavailable: (error: unknown) => string,
): Promise<number> {
  let problems = 0;
  problems += await section(
    io,
    'fence',
    async () => {
      const fence = await readFence(view.control);
      if (!fence) return ['MISSING: no FENCE/ACTIVE item in this replica (no region may claim batches)'];
      const note =
        fence.activeRegion === view.region
          ? 'this region is active'
          : `this region is passive (active: ${fence.activeRegion})`;
      return [
        `activeRegion=${fence.activeRegion} epoch=${fence.epoch} changedAt=${fence.changedAt ?? '-'} changedBy=${fence.changedBy ?? '-'}  (${note})`,
      ];
    },
    unavailable,
  );
  problems += await section(
    io,
    `rules on bus ${PLATFORM.busName}`,
    async () => {
      if (!view.events) throw new Error('no EventBridge client');
      const rules = await view.events.listRules(PLATFORM.busName);
      return rules.length === 0
        ? ['(none)']
        : table(
            ['RULE', 'STATE'],
            rules.map((r) => [r.name, r.state]),
          );
    },
    unavailable,
  );
  problems += await section(
    io,
    `schedules in group ${PLATFORM.scheduleGroup}`,
    async () => {
      if (!view.scheduler) throw new Error('no Scheduler client');
      const schedules = await view.scheduler.listSchedules(PLATFORM.scheduleGroup);
      return schedules.length === 0
        ? ['(none)']
        : table(
            ['SCHEDULE', 'STATE'],
            schedules.map((s) => [s.name, s.state]),
          );
    },
    unavailable,
  );
  problems += await section(
    io,
    'dead-letter queues',
    async () => {
      if (!view.sqs || !view.events || !view.scheduler)
        throw new Error('needs the EventBridge, Scheduler and SQS clients');
      const dlqs = await discoverDlqs(view.events, view.scheduler, view.sqs);
      if (dlqs.length === 0) return ['(none found on the bus rules or the schedules)'];
      const rows: string[][] = [];
      for (const dlq of dlqs) {
        const depth = await view.sqs.depth(dlq.queueUrl);
        rows.push([dlq.queueName, String(depth.visible), String(depth.inFlight), dlq.sources.join(', ')]);
      }
      return table(['QUEUE', 'DEPTH', 'IN FLIGHT', 'CATCHES'], rows);
    },
    unavailable,
  );
  return problems;
}

/** `etl-policycenter-downstream`, or `bus etl-platform (us-west-1)` for a bus target. */
export function targetLabel(arn: string): string {
  const parts = arn.split(':');
  const resource = parts.slice(5).join(':');
  if (parts[2] === 'events' && resource.startsWith('event-bus/'))
    return `bus ${resource.slice('event-bus/'.length)} (${parts[3]})`;
  return parts[parts.length - 1];
}

export interface DiscoveredDlq {
  queueArn: string;
  queueName: string;
  queueUrl: string;
  /** What sends to it: `rule <name> -> <target>` or `schedule <name>`. */
  sources: string[];
}

/**
 * The region's DLQs, found where they are attached rather than by name (names are generated):
 * every target of every rule on the platform bus (DeadLetterConfig) and every schedule of the
 * platform group (Target.DeadLetterConfig).
 */
export async function discoverDlqs(
  events: EventsOps,
  scheduler: SchedulerOps,
  sqs: SqsOps,
): Promise<DiscoveredDlq[]> {
  const found = new Map<string, DiscoveredDlq>();
  const add = (queueArn: string, source: string) => {
    const existing = found.get(queueArn);
    if (existing) existing.sources.push(source);
    else
      found.set(queueArn, {
        queueArn,
        queueName: queueArn.split(':').pop() ?? queueArn,
        queueUrl: '',
        sources: [source],
      });
  };
  for (const rule of await events.listRules(PLATFORM.busName)) {
    for (const target of await events.listTargets(rule.name, PLATFORM.busName)) {
      if (target.deadLetterArn) add(target.deadLetterArn, `rule ${rule.name} -> ${targetLabel(target.arn)}`);
    }
  }
  for (const schedule of await scheduler.listSchedules(PLATFORM.scheduleGroup)) {
    if (schedule.deadLetterArn) add(schedule.deadLetterArn, `schedule ${schedule.name}`);
  }
  const dlqs = [...found.values()].sort((a, b) => a.queueName.localeCompare(b.queueName));
  for (const dlq of dlqs) dlq.queueUrl = await sqs.queueUrl(dlq.queueArn);
  return dlqs;
}
