import { callbackFor, completeRun } from './dbt-callback';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { StateMachineDefinition } from '../../state-machines/asl';
import { matchesPattern, type EventPattern } from '../../events/pattern';
import { EXECUTION_ALREADY_EXISTS } from '../../state-machines/intermediate';
import type { ProgramRun } from './program';
import { ACCOUNT_ID } from './pulumi-mocks';
import { startDynalite, type LocalDynamo } from './dynalite';
import { startFakeDbtApi, type FakeDbtApi } from './fake-dbt-api';
import {
  runWorkflow,
  StatesError,
  type GlueJobRunOutcome,
  type LambdaHandler,
  type RunResult,
} from './sfn-local';

/**
 * A local stand-in for one region of the platform, built from what the REAL program declares under
 * mocks: the recorded state machine definitions, rule patterns and targets, schedules and Lambda
 * environments. Workflows run in aws-local-stepfunctions with the real handlers against dynalite and
 * the fake dbt API. Events a workflow publishes go to the bus after the execution ends and are
 * delivered to every ENABLED rule whose recorded pattern matches (events/pattern.ts).
 *
 * Every delivery carries a `path` (the services the trigger crossed), so "hops from upstream
 * success to downstream start" is counted, not typed in.
 */

// ------------------------------------------------------------------ extraction

export interface RecordedMachine {
  readonly name: string;
  readonly arn: string;
  readonly definition: StateMachineDefinition;
}
export interface RecordedTarget {
  readonly arn: string;
  readonly roleArn?: string;
  readonly retryPolicy?: { maximumRetryAttempts: number; maximumEventAgeInSeconds: number };
  readonly deadLetterConfig?: { arn: string };
}
export interface RecordedRule {
  readonly name: string;
  readonly arn: string;
  readonly busName: string;
  readonly pattern: EventPattern;
  readonly state: string;
  readonly targets: RecordedTarget[];
}
export interface RecordedSchedule {
  readonly name: string;
  readonly state: string;
  readonly expression: string;
  readonly target: {
    arn: string;
    roleArn: string;
    input: string;
    retryPolicy?: unknown;
    deadLetterConfig?: { arn: string };
  };
}
export interface RecordedFunction {
  readonly name: string;
  readonly arn: string;
  readonly env: Record<string, string>;
}
export interface ExtractedPlatform {
  readonly region: string;
  readonly machines: RecordedMachine[];
  readonly rules: RecordedRule[];
  readonly schedules: RecordedSchedule[];
  readonly functions: RecordedFunction[];
  machine(name: string): RecordedMachine;
  rule(name: string): RecordedRule;
}

export function extractPlatform(run: ProgramRun): ExtractedPlatform {
  if (run.error) throw run.error;
  const region = run.outputs.failover.region as string;
  const machines = run.ofType('aws:sfn/stateMachine:StateMachine').map((r) => ({
    name: r.state.name as string,
    arn: r.state.arn as string,
    definition: JSON.parse(r.inputs.definition as string) as StateMachineDefinition,
  }));
  const targets = run.ofType('aws:cloudwatch/eventTarget:EventTarget');
  const rules = run.ofType('aws:cloudwatch/eventRule:EventRule').map((r) => ({
    name: r.state.name as string,
    arn: r.state.arn as string,
    busName: r.inputs.eventBusName as string,
    pattern: JSON.parse(r.inputs.eventPattern as string) as EventPattern,
    state: r.inputs.state as string,
    targets: targets
      .filter((t) => t.inputs.rule === r.state.name && t.inputs.eventBusName === r.inputs.eventBusName)
      .map((t) => t.inputs as RecordedTarget),
  }));
  const schedules = run.ofType('aws:scheduler/schedule:Schedule').map((s) => ({
    name: s.inputs.name as string,
    state: s.inputs.state as string,
    expression: s.inputs.scheduleExpression as string,
    target: s.inputs.target as RecordedSchedule['target'],
  }));
  const functions = run.ofType('aws:lambda/function:Function').map((f) => ({
    name: f.state.name as string,
    arn: f.state.arn as string,
    env: (f.inputs.environment?.variables ?? {}) as Record<string, string>,
  }));
  const find = <T extends { name: string }>(list: T[], kind: string, name: string): T => {
    const found = list.find((x) => x.name === name);
    if (!found) throw new Error(`no ${kind} named ${name}; have ${list.map((x) => x.name).join(', ')}`);
    return found;
  };
  return {
    region,
    machines,
    rules,
    schedules,
    functions,
    machine: (name) => find(machines, 'state machine', name),
    rule: (name) => find(rules, 'rule', name),
  };
}

