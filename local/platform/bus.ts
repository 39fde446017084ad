import { randomUUID } from 'node:crypto';
import { matchesPattern, type EventPattern } from '../../events/pattern';
import type { VirtualClock } from './clock';
import type { ExtractedRule, ExtractedTarget } from '../extract';
import { ACCOUNT_ID } from '../pulumi-mocks';
import type { TriggerPath } from './types';

/**
 * A simulated EventBridge custom bus of one region: rules matched with the project's own
 * matcher (events/pattern.ts), ENABLED/DISABLED respected, per-target retry policy and DLQ,
 * and an archive with replay of a time window. Delivery is asynchronous (PutEvents returns once
 * the event is accepted), tracked so a scenario can wait until everything settles.
 */

export interface BusEvent {
  version: '0';
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
  'replay-name'?: string;
}

/** One PutEvents entry, in the SDK's shape. */
export interface PutEventsEntry {
  Source: string;
  DetailType: string;
  /** An object, or the JSON string the SDK sends. */
  Detail: unknown;
  EventBusName?: string;
  Resources?: string[];
}

/** What EventBridge delivers for one accepted PutEvents entry. */
export function envelope(
  entry: PutEventsEntry,
  opts: { id: string; region: string; time: string; account?: string },
): BusEvent {
  return {
    version: '0',
    id: opts.id,
    'detail-type': entry.DetailType,
    source: entry.Source,
    account: opts.account ?? ACCOUNT_ID,
    time: opts.time,
    region: opts.region,
    resources: entry.Resources ?? [],
    detail: (typeof entry.Detail === 'string' ? JSON.parse(entry.Detail) : entry.Detail) as Record<
      string,
      unknown
    >,
  };
}

/** Who published an event, and the hops before it: a rule delivering it extends them. */
export interface EventOrigin {
  readonly publisher: string;
  readonly path: TriggerPath;
}

/** Why a delivery failed; `retryable: false` goes straight to the DLQ (e.g. a missing target). */
export class DeliveryError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable = true,
  ) {
    super(message);
    this.name = code;
  }
}

export interface DlqMessage {
  queueArn: string;
  body: string;
  attributes: Record<string, string>;
  at: number;
}

/** Standard SQS queue stand-in: messages are kept for assertions. */
export class Queue {
  readonly messages: DlqMessage[] = [];
  constructor(
    readonly arn: string,
    readonly name: string,
  ) {}
}

export interface RuleRuntime extends ExtractedRule {
  /** Mutable: failover flips it. */
  state: 'ENABLED' | 'DISABLED';
}

export type Deliver = (target: ExtractedTarget, event: BusEvent, rule: RuleRuntime) => Promise<void>;

export interface BusHooks {
  clock: VirtualClock;
  deliver: Deliver;
  /** Looks a DLQ up by ARN; undefined = the queue does not exist (message lost, reported). */
  queue: (arn: string) => Queue | undefined;
  /** Long-running work the scenario waits for. */
  track: (p: Promise<unknown>) => void;
  log: (component: string, text: string, to?: string) => void;
  /** Counted per delivery attempt. */
  onAttempt?: () => void;
}

export interface DeliveryRecord {
  eventId: string;
  rule: string;
  target: string;
  attempts: number;
  outcome: 'DELIVERED' | 'DLQ' | 'DROPPED';
  error?: string;
}

export interface ArchivedEvent {
  archivedAt: number;
  event: BusEvent;
}

/** Backoff between EventBridge retries, modelled on its exponential schedule (virtual seconds). */
export function retryDelaySeconds(attempt: number): number {
  return Math.min(2 ** attempt, 300);
}

export class EventBus {
  readonly rules: RuleRuntime[];
  readonly archive: ArchivedEvent[] = [];
  readonly deliveries: DeliveryRecord[] = [];
  readonly accepted: BusEvent[] = [];
  /** By event id: who published it (PutEvents) or forwarded it here. */
  private readonly origins = new Map<string, EventOrigin>();
  /** When false the bus refuses PutEvents (the region is dark). */
  up = true;

