import type { EventsOps, PutEventEntry, QueueMessage, SfnOps, SqsOps } from '../clients';
import { describeError } from '../errors';
import { errorMessage, type Io, OpsError, planAndConfirm, type RunOptions, table } from '../io';
import type { DiscoveredDlq } from './status';

/** Attributes the services put on dead-lettered messages. */
export const DLQ_ATTRIBUTES = [
  'RULE_ARN',
  'SCHEDULE_ARN',
  'TARGET_ARN',
  'ERROR_CODE',
  'ERROR_MESSAGE',
  'RETRY_ATTEMPTS',
  'EXHAUSTED_RETRY_CONDITION',
] as const;

/** Where a dead-lettered message goes back to. */
export type Resend =
  | { kind: 'putEvents'; region: string; busName: string; entry: PutEventEntry }
  | { kind: 'startExecution'; region: string; stateMachineArn: string; input: string };

const arnRegion = (arn: string) => arn.split(':')[3] ?? '';

/**
 * Decides how to re-send a DLQ message to its original target:
 * - a rule target's DLQ (RULE_ARN set): the body is the event. It goes back with PutEvents, to the
 *   target bus when the target was a bus (the forward rule), else to the rule's own bus (the rule
 *   matches it again and delivers to its target; duplicates are deduped by the workflow's claim).
 * - a schedule's DLQ (SCHEDULE_ARN, or no RULE_ARN, with a state machine TARGET_ARN): the body is
 *   the schedule's input; it goes back with StartExecution on the target.
 */
export function resendFor(message: QueueMessage): Resend {
  const { RULE_ARN: ruleArn, TARGET_ARN: targetArn } = message.attributes;
  if (ruleArn) {
    let event: {
      source?: string;
      'detail-type'?: string;
      detail?: unknown;
      resources?: string[];
      time?: string;
    };
    try {
      event = JSON.parse(message.body);
    } catch {
      throw new OpsError(`message ${message.messageId}: body is not a JSON event`);
    }
    if (
      !event ||
      typeof event.source !== 'string' ||
      typeof event['detail-type'] !== 'string' ||
      event.detail === undefined
    ) {
      throw new OpsError(
        `message ${message.messageId}: body is not an EventBridge event (needs source, detail-type, detail)`,
      );
    }
    // arn:aws:events:<region>:<acct>:rule/<bus>/<rule>  (default bus: rule/<rule>)
    const ruleParts = ruleArn.split(':').slice(5).join(':').split('/');
    let busName = ruleParts.length >= 3 ? ruleParts[1] : 'default';
    let region = arnRegion(ruleArn);
    if (targetArn && /^arn:[^:]+:events:[^:]+:\d{12}:event-bus\//.test(targetArn)) {
      busName = targetArn; // PutEvents accepts the bus ARN, for the peer region's bus
      region = arnRegion(targetArn);
    }
    return {
      kind: 'putEvents',
      region,
      busName,
      entry: {
        Source: event.source,
        DetailType: event['detail-type'],
        Detail: JSON.stringify(event.detail),
        Resources: event.resources,
        EventBusName: busName,
      },
    };
  }
  if (targetArn && /^arn:[^:]+:states:[^:]+:\d{12}:stateMachine:/.test(targetArn)) {
    return {
      kind: 'startExecution',
      region: arnRegion(targetArn),
      stateMachineArn: targetArn,
      input: message.body,
    };
  }
  throw new OpsError(
    `message ${message.messageId}: cannot tell its original target (RULE_ARN=${ruleArn ?? '-'}, TARGET_ARN=${targetArn ?? '-'})`,
  );
}

export function describeResend(resend: Resend): string {
  return resend.kind === 'putEvents'
    ? `PutEvents ${resend.entry.DetailType} to bus ${resend.busName} (${resend.region})`
    : `StartExecution ${resend.stateMachineArn.split(':').pop()} (${resend.region})`;
}

export interface DlqDeps {
  sqs: SqsOps;
  events: (region: string) => EventsOps;
  sfn: (region: string) => SfnOps;
}

export function listDlqs(io: Io, dlqs: Array<DiscoveredDlq & { depth: number; inFlight: number }>): void {
  if (dlqs.length === 0) {
    io.out('No dead-letter queues found on the bus rules or schedules.');
    return;
  }
  for (const line of table(
    ['QUEUE', 'DEPTH', 'IN FLIGHT', 'CATCHES'],
    dlqs.map((d) => [d.queueName, String(d.depth), String(d.inFlight), d.sources.join(', ')]),
  ))
    io.out(line);
}