/** Ticks per day of a `rate(N minutes|hours)` or a `cron(...)` that fires every N minutes. */
export function ticksPerDay(expression: string): number {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression);
  if (!rate) throw new Error(`ticksPerDay: only rate() expressions are supported, got ${expression}`);
  const n = Number(rate[1]);
  const minutes = rate[2].startsWith('minute') ? n : rate[2].startsWith('hour') ? n * 60 : n * 1440;
  return Math.floor(1440 / minutes);
}

// ------------------------------------------------------------------ EventBridge envelope

export interface PutEventsEntry {
  Source: string;
  DetailType: string;
  Detail: unknown;
  EventBusName?: string;
  Resources?: string[];
}

/** What EventBridge delivers for one PutEvents entry (Step Functions adds execution + machine ARNs). */
export function envelope(
  entry: PutEventsEntry,
  opts: { id: string; region: string; time: string; resources?: string[] },
) {
  return {
    version: '0',
    id: opts.id,
    'detail-type': entry.DetailType,
    source: entry.Source,
    account: ACCOUNT_ID,
    time: opts.time,
    region: opts.region,
    resources: opts.resources ?? entry.Resources ?? [],
    detail: typeof entry.Detail === 'string' ? JSON.parse(entry.Detail) : entry.Detail,
  };
}

// ------------------------------------------------------------------ upstream stand-ins (Glue + S3)

/** Glue succeeds for every table and writes the job's result object where the upstream reads it (glue/README.md). */
export function lakeWorld(rows = 10) {
  const objects = new Map<string, unknown>();
  let runs = 0;
  const glue = (params: Record<string, unknown>): GlueJobRunOutcome => {
    const args = params.Arguments as Record<string, string>;
    const table = args['--table'];
    const pipeline = args['--pipeline'];
    const batchId = args['--batch_id'];
    const cda = String(params.JobName).endsWith('cda-to-lake');
    const id = `jr_${cda ? 'cda' : 'sf'}_${table}_${++runs}`;
    const lakePath = `s3://${args['--lake_bucket']}/raw/${pipeline}/${table}/batch_id=${batchId}/`;
    const base = {
      schemaVersion: 1,
      pipeline,
      batchId,
      table,
      status: 'SUCCEEDED',
      rows,
      lakePath,
      glueRunId: id,
      startedAt: '2026-11-27T07:01:00Z',
      completedAt: '2026-11-27T07:04:00Z',
    };
    const prefix = `_runs/${pipeline}/${batchId}/`;
    if (cda) {
      objects.set(`${prefix}${table}.json`, {
        ...base,
        job: 'cda_to_lake',
        previousWatermark: args['--watermark'],
        watermark: '1700000003000',
        folders: [],
        manifestLastSuccessfulWriteTimestamp: '1700000003000',
        manifestTotalProcessedRecordsCount: 1000,
      });
    } else {
      objects.set(`${prefix}snowflake/${table}.json`, {
        ...base,
        job: 'lake_to_snowflake',
        target: `BASE.${table.toUpperCase()}`,
        stageTable: `BASE.${table.toUpperCase()}__STG`,
        upstreamRows: rows,
        completedAt: '2026-11-27T07:06:00Z',
      });
    }
    return { JobRunState: 'SUCCEEDED', Id: id, ExecutionTime: 60 };
  };
  const s3 = (action: string, params: Record<string, unknown>) => {
    if (action !== 'getObject') throw new StatesError('S3.UnsupportedOperation', action);
    const body = objects.get(String(params.Key));
    if (body === undefined)
      throw new StatesError('S3.NoSuchKeyException', `no such key ${String(params.Key)}`);
    return { Body: JSON.stringify(body), ContentType: 'application/json' };
  };
  return { glue, s3, objects };
}

