// The polyfill must load before aws-local-stepfunctions (imported by sfn-local).
import { Mutex } from '../mutex';
import { controlTableInput } from '../table-schemas';
import '../promise-polyfill';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { setMaxListeners } from 'node:events';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { StateMachineDefinition } from '../../state-machines/asl';
import { ACCOUNT_ID } from '../pulumi-mocks';
import { ROOT, type StackName } from '../program';
import { ReplicatedDynamo } from '../replicated-dynamo';
import { startFakeDbtApi, type FakeDbtApi, type FakeRun } from '../fake-dbt-api';
import {
  runWorkflow,
  StatesError,
  type ExecutionEvent,
  type ServiceHandlers,
} from '../sfn-local';
import { callbackFor, completeRun } from '../dbt-callback';
import type { EventPattern } from '../../events/pattern';
import { VirtualClock, firings } from './clock';
import { DeliveryError, EventBus, Queue, type BusEvent } from './bus';
import {
  extractStack,
  type ExtractedFunction,
  type ExtractedSchedule,
  type ExtractedStateMachine,
  type StackModel,
} from '../extract';
import { GlueWorld } from './glue';

/**
 * The local twin: both regions of the platform on one machine, running what the program
 * deploys (extracted definitions, patterns, schedules, handlers with their env) on local engines.
 */

export const STACKS: Record<string, StackName> = { 'us-east-1': 'prod-east', 'us-west-1': 'prod-west' };

export interface TimelineEntry {
  /** Virtual time, epoch ms. */
  t: number;
  region: string;
  component: string;
  text: string;
  /** The component a message goes to (sequence diagrams). */
  to?: string;
}

export interface Metrics {
  hops: number;
  transitions: number;
  lambdaCalls: number;
  dbtRuns: number;
  alerts: number;
  dlqMessages: number;
  executions: number;
}

export interface ExecutionRecord {
  arn: string;
  name: string;
  region: string;
  stateMachine: string;
  input: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  output?: unknown;
  error?: string;
  cause?: string;
  transitions: number;
  startedAt: number;
  stoppedAt?: number;
  done: Promise<ExecutionRecord>;
}

export interface Alert {
  t: number;
  region: string;
  subject: string;
  message: string;
}

export class TwinError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

const HANDLER_CACHE = new Map<string, any>();
/** Each region's own copies of handlers/ modules (its Lambda containers), by module id. */
const REGION_MODULES = new Map<string, Map<string, NodeModule>>();
const HANDLERS_DIR = path.join(ROOT, 'handlers') + path.sep;
/** A new twin gets fresh handler modules: their module-level SDK clients bind to its endpoints. */
function resetHandlerModules(): void {
  HANDLER_CACHE.clear();
  REGION_MODULES.clear();
  for (const id of Object.keys(require.cache)) if (id.startsWith(HANDLERS_DIR)) delete require.cache[id];
}
/**
 * The handler module as `region`'s Lambda runs it: module-level SDK clients (fence-writer's, for
 * one) bind to the endpoint of the first call's environment, so each region loads its own copies.
 */
function handlerModule(name: string, region: string): any {
  const key = `${region}|${name}`;
  let mod = HANDLER_CACHE.get(key);
  if (!mod) {
    const stash = new Map<string, NodeModule>();
    for (const id of Object.keys(require.cache)) {
      if (!id.startsWith(HANDLERS_DIR)) continue;
      stash.set(id, require.cache[id]!);
      delete require.cache[id];
    }
    const mine = REGION_MODULES.get(region) ?? new Map<string, NodeModule>();
    for (const [id, m] of mine) require.cache[id] = m;
    mod = require(path.join(ROOT, 'handlers', `${name}.ts`));
    for (const id of Object.keys(require.cache)) {
      if (!id.startsWith(HANDLERS_DIR)) continue;
      mine.set(id, require.cache[id]!);
      delete require.cache[id];
    }
    REGION_MODULES.set(region, mine);
    for (const [id, m] of stash) require.cache[id] = m;
    HANDLER_CACHE.set(key, mod);
  }
  return mod;
}

/** The control table: one replica per region (local/replicated-dynamo), as the global table is. */
export interface TwinDynamo {
  readonly engine: ReplicatedDynamo;
  readonly tableName: string;
  endpoint(region: string): string;
  client(region: string): DynamoDBClient;
  docOf(region: string): DynamoDBDocumentClient;
  /** The first region's replica (reads after `engine.quiesce()` see every region's writes). */
  readonly doc: DynamoDBDocumentClient;
  close(): Promise<void>;
}