  constructor(
    readonly region: string,
    readonly name: string,
    readonly arn: string,
    readonly account: string,
    rules: ExtractedRule[],
    readonly archivePattern: EventPattern | undefined,
    private readonly hooks: BusHooks,
  ) {
    this.rules = rules.map((r) => ({ ...r, targets: r.targets.map((t) => ({ ...t })) }));
  }

  rule(name: string): RuleRuntime {
    const r = this.rules.find((x) => x.name === name);
    if (!r) throw new Error(`bus ${this.region}/${this.name}: no rule ${name}`);
    return r;
  }

  /** Who published (or forwarded) the event with this id, if the caller said. */
  origin(eventId: string): EventOrigin | undefined {
    return this.origins.get(eventId);
  }

  /** PutEvents: entries in the SDK shape (`Source`, `DetailType`, `Detail` as a JSON string). */
  putEvents(
    entries: Array<Record<string, unknown>>,
    origin?: EventOrigin,
  ): {
    Entries: Array<{ EventId?: string; ErrorCode?: string }>;
    FailedEntryCount: number;
  } {
    if (!this.up) throw new DeliveryError('ServiceUnavailable', `events.${this.region} is unreachable`);
    const out: Array<{ EventId?: string; ErrorCode?: string }> = [];
    let failed = 0;
    for (const entry of entries) {
      let detail: Record<string, unknown>;
      try {
        detail =
          typeof entry.Detail === 'string'
            ? JSON.parse(entry.Detail)
            : ((entry.Detail ?? {}) as Record<string, unknown>);
      } catch {
        out.push({ ErrorCode: 'MalformedDetail' });
        failed++;
        continue;
      }
      if (
        typeof entry.Source !== 'string' ||
        typeof entry.DetailType !== 'string' ||
        detail === null ||
        typeof detail !== 'object' ||
        Array.isArray(detail)
      ) {
        out.push({ ErrorCode: 'InvalidArgument' });
        failed++;
        continue;
      }
      const size =
        String(entry.Detail ?? '').length +
        String(entry.DetailType ?? '').length +
        String(entry.Source ?? '').length;
      if (size > 262_144) {
        out.push({ ErrorCode: 'EntryTooLarge' });
        failed++;
        continue;
      }
      const event = envelope(
        {
          Source: entry.Source,
          DetailType: entry.DetailType,
          Detail: detail,
          Resources: Array.isArray(entry.Resources) ? (entry.Resources as string[]) : [],
        },
        {
          id: randomUUID(),
          region: this.region,
          time: new Date(this.hooks.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
          account: this.account,
        },
      );
      if (origin) this.origins.set(event.id, origin);
      this.accept(event);
      out.push({ EventId: event.id });
    }
    return { Entries: out, FailedEntryCount: failed };
  }

  /** An event arriving from another bus keeps its id, time and origin region (as EventBridge does). */
  receive(event: BusEvent, origin?: EventOrigin): void {
    if (!this.up) throw new DeliveryError('ServiceUnavailable', `events.${this.region} is unreachable`);
    if (origin) this.origins.set(event.id, origin);
    this.accept({ ...event });
  }

  /** EventBridge delivering an already-accepted event again (at-least-once): not re-archived. */
  redeliver(event: BusEvent): void {
    if (!this.up) throw new DeliveryError('ServiceUnavailable', `events.${this.region} is unreachable`);
    this.accept(event, true);
  }

  private accept(event: BusEvent, replay = false): void {
    this.accepted.push(event);
    if (!replay && this.archivePattern && matchesPattern(this.archivePattern, event)) {
      this.archive.push({ archivedAt: this.hooks.clock.now(), event });
    }
    for (const rule of this.rules) {
      if (rule.state !== 'ENABLED') continue;
      if (!matchesPattern(rule.pattern, event)) continue;
      for (const target of rule.targets) this.hooks.track(this.deliverWithRetry(rule, target, event));
    }
  }

  private async deliverWithRetry(rule: RuleRuntime, target: ExtractedTarget, event: BusEvent): Promise<void> {
    const maxRetries = target.retryPolicy?.maximumRetryAttempts ?? 185;
    const maxAge = target.retryPolicy?.maximumEventAgeInSeconds ?? 86_400;
    let ageSeconds = 0;
    let attempts = 0;
    const record: DeliveryRecord = {
      eventId: event.id,
      rule: rule.name,
      target: target.arn,
      attempts: 0,
      outcome: 'DELIVERED',
    };
    this.deliveries.push(record);
    for (;;) {
      attempts++;
      record.attempts = attempts;
      this.hooks.onAttempt?.();
      try {
        await this.hooks.deliver(target, event, rule);
        return;
      } catch (e) {
        const err =
          e instanceof DeliveryError
            ? e
            : new DeliveryError((e as Error).name || 'Error', (e as Error).message);
        record.error = `${err.code}: ${err.message}`;
        const retriesLeft = attempts - 1 < maxRetries;
        const delay = retryDelaySeconds(attempts);
        if (err.retryable && retriesLeft && ageSeconds + delay <= maxAge) {
          ageSeconds += delay;
          continue;
        }
        const why = !err.retryable
          ? 'not retryable'
          : !retriesLeft
            ? `${maxRetries} retries exhausted`
            : `event older than ${maxAge}s`;
        this.toDlq(rule, target, event, err, why, record);
        return;
      }
    }
  }

  private toDlq(
    rule: RuleRuntime,
    target: ExtractedTarget,
    event: BusEvent,
    err: DeliveryError,
    why: string,
    record: DeliveryRecord,
  ): void {
    const queue = target.dlqArn ? this.hooks.queue(target.dlqArn) : undefined;
    if (!queue) {
      record.outcome = 'DROPPED';
      this.hooks.log(
        `rule ${rule.name}`,
        `event ${event.id} DROPPED after ${record.attempts} attempt(s) (${why}): no DLQ`,
      );
      return;
    }
    record.outcome = 'DLQ';
    queue.messages.push({
      queueArn: queue.arn,
      body: JSON.stringify(event),
      attributes: {
        RULE_ARN: rule.arn,
        TARGET_ARN: target.arn,
        ERROR_CODE: err.code,
        ERROR_MESSAGE: err.message.slice(0, 500),
      },
      at: this.hooks.clock.now(),
    });
    this.hooks.log(
      `rule ${rule.name}`,
      `event ${event['detail-type']} → DLQ ${queue.name} after ${record.attempts} attempt(s) (${why}; ${err.code})`,
      `DLQ ${queue.name}`,
    );
  }

  /**
   * StartReplay: re-sends the archived events whose archive time is in [fromMs, toMs] to this
   * bus's rules (optionally only `ruleNames`), with `replay-name` set. Replayed events are not
   * archived again.
   */
  replay(name: string, fromMs: number, toMs: number, ruleNames?: string[]): number {
    if (!this.up) throw new DeliveryError('ServiceUnavailable', `events.${this.region} is unreachable`);
    const window = this.archive.filter((a) => a.archivedAt >= fromMs && a.archivedAt <= toMs);
    const saved = ruleNames ? this.rules.map((r) => r.state) : undefined;
    if (ruleNames) this.rules.forEach((r) => (r.state = ruleNames.includes(r.name) ? r.state : 'DISABLED'));
    try {
      for (const { event } of window) this.accept({ ...event, 'replay-name': name }, true);
    } finally {
      if (saved) this.rules.forEach((r, i) => (r.state = saved[i]));
    }
    return window.length;
  }
}