// ------------------------------------------------------------------ the local region

export interface ExecutionRecord {
  readonly machine: string;
  readonly name: string;
  readonly path: readonly string[];
  result?: RunResult;
}

type Handlers = {
  batchContext: LambdaHandler;
  checkConsistency: LambdaHandler;
  startDbtRun: LambdaHandler;
  getDbtRun: LambdaHandler;
  startDownstream: (event: unknown) => Promise<unknown>;
  setSfnClient: (c: {
    send(command: StartExecutionCommand): Promise<{ executionArn?: string; startDate?: Date }>;
  }) => unknown;
};

const HANDLER_BY_FUNCTION: Array<[RegExp, keyof Handlers]> = [
  [/^etl-batch-context$/, 'batchContext'],
  [/^etl-check-consistency$/, 'checkConsistency'],
  [/^etl-start-dbt-run$/, 'startDbtRun'],
  [/^etl-get-dbt-run$/, 'getDbtRun'],
  [/^etl-start-ds-/, 'startDownstream'],
];

export class LocalRegion {
  readonly executions: ExecutionRecord[] = [];
  readonly lambdaCalls: Array<{ fn: string; path: readonly string[] }> = [];
  readonly published: Array<{ by: string; event: ReturnType<typeof envelope> }> = [];
  readonly forwarded: Array<{ rule: string; event: unknown }> = [];
  readonly scheduleInvocations: string[] = [];
  private readonly names = new Map<string, { input: string; done: boolean; arn: string }>();
  private pending = new Set<Promise<unknown>>();
  private eventSeq = 0;
  private execSeq = 0;
  private savedEnv: Record<string, string | undefined> = {};
  private previousSfn: unknown;
  readonly world = lakeWorld();

  private constructor(
    readonly platform: ExtractedPlatform,
    readonly db: LocalDynamo,
    readonly api: FakeDbtApi,
    private readonly h: Handlers,
  ) {}

  /** Starts dynalite and the fake dbt API, points the real handlers at them, seeds the fence. */
  static async start(platform: ExtractedPlatform, opts: { fenceRegion?: string } = {}): Promise<LocalRegion> {
    const db = await startDynalite();
    const api = await startFakeDbtApi();
    const env: Record<string, string> = {
      CONTROL_TABLE_NAME: db.tableName,
      DBT_API_URL: api.url,
      DBT_API_TOKEN: api.token,
      DBT_API_TIMEOUT_MS: '2000',
      AWS_ENDPOINT_URL_DYNAMODB: db.endpoint,
      AWS_REGION: platform.region,
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'x',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true', // EMF lines stay out of test and tool output
    };
    const saved: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    // Loaded after the environment is set, as Lambda would.
    const { logger } = require('../../handlers/lib/logger') as typeof import('../../handlers/lib/logger');
    logger.setLogLevel('SILENT');
    const cc =
      require('../../handlers/check-consistency') as typeof import('../../handlers/check-consistency');
    cc.setDocumentClient(DynamoDBDocumentClient.from(new DynamoDBClient({})));
    const sd = require('../../handlers/start-downstream') as typeof import('../../handlers/start-downstream');
    const h: Handlers = {
      batchContext: (p) =>
        (require('../../handlers/batch-context') as typeof import('../../handlers/batch-context')).handler(
          p as never,
        ),
      checkConsistency: (p) => cc.handler(p),
      startDbtRun: (p) =>
        (require('../../handlers/start-dbt-run') as typeof import('../../handlers/start-dbt-run')).handler(p),
      getDbtRun: (p) =>
        (require('../../handlers/get-dbt-run') as typeof import('../../handlers/get-dbt-run')).handler(p),
      startDownstream: (e) => sd.handler(e),
      setSfnClient: (c) => sd.setSfnClient(c),
    };
    const region = new LocalRegion(platform, db, api, h);
    region.savedEnv = saved;
    region.previousSfn = h.setSfnClient({ send: (command) => region.startFromSdk(command) });
    await db.client.send(
      new PutItemCommand({
        TableName: db.tableName,
        Item: {
          pk: { S: 'FENCE' },
          sk: { S: 'ACTIVE' },
          activeRegion: { S: opts.fenceRegion ?? platform.region },
          epoch: { N: '1' },
          changedAt: { S: '2026-11-01T00:00:00Z' },
          changedBy: { S: 'local' },
        },
      }),
    );
    return region;
  }