async function startTwinDynamo(regions: string[], tableName: string): Promise<TwinDynamo> {
  const engine = await ReplicatedDynamo.start({ regions, tables: [controlTableInput(tableName)], lag: 0 });
  const clients = new Map(
    regions.map((r) => [r, new DynamoDBClient({ ...engine.clientConfig(r), maxAttempts: 3 })]),
  );
  const docs = new Map(regions.map((r) => [r, DynamoDBDocumentClient.from(clients.get(r)!)]));
  return {
    engine,
    tableName,
    endpoint: (r) => engine.endpoint(r),
    client: (r) => clients.get(r)!,
    docOf: (r) => docs.get(r)!,
    doc: docs.get(regions[0])!,
    close: async () => {
      for (const c of clients.values()) c.destroy();
      await engine.stop();
    },
  };
}

/** Definitions are parsed once per process (by JSON text), so the engine's per-object cache hits. */
const DEFINITIONS = new Map<string, StateMachineDefinition>();
function sharedDefinition(def: StateMachineDefinition): StateMachineDefinition {
  const key = JSON.stringify(def);
  let d = DEFINITIONS.get(key);
  if (!d) {
    d = def;
    DEFINITIONS.set(key, d);
  }
  return d;
}

/** Faults a scenario can inject, consumed as they fire. */
export interface Faults {
  /** Lambda throttles (TooManyRequestsException) per handler name: how many calls to refuse. */
  lambdaThrottle: Map<string, number>;
}

/** Replication lag: reads of these keys in `region` return the stale item captured when injected. */
interface Lag {
  region: string;
  key: string;
  stale: Record<string, unknown> | undefined;
}

export class Region {
  readonly bus: EventBus;
  readonly queues = new Map<string, Queue>();
  readonly machines = new Map<string, ExtractedStateMachine>();
  readonly functions = new Map<string, ExtractedFunction>();
  schedules: ExtractedSchedule[];
  /** Executions by state machine ARN, then name: Step Functions' uniqueness scope. */
  readonly executionsByMachine = new Map<string, Map<string, ExecutionRecord>>();
  readonly executions: ExecutionRecord[] = [];
  /** Each definition's JSON as extracted (the engine annotates the objects it runs). */
  readonly definitionJson = new Map<string, string>();
  up = true;
  abort = unlimitedAbort();

  constructor(
    readonly twin: Twin,
    public model: StackModel,
    readonly dbt: FakeDbtApi,
  ) {
    for (const q of model.queues) this.queues.set(q.arn, new Queue(q.arn, q.name));
    for (const sm of model.stateMachines) this.definitionJson.set(sm.arn, JSON.stringify(sm.definition));
    for (const sm of model.stateMachines)
      this.machines.set(sm.arn, { ...sm, definition: sharedDefinition(sm.definition) });
    for (const fn of model.functions) {
      this.functions.set(fn.arn, fn);
      this.functions.set(fn.name, fn);
    }
    this.schedules = model.schedules.map((s) => ({ ...s }));
    this.bus = new EventBus(
      model.region,
      model.bus.name,
      model.bus.arn,
      ACCOUNT_ID,
      model.rules,
      model.archive.pattern as EventPattern,
      {
        clock: twin.clock,
        deliver: (target, event, rule) =>
          twin.deliverToTarget(this, target.arn, event, rule.name, target.input),
        queue: (arn) => twin.queue(arn),
        track: (p) => twin.track(p),
        log: (component, text, to) => twin.log(this.region, component, text, to),
        onAttempt: () => twin.metrics.hops++,
      },
    );
  }

  get region(): string {
    return this.model.region;
  }

  machineByName(part: string): ExtractedStateMachine {
    const found = [...this.machines.values()].filter((m) => m.name.includes(part));
    if (found.length !== 1)
      throw new Error(
        `${this.region}: expected one state machine *${part}*, found ${found.map((m) => m.name).join(', ')}`,
      );
    return found[0];
  }

  dlqMessages() {
    return [...this.queues.values()].flatMap((q) => q.messages);
  }

  // ------------------------------------------------------------ Step Functions

