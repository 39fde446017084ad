// The polyfill must load before aws-local-stepfunctions (imported by sfn-local).
import { Mutex } from '../local/mutex';
import '../local/promise-polyfill';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import type { StateMachineDefinition, TaskState } from '../state-machines/asl';
import { ROOT } from '../local/program';
import { upstreamEvent } from '../local/fixtures/malformed-events';
import { runWorkflow, StatesError, type RunResult, type ServiceHandlers } from '../local/sfn-local';
import { ReplicatedDynamo } from '../local/replicated-dynamo';
import { LocalWarehouse, type BuildRow } from '../local/warehouse';
import { TaskTokenEndpoint, waitForTaskToken } from '../local/sfn-callbacks';
import { DbtPods, LocalSecrets } from '../local/dbt-pods';
import { extractStack, type StackModel } from '../local/extract';
import { controlTableInput } from '../local/table-schemas';
import {
  batchSk,
  DOWNSTREAM_WATERMARK_SK,
  FENCE_KEY,
  lockSk,
  pipelinePk,
  tableSk,
} from '../contracts/control-table';
import { DBT_APP_ENV, HANDLER_ENV } from '../contracts/env';
import { ERROR_NAMES } from '../contracts/errors';

/**
 * The exactly-once world (issue I, "Twin and tests"): production's shape, locally.
 * - each region its own DynamoDB replica (local/replicated-dynamo: async last-writer-wins, lag,
 *   partition, heal); the dbt app's runs table is regional (not replicated);
 * - per region N real dbt app pods (gunicorn, the Deployment's rendered env) behind a round-robin
 *   proxy; their callbacks go to a local Step Functions endpoint that ends the waitForTaskToken;
 * - ONE warehouse (fakesnow) for both regions, with CONTROL.FENCE and CONTROL.BUILDS; dbt is the
 *   stand-in (dbt-app/local_warehouse/dbt_standin.py) that does dbt's part of the contract there;
 * - the downstream definitions and Lambda environments the program deploys (local/extract.ts), run
 *   by aws-local-stepfunctions with the real handlers.
 * Assertions read the warehouse's CONTROL.BUILDS and the app's run records, never the workflow.
 */

export const REGIONS = ['us-east-1', 'us-west-1'] as const;
export type RegionName = (typeof REGIONS)[number];

/**
 * Timing for tests. Step Functions' HeartbeatSeconds/TimeoutSeconds are scaled by `msPerSecond`
 * (300 s → 3 s); the app's overrides keep its own heartbeats well inside that.
 */
export const APP_TIMING: Readonly<Record<string, string>> = {
  // the worker renews the run's heartbeatAt (and the pipeline lock's lease) this often
  [DBT_APP_ENV.RUN_HEARTBEAT_SECONDS]: '0.3',
  // a RUNNING record without a heartbeat for this long is LOST (a killed pod); 13 missed renewals,
  // so a pod starved of CPU on a loaded test machine is not declared LOST
  [DBT_APP_ENV.RUN_LOST_AFTER_SECONDS]: '4',
  // SendTaskHeartbeat interval; far below the scaled HeartbeatSeconds (300 s × 10 ms = 3 s)
  [DBT_APP_ENV.TASK_HEARTBEAT_SECONDS]: '0.5',
  // an idle worker looks for QUEUED runs of other pods this often
  [DBT_APP_ENV.QUEUE_POLL_SECONDS]: '0.3',
  // after SIGTERM, how long an in-flight run may finish
  [DBT_APP_ENV.SHUTDOWN_GRACE_SECONDS]: '3',
  // a dbt process is killed after this long
  [DBT_APP_ENV.DBT_RUN_TIMEOUT_SECONDS]: '120',
};

export interface Alert {
  region: string;
  subject: string;
  message: string;
  /** Wall ms when it was published. */
  at?: number;
}