  async close(): Promise<void> {
    await this.settle();
    this.h.setSfnClient(this.previousSfn as never);
    for (const [k, v] of Object.entries(this.savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await this.api.close();
    await this.db.close();
  }

  /** Waits until every fire-and-forget execution (and what its events started) has ended. */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return p;
  }

  private functionByArn(arn: string): RecordedFunction {
    const fn = this.platform.functions.find((f) => f.arn === arn || f.name === arn);
    if (!fn) throw new Error(`LocalRegion: no function ${arn}`);
    return fn;
  }

  private async invokeLambda(arn: string, payload: unknown, path: readonly string[]): Promise<unknown> {
    const fn = this.functionByArn(arn);
    const key = HANDLER_BY_FUNCTION.find(([re]) => re.test(fn.name))?.[1];
    if (!key) throw new Error(`LocalRegion: no handler for function ${fn.name}`);
    this.lambdaCalls.push({ fn: fn.name, path });
    if (key === 'startDownstream') {
      const saved: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(fn.env)) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
      this.currentPath = path;
      try {
        return await this.h.startDownstream(payload);
      } finally {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    }
    return (this.h[key] as LambdaHandler)(payload, fn.name);
  }

  private currentPath: readonly string[] = [];

  /** The Lambda's SFNClient: StartExecution as the SDK reports it (error name ExecutionAlreadyExists). */
  private async startFromSdk(
    command: StartExecutionCommand,
  ): Promise<{ executionArn?: string; startDate?: Date }> {
    const { stateMachineArn, name, input } = command.input;
    try {
      const arn = this.start(
        String(stateMachineArn),
        JSON.parse(input ?? '{}'),
        [...this.currentPath, 'Lambda → StartExecution'],
        { name, rawInput: input },
      );
      return { executionArn: arn, startDate: new Date('2026-11-27T07:10:00Z') };
    } catch (e) {
      if (e instanceof StatesError && e.name === EXECUTION_ALREADY_EXISTS) {
        const err = new Error(e.message);
        err.name = 'ExecutionAlreadyExists';
        throw err;
      }
      throw e;
    }
  }

  /**
   * StartExecution: a Standard workflow's name is unique per machine; the same name with the same
   * input while it runs returns the same execution, otherwise ExecutionAlreadyExists.
   * Fire and forget: returns the execution ARN; the run is tracked until `settle()`.
   */
  start(
    machineArn: string,
    input: unknown,
    path: readonly string[],
    opts: { name?: string; rawInput?: string } = {},
  ): string {
    const { arn, promise } = this.begin(machineArn, input, path, opts);
    void promise;
    return arn;
  }

  /** StartExecution.sync:2: runs the child to its end; a failed child is States.TaskFailed. */
  async startSync(
    machineArn: string,
    input: unknown,
    path: readonly string[],
    name?: string,
  ): Promise<unknown> {
    const { arn, promise } = this.begin(machineArn, input, path, { name });
    const res = await promise;
    const described = { ExecutionArn: arn, Status: res.status, Input: input, Output: res.output };
    if (res.status !== 'SUCCEEDED') {
      throw new StatesError(
        'States.TaskFailed',
        JSON.stringify({ ...described, Error: res.error, Cause: res.cause }),
      );
    }
    return described;
  }

  private begin(
    machineArn: string,
    input: unknown,
    path: readonly string[],
    opts: { name?: string; rawInput?: string },
  ) {
    const machine = this.platform.machines.find((m) => m.arn === machineArn);
    if (!machine) throw new Error(`LocalRegion: no state machine ${machineArn}`);
    const name = opts.name ?? `exec-${String(++this.execSeq).padStart(4, '0')}`;
    const key = `${machine.arn}|${name}`;
    const raw = opts.rawInput ?? JSON.stringify(input);
    const arn = machine.arn.replace(':stateMachine:', ':execution:') + `:${name}`;
    const prior = this.names.get(key);
    if (prior) {
      if (!prior.done && prior.input === raw)
        return { arn: prior.arn, promise: Promise.resolve({ status: 'SUCCEEDED' } as RunResult) };
      throw new StatesError(EXECUTION_ALREADY_EXISTS, `Execution Already Exists: '${arn}'`);
    }
    const entry = { input: raw, done: false, arn };
    this.names.set(key, entry);
    const record: ExecutionRecord = { machine: machine.name, name, path };
    this.executions.push(record);
    const promise = this.track(
      (async () => {
        const res = await runWorkflow(machine.definition, input, {
          handlers: this.handlersFor(machine, path),
          context: { Execution: { Name: name, Id: arn } },
        });
        entry.done = true;
        record.result = res;
        const time = '2026-11-27T07:10:00Z';
        for (const e of res.router.putEvents) {
          const event = envelope(e as unknown as PutEventsEntry, {
            id: `evt-${String(++this.eventSeq).padStart(4, '0')}`,
            region: this.platform.region,
            time,
            resources: [arn, machine.arn],
          });
          this.published.push({ by: machine.name, event });
          this.deliver(event, [...path]);
        }
        return res;
      })(),
    );
    return { arn, promise };
  }

  private handlersFor(machine: RecordedMachine, path: readonly string[]) {
    return {
      dynamodb: this.db.client,
      lambda: (payload: unknown, fn: string) => this.invokeLambda(fn, payload, path),
      // StartDbtRun waits for the app's callback: start via the real handler, then the run's end.
      taskToken: async (payload: unknown, fn: string) => {
        const started = (await this.invokeLambda(fn, payload, path)) as { runId: string };
        return callbackFor(await completeRun(this.api, started.runId));
      },
      glue: this.world.glue,
      s3: this.world.s3,
      states: (resource: string, params: Record<string, unknown>) => {
        const target = String(params.StateMachineArn);
        const step = `${machine.name} → ${resource.split(':::')[1]}`;
        const input = typeof params.Input === 'string' ? JSON.parse(params.Input) : params.Input;
        const name = params.Name === undefined ? undefined : String(params.Name);
        if (resource.endsWith('.sync:2') || resource.endsWith('.sync'))
          return this.startSync(target, input, [...path, step], name);
        const arn = this.start(target, input, [...path, step], { name });
        return { ExecutionArn: arn, StartDate: '2026-11-27T07:10:00Z' };
      },
    };
  }

  /** EventBridge: every ENABLED rule whose pattern matches gets the event (rule targets are async). */
  deliver(event: unknown, path: readonly string[]): void {
    for (const rule of this.platform.rules) {
      if (rule.state !== 'ENABLED' || !matchesPattern(rule.pattern, event)) continue;
      for (const target of rule.targets) {
        const step = `EventBridge rule ${rule.name}`;
        if (target.arn.includes(':states:')) {
          this.start(target.arn, event, [...path, `${step} → Step Functions`]);
        } else if (target.arn.includes(':lambda:')) {
          this.track(this.invokeLambda(target.arn, event, [...path, `${step} → Lambda (async)`]));
        } else if (target.arn.includes(':event-bus/')) {
          this.forwarded.push({ rule: rule.name, event });
        } else {
          throw new Error(`LocalRegion: unsupported target ${target.arn}`);
        }
      }
    }
  }

  /** One Scheduler invocation of a schedule: starts its workflow with the schedule's input. */
  tick(scheduleName: string): string {
    const schedule = this.platform.schedules.find((s) => s.name === scheduleName);
    if (!schedule) throw new Error(`LocalRegion: no schedule ${scheduleName}`);
    this.scheduleInvocations.push(scheduleName);
    return this.start(schedule.target.arn, JSON.parse(schedule.target.input), [
      `Scheduler ${scheduleName} → Step Functions`,
    ]);
  }

  /** Runs the upstream of `pipeline` for one scheduled time, as its schedule would. */
  runUpstream(pipeline: string, scheduledTime: string): string {
    const machine = this.platform.machine(`etl-${pipeline}-upstream`);
    this.scheduleInvocations.push(`${pipeline}-upstream`);
    return this.start(machine.arn, { pipeline, scheduledTime }, []);
  }
}
