// The polyfill must load before aws-local-stepfunctions; imports are emitted in this order.
import './promise-polyfill';
import { randomUUID } from 'crypto';
import { StateMachine } from 'aws-local-stepfunctions';
import {
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { State, StateMachineDefinition, SubMachine } from '../state-machines/asl';
import { childMachines } from '../state-machines/graph';

type Json = unknown;
type AnyParams = Record<string, unknown>;

/** An error whose `name` becomes the ASL error code (what Retry/Catch match). */
export class StatesError extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

export type LambdaHandler = (payload: Json, functionName: string) => Json | Promise<Json>;
export interface GlueJobRunOutcome {
  JobRunState: 'SUCCEEDED' | 'FAILED' | 'ERROR' | 'TIMEOUT' | 'STOPPED';
  ErrorMessage?: string;
  [key: string]: unknown;
}

export interface ServiceHandlers {
  /** Real DynamoDB calls (dynalite). */
  dynamodb?: DynamoDBClient;
  /** One function for all, or per FunctionName (name or ARN as written in Parameters). */
  lambda?: LambdaHandler | Record<string, LambdaHandler>;
  /**
   * `lambda:invoke.waitForTaskToken`: the local stand-in for "invoke, then wait for SendTask*".
   * Return the SendTaskSuccess output, or throw a StatesError named as SendTaskFailure's error (or
   * `States.HeartbeatTimeout` / `States.Timeout`). See local/dbt-callback.ts.
   */
  taskToken?: (payload: Json, functionName: string, token: string) => Json | Promise<Json>;
  /** Return true to make an entry fail (the task then fails with EventBridge.FailedEntry). */
  eventsFail?: (entry: AnyParams) => boolean;
  /**
   * Delivers accepted entries (after `eventsFail`), e.g. to the local twin's bus. Return the
   * PutEvents result, or throw a StatesError. Default: entries are only recorded.
   */
  events?: (entries: AnyParams[]) => Json | Promise<Json>;
  /** sns:publish: called after the message is recorded (the twin logs an alert). */
  sns?: (params: AnyParams) => void | Promise<void>;
  /** Outcome of each glue:startJobRun.sync call (`call` counts from 1 across the run). */
  glue?: (params: AnyParams, call: number) => GlueJobRunOutcome | Promise<GlueJobRunOutcome>;
  /** states:startExecution(.sync/.sync:2): return the task result or throw a StatesError. */
  states?: (resource: string, params: AnyParams) => Json | Promise<Json>;
  /** aws-sdk s3:<action> (e.g. getObject): return the SDK result or throw a StatesError (`S3.NoSuchKeyException`). */
  s3?: (action: string, params: AnyParams) => Json | Promise<Json>;
}

export interface RoutedCall {
  state: string;
  resource: string;
  params: AnyParams;
}

function stripMetadata<T extends object>(out: T): Omit<T, '$metadata'> {
  const { $metadata: _m, ...rest } = out as T & { $metadata?: unknown };
  void _m;
  return rest;
}

function errorName(e: unknown): string {
  return e instanceof Error ? e.name : 'Error';
}

/**
 * Routes Task resources to local implementations, the way Step Functions would call the service.
 * Records every call plus published events / SNS messages for assertions.
 */
export class ServiceRouter {
  readonly calls: RoutedCall[] = [];
  readonly putEvents: AnyParams[] = [];
  readonly snsMessages: AnyParams[] = [];
  private glueCalls = 0;

  constructor(readonly handlers: ServiceHandlers = {}) {}

  /** Throws if `resource` has no handler: a harness setup error, not an execution failure. */
  assertRoutable(resource: string, state: string): void {
    const r = parseResource(resource);
    const ok =
      (r.service === 'dynamodb' && this.handlers.dynamodb !== undefined) ||
      (r.service === 'lambda' && r.pattern !== 'waitForTaskToken' && this.handlers.lambda !== undefined) ||
      (r.service === 'lambda' && r.pattern === 'waitForTaskToken' && this.handlers.taskToken !== undefined) ||
      (r.service === 'events' && r.action === 'putEvents') ||
      (r.service === 'sns' && r.action === 'publish') ||
      (r.service === 'glue' && r.action === 'startJobRun' && this.handlers.glue !== undefined) ||
      (r.service === 'states' && r.action === 'startExecution' && this.handlers.states !== undefined) ||
      (r.service === 's3' && r.sdk && this.handlers.s3 !== undefined);
    if (!ok) throw new Error(`sfn-local: no handler routes resource "${resource}" (state "${state}")`);
  }

  async handle(state: string, resource: string, params: AnyParams): Promise<Json> {
    this.calls.push({ state, resource, params });
    const r = parseResource(resource);
    switch (r.service) {
      case 'dynamodb':
        return this.dynamodb(r.action, r.sdk, params);
      case 'lambda':
        return this.lambda(r, params);
      case 'events':
        return this.events(params);
      case 'sns':
        this.snsMessages.push(params);
        await this.handlers.sns?.(params);
        return { MessageId: randomUUID() };
      case 'glue':
        return this.glue(r.pattern, params);
      case 'states':
        return (this.handlers.states as NonNullable<ServiceHandlers['states']>)(resource, params);
      case 's3':
        return (this.handlers.s3 as NonNullable<ServiceHandlers['s3']>)(r.action, params);
      default:
        throw new Error(`sfn-local: unrouted resource ${resource}`);
    }
  }

  private async dynamodb(action: string, sdk: boolean, params: AnyParams): Promise<Json> {
    const client = this.handlers.dynamodb as DynamoDBClient;
    // Parameters are already in DynamoDB's low-level (AttributeValue) shape.
    const input = params as never;
    try {
      switch (action) {
        case 'putItem':
          return stripMetadata(await client.send(new PutItemCommand(input)));
        case 'updateItem':
          return stripMetadata(await client.send(new UpdateItemCommand(input)));
        case 'getItem':
          return stripMetadata(await client.send(new GetItemCommand(input)));
        case 'deleteItem':
          return stripMetadata(await client.send(new DeleteItemCommand(input)));
        case 'query':
          if (!sdk)
            throw new StatesError('States.Runtime', 'dynamodb:query exists only as an aws-sdk integration');
          return stripMetadata(await client.send(new QueryCommand(input)));
        default:
          throw new StatesError('States.Runtime', `sfn-local: dynamodb action ${action} not implemented`);
      }
    } catch (e) {
      if (e instanceof StatesError) throw e;
      const name = errorName(e);
      // Optimized integration: "DynamoDB.<Name>". aws-sdk integration: "DynamoDb.<Name>", always
      // with the Exception suffix (AWS docs, "Learning to use AWS SDK service integrations").
      const code = sdk
        ? `DynamoDb.${name.endsWith('Exception') ? name : `${name}Exception`}`
        : `DynamoDB.${name}`;
      throw new StatesError(code, e instanceof Error ? e.message : String(e));
    }
  }

  private async lambda(r: ParsedResource, params: AnyParams): Promise<Json> {
    if (r.pattern === 'waitForTaskToken') {
      const payload = params.Payload as AnyParams;
      const token = String(payload?.taskToken ?? '');
      // The result is the callback's output as sent: no Payload wrapper.
      return (this.handlers.taskToken as NonNullable<ServiceHandlers['taskToken']>)(
        payload,
        String(params.FunctionName),
        token,
      );
    }
    // A bare function ARN as Resource receives the state input and returns the raw result.
    const direct = r.functionArn !== undefined;
    const fnName = direct ? (r.functionArn as string) : String(params.FunctionName);
    const payload = direct ? params : params.Payload;
    const h = this.handlers.lambda;
    const fn = typeof h === 'function' ? h : h?.[fnName];
    if (!fn) throw new Error(`sfn-local: no lambda handler for ${fnName}`);
    const result = await fn(payload, fnName);
    return direct ? result : { ExecutedVersion: '$LATEST', Payload: result, StatusCode: 200 };
  }

  private async events(params: AnyParams): Promise<Json> {
    const entries = (params.Entries ?? []) as AnyParams[];
    const failed = entries.filter((e) => this.handlers.eventsFail?.(e) ?? false);
    if (failed.length > 0) {
      throw new StatesError('EventBridge.FailedEntry', JSON.stringify({ FailedEntryCount: failed.length }));
    }
    this.putEvents.push(...entries);
    if (this.handlers.events) return this.handlers.events(entries);
    return { Entries: entries.map(() => ({ EventId: randomUUID() })), FailedEntryCount: 0 };
  }

  private async glue(pattern: string | undefined, params: AnyParams): Promise<Json> {
    const outcome = await (this.handlers.glue as NonNullable<ServiceHandlers['glue']>)(
      params,
      ++this.glueCalls,
    );
    const run = {
      Id: `jr_${randomUUID().replace(/-/g, '')}`,
      JobName: params.JobName,
      Attempt: 0,
      ...outcome,
    };
    if (pattern !== 'sync') return { JobRunId: run.Id };
    // .sync surfaces a non-successful run as States.TaskFailed with the run as the cause.
    if (run.JobRunState !== 'SUCCEEDED') throw new StatesError('States.TaskFailed', JSON.stringify(run));
    return run;
  }
}

interface ParsedResource {
  service: string;
  action: string;
  sdk: boolean;
  pattern?: string;
  functionArn?: string;
}

export function parseResource(resource: string): ParsedResource {
  const fn = /^arn:[^:]+:lambda:[^:]+:\d+:function:.+$/.exec(resource);
  if (fn) return { service: 'lambda', action: 'invoke', sdk: false, functionArn: resource };
  const m =
    /^arn:[^:]+:states:::(aws-sdk:)?([a-z0-9]+):([A-Za-z0-9]+)(?:\.(sync(?::2)?|waitForTaskToken))?$/.exec(
      resource,
    );
  if (!m) return { service: 'unknown', action: resource, sdk: false };
  return {
    service: m[2],
    action: m[3],
    sdk: m[1] !== undefined,
    pattern: m[4]?.startsWith('sync') ? 'sync' : m[4],
  };
}

// ---------------------------------------------------------------- execution

export interface RunOptions {
  handlers?: ServiceHandlers;
  /** Pass a router to share recordings across runs; `handlers` is then ignored. */
  router?: ServiceRouter;
  /** Wait-state duration in ms (default 0). */
  waitMs?: number;
  /** Per Wait state, its duration in ms (overrides `waitMs`). */
  waitMsByState?: Record<string, number>;
  /** Extra context; Execution.Id / Execution.Name are filled in when absent. */
  context?: { Execution?: Record<string, unknown>; [key: string]: unknown };
  /** Aborting stops the execution (status ABORTED), e.g. when the twin takes a region down. */
  signal?: AbortSignal;
  /** Sees every execution event as it happens (the twin's live timeline). */
  onEvent?: (event: ExecutionEvent) => void;
}

export type ExecutionEvent = { type: string; [key: string]: unknown };

export interface RunResult {
  status: 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  output?: Json;
  error?: string;
  cause?: string;
  events: ExecutionEvent[];
  /** StateEntered + StateRetried: what AWS bills as transitions. */
  transitions: number;
  router: ServiceRouter;
}

type EngineRunOptions = NonNullable<Parameters<StateMachine['run']>[1]>;
type LocalHandlers = NonNullable<NonNullable<EngineRunOptions['overrides']>['taskResourceLocalHandlers']>;
type EngineJson = Awaited<ReturnType<LocalHandlers[string]>>;

const machines = new WeakMap<StateMachineDefinition, StateMachine>();

function getMachine(definition: StateMachineDefinition): StateMachine {
  let sm = machines.get(definition);
  if (!sm) {
    // Construction validates the definition and costs ~0.5 s, hence the cache.
    sm = new StateMachine(definition as never, { validationOptions: { checkArn: true, checkPaths: true } });
    machines.set(definition, sm);
  }
  return sm;
}

/** Every state, at any depth, by name. */
export function allStates(machine: SubMachine): Array<[string, State]> {
  const out: Array<[string, State]> = [];
  for (const [name, state] of Object.entries(machine.States)) {
    out.push([name, state]);
    for (const child of childMachines(state)) out.push(...allStates(child));
  }
  return out;
}

/**
 * Executes `definition` locally. Tasks are routed by their Resource ARN; Waits and retry
 * intervals are 0 ms. An execution failure is reported in the result, never thrown.
 */
export async function runWorkflow(
  definition: StateMachineDefinition,
  input: Json,
  options: RunOptions = {},
): Promise<RunResult> {
  const router = options.router ?? new ServiceRouter(options.handlers);
  const taskResourceLocalHandlers: LocalHandlers = {};
  const waitTimeOverrides: Record<string, number> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  const resources = new Map<string, string>();

  for (const [name, state] of allStates(definition)) {
    if ('Retry' in state && state.Retry) retryIntervalOverrides[name] = 0;
    if (state.Type === 'Wait') waitTimeOverrides[name] = options.waitMsByState?.[name] ?? options.waitMs ?? 0;
    if (state.Type !== 'Task') continue;
    const prior = resources.get(name);
    if (prior !== undefined && prior !== state.Resource) {
      throw new Error(`sfn-local: state name "${name}" is used twice with different resources`);
    }
    resources.set(name, state.Resource);
    router.assertRoutable(state.Resource, name);
    const resource = state.Resource;
    taskResourceLocalHandlers[name] = async (params) =>
      (await router.handle(name, resource, params as AnyParams)) as EngineJson;
  }

  const executionName = (options.context?.Execution?.Name as string | undefined) ?? randomUUID();
  const context = {
    // `$$.Task.Token` exists locally only when given (one token per execution here).
    Task: { Token: `token-${executionName}` },
    ...options.context,
    Execution: {
      Id: `arn:aws:states:us-east-1:123456789012:execution:local:${executionName}`,
      Name: executionName,
      ...options.context?.Execution,
    },
  };

  const execution = getMachine(definition).run(input as never, {
    overrides: { taskResourceLocalHandlers, waitTimeOverrides, retryIntervalOverrides },
    context,
  });
  const events: ExecutionEvent[] = [];
  const draining = (async () => {
    for await (const ev of execution.eventLogs) {
      events.push(ev as unknown as ExecutionEvent);
      options.onEvent?.(ev as unknown as ExecutionEvent);
    }
  })();
  let aborted = false;
  const onAbort = () => {
    aborted = true;
    execution.abort();
  };
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });

  let result: RunResult;
  try {
    const output = await execution.result;
    result = { status: 'SUCCEEDED', output, events, transitions: 0, router };
  } catch (e) {
    const inner = (e as { cause?: unknown }).cause;
    result = {
      status: aborted ? 'ABORTED' : 'FAILED',
      error: inner instanceof Error ? inner.name : errorName(e),
      cause: inner instanceof Error ? inner.message : String(e),
      events,
      transitions: 0,
      router,
    };
  }
  options.signal?.removeEventListener('abort', onAbort);
  await draining;
  result.transitions = events.filter((ev) => ev.type === 'StateEntered' || ev.type === 'StateRetried').length;
  return result;
}