/** Reads up to `max` messages and makes them visible again at once (a peek). */
export async function showMessages(io: Io, sqs: SqsOps, queueUrl: string, max = 50): Promise<QueueMessage[]> {
  const seen = new Map<string, QueueMessage>();
  while (seen.size < max) {
    const batch = await sqs.receive(queueUrl, {
      max: Math.min(10, max - seen.size),
      visibilityTimeoutSeconds: 30,
      waitSeconds: 1,
    });
    if (batch.length === 0) break;
    let fresh = 0;
    for (const m of batch) {
      if (!seen.has(m.messageId)) {
        seen.set(m.messageId, m);
        fresh++;
      }
    }
    if (fresh === 0) break;
  }
  for (const m of seen.values()) await sqs.release(queueUrl, m.receiptHandle);
  const messages = [...seen.values()];
  io.out(`${messages.length} message(s) in ${queueUrl}${messages.length >= max ? ` (first ${max})` : ''}`);
  for (const m of messages) {
    io.out('');
    io.out(
      `message ${m.messageId}${m.system?.SentTimestamp ? ` sent ${new Date(Number(m.system.SentTimestamp)).toISOString()}` : ''}${m.system?.ApproximateReceiveCount ? ` received ${m.system.ApproximateReceiveCount}x` : ''}`,
    );
    for (const name of DLQ_ATTRIBUTES) if (m.attributes[name]) io.out(`  ${name}: ${m.attributes[name]}`);
    let resend: string;
    try {
      resend = describeResend(resendFor(m));
    } catch (error) {
      resend = `not redrivable: ${errorMessage(error)}`;
    }
    io.out(`  redrive: ${resend}`);
    io.out(`  body: ${m.body.length > 400 ? `${m.body.slice(0, 400)}…` : m.body}`);
  }
  return messages;
}

export interface DlqRedriveArgs extends RunOptions {
  /** The dead-letter queue to redrive. */
  queueUrl: string;
  /**
   * Stop after this many messages.
   * @default 1000
   */
  max?: number;
}

export interface DlqRedriveResult {
  resent: number;
  failed: Array<{ messageId: string; error: string }>;
}

async function send(resend: Resend, deps: DlqDeps): Promise<void> {
  if (resend.kind === 'putEvents') {
    const result = await deps.events(resend.region).putEvents([resend.entry]);
    if (result.failedEntryCount > 0)
      throw new Error(`PutEvents rejected the entry: ${result.errors.join('; ') || 'FailedEntryCount > 0'}`);
  } else {
    await deps
      .sfn(resend.region)
      .startExecution({ stateMachineArn: resend.stateMachineArn, input: resend.input });
  }
}

/**
 * Re-sends every message to its original target, deleting each one ONLY after its re-send
 * succeeded. A message whose re-send fails stays in the queue (it becomes visible again after the
 * visibility timeout), so nothing is lost; the command then exits non-zero.
 */
export async function redriveQueue(io: Io, args: DlqRedriveArgs, deps: DlqDeps): Promise<DlqRedriveResult> {
  const max = args.max ?? 1000;
  const depth = await deps.sqs.depth(args.queueUrl);
  const plan = [
    `receive up to ${Math.min(max, depth.visible)} message(s) from ${args.queueUrl} (depth ${depth.visible}, in flight ${depth.inFlight})`,
    're-send each to its original target (PutEvents for rule DLQs, StartExecution for schedule DLQs)',
    'delete each message only after its re-send succeeded; failed ones stay in the queue',
  ];
  if (depth.visible === 0) {
    io.out(`Queue ${args.queueUrl} is empty: nothing to redrive.`);
    return { resent: 0, failed: [] };
  }
  if (!(await planAndConfirm(io, plan, args, `Redrive ${depth.visible} message(s)?`)))
    return { resent: 0, failed: [] };

  const result: DlqRedriveResult = { resent: 0, failed: [] };
  const handled = new Set<string>();
  let processed = 0;
  while (processed < max) {
    // Long enough visibility that a message we failed on is not received again in this run.
    const batch = await deps.sqs.receive(args.queueUrl, {
      max: Math.min(10, max - processed),
      visibilityTimeoutSeconds: 300,
      waitSeconds: 1,
    });
    const fresh = batch.filter((m) => !handled.has(m.messageId));
    if (fresh.length === 0) break;
    for (const message of fresh) {
      handled.add(message.messageId);
      processed++;
      try {
        const resend = resendFor(message);
        await send(resend, deps);
        await deps.sqs.delete(args.queueUrl, message.receiptHandle);
        result.resent++;
        io.out(
          `[${processed}/${Math.min(max, depth.visible)}] ${message.messageId}: ${describeResend(resend)} ok, deleted`,
        );
      } catch (error) {
        const text = describeError(error).replace('\n', ' ');
        result.failed.push({ messageId: message.messageId, error: text });
        io.err(
          `[${processed}/${Math.min(max, depth.visible)}] ${message.messageId}: re-send failed, message kept in the queue (${text})`,
        );
      }
    }
  }
  io.out(`Redrive done: ${result.resent} re-sent and deleted, ${result.failed.length} failed and kept.`);
  if (result.failed.length > 0) {
    throw new OpsError(
      `${result.failed.length} message(s) could not be re-sent and were left in the queue; they are visible again in 5 minutes. Inspect them with: etl-ops dlq show --queue ${args.queueUrl}`,
    );
  }
  return result;
}
