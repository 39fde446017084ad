// The polyfill must load before aws-local-stepfunctions (imported by sfn-local).
import '../promise-polyfill';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { extractPlatform, extractStack, type ExtractedSchedule } from '../extract';
import { startFakeDbtApi, type FakeRun } from '../fake-dbt-api';
import { Mutex } from '../mutex';
import { STACKS } from '../../contracts/regions';
import { DeliveryError, type BusEvent } from './bus';
import { VirtualClock, firings } from './clock';
import { ReplicaViews, startTwinDynamo, type TwinDynamo } from './dynamo';
import { GlueWorld } from './glue';
import { resetHandlerModules } from './lambda';
import { Region, unlimitedAbort } from './region';
import type {
  Alert,
  ExecutionRecord,
  Faults,
  Invocation,
  LambdaCall,
  Metrics,
  ScheduleFiring,
  TimelineEntry,
  TwinOptions,
} from './types';

export { Region } from './region';
export * from './types';

/**
 * The local platform ("the twin"): both regions on one machine, running what the program deploys
 * (extracted definitions, patterns, schedules, handlers with their env) on local engines. The demo's
 * scenarios, scripts/compare-triggers.ts and the tests all drive this one emulator.
 */

/** The warehouse fence (CONTROL.FENCE) both regions share; only moves forward, like the SQL the writer sends. */
function sharedWarehouseFence() {
  let row: { region: string; epoch: number } | undefined;
  return {
    read: async () => row,
    advance: async (region: string, epoch: number) => {
      if (row && (row.epoch > epoch || (row.epoch === epoch && row.region !== region)))
        throw new Error(`warehouse fence holds ${row.region} epoch ${row.epoch}`);
      row = { region, epoch };
      return row;
    },
  };
}

/** Step Functions errors a rule target does not retry (the event goes to the DLQ at once). */
const NOT_RETRYABLE_START = ['StateMachineDoesNotExist', 'InvalidExecutionInput', 'InvalidName'];

export class Twin {
  readonly clock: VirtualClock;
  readonly timeline: TimelineEntry[] = [];
  readonly alerts: Alert[] = [];
  readonly warehouseFence = sharedWarehouseFence();
  /** CloudWatch EMF records printed by handlers. */
  readonly metricsEmitted: Array<{ region: string; fn: string; line: Record<string, unknown> }> = [];
  readonly metrics: Metrics = {
    hops: 0,
    transitions: 0,
    lambdaCalls: 0,
    dbtRuns: 0,
    alerts: 0,
    dlqMessages: 0,
    executions: 0,
  };
  /** Every Lambda invocation, in order (each attempt of an asynchronous one). */
  readonly lambdaInvocations: LambdaCall[] = [];
  /** Every Scheduler invocation, in order. */
  readonly scheduleFirings: ScheduleFiring[] = [];
  readonly faults: Faults = { lambdaThrottle: new Map() };
  readonly lambdaMutex = new Mutex();
  readonly glue: GlueWorld;
  readonly regions = new Map<string, Region>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly replicas: ReplicaViews;
  private lastSchedulerMs: number;

  private constructor(
    readonly dynamo: TwinDynamo,
    readonly options: TwinOptions,
  ) {
    this.clock = new VirtualClock(options.start ?? '2026-11-27T06:00:00Z');
    this.lastSchedulerMs = this.clock.now();
    this.glue = new GlueWorld(this);
    this.replicas = new ReplicaViews(dynamo, {
      tick: (ms) => this.clock.tick(ms),
      isUp: (region) => this.region(region).up,
    });
  }

  static async start(options: TwinOptions = {}): Promise<Twin> {
    process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
    process.env.AWS_ACCESS_KEY_ID ??= 'twin';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'twin';
    const activeRegion = options.activeRegion ?? 'us-east-1';
    const stacks = await extractPlatform(activeRegion, options.config);
    const models = STACKS.map((stack) => stacks[stack]);
    const dynamo = await startTwinDynamo(
      models.map((m) => m.region),
      models[0].controlTableName,
    );
    resetHandlerModules();
    const twin = new Twin(dynamo, options);
    for (const model of models) {
      const dbt = await startFakeDbtApi({ runningPolls: 1 });
      twin.regions.set(model.region, new Region(twin, model, dbt));
    }
    // The fence as each stack's `pulumi up` leaves it: invoke each region's fence writer.
    for (const r of twin.regions.values()) await twin.pulumiUpFence(r);
    twin.log(
      'global',
      'twin',
      `platform up: active ${activeRegion}; ${[...twin.regions.values()].map((r) => `${r.region}: ${r.machines.size} workflows, ${r.bus.rules.length} rules, ${r.schedules.length} schedules, ${r.functions.size / 2} functions`).join('; ')}`,
    );
    return twin;
  }