  /**
   * StartExecution with Step Functions' name semantics (per region + state machine): the same
   * name and input while RUNNING returns that execution; otherwise an existing name is
   * ExecutionAlreadyExists.
   */
  startExecution(args: {
    stateMachineArn: string;
    name?: string;
    input?: string;
    parent?: string;
  }): ExecutionRecord {
    if (!this.up) throw new TwinError('ServiceUnavailable', `states.${this.region} is unreachable`);
    const sm = this.machines.get(args.stateMachineArn);
    if (!sm)
      throw new TwinError(
        'StateMachineDoesNotExist',
        `State Machine Does Not Exist: '${args.stateMachineArn}'`,
      );
    const name = args.name ?? randomUUID();
    if (
      name.length > 80 ||
      /[\s<>{}[\]?*"#%\\^|~`$&,;:/]/.test(name) ||
      /[\u0000-\u001f\u007f-\u009f]/.test(name)
    ) {
      throw new TwinError('InvalidName', `Invalid Name: '${name}'`);
    }
    const input = args.input ?? '{}';
    if (Buffer.byteLength(input) > 262_144)
      throw new TwinError(
        'InvalidExecutionInput',
        `input is ${Buffer.byteLength(input)} bytes; the limit is 262144`,
      );
    let names = this.executionsByMachine.get(sm.arn);
    if (!names) this.executionsByMachine.set(sm.arn, (names = new Map()));
    const existing = names.get(name);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === input) return existing;
      throw new TwinError('ExecutionAlreadyExists', `Execution Already Exists: '${existing.arn}'`);
    }
    const arn = `arn:aws:states:${this.region}:${ACCOUNT_ID}:execution:${sm.name}:${name}`;
    const record = {
      arn,
      name,
      region: this.region,
      stateMachine: sm.name,
      input,
      status: 'RUNNING',
      transitions: 0,
      startedAt: this.twin.clock.now(),
    } as ExecutionRecord;
    names.set(name, record);
    this.executions.push(record);
    this.twin.metrics.executions++;
    this.twin.log(
      this.region,
      sm.name,
      `execution ${name} started${args.parent ? ` by ${args.parent.split(':').pop()}` : ''}`,
    );
    record.done = this.run(sm, record);
    this.twin.track(record.done);
    return record;
  }

  private async run(sm: ExtractedStateMachine, record: ExecutionRecord): Promise<ExecutionRecord> {
    await Promise.resolve();
    const twin = this.twin;
    const onEvent = (ev: ExecutionEvent) => {
      if (ev.type === 'StateEntered') {
        const st = (ev as any).stateName as string;
        const state = findState(sm.definition, st);
        if (state?.Type === 'Wait')
          twin.clock.tick(1000 * (typeof state.Seconds === 'number' ? state.Seconds : 30));
      }
    };
    const result = await runWorkflow(sm.definition, JSON.parse(record.input), {
      handlers: this.serviceHandlers(sm),
      context: {
        Execution: { Id: record.arn, Name: record.name, StartTime: new Date(record.startedAt).toISOString() },
      },
      signal: this.abort.signal,
      onEvent,
    });
    record.status = result.status;
    record.output = result.output;
    record.error = result.error;
    record.cause = result.cause;
    record.transitions = result.transitions;
    record.stoppedAt = twin.clock.now();
    twin.metrics.transitions += result.transitions;
    const detail =
      result.status === 'SUCCEEDED'
        ? `SUCCEEDED ${summarize(result.output)}`
        : `${result.status}${result.error ? ` ${result.error}` : ''}${result.cause ? `: ${String(result.cause).slice(0, 160)}` : ''}`;
    twin.log(this.region, sm.name, `execution ${record.name} ${detail} (${result.transitions} transitions)`);
    return record;
  }

  private serviceHandlers(sm: ExtractedStateMachine): ServiceHandlers {
    const twin = this.twin;
    const guard = () => {
      if (!this.up) throw new StatesError('States.Runtime', `${this.region} is dark`);
    };
    return {
      dynamodb: twin.dynamoView(this.region) as unknown as DynamoDBClient,
      lambda: async (payload, fnName) => {
        guard();
        twin.clock.tick(1000);
        return this.invokeLambda(fnName, payload, sm.name);
      },
      // lambda:invoke.waitForTaskToken: the start Lambda, then the app's callback when the run ends
      // (tests/harness/dbt-callback.ts; each step stands for a minute of heartbeats).
      taskToken: async (payload, fnName) => {
        guard();
        twin.clock.tick(1000);
        const started = (await this.invokeLambda(fnName, payload, sm.name)) as { runId: string };
        return callbackFor(await completeRun(this.dbt, started.runId, () => twin.clock.tick(60_000)));
      },
      events: (entries) => {
        guard();
        twin.clock.tick(100);
        const busName = String(entries[0]?.EventBusName ?? this.bus.name);
        if (busName !== this.bus.name && busName !== this.bus.arn)
          throw new StatesError('EventBridge.ResourceNotFoundException', `no bus ${busName}`);
        twin.metrics.hops++;
        for (const e of entries)
          twin.log(this.region, sm.name, `PutEvents ${String(e.DetailType)}`, `bus ${this.region}`);
        try {
          return this.bus.putEvents(entries.map((e) => ({ ...e, Resources: [sm.arn] })));
        } catch (e) {
          throw new StatesError('EventBridge.InternalException', (e as Error).message);
        }
      },
      sns: (params) => {
        guard();
        twin.clock.tick(100);
        const alert = {
          t: twin.clock.now(),
          region: this.region,
          subject: String(params.Subject ?? ''),
          message: String(params.Message ?? ''),
        };
        twin.alerts.push(alert);
        twin.metrics.alerts++;
        twin.log(this.region, sm.name, `ALERT ${alert.subject}`, `SNS ${this.region}`);
      },
      glue: async (params) => {
        guard();
        twin.clock.tick(60_000);
        twin.metrics.hops++;
        return twin.glue.run(this.region, params);
      },
      s3: (action, params) => {
        guard();
        return twin.glue.s3(action, params);
      },
      states: async (resource, params) => {
        guard();
        twin.metrics.hops++;
        try {
          const child = this.startExecution({
            stateMachineArn: String(params.StateMachineArn),
            ...(params.Name ? { name: String(params.Name) } : {}),
            input: typeof params.Input === 'string' ? params.Input : JSON.stringify(params.Input ?? {}),
            parent: sm.name,
          });
          if (!resource.includes('.sync'))
            return { ExecutionArn: child.arn, StartDate: new Date(child.startedAt).toISOString() };
          const done = await child.done;
          const out = {
            ExecutionArn: done.arn,
            Status: done.status,
            Output: JSON.stringify(done.output ?? null),
            StartDate: done.startedAt,
            StopDate: done.stoppedAt,
          };
          if (done.status !== 'SUCCEEDED')
            throw new StatesError(
              'States.TaskFailed',
              JSON.stringify({ ...out, Error: done.error, Cause: done.cause }),
            );
          return resource.endsWith(':2') ? { ...out, Output: done.output } : out;
        } catch (e) {
          if (e instanceof StatesError) throw e;
          throw new StatesError(
            `StepFunctions.${(e as Error).name}Exception`.replace('ExceptionException', 'Exception'),
            (e as Error).message,
          );
        }
      },
    };
  }

  // ------------------------------------------------------------ Lambda

  /** A synchronous invoke (RequestResponse) of a deployed function, by name or ARN. */
  async invokeLambda(fnName: string, payload: unknown, caller: string): Promise<unknown> {
    const fn = this.functions.get(fnName);
    if (!fn) throw new StatesError('Lambda.ResourceNotFoundException', `Function not found: ${fnName}`);
    const twin = this.twin;
    twin.metrics.lambdaCalls++;
    const throttles = twin.faults.lambdaThrottle.get(fn.handler) ?? 0;
    if (throttles > 0) {
      twin.faults.lambdaThrottle.set(fn.handler, throttles - 1);
      twin.log(this.region, caller, `invoke ${fn.name}: THROTTLED (injected)`, `λ ${fn.handler}`);
      throw new StatesError('Lambda.TooManyRequestsException', 'Rate Exceeded.');
    }
    twin.log(this.region, caller, `invoke ${fn.name}`, `λ ${fn.handler}`);
    return twin.lambdaMutex.run(() => this.callHandler(fn, payload));
  }

  private async callHandler(fn: ExtractedFunction, payload: unknown): Promise<unknown> {
    const twin = this.twin;
    const env: Record<string, string> = {
      ...fn.env,
      AWS_REGION: this.region,
      AWS_DEFAULT_REGION: this.region,
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      // Endpoints of this machine instead of AWS.
      AWS_ENDPOINT_URL_DYNAMODB: twin.dynamo.endpoint(this.region),
      ...(fn.env.DBT_API_URL !== undefined
        ? { DBT_API_URL: this.dbt.url, DBT_API_TOKEN: this.dbt.token }
        : {}),
    };
    const saved: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    // CloudWatch embedded-metric-format lines the handler prints become timeline entries.
    const stdoutWrite = process.stdout.write;
    process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
      const text = String(chunk);
      if (text.startsWith('{"_aws"')) {
        try {
          const emf = JSON.parse(text) as {
            _aws: { CloudWatchMetrics: Array<{ Metrics: Array<{ Name: string; Unit?: string }> }> };
          } & Record<string, unknown>;
          const metrics = emf._aws.CloudWatchMetrics.flatMap((m) => m.Metrics).map(
            (m) => `${m.Name}=${String(emf[m.Name])}${m.Unit === 'Seconds' ? 's' : ''}`,
          );
          twin.metricsEmitted.push({ region: this.region, fn: fn.name, line: emf });
          twin.log(this.region, `λ ${fn.handler}`, `metric ${metrics.join(', ')} (EMF)`);
          return true;
        } catch {
          // not EMF after all: print it
        }
      }
      return (stdoutWrite as (...a: unknown[]) => boolean).call(process.stdout, chunk, ...rest);
    }) as typeof process.stdout.write;
    try {
      const mod = handlerModule(fn.handler, this.region);
      // Module-level clients the handlers expose for exactly this.
      if (typeof mod.setDocumentClient === 'function') mod.setDocumentClient(twin.documentView(this.region));
      if (typeof mod.setSfnClient === 'function') {
        mod.setSfnClient({
          send: async (command: { input: { stateMachineArn?: string; name?: string; input?: string } }) => {
            const rec = this.startExecution({
              stateMachineArn: String(command.input.stateMachineArn),
              ...(command.input.name ? { name: command.input.name } : {}),
              input: command.input.input ?? '{}',
              parent: fn.name,
            });
            return { executionArn: rec.arn, startDate: new Date(rec.startedAt) };
          },
        });
      }
      // The fence writer moves the shared warehouse fence first (one for both regions, as Snowflake is).
      if (typeof mod.setWarehouseFence === 'function') mod.setWarehouseFence(twin.warehouseFence);
      if (typeof mod.setAlertPublisher === 'function') {
        mod.setAlertPublisher({
          publish: async (a: { subject: string; message: string }) => {
            const alert = {
              t: twin.clock.now(),
              region: this.region,
              subject: a.subject,
              message: a.message,
            };
            twin.alerts.push(alert);
            twin.metrics.alerts++;
            twin.log(this.region, `λ ${fn.handler}`, `ALERT ${alert.subject}`, `SNS ${this.region}`);
          },
        });
      }
      return await mod.handler(structuredClone(payload), {
        functionName: fn.name,
        awsRequestId: randomUUID(),
      });
    } finally {
      process.stdout.write = stdoutWrite;
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }

  /** Asynchronous invoke (EventBridge → Lambda) with the function's async retry config. */
  async invokeAsync(fn: ExtractedFunction, event: unknown, caller: string): Promise<void> {
    let attempts = 0;
    for (;;) {
      attempts++;
      try {
        await this.invokeLambda(fn.name, event, caller);
        return;
      } catch (e) {
        const err = e as Error;
        // Throttles and service errors are retried for up to the event age, not counted as attempts.
        if (err.name === 'Lambda.TooManyRequestsException') {
          attempts--;
          continue;
        }
        if (attempts - 1 < fn.async.maximumRetryAttempts) continue;
        const q = fn.async.onFailureArn ? this.twin.queue(fn.async.onFailureArn) : undefined;
        if (q) {
          q.messages.push({
            queueArn: q.arn,
            body: JSON.stringify({
              requestPayload: event,
              responseContext: { functionError: 'Unhandled' },
              responsePayload: { errorType: err.name, errorMessage: err.message },
            }),
            attributes: { ERROR_CODE: err.name },
            at: this.twin.clock.now(),
          });
          this.twin.log(
            this.region,
            `λ ${fn.handler}`,
            `async invoke failed ${attempts}× (${err.name}) → on-failure ${q.name}`,
            `DLQ ${q.name}`,
          );
        } else {
          this.twin.log(
            this.region,
            `λ ${fn.handler}`,
            `async invoke failed ${attempts}× (${err.name}); event dropped`,
          );
        }
        return;
      }
    }
  }
}