export interface WorldOptions {
  /** Pods per region. @default 2 */
  readonly pods?: number;
  /** Step Functions seconds → wall ms. @default 10 */
  readonly msPerSecond?: number;
  /** Wait states, in wall ms. @default 300 */
  readonly waitMs?: number;
  /** Per Wait state, its wall ms (overrides `waitMs`). @default { WaitForLock: 1000, WaitForReplication: 500 } */
  readonly waitMsByState?: Readonly<Record<string, number>>;
  /** The app's timing env (merged over APP_TIMING), e.g. heartbeats scaled to `msPerSecond`. @default APP_TIMING */
  readonly appTiming?: Readonly<Record<string, string>>;
  /**
   * Builds through the stand-in's fork server (dbt-app/local_warehouse/standin_zygote.py): the same
   * stand-in, without importing the Snowflake connector per build. @default false
   */
  readonly forkedStandin?: boolean;
}

interface RegionWorld {
  name: RegionName;
  model: StackModel;
  doc: DynamoDBDocumentClient;
  callbacks: TaskTokenEndpoint;
  pods: DbtPods;
}

/** A one-shot fault the next matching handler call suffers (`batchId`: only that batch's calls). */
export type Fault =
  | { kind: 'lose-start-reply'; region: RegionName; times: number; batchId?: string }
  /** StartDbtRun's POST answers 5xx before it reaches the app (the proxy's 503): DbtApiUnavailable. */
  | { kind: 'start-5xx'; region: RegionName; times: number; batchId?: string }
  /** A Lambda invoke is throttled by the Lambda service (Lambda.TooManyRequestsException). */
  | { kind: 'lambda-throttle'; region: RegionName; times: number }
  /** The app's SendTaskSuccess/SendTaskFailure for this batch is answered but never reaches the workflow. */
  | { kind: 'lose-callback'; region: RegionName; batchId: string; times: number }
  /** Runs `action` before the named execution's lock release (DeleteItem of LOCK#DOWNSTREAM) reaches the replica. */
  | { kind: 'before-lock-release'; region: RegionName; execution: string; action: () => Promise<void> };

export class ExactlyOnceWorld {
  readonly alerts: Alert[] = [];
  readonly tokens: string[] = [];
  readonly faults: Fault[] = [];
  readonly regions = new Map<RegionName, RegionWorld>();
  /** The batch each minted task token belongs to (for faults aimed at one batch's callback). */
  private readonly tokenBatch = new Map<string, string>();
  private readonly mutex = new Mutex();
  private readonly clients: DynamoDBClient[] = [];
  private epoch = 0;

  private constructor(
    readonly db: ReplicatedDynamo,
    readonly warehouse: LocalWarehouse,
    readonly secrets: LocalSecrets,
    readonly options: Required<WorldOptions>,
    readonly workDir: string,
  ) {}

