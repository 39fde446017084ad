import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { HANDLER_ENV } from '../../contracts/env';
import type { StateMachineDefinition } from '../../state-machines/asl';
import type { ExtractedFunction, ExtractedSchedule, ExtractedStateMachine, StackModel } from '../extract';
import type { FakeDbtApi } from '../fake-dbt-api';
import { ACCOUNT_ID } from '../pulumi-mocks';
import { runWorkflow, StatesError, type ExecutionEvent, type RunResult } from '../sfn-local';
import type { Mutex } from '../mutex';
import { EventBus, Queue, type BusEvent } from './bus';
import type { TwinDynamo } from './dynamo';
import { emfSummary, handlerModule, withEmfCapture, withEnv, type HandlerModule } from './lambda';
import { executionServices, type ServiceHost, type StartExecutionArgs } from './services';
import { TwinError, type ExecutionRecord, type Faults, type Invocation, type LambdaCall } from './types';

/**
 * What a region uses of the platform (twin.ts's Twin, which owns the regions): an interface here,
 * so twin.ts imports this file and not the other way round.
 */
export interface RegionHost extends ServiceHost {
  readonly dynamo: Pick<TwinDynamo, 'endpoint'>;
  readonly lambdaInvocations: LambdaCall[];
  readonly faults: Faults;
  readonly lambdaMutex: Mutex;
  readonly metricsEmitted: Array<{ region: string; fn: string; line: Record<string, unknown> }>;
  readonly warehouseFence: unknown;
  deliverToTarget(
    from: Region,
    arn: string,
    event: BusEvent,
    ruleName: string,
    input?: string,
  ): Promise<void>;
  queue(arn: string): Queue | undefined;
  track(p: Promise<unknown>): void;
  documentView(region: string): DynamoDBDocumentClient;
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

/** One signal per region, listened to by every execution there. */
export function unlimitedAbort(): AbortController {
  const c = new AbortController();
  setMaxListeners(0, c.signal);
  return c;
}

/** Step Functions' execution-name rules (StartExecution `name`). */
function checkExecutionName(name: string): void {
  if (
    name.length > 80 ||
    /[\s<>{}[\]?*"#%\\^|~`$&,;:/]/.test(name) ||
    /[\u0000-\u001f\u007f-\u009f]/.test(name)
  ) {
    throw new TwinError('InvalidName', `Invalid Name: '${name}'`);
  }
}

/** Step Functions' 256 KB limit on an execution's input. */
function checkExecutionInput(input: string): void {
  if (Buffer.byteLength(input) > 262_144)
    throw new TwinError(
      'InvalidExecutionInput',
      `input is ${Buffer.byteLength(input)} bytes; the limit is 262144`,
    );
}

/** StateEntered + StateRetried per state name (what AWS bills, state by state). */
function transitionsByState(events: readonly ExecutionEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const ev of events) {
    if (ev.type !== 'StateEntered' && ev.type !== 'StateRetried') continue;
    const name = (ev.state as { name?: string } | undefined)?.name ?? '';
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
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

function outcomeText(result: RunResult): string {
  return result.status === 'SUCCEEDED'
    ? `SUCCEEDED ${summarize(result.output)}`
    : `${result.status}${result.error ? ` ${result.error}` : ''}${result.cause ? `: ${String(result.cause).slice(0, 160)}` : ''}`;
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

/**
 * One region of the platform: its bus and rules, DLQs, state machines with Step Functions' name
 * semantics, and its Lambda functions running the real handlers.
 */
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
    readonly twin: RegionHost,
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
      model.archive.pattern,
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
   * ExecutionAlreadyExists. `path` says how it was triggered (default: started directly).
   */
  startExecution(args: StartExecutionArgs): ExecutionRecord {
    if (!this.up) throw new TwinError('ServiceUnavailable', `states.${this.region} is unreachable`);
    const sm = this.machines.get(args.stateMachineArn);
    if (!sm)
      throw new TwinError(
        'StateMachineDoesNotExist',
        `State Machine Does Not Exist: '${args.stateMachineArn}'`,
      );
    const name = args.name ?? randomUUID();
    checkExecutionName(name);
    const input = args.input ?? '{}';
    checkExecutionInput(input);
    let names = this.executionsByMachine.get(sm.arn);
    if (!names) this.executionsByMachine.set(sm.arn, (names = new Map()));
    const existing = names.get(name);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === input) return existing;
      throw new TwinError('ExecutionAlreadyExists', `Execution Already Exists: '${existing.arn}'`);
    }
    const record = {
      arn: `arn:aws:states:${this.region}:${ACCOUNT_ID}:execution:${sm.name}:${name}`,
      name,
      region: this.region,
      stateMachine: sm.name,
      input,
      status: 'RUNNING',
      transitions: 0,
      transitionsByState: {},
      path: args.path ?? [],
      startedAt: this.twin.clock.now(),
    } as Omit<ExecutionRecord, 'done'> as ExecutionRecord;
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
        // A Wait state moves virtual time by its Seconds (30 s when it reads them from the input).
        const state = findState(sm.definition, (ev.state as { name?: string } | undefined)?.name ?? '');
        if (state?.Type === 'Wait')
          twin.clock.tick(1000 * (typeof state.Seconds === 'number' ? state.Seconds : 30));
      }
    };
    const result = await runWorkflow(sm.definition, JSON.parse(record.input), {
      handlers: executionServices(this, sm, record),
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
    record.transitionsByState = transitionsByState(result.events);
    record.stoppedAt = twin.clock.now();
    twin.metrics.transitions += result.transitions;
    twin.log(
      this.region,
      sm.name,
      `execution ${record.name} ${outcomeText(result)} (${result.transitions} transitions)`,
    );
    return record;
  }

  // ------------------------------------------------------------ Lambda

  /** A synchronous invoke (RequestResponse) of a deployed function, by name or ARN. */
  async invokeLambda(fnName: string, payload: unknown, from: Invocation): Promise<unknown> {
    const fn = this.functions.get(fnName);
    if (!fn) throw new StatesError('Lambda.ResourceNotFoundException', `Function not found: ${fnName}`);
    const twin = this.twin;
    twin.metrics.lambdaCalls++;
    twin.lambdaInvocations.push({ region: this.region, fn: fn.name, caller: from.caller, path: from.path });
    const throttles = twin.faults.lambdaThrottle.get(fn.handler) ?? 0;
    if (throttles > 0) {
      twin.faults.lambdaThrottle.set(fn.handler, throttles - 1);
      twin.log(this.region, from.caller, `invoke ${fn.name}: THROTTLED (injected)`, `λ ${fn.handler}`);
      throw new StatesError('Lambda.TooManyRequestsException', 'Rate Exceeded.');
    }
    twin.log(this.region, from.caller, `invoke ${fn.name}`, `λ ${fn.handler}`);
    return twin.lambdaMutex.run(() => this.callHandler(fn, payload, from));
  }

  /** The function's environment, with this machine's endpoints instead of AWS's. */
  private lambdaEnv(fn: ExtractedFunction): Record<string, string> {
    return {
      ...fn.env,
      AWS_REGION: this.region,
      AWS_DEFAULT_REGION: this.region,
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      AWS_ENDPOINT_URL_DYNAMODB: this.twin.dynamo.endpoint(this.region),
      ...(fn.env[HANDLER_ENV.DBT_API_URL] !== undefined
        ? { [HANDLER_ENV.DBT_API_URL]: this.dbt.url, [HANDLER_ENV.DBT_API_TOKEN]: this.dbt.token }
        : {}),
    };
  }

  private callHandler(fn: ExtractedFunction, payload: unknown, from: Invocation): Promise<unknown> {
    const twin = this.twin;
    // CloudWatch embedded-metric-format lines the handler prints become timeline entries.
    const onMetric = (emf: Parameters<typeof emfSummary>[0]) => {
      const metrics = emfSummary(emf);
      twin.metricsEmitted.push({ region: this.region, fn: fn.name, line: emf });
      twin.log(this.region, `λ ${fn.handler}`, `metric ${metrics.join(', ')} (EMF)`);
    };
    return withEnv(this.lambdaEnv(fn), () =>
      withEmfCapture(onMetric, async () => {
        const mod = handlerModule(fn.handler, this.region);
        this.connectClients(mod, fn, from);
        return await mod.handler(structuredClone(payload), {
          functionName: fn.name,
          awsRequestId: randomUUID(),
        });
      }),
    );
  }

  /** Points the module-level clients a handler exposes (for exactly this) at the platform. */
  private connectClients(mod: HandlerModule, fn: ExtractedFunction, from: Invocation): void {
    const twin = this.twin;
    if (typeof mod.setDocumentClient === 'function') mod.setDocumentClient(twin.documentView(this.region));
    if (typeof mod.setSfnClient === 'function') {
      mod.setSfnClient({
        send: async (command: { input: { stateMachineArn?: string; name?: string; input?: string } }) => {
          const rec = this.startExecution({
            stateMachineArn: String(command.input.stateMachineArn),
            ...(command.input.name ? { name: command.input.name } : {}),
            input: command.input.input ?? '{}',
            parent: fn.name,
            path: [...from.path, 'Lambda → StartExecution'],
          });
          return { executionArn: rec.arn, startDate: new Date(rec.startedAt) };
        },
      });
    }
    // The fence writer moves the shared warehouse fence first (one for both regions, as Snowflake is).
    if (typeof mod.setWarehouseFence === 'function') mod.setWarehouseFence(twin.warehouseFence);
    // No alert-publisher override: the watchdog's real publisher starts the extracted alert
    // workflow through the client above, and its sns:publish task records the alert.
  }

  /** Asynchronous invoke (EventBridge → Lambda) with the function's async retry config. */
  async invokeAsync(fn: ExtractedFunction, event: unknown, from: Invocation): Promise<void> {
    let attempts = 0;
    for (;;) {
      attempts++;
      try {
        await this.invokeLambda(fn.name, event, from);
        return;
      } catch (e) {
        const err = e as Error;
        // Throttles and service errors are retried for up to the event age, not counted as attempts.
        if (err.name === 'Lambda.TooManyRequestsException') {
          attempts--;
          continue;
        }
        if (attempts - 1 < fn.async.maximumRetryAttempts) continue;
        this.asyncInvokeFailed(fn, event, err, attempts);
        return;
      }
    }
  }

  /** Lambda's on-failure destination for an async event whose retries are spent (or a drop). */
  private asyncInvokeFailed(fn: ExtractedFunction, event: unknown, err: Error, attempts: number): void {
    const q = fn.async.onFailureArn ? this.twin.queue(fn.async.onFailureArn) : undefined;
    if (!q) {
      this.twin.log(
        this.region,
        `λ ${fn.handler}`,
        `async invoke failed ${attempts}× (${err.name}); event dropped`,
      );
      return;
    }
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
  }
}