/** One signal per region, listened to by every execution there. */
function unlimitedAbort(): AbortController {
  const c = new AbortController();
  setMaxListeners(0, c.signal);
  return c;
}

function summarize(output: unknown): string {
  if (output && typeof output === 'object') {
    const o = output as Record<string, unknown>;
    const bits = ['outcome', 'status', 'batchId', 'attempt']
      .filter((k) => o[k] !== undefined)
      .map((k) => `${k}=${String(o[k])}`);
    if (bits.length) return `(${bits.join(', ')})`;
  }
  return '';
}

function findState(def: any, name: string): any {
  for (const [n, s] of Object.entries<any>(def.States ?? {})) {
    if (n === name) return s;
    for (const child of [s.Iterator, s.ItemProcessor, ...(s.Branches ?? [])].filter(Boolean)) {
      const f = findState(child, name);
      if (f) return f;
    }
  }
  return undefined;
}

export interface TwinOptions {
  activeRegion?: string;
  /** Config overrides applied to both stacks (e.g. defaultTriggerMode). */
  config?: Record<string, unknown>;
  /** Virtual start time. */
  start?: string;
  /** Echo the timeline as it happens. */
  verbose?: boolean;
  /**
   * Fire the lateness watchdog's schedule. Off by default: the handlers stamp records with the
   * wall clock while the twin's schedules run on virtual time, and the watchdog compares the two
   * (it would see every fresh batch as hours old). The watchdog is tested against dynalite in
   * tests/watchdog.test.ts.
   */
  watchdog?: boolean;
}