  static async start(options: WorldOptions = {}): Promise<ExactlyOnceWorld> {
    process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
    process.env[HANDLER_ENV.POWERTOOLS_METRICS_DISABLED] ??= 'true';
    const opts = {
      pods: options.pods ?? 2,
      msPerSecond: options.msPerSecond ?? 10,
      waitMs: options.waitMs ?? 300,
      waitMsByState: options.waitMsByState ?? { WaitForLock: 1000, WaitForReplication: 500 },
      appTiming: { ...APP_TIMING, ...options.appTiming },
      forkedStandin: options.forkedStandin ?? false,
    };
    const [models, warehouse] = await Promise.all([
      Promise.all(
        REGIONS.map((r) =>
          extractStack({ stack: r === 'us-east-1' ? 'prod-east' : 'prod-west', activeRegion: 'us-east-1' }),
        ),
      ),
      LocalWarehouse.start(ROOT),
    ]);
    const east = models[0];
    const controlTable = controlTableInput(east.controlTableName);
    const runsTable = east.dbtApp.runsTable;
    const db = await ReplicatedDynamo.start({
      regions: [...REGIONS],
      tables: [controlTable, runsTable],
      regionalTables: [runsTable.TableName as string],
      lag: 0,
    });
    // The Snowflake secret as the program writes it, pointed at the local warehouse (host/port/protocol are
    // the keys credentials.py accepts for a stand-in; ETL is the local warehouse's database).
    const secret = {
      ...JSON.parse(east.dbtApp.snowflakeSecret ?? '{}'),
      host: '127.0.0.1',
      port: warehouse.port,
      protocol: 'http',
      database: 'ETL',
    };
    const secrets = await LocalSecrets.start({
      [east.dbtApp.env[DBT_APP_ENV.SNOWFLAKE_SECRET_ID]]: JSON.stringify(secret),
    });
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'exactly-once-'));
    const world = new ExactlyOnceWorld(db, warehouse, secrets, opts, workDir);
    try {
      await Promise.all(
        REGIONS.map(async (name, i) => {
          const client = new DynamoDBClient(db.clientConfig(name));
          world.clients.push(client);
          const dbtBin = opts.forkedStandin ? await world.startStandinServer(name) : undefined;
          const callbacks = await TaskTokenEndpoint.start();
          callbacks.intercept = (op, token) => world.loseCallback(name, op, token);
          const pods = await DbtPods.start({
            root: ROOT,
            region: name,
            replicas: opts.pods,
            deploymentEnv: models[i].dbtApp.env,
            endpoints: {
              dynamodb: db.endpoint(name),
              secretsManager: secrets.endpoint,
              sfn: callbacks.endpoint,
            },
            overrides: opts.appTiming,
            workDir,
            ...(dbtBin ? { dbtBin } : {}),
          });
          world.regions.set(name, {
            name,
            model: models[i],
            doc: DynamoDBDocumentClient.from(client),
            callbacks,
            pods,
          });
        }),
      );
    } catch (e) {
      await world.stop();
      throw e;
    }
    return world;
  }

  private readonly standinServers: ChildProcess[] = [];

  /** The region's stand-in fork server, listening in its project dir; returns the DBT_BIN that uses it. */
  private async startStandinServer(region: RegionName): Promise<string> {
    const projectDir = path.join(this.workDir, `${region}-project`); // DbtPods' project dir
    fs.mkdirSync(projectDir, { recursive: true });
    const proc = spawn(
      path.join(ROOT, '.venv', 'bin', 'python'),
      ['-m', 'local_warehouse.standin_zygote', path.join(projectDir, 'standin.sock')],
      { cwd: path.join(ROOT, 'dbt-app'), stdio: ['ignore', 'pipe', 'inherit'] },
    );
    this.standinServers.push(proc);
    await new Promise<void>((resolve, reject) => {
      proc.once('exit', (code) => reject(new Error(`the stand-in fork server exited (${code}) at start`)));
      proc.stdout!.once('data', () => resolve());
    });
    return path.join(ROOT, 'dbt-app', 'local_warehouse', 'standin_client.py');
  }

  region(name: RegionName): RegionWorld {
    return this.regions.get(name)!;
  }

  get controlTable(): string {
    return this.region('us-east-1').model.controlTableName;
  }

  get runsTable(): string {
    return this.region('us-east-1').model.dbtApp.env[DBT_APP_ENV.DBT_RUNS_TABLE];
  }

  /** Build durations and failures of the dbt stand-in (its standin.json in each region's project dir). */
  configureDbt(config: {
    seconds?: number;
    batches?: Record<string, { seconds?: number; fail?: boolean }>;
  }): void {
    for (const r of this.regions.values())
      fs.writeFileSync(path.join(r.pods.projectDir, 'standin.json'), JSON.stringify(config));
  }

  // ------------------------------------------------------------------ control plane

  /**
   * Failover as the runbook orders it: the warehouse fence first, then the DynamoDB fence (written
   * in `writeIn`'s replica, as that stack's fence writer does). Returns the new epoch.
   */
  async moveFence(activeRegion: RegionName, writeIn: RegionName = activeRegion): Promise<number> {
    const epoch = ++this.epoch;
    await this.warehouse.setFence(activeRegion, epoch);
    await this.region(writeIn).doc.send(
      new PutCommand({
        TableName: this.controlTable,
        Item: {
          ...FENCE_KEY,
          activeRegion,
          epoch,
          changedAt: new Date().toISOString(),
          changedBy: `prod-${writeIn === 'us-east-1' ? 'east' : 'west'}`,
        },
      }),
    );
    return epoch;
  }

  /** The upstream's records of a batch (what the upstream workflow writes), in `region`'s replica. */
  async seedUpstream(region: RegionName, pipeline: string, batchId: string): Promise<void> {
    const model = this.region(region).model;
    const tables = expectedTables(model, pipeline);
    const doc = this.region(region).doc;
    const pk = pipelinePk(pipeline);
    await doc.send(
      new PutCommand({
        TableName: this.controlTable,
        Item: { pk, sk: batchSk(batchId, 'UPSTREAM'), pipeline, batchId, status: 'SUCCEEDED', region },
      }),
    );
    for (const table of tables) {
      await doc.send(
        new PutCommand({
          TableName: this.controlTable,
          Item: {
            pk,
            sk: tableSk(batchId, table),
            pipeline,
            batchId,
            table,
            status: 'SUCCEEDED',
            rows: 42,
          },
        }),
      );
    }
  }

  async item(region: RegionName, pk: string, sk: string): Promise<Record<string, any> | undefined> {
    return (
      await this.region(region).doc.send(
        new GetCommand({ TableName: this.controlTable, Key: { pk, sk }, ConsistentRead: true }),
      )
    ).Item;
  }

  downstreamRecord(region: RegionName, pipeline: string, batchId: string) {
    return this.item(region, pipelinePk(pipeline), batchSk(batchId, 'DOWNSTREAM'));
  }

  watermark(region: RegionName, pipeline: string) {
    return this.item(region, pipelinePk(pipeline), DOWNSTREAM_WATERMARK_SK);
  }

  /** The app's own run records in a region (its regional runs table), for one batch. */
  async appRuns(region: RegionName, batchId: string): Promise<Record<string, any>[]> {
    const out = await this.region(region).doc.send(
      new QueryCommand({
        TableName: this.runsTable,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': `RUN#${batchId}` },
        ConsistentRead: true,
      }),
    );
    return out.Items ?? [];
  }

  /** Empties both replicas' control tables (deletes replicate) and the runs tables. */
  async reset(): Promise<void> {
    this.alerts.length = 0;
    this.faults.length = 0;
    await this.db.heal();
    this.db.setLag(0);
    for (const r of this.regions.values()) {
      for (const table of [this.controlTable, this.runsTable]) {
        const { Items = [] } = await r.doc.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
        for (const it of Items)
          await r.doc.send(new DeleteCommand({ TableName: table, Key: { pk: it.pk, sk: it.sk } }));
      }
    }
    await this.db.quiesce();
  }

  // ------------------------------------------------------------------ executions

  /** The UpstreamBatchSucceeded event as `region`'s bus delivers it. */
  event(region: RegionName, pipeline: string, batchId: string): Record<string, unknown> {
    const model = this.region(region).model;
    return upstreamEvent({ pipeline }, { source: model.eventSource, region }, batchId);
  }

  /** Runs `pipeline`'s downstream workflow in `region` with `input`, to its end. */
  async runDownstream(
    region: RegionName,
    pipeline: string,
    input: unknown,
    name: string = randomUUID(),
  ): Promise<RunResult> {
    const r = this.region(region);
    const sm = r.model.stateMachines.find((m) => m.name === `etl-${pipeline}-downstream`);
    if (!sm) throw new Error(`no downstream workflow for ${pipeline} in ${region}`);
    return runWorkflow(sm.definition, input, {
      handlers: this.handlers(r, sm.definition),
      waitMs: this.options.waitMs,
      // The lock wait adds up virtual seconds (30 s doubling to 300 s, up to lockWaitMinutes): ~15 rounds.
      // 1 s each (the default) leaves a waiting batch ~15 s of wall time, ample for the builds here.
      waitMsByState: this.options.waitMsByState,
      context: {
        Execution: { Id: `arn:aws:states:${region}:123456789012:execution:${sm.name}:${name}`, Name: name },
        Task: { Token: `${region}:${name}` },
      },
    });
  }

  private handlers(r: RegionWorld, definition: StateMachineDefinition): ServiceHandlers {
    const start = definition.States.StartDbtRun as TaskState;
    const fnOf = (arnOrName: string) => {
      const fn = r.model.functions.find((f) => f.arn === arnOrName || f.name === arnOrName);
      if (!fn) throw new StatesError('Lambda.ResourceNotFoundException', `Function not found: ${arnOrName}`);
      return fn;
    };
    const invoke = (fnName: string, payload: unknown) => this.invoke(r, fnOf(fnName), payload);
    const startFn = String((start.Parameters as { FunctionName: string }).FunctionName);
    return {
      dynamodb: this.faultyDynamo(r) as unknown as DynamoDBClient,
      lambda: (payload, fnName) => {
        if (this.takeFault('lambda-throttle', r.name))
          throw new StatesError('Lambda.TooManyRequestsException', 'Rate Exceeded. (injected)');
        return invoke(fnName, payload);
      },
      taskToken: waitForTaskToken({
        endpoint: r.callbacks,
        heartbeatMs: (start.HeartbeatSeconds ?? 300) * this.options.msPerSecond,
        timeoutMs: (start.TimeoutSeconds ?? 86_400) * this.options.msPerSecond,
        onToken: (token, payload) => {
          this.tokens.push(token);
          this.tokenBatch.set(token, String(payload.batchId));
        },
        start: async (payload) => {
          const batchId = String(payload.batchId);
          if (this.takeFault('start-5xx', r.name, batchId))
            throw new StatesError(
              ERROR_NAMES.DbtApiUnavailable,
              'POST /api/v1/runs answered 503 (injected): not started',
            );
          const out = await invoke(startFn, payload);
          if (this.takeFault('lose-start-reply', r.name, batchId)) {
            throw new StatesError(
              ERROR_NAMES.DbtApiUnavailable,
              'the reply to POST /api/v1/runs was lost (injected): the run may exist',
            );
          }
          return out;
        },
      }),
      sns: (params) => {
        this.alerts.push({
          region: r.name,
          subject: String(params.Subject ?? ''),
          message: String(params.Message ?? ''),
          at: Date.now(),
        });
      },
      events: (entries) => ({ Entries: entries.map(() => ({ EventId: randomUUID() })), FailedEntryCount: 0 }),
    };
  }

  /** Consumes one use of the first matching counted fault; true when the call must suffer it. */
  private takeFault(
    kind: 'start-5xx' | 'lose-start-reply' | 'lambda-throttle',
    region: RegionName,
    batchId?: string,
  ): boolean {
    const fault = this.faults.find(
      (f) =>
        f.kind === kind &&
        f.region === region &&
        f.times > 0 &&
        (!('batchId' in f) || f.batchId === undefined || f.batchId === batchId),
    ) as { times: number } | undefined;
    if (!fault) return false;
    fault.times--;
    return true;
  }

  /** The callback endpoint's interceptor: true drops this SendTaskSuccess/Failure (a lost callback). */
  private loseCallback(region: RegionName, op: string, token: string): boolean {
    if (op !== 'SendTaskSuccess' && op !== 'SendTaskFailure') return false;
    const batchId = this.tokenBatch.get(token);
    const fault = this.faults.find(
      (f) => f.kind === 'lose-callback' && f.region === region && f.batchId === batchId && f.times > 0,
    ) as { times: number } | undefined;
    if (!fault) return false;
    fault.times--;
    return true;
  }

  /** The region's replica, with the injected delays of lock releases. */
  private faultyDynamo(r: RegionWorld): { send(cmd: any): Promise<any> } {
    const client = this.clients[REGIONS.indexOf(r.name)] ?? new DynamoDBClient(this.db.clientConfig(r.name));
    return {
      send: async (cmd: any) => {
        const input = cmd.input ?? {};
        if (cmd.constructor?.name === 'DeleteItemCommand' && input.Key?.sk?.S === lockSk('DOWNSTREAM')) {
          const holder = input.ExpressionAttributeValues?.[':exec']?.S as string | undefined;
          const i = this.faults.findIndex(
            (f) =>
              f.kind === 'before-lock-release' && f.region === r.name && holder?.endsWith(`:${f.execution}`),
          );
          if (i >= 0) {
            const [fault] = this.faults.splice(i, 1) as Array<{ action: () => Promise<void> }>;
            await fault.action();
          }
        }
        return client.send(cmd);
      },
    };
  }

  /** A synchronous Lambda invoke in `region`, by function name or ARN. */
  invokeFunction(region: RegionName, fnName: string, payload: unknown): Promise<unknown> {
    const r = this.region(region);
    const fn = r.model.functions.find((f) => f.arn === fnName || f.name === fnName);
    if (!fn) throw new StatesError('Lambda.ResourceNotFoundException', `Function not found: ${fnName}`);
    return this.invoke(r, fn, payload);
  }

  /** A Lambda invoke: the real handler with the function's recorded env, endpoints of this machine. */
  private invoke(r: RegionWorld, fn: StackModel['functions'][number], payload: unknown): Promise<unknown> {
    return this.mutex.run(async () => {
      const env: Record<string, string> = {
        ...fn.env,
        AWS_REGION: r.name,
        AWS_DEFAULT_REGION: r.name,
        AWS_LAMBDA_FUNCTION_NAME: fn.name,
        AWS_ENDPOINT_URL_DYNAMODB: this.db.endpoint(r.name),
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        POWERTOOLS_LOG_LEVEL: 'SILENT',
        [HANDLER_ENV.POWERTOOLS_METRICS_DISABLED]: 'true',
        ...(fn.env[HANDLER_ENV.DBT_API_URL] !== undefined
          ? {
              [HANDLER_ENV.DBT_API_URL]: r.pods.url,
              [HANDLER_ENV.DBT_API_TOKEN]: r.pods.token,
              [HANDLER_ENV.DBT_API_TIMEOUT_MS]: '3000',
            }
          : {}),
      };
      const saved: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(env)) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
      try {
        const mod = require(path.join(ROOT, 'handlers', `${fn.handler}.ts`));
        if (typeof mod.setDocumentClient === 'function') mod.setDocumentClient(r.doc);
        return await mod.handler(structuredClone(payload), {
          functionName: fn.name,
          awsRequestId: randomUUID(),
        });
      } finally {
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    });
  }

  // ------------------------------------------------------------------ what the warehouse and the app say

  /** CONTROL.BUILDS rows of these batches (the warehouse's own log). */
  async builds(batchIds: string[]): Promise<BuildRow[]> {
    const rows = await this.warehouse.builds();
    return rows.filter((b) => batchIds.includes(b.batch_id));
  }

  async stop(): Promise<void> {
    for (const r of this.regions.values()) {
      await r.pods.stop().catch(() => undefined);
      await r.callbacks.stop().catch(() => undefined);
    }
    for (const c of this.clients) c.destroy();
    for (const p of this.standinServers) p.kill('SIGKILL');
    await this.secrets.stop().catch(() => undefined);
    await this.db.stop().catch(() => undefined);
    await this.warehouse.stop().catch(() => undefined);
    fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}

export function expectedTables(model: StackModel, pipeline: string): string[] {
  const sm = model.stateMachines.find((m) => m.name === `etl-${pipeline}-downstream`)!;
  const check = sm.definition.States.ConsistencyCheck as TaskState;
  return (check.Parameters as { Payload: { expectedTables: string[] } }).Payload.expectedTables;
}