  region(name: string): Region {
    const r = this.regions.get(name);
    if (!r) throw new Error(`no region ${name}`);
    return r;
  }

  log(region: string, component: string, text: string, to?: string): void {
    const entry: TimelineEntry = { t: this.clock.now(), region, component, text, ...(to ? { to } : {}) };
    this.timeline.push(entry);
    if (this.options.verbose) console.log(formatEntry(entry));
  }

  track(p: Promise<unknown>): void {
    const tracked = p.catch((e) =>
      this.log('global', 'twin', `background task failed: ${(e as Error).stack ?? e}`),
    );
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  /** Waits until no execution, delivery or invocation is in flight. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  queue(arn: string) {
    for (const r of this.regions.values()) {
      const q = r.queues.get(arn);
      if (q) return q;
    }
    return undefined;
  }

  /** Every dbt run either region's API created. */
  dbtRuns(): Array<FakeRun & { region: string }> {
    return [...this.regions.values()].flatMap((r) => r.dbt.runs.map((run) => ({ ...run, region: r.region })));
  }

  dlqMessages() {
    return [...this.regions.values()].flatMap((r) =>
      r.dlqMessages().map((m) => ({ ...m, region: r.region })),
    );
  }

  executions(): ExecutionRecord[] {
    return [...this.regions.values()].flatMap((r) => r.executions);
  }

  /** Final figures (dbt runs and DLQ depth are read from the engines). */
  figures(): Metrics {
    return {
      ...this.metrics,
      dbtRuns: this.dbtRuns().length,
      dlqMessages: this.dlqMessages().length,
      alerts: this.alerts.length,
    };
  }

  // ------------------------------------------------------------ EventBridge targets

  async deliverToTarget(
    from: Region,
    arn: string,
    event: BusEvent,
    ruleName: string,
    constInput?: string,
  ): Promise<void> {
    const service = arn.split(':')[2];
    const targetRegion = arn.split(':')[3];
    const to = this.regions.get(targetRegion);
    if (!from.up) throw new DeliveryError('ServiceUnavailable', `${from.region} is dark`);
    if (!to || !to.up) throw new DeliveryError('ServiceUnavailable', `${targetRegion} is unreachable`);
    const input = constInput ?? JSON.stringify(event);
    const hop = { from, to, arn, event, ruleName, path: from.bus.origin(event.id)?.path ?? [] };
    switch (service) {
      case 'states':
        return this.startFromRule(hop, input);
      case 'events':
        return this.forwardToBus(hop);
      case 'lambda': {
        const fn = to.functions.get(arn);
        if (!fn) throw new DeliveryError('ResourceNotFoundException', `no function ${arn}`, false);
        const component = `rule ${ruleName}`;
        this.log(from.region, component, `→ async invoke ${fn.name}`, `λ ${fn.handler}`);
        // Lambda accepted the event: its own async retries take over from here.
        const invocation: Invocation = {
          caller: component,
          path: [...hop.path, `EventBridge rule ${ruleName} → Lambda (async)`],
        };
        this.track(to.invokeAsync(fn, JSON.parse(input), invocation));
        return;
      }
      case 'sqs': {
        const q = this.queue(arn);
        if (!q) throw new DeliveryError('ResourceNotFoundException', `no queue ${arn}`, false);
        q.messages.push({ queueArn: arn, body: input, attributes: {}, at: this.clock.now() });
        return;
      }
      default:
        throw new DeliveryError('UnsupportedTarget', `twin: no target kind for ${arn}`, false);
    }
  }

  /** A rule's Step Functions target: StartExecution (the rule's role), errors as delivery errors. */
  private startFromRule(hop: RuleHop, input: string): void {
    try {
      const rec = hop.to.startExecution({
        stateMachineArn: hop.arn,
        input,
        path: [...hop.path, `EventBridge rule ${hop.ruleName} → Step Functions`],
      });
      this.log(
        hop.from.region,
        `rule ${hop.ruleName}`,
        `→ StartExecution ${rec.stateMachine} (${rec.name.slice(0, 8)}…)`,
        rec.stateMachine,
      );
    } catch (e) {
      const err = e as Error;
      throw new DeliveryError(err.name, err.message, !NOT_RETRYABLE_START.includes(err.name));
    }
  }

  /** A rule's event-bus target (cross-region forwarding): the event keeps its id and origin. */
  private forwardToBus(hop: RuleHop): void {
    const { from, to, arn, event, ruleName } = hop;
    const busName = arn.split(':event-bus/')[1];
    if (busName !== to.bus.name) throw new DeliveryError('ResourceNotFoundException', `no bus ${arn}`, false);
    this.log(
      from.region,
      `rule ${ruleName}`,
      `forward ${event['detail-type']} → bus ${to.region}`,
      `bus ${to.region}`,
    );
    const origin = from.bus.origin(event.id);
    try {
      to.bus.receive(event, {
        publisher: origin?.publisher ?? `bus ${from.region}`,
        path: [...hop.path, `EventBridge rule ${ruleName} → event bus ${to.region}`],
      });
    } catch (e) {
      throw new DeliveryError((e as Error).name, (e as Error).message);
    }
  }

  // ------------------------------------------------------------ Scheduler and time

  /**
   * Advances virtual time by `ms`, firing every ENABLED schedule of every reachable region that
   * falls due (in time order), and waits for the work each firing starts.
   */
  async advance(ms: number): Promise<void> {
    const from = this.lastSchedulerMs;
    const to = Math.max(from, this.clock.now()) + ms;
    const due: Array<{ at: number; region: Region; schedule: ExtractedSchedule }> = [];
    for (const region of this.regions.values()) {
      for (const schedule of region.schedules) {
        if (schedule.state !== 'ENABLED') continue;
        if (schedule.name === 'lateness-watchdog' && !this.options.watchdog) continue;
        for (const at of firings(schedule.expression, schedule.timezone, from, to))
          due.push({ at, region, schedule });
      }
    }
    due.sort((a, b) => a.at - b.at);
    for (const d of due) {
      this.clock.set(d.at);
      if (!d.region.up) continue; // a dark region's Scheduler does not run
      await this.fireSchedule(d.region, d.schedule, d.at);
      await this.idle();
    }
    this.lastSchedulerMs = to;
    this.clock.set(to);
  }

  /** One Scheduler invocation, with the schedule's retry policy and DLQ. */
  async fireSchedule(region: Region, schedule: ExtractedSchedule, at: number): Promise<void> {
    const scheduledTime = new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const input = (schedule.target.input ?? '{}').replaceAll('<aws.scheduler.scheduled-time>', scheduledTime);
    const maxRetries = schedule.target.retryPolicy?.maximumRetryAttempts ?? 185;
    this.scheduleFirings.push({ region: region.region, schedule: schedule.name, at });
    for (let attempt = 1; ; attempt++) {
      this.metrics.hops++;
      try {
        this.invokeScheduleTarget(region, schedule, input, scheduledTime);
        return;
      } catch (e) {
        if (attempt - 1 < maxRetries) continue;
        this.scheduleInvocationFailed(region, schedule, input, e as Error, attempt);
        return;
      }
    }
  }

  private invokeScheduleTarget(
    region: Region,
    schedule: ExtractedSchedule,
    input: string,
    scheduledTime: string,
  ): void {
    const component = `Scheduler ${schedule.name}`;
    const fn = region.functions.get(schedule.target.arn);
    if (fn) {
      // Scheduler invokes Lambda targets asynchronously: the function's own async retries apply.
      this.log(region.region, component, `fires for ${scheduledTime}`, `λ ${fn.handler}`);
      const invocation = { caller: component, path: [`${component} → Lambda (async)`] };
      this.track(region.invokeAsync(fn, JSON.parse(input), invocation));
      return;
    }
    this.log(
      region.region,
      component,
      `fires for ${scheduledTime}`,
      region.machines.get(schedule.target.arn)?.name,
    );
    region.startExecution({
      stateMachineArn: schedule.target.arn,
      input,
      path: [`${component} → Step Functions`],
    });
  }

  private scheduleInvocationFailed(
    region: Region,
    schedule: ExtractedSchedule,
    input: string,
    e: Error,
    attempt: number,
  ): void {
    const q = schedule.target.dlqArn ? this.queue(schedule.target.dlqArn) : undefined;
    q?.messages.push({
      queueArn: q.arn,
      body: input,
      attributes: { ERROR_CODE: e.name, ERROR_MESSAGE: e.message },
      at: this.clock.now(),
    });
    this.log(
      region.region,
      `Scheduler ${schedule.name}`,
      `invocation failed ${attempt}× (${e.name}) → DLQ`,
      q ? `DLQ ${q.name}` : undefined,
    );
  }

  // ------------------------------------------------------------ control plane

  /** What `pulumi up` does to the fence: invoke the stack's fence writer with the recorded input. */
  async pulumiUpFence(region: Region): Promise<unknown> {
    const inv = region.model.fenceInvocation;
    const fn = region.functions.get(inv.functionName);
    if (!fn) throw new Error(`${region.region}: no function ${inv.functionName}`);
    const caller = `pulumi up ${region.model.stack}`;
    const out = await region.invokeLambda(fn.name, inv.input, { caller, path: [] });
    this.log(region.region, caller, `fence → ${JSON.stringify(out)}`, `λ ${fn.handler}`);
    return out;
  }

  /**
   * The runbook's failover for ONE stack: re-extract it with the new activeRegion (the config
   * flip), apply what changed (rule and schedule states), and perform the fence write.
   * Returns what changed; definitions must not (decision 4).
   */
  async pulumiUp(
    regionName: string,
    activeRegion: string,
  ): Promise<{ changed: string[]; definitionsChanged: string[] }> {
    const region = this.region(regionName);
    if (!region.up) throw new Error(`pulumi up -s ${region.model.stack}: ${regionName} is unreachable`);
    const model = await extractStack({
      stack: region.model.stack,
      activeRegion,
      ...(this.options.config ? { config: this.options.config } : {}),
    });
    const changed: string[] = [];
    for (const rule of model.rules) {
      const live = region.bus.rules.find((r) => r.name === rule.name);
      if (live && live.state !== rule.state) {
        changed.push(`rule ${rule.name}: ${live.state} → ${rule.state}`);
        live.state = rule.state;
      }
    }
    for (const s of model.schedules) {
      const live = region.schedules.find((x) => x.name === s.name);
      if (live && live.state !== s.state) {
        changed.push(`schedule ${s.name}: ${live.state} → ${s.state}`);
        live.state = s.state;
      }
    }
    const definitionsChanged = model.stateMachines
      .filter((sm) => JSON.stringify(sm.definition) !== region.definitionJson.get(sm.arn))
      .map((sm) => sm.name);
    region.model = model;
    for (const c of changed) this.log(regionName, `pulumi up ${model.stack}`, c);
    await this.pulumiUpFence(region);
    return { changed, definitionsChanged };
  }

  /** The region goes dark: in-flight executions stop where they are, nothing there answers. */
  loseRegion(name: string): void {
    const r = this.region(name);
    r.up = false;
    r.bus.up = false;
    r.abort.abort();
    this.log(
      name,
      'twin',
      `${name} GOES DARK (${r.executions.filter((e) => e.status === 'RUNNING').length} execution(s) in flight)`,
    );
  }

  /** The region comes back with the config it had (its rules and schedules unchanged). */
  restoreRegion(name: string): void {
    const r = this.region(name);
    r.up = true;
    r.bus.up = true;
    r.abort = unlimitedAbort();
    this.log(name, 'twin', `${name} is BACK (rules and schedules as it last deployed them)`);
  }

  // ------------------------------------------------------------ DynamoDB (a replica per region, async LWW replication)

  /** Reads of `key` (pk/sk) in `region` return the item as it is now, until healed. */
  async injectReplicationLag(region: string, key: { pk: string; sk: string }): Promise<void> {
    await this.replicas.injectLag(region, key);
    this.log(region, 'DynamoDB', `replication lag on ${key.pk}/${key.sk}: reads return the stale item`);
  }

  healReplication(): void {
    this.replicas.heal();
  }

  /** A DynamoDB client of one region's replica, with the injected stale reads of lagging keys. */
  dynamoView(region: string): { send(cmd: any): Promise<any> } {
    return this.replicas.view(region);
  }

  documentView(region: string): DynamoDBDocumentClient {
    return this.dynamo.docOf(region);
  }

  async close(): Promise<void> {
    for (const r of this.regions.values()) r.abort.abort();
    await this.idle();
    for (const r of this.regions.values()) await r.dbt.close();
    await this.dynamo.close();
  }
}

/** One rule delivery: from the rule's region to a target (maybe in the other region). */
interface RuleHop {
  from: Region;
  to: Region;
  arn: string;
  event: BusEvent;
  ruleName: string;
  /** The path of the event's publisher (the hop extends it). */
  path: readonly string[];
}

export function formatTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function formatEntry(e: TimelineEntry): string {
  return `${formatTime(e.t)}  ${e.region.padEnd(9)}  ${e.component.slice(0, 34).padEnd(34)}  ${e.text}`;
}