export class Twin {
  readonly clock: VirtualClock;
  readonly timeline: TimelineEntry[] = [];
  readonly alerts: Alert[] = [];
  /** The warehouse fence (CONTROL.FENCE) both regions share; only moves forward, like the SQL the writer sends. */
  readonly warehouseFence = (() => {
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
  })();
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
  readonly faults: Faults = { lambdaThrottle: new Map() };
  readonly lambdaMutex = new Mutex();
  readonly glue: GlueWorld;
  readonly regions = new Map<string, Region>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly lags: Lag[] = [];
  private lastSchedulerMs: number;

  private constructor(
    readonly dynamo: TwinDynamo,
    readonly options: TwinOptions,
  ) {
    this.clock = new VirtualClock(options.start ?? '2026-11-27T06:00:00Z');
    this.lastSchedulerMs = this.clock.now();
    this.glue = new GlueWorld(this);
  }

  static async start(options: TwinOptions = {}): Promise<Twin> {
    process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
    process.env.AWS_ACCESS_KEY_ID ??= 'twin';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'twin';
    const activeRegion = options.activeRegion ?? 'us-east-1';
    const [east, west] = [
      await extractStack({
        stack: 'prod-east',
        activeRegion,
        ...(options.config ? { config: options.config } : {}),
      }),
      await extractStack({
        stack: 'prod-west',
        activeRegion,
        ...(options.config ? { config: options.config } : {}),
      }),
    ];
    const dynamo = await startTwinDynamo([east.region, west.region], east.controlTableName);
    resetHandlerModules();
    const twin = new Twin(dynamo, options);
    for (const model of [east, west]) {
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

  queue(arn: string): Queue | undefined {
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
    const component = `rule ${ruleName}`;
    if (!from.up) throw new DeliveryError('ServiceUnavailable', `${from.region} is dark`);
    if (!to || !to.up) throw new DeliveryError('ServiceUnavailable', `${targetRegion} is unreachable`);
    const input = constInput ?? JSON.stringify(event);
    switch (service) {
      case 'states': {
        try {
          const rec = to.startExecution({ stateMachineArn: arn, input });
          this.log(
            from.region,
            component,
            `→ StartExecution ${rec.stateMachine} (${rec.name.slice(0, 8)}…)`,
            rec.stateMachine,
          );
        } catch (e) {
          const err = e as Error;
          throw new DeliveryError(
            err.name,
            err.message,
            !['StateMachineDoesNotExist', 'InvalidExecutionInput', 'InvalidName'].includes(err.name),
          );
        }
        return;
      }
      case 'events': {
        const busName = arn.split(':event-bus/')[1];
        if (busName !== to.bus.name)
          throw new DeliveryError('ResourceNotFoundException', `no bus ${arn}`, false);
        this.log(
          from.region,
          component,
          `forward ${event['detail-type']} → bus ${to.region}`,
          `bus ${to.region}`,
        );
        try {
          to.bus.receive(event);
        } catch (e) {
          throw new DeliveryError((e as Error).name, (e as Error).message);
        }
        return;
      }
      case 'lambda': {
        const fn = to.functions.get(arn);
        if (!fn) throw new DeliveryError('ResourceNotFoundException', `no function ${arn}`, false);
        this.log(from.region, component, `→ async invoke ${fn.name}`, `λ ${fn.handler}`);
        // Lambda accepted the event: its own async retries take over from here.
        this.track(to.invokeAsync(fn, JSON.parse(input), component));
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
    for (let attempt = 1; ; attempt++) {
      this.metrics.hops++;
      try {
        const fn = region.functions.get(schedule.target.arn);
        if (fn) {
          // Scheduler invokes Lambda targets asynchronously: the function's own async retries apply.
          this.log(
            region.region,
            `Scheduler ${schedule.name}`,
            `fires for ${scheduledTime}`,
            `λ ${fn.handler}`,
          );
          this.track(region.invokeAsync(fn, JSON.parse(input), `Scheduler ${schedule.name}`));
          return;
        }
        this.log(
          region.region,
          `Scheduler ${schedule.name}`,
          `fires for ${scheduledTime}`,
          region.machines.get(schedule.target.arn)?.name,
        );
        region.startExecution({ stateMachineArn: schedule.target.arn, input });
        return;
      } catch (e) {
        if (attempt - 1 < maxRetries) continue;
        const q = schedule.target.dlqArn ? this.queue(schedule.target.dlqArn) : undefined;
        q?.messages.push({
          queueArn: q.arn,
          body: input,
          attributes: { ERROR_CODE: (e as Error).name, ERROR_MESSAGE: (e as Error).message },
          at: this.clock.now(),
        });
        this.log(
          region.region,
          `Scheduler ${schedule.name}`,
          `invocation failed ${attempt}× (${(e as Error).name}) → DLQ`,
          q ? `DLQ ${q.name}` : undefined,
        );
        return;
      }
    }
  }

  // ------------------------------------------------------------ control plane

  /** What `pulumi up` does to the fence: invoke the stack's fence writer with the recorded input. */
  async pulumiUpFence(region: Region): Promise<unknown> {
    const inv = region.model.fenceInvocation;
    const fn = region.functions.get(inv.functionName);
    if (!fn) throw new Error(`${region.region}: no function ${inv.functionName}`);
    const out = await region.invokeLambda(fn.name, inv.input, `pulumi up ${region.model.stack}`);
    this.log(
      region.region,
      `pulumi up ${region.model.stack}`,
      `fence → ${JSON.stringify(out)}`,
      `λ ${fn.handler}`,
    );
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
      stack: STACKS[regionName],
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
    await this.dynamo.engine.quiesce();
    const got = await this.dynamo.client(region).send(
      new GetItemCommand({
        TableName: this.dynamo.tableName,
        Key: { pk: { S: key.pk }, sk: { S: key.sk } },
        ConsistentRead: true,
      }),
    );
    this.lags.push({
      region,
      key: `${key.pk}|${key.sk}`,
      stale: got.Item as Record<string, unknown> | undefined,
    });
    this.log(region, 'DynamoDB', `replication lag on ${key.pk}/${key.sk}: reads return the stale item`);
  }

  healReplication(): void {
    this.lags.length = 0;
  }

  /** A DynamoDB client of one region's replica, with the injected stale reads of lagging keys. */
  dynamoView(region: string): { send(cmd: any): Promise<any> } {
    const client = this.dynamo.client(region);
    return {
      send: async (cmd: any) => {
        this.clock.tick(20);
        if (!this.region(region).up)
          throw Object.assign(new Error(`dynamodb.${region} unreachable`), { name: 'InternalServerError' });
        if (cmd instanceof GetItemCommand) {
          const k = cmd.input.Key as any;
          const lag = this.lags.find((l) => l.region === region && l.key === `${k?.pk?.S}|${k?.sk?.S}`);
          if (lag) return lag.stale ? { Item: lag.stale } : {};
        }
        return client.send(cmd);
      },
    };
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

export function formatTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function formatEntry(e: TimelineEntry): string {
  return `${formatTime(e.t)}  ${e.region.padEnd(9)}  ${e.component.slice(0, 34).padEnd(34)}  ${e.text}`;
}
