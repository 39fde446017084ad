/**
 * Per-region DynamoDB replicas joined by asynchronous last-writer-wins replication: the local
 * model of a global table in eventually-consistent (MREC) mode.
 *
 * Each region gets its own dynalite server and an HTTP proxy in front of it (the endpoint that
 * region's SDK clients use). A successful write through a proxy is read back from the local replica
 * and queued, as a whole item or a tombstone, to every other region. After a lag it is applied to the
 * destination's dynalite directly (so it is not replicated again), unless the destination already
 * holds a newer write of that key. Conditional writes therefore guard only the local replica, and
 * concurrent writes of one key resolve silently to the later writer, as in production.
 *
 * See docs/local-replicas.md for what is and is not modelled.
 */
import http from 'http';
import type { AddressInfo } from 'net';
import dynalite from 'dynalite';
import {
  CreateTableCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  type AttributeValue,
  type CreateTableCommandInput,
  type KeySchemaElement,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import {
  TARGET_PREFIX,
  errorBody,
  keyIdFromSdk,
  parseBody,
  writtenKeys,
  type SdkKey,
  type WrittenKey,
} from './dynamo-wire';

// ------------------------------------------------------------------ public types

/** When a write happened, for last-writer-wins. Compared by `ms`, then `seq`, then `region`. */
export interface WriteTime {
  /** The engine clock (`now()`) when the write was stamped, in ms. */
  readonly ms: number;
  /** Engine-wide stamp counter: orders writes that share a millisecond (a virtual clock often does). */
  readonly seq: number;
  /** The region the write was made in; the last tiebreak. */
  readonly region: string;
}

/** What a lag function is told about the record it delays. */
export interface ReplicationInfo {
  readonly from: string;
  readonly to: string;
  readonly table: string;
  readonly keyId: string;
  readonly deleted: boolean;
  /** The replicated item (absent for a delete), in DynamoDB JSON. */
  readonly item?: Readonly<Record<string, AttributeValue>>;
  readonly writeTime: WriteTime;
}

/**
 * Replication lag, in ms of the engine clock: a fixed number, a uniform draw in [min, max] from the
 * engine's seeded RNG (per record), or a function of the record.
 */
export type LagSpec =
  number | { readonly min: number; readonly max: number } | ((record: ReplicationInfo) => number);

/** One replication record being applied (or skipped) at its destination. */
export interface DeliveryEvent extends ReplicationInfo {
  /** Order in which the record was queued (engine-wide). */
  readonly id: number;
  /** `applied`, or `skipped` because the destination already held a newer write of the key. */
  readonly outcome: 'applied' | 'skipped';
  /** Engine clock when it was applied or skipped. */
  readonly atMs: number;
}

export interface RegionStats {
  /** Requests the proxy received, by operation (throttled and rejected ones included). */
  readonly requests: Record<string, number>;
  /** Requests answered with an injected throttling error. */
  readonly throttled: number;
  /** Replication records queued from this region (one per destination). */
  readonly replicatedOut: number;
  /** Records applied here. */
  readonly applied: number;
  /** Records dropped here because a newer write of the key was already present. */
  readonly skippedOlder: number;
}

export type ThrottleError = 'ProvisionedThroughputExceededException' | 'ThrottlingException';

export interface ReplicatedDynamoOptions {
  /** Region names, at least two, distinct (e.g. `us-east-1`, `us-west-1`). */
  readonly regions: readonly string[];
  /** Tables (with their GSIs) to create in every replica. */
  readonly tables: readonly CreateTableCommandInput[];
  /**
   * Replication lag per record.
   * @default 0
   */
  readonly lag?: LagSpec;
  /**
   * Seed of the RNG behind `{ min, max }` lags: the same seed and the same writes give the same lags.
   * @default 1
   */
  readonly seed?: number;
  /**
   * The engine clock in ms. Inject a virtual clock's `now()` to let virtual time drive the lag.
   * @default Date.now
   */
  readonly now?: () => number;
  /**
   * Deliver records with real timers when their lag elapses. With a virtual clock, turn this off and
   * call `deliverDue()` after moving the clock (every proxy request also delivers what is due first).
   * @default true when `now` is not given, false when it is
   */
  readonly timers?: boolean;
  /**
   * Names (from `tables`) of tables that are NOT replicated: each region keeps its own copy, as a
   * plain regional table does (e.g. the dbt app's runs table). Writes to them never leave the region.
   * @default [] (every table replicates)
   */
  readonly regionalTables?: readonly string[];
}

const OPTION_KEYS: ReadonlySet<string> = new Set([
  'regions',
  'tables',
  'lag',
  'seed',
  'now',
  'timers',
  'regionalTables',
]);

/** Reads served as is by the local replica. */
const READ_OPS: ReadonlySet<string> = new Set([
  'GetItem',
  'BatchGetItem',
  'Query',
  'Scan',
  'DescribeTable',
  'ListTables',
]);
/** Writes that are replicated after they succeed locally. */
const WRITE_OPS: ReadonlySet<string> = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);
/** Operations refused with a reason (anything else is refused as unknown). */
const REFUSED_OPS: Readonly<Record<string, string>> = {
  TransactWriteItems: 'dynalite has no transactions; use single-item conditional writes',
  TransactGetItems: 'dynalite has no transactions; use GetItem/BatchGetItem',
  ExecuteStatement: 'PartiQL is not supported locally; use the item API',
  BatchExecuteStatement: 'PartiQL is not supported locally; use the item API',
  ExecuteTransaction: 'PartiQL is not supported locally; use the item API',
  CreateTable: 'it would reach one replica only; list the table in the engine option `tables`',
  DeleteTable: 'it would reach one replica only; tables live as long as the engine',
  UpdateTable: 'it would reach one replica only; declare GSIs in the engine option `tables`',
  UpdateTimeToLive: 'dynalite has no TTL; model expiry with an explicit `expiresAt < :now` condition',
};

const CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

// ------------------------------------------------------------------ pure helpers

/** Total order of write times: negative when `a` is older than `b`. */
export function compareWriteTimes(a: WriteTime, b: WriteTime): number {
  if (a.ms !== b.ms) return a.ms - b.ms;
  if (a.seq !== b.seq) return a.seq - b.seq;
  return a.region < b.region ? -1 : a.region > b.region ? 1 : 0;
}

/** mulberry32: a small seeded PRNG in [0, 1), so random lags are reproducible. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function badOption(key: string, value: unknown, fix: string): never {
  let shown: string;
  try {
    shown = typeof value === 'function' ? 'a function' : JSON.stringify(value);
  } catch {
    shown = String(value);
  }
  throw new Error(`replicated-dynamo: option ${key} = ${shown} is invalid; ${fix}`);
}

/** Checks a lag spec; returns it unchanged. */
export function validateLag(lag: unknown, key = 'lag'): LagSpec {
  if (typeof lag === 'function') return lag as LagSpec;
  if (typeof lag === 'number') {
    if (!Number.isFinite(lag) || lag < 0) badOption(key, lag, 'give a finite number of ms >= 0');
    return lag;
  }
  if (typeof lag === 'object' && lag !== null) {
    const extra = Object.keys(lag).filter((k) => k !== 'min' && k !== 'max');
    if (extra.length > 0)
      badOption(
        `${key}.${extra[0]}`,
        (lag as Record<string, unknown>)[extra[0]],
        'a range has only min and max',
      );
    const { min, max } = lag as { min?: unknown; max?: unknown };
    if (typeof min !== 'number' || !Number.isFinite(min) || min < 0)
      badOption(`${key}.min`, min, 'give a finite number of ms >= 0');
    if (typeof max !== 'number' || !Number.isFinite(max) || max < min)
      badOption(`${key}.max`, max, `give a finite number of ms >= min (${min})`);
    return { min, max };
  }
  return badOption(key, lag, 'give ms (number), { min, max } or a function of the record');
}

function validateOptions(options: ReplicatedDynamoOptions): void {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key))
      badOption(
        key,
        (options as unknown as Record<string, unknown>)[key],
        `known options are ${[...OPTION_KEYS].join(', ')}`,
      );
  }
  const { regions, tables } = options;
  if (!Array.isArray(regions) || regions.length < 2)
    badOption('regions', regions, 'name at least two regions');
  regions.forEach((r, i) => {
    if (typeof r !== 'string' || r.length === 0)
      badOption(`regions[${i}]`, r, 'give a non-empty region name');
    if (regions.indexOf(r) !== i) badOption(`regions[${i}]`, r, 'region names must be distinct');
  });
  if (!Array.isArray(tables) || tables.length === 0)
    badOption('tables', tables, 'give at least one CreateTable input');
  tables.forEach((t, i) => {
    if (typeof t?.TableName !== 'string' || t.TableName.length === 0)
      badOption(`tables[${i}].TableName`, t?.TableName, 'name the table');
    if (!Array.isArray(t.KeySchema) || t.KeySchema.length === 0)
      badOption(`tables[${i}].KeySchema`, t.KeySchema, 'give the key schema');
    if (tables.findIndex((u) => u.TableName === t.TableName) !== i)
      badOption(`tables[${i}].TableName`, t.TableName, 'table names must be distinct');
  });
  if (options.regionalTables !== undefined) {
    if (!Array.isArray(options.regionalTables))
      badOption('regionalTables', options.regionalTables, 'give an array of table names from `tables`');
    options.regionalTables.forEach((name, i) => {
      if (!tables.some((t) => t.TableName === name))
        badOption(
          `regionalTables[${i}]`,
          name,
          `name a table of \`tables\` (${tables.map((t) => t.TableName).join(', ')})`,
        );
    });
  }
  if (options.lag !== undefined) validateLag(options.lag);
  if (options.seed !== undefined && !Number.isInteger(options.seed))
    badOption('seed', options.seed, 'give an integer');
  if (options.now !== undefined && typeof options.now !== 'function')
    badOption('now', options.now, 'give a function returning ms');
  if (options.timers !== undefined && typeof options.timers !== 'boolean')
    badOption('timers', options.timers, 'give true or false');
}

/** Serializes async work: one region's local writes and incoming applies never interleave. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

// ------------------------------------------------------------------ engine

interface Replica {
  readonly region: string;
  readonly dynalite: http.Server;
  readonly dynaliteEndpoint: string;
  readonly proxy: http.Server;
  readonly endpoint: string;
  /** Straight to this replica's dynalite: read-backs, applies, snapshots. */
  readonly client: DynamoDBClient;
  readonly doc: DynamoDBDocumentClient;
  readonly lock: Mutex;
  /** keyId -> time of the newest write this replica holds (local or applied), tombstones included. */
  readonly lastWrite: Map<string, WriteTime>;
  readonly throttles: Map<string, { n: number; error: ThrottleError }>;
  readonly stats: {
    requests: Record<string, number>;
    throttled: number;
    replicatedOut: number;
    applied: number;
    skippedOlder: number;
  };
}

interface QueuedRecord extends ReplicationInfo {
  readonly id: number;
  readonly key: SdkKey;
  readonly dueAt: number;
}

interface HttpReply {
  readonly status: number;
  readonly headers: http.OutgoingHttpHeaders;
  readonly body: Buffer;
}

function errorReply(status: number, type: string, message: string): HttpReply {
  return {
    status,
    headers: { 'content-type': 'application/x-amz-json-1.0' },
    body: errorBody(type, message),
  };
}

/** Per-region DynamoDB replicas with async last-writer-wins replication. Start with `ReplicatedDynamo.start`. */
export class ReplicatedDynamo {
  private readonly replicas = new Map<string, Replica>();
  private readonly schemas = new Map<string, readonly KeySchemaElement[]>();
  private readonly queue: QueuedRecord[] = [];
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly proxyInflight = new Set<Promise<unknown>>();
  private readonly log: DeliveryEvent[] = [];
  private readonly errors: Error[] = [];
  private readonly orphans = new Set<http.Server>();
  // No keep-alive to dynalite: it closes idle sockets, and a request sent on one as it closes fails
  // with `socket hang up` before dynalite read it (seen under load), so each forward opens its own.
  private readonly agent = new http.Agent({ keepAlive: false });
  private readonly now: () => number;
  private readonly timers: boolean;
  private readonly random: () => number;
  private lag: LagSpec;
  private partitioned = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDueAt = Infinity;
  private stampSeq = 0;
  private recordSeq = 0;
  private readonly regionalTables: ReadonlySet<string>;

  private constructor(options: ReplicatedDynamoOptions) {
    this.regionalTables = new Set(options.regionalTables ?? []);
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? options.now === undefined;
    this.random = seededRandom(options.seed ?? 1);
    this.lag = options.lag ?? 0;
    for (const t of options.tables)
      this.schemas.set(t.TableName as string, t.KeySchema as KeySchemaElement[]);
  }

  /** Starts one dynalite + proxy per region and creates every table in each. */
  static async start(options: ReplicatedDynamoOptions): Promise<ReplicatedDynamo> {
    validateOptions(options);
    const engine = new ReplicatedDynamo(options);
    try {
      for (const region of options.regions) await engine.startReplica(region, options.tables);
    } catch (e) {
      await engine.stop();
      throw e;
    }
    return engine;
  }

  private async startReplica(region: string, tables: readonly CreateTableCommandInput[]): Promise<void> {
    const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
    this.orphans.add(server); // closed by stop() if this replica never completes
    const dynaliteEndpoint = await listen(server);
    const client = new DynamoDBClient({
      endpoint: dynaliteEndpoint,
      region,
      credentials: CREDENTIALS,
      // Internal reads and LWW applies are idempotent: the SDK's retry of a reset socket is safe here.
      maxAttempts: 3,
    });
    const proxy = http.createServer((req, res) => this.serve(region, req, res));
    const replica: Replica = {
      region,
      dynalite: server,
      dynaliteEndpoint,
      proxy,
      endpoint: await listen(proxy),
      client,
      doc: DynamoDBDocumentClient.from(client),
      lock: new Mutex(),
      lastWrite: new Map(),
      throttles: new Map(),
      stats: { requests: {}, throttled: 0, replicatedOut: 0, applied: 0, skippedOlder: 0 },
    };
    this.replicas.set(region, replica);
    this.orphans.delete(server);
    for (const t of tables) await client.send(new CreateTableCommand(t));
  }

  // ---------------------------------------------------------------- endpoints and config

  /** Regions, in the order given. */
  get regions(): string[] {
    return [...this.replicas.keys()];
  }

  private replica(region: string): Replica {
    const r = this.replicas.get(region);
    if (!r)
      throw new Error(
        `replicated-dynamo: unknown region ${JSON.stringify(region)}; regions are ${this.regions.join(', ')}`,
      );
    return r;
  }

  /** The proxy endpoint a region's SDK clients use (writes through it replicate). */
  endpoint(region: string): string {
    return this.replica(region).endpoint;
  }

  /** Ready-made SDK client config for a region (endpoint, region, dummy credentials). */
  clientConfig(region: string): { endpoint: string; region: string; credentials: typeof CREDENTIALS } {
    return { endpoint: this.endpoint(region), region, credentials: CREDENTIALS };
  }

  /** Changes the lag of records queued from now on (queued ones keep their due time). */
  setLag(lag: LagSpec): void {
    this.lag = validateLag(lag);
  }

  /**
   * The next `n` requests of `op` at `region`'s proxy answer HTTP 400 with `error`, in the DynamoDB
   * JSON error format, without reaching the replica: the SDK classifies both as throttling and retries.
   */
  throttleNext(
    region: string,
    op: string,
    n: number,
    error: ThrottleError = 'ProvisionedThroughputExceededException',
  ): void {
    const r = this.replica(region);
    if (!READ_OPS.has(op) && !WRITE_OPS.has(op))
      badOption('throttleNext op', op, `give one of ${[...READ_OPS, ...WRITE_OPS].join(', ')}`);
    if (!Number.isInteger(n) || n < 0) badOption('throttleNext n', n, 'give a whole number of requests >= 0');
    if (error !== 'ProvisionedThroughputExceededException' && error !== 'ThrottlingException') {
      badOption(
        'throttleNext error',
        error,
        'give ProvisionedThroughputExceededException or ThrottlingException',
      );
    }
    r.throttles.set(op, { n, error });
  }

  // ---------------------------------------------------------------- proxy

  private serve(region: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const work = this.handle(region, req)
      .catch((e: unknown) => {
        const err = e instanceof Error ? e : new Error(String(e));
        this.errors.push(err);
        return errorReply(500, 'InternalServerError', err.message);
      })
      .then((reply) => {
        res.writeHead(reply.status, { ...reply.headers, 'content-length': reply.body.length });
        res.end(reply.body);
      });
    this.track(this.proxyInflight, work);
  }

  private async handle(region: string, req: http.IncomingMessage): Promise<HttpReply> {
    const r = this.replica(region);
    const body = await readAll(req);
    const target = req.headers['x-amz-target'];
    const op =
      typeof target === 'string' && target.startsWith(TARGET_PREFIX)
        ? target.slice(TARGET_PREFIX.length)
        : undefined;
    if (op === undefined) {
      return errorReply(
        400,
        'UnknownOperationException',
        `X-Amz-Target ${JSON.stringify(target)} is not a DynamoDB operation; send ${TARGET_PREFIX}<Operation>`,
      );
    }
    r.stats.requests[op] = (r.stats.requests[op] ?? 0) + 1;
    const throttle = r.throttles.get(op);
    if (throttle && throttle.n > 0) {
      throttle.n -= 1;
      r.stats.throttled += 1;
      return errorReply(400, throttle.error, `injected by throttleNext(${region}, ${op}): rate exceeded`);
    }
    if (REFUSED_OPS[op] !== undefined) {
      return errorReply(
        400,
        'UnknownOperationException',
        `${op} is not supported by the local replicas (local/replicated-dynamo): ${REFUSED_OPS[op]}`,
      );
    }
    if (!READ_OPS.has(op) && !WRITE_OPS.has(op)) {
      return errorReply(
        400,
        'UnknownOperationException',
        `${op} is not supported by the local replicas; supported: ${[...READ_OPS, ...WRITE_OPS].join(', ')}`,
      );
    }
    await this.deliverDue(region);
    if (READ_OPS.has(op)) return this.forward(r, req, body);
    return r.lock.run(async () => {
      const reply = await this.forward(r, req, body);
      if (reply.status === 200) await this.replicateWrite(r, op, body, reply.body);
      return reply;
    });
  }

  private forward(r: Replica, req: http.IncomingMessage, body: Buffer): Promise<HttpReply> {
    const url = new URL(r.dynaliteEndpoint);
    const headers = { ...req.headers, host: url.host, 'content-length': String(body.length) };
    return new Promise((resolve, reject) => {
      const out = http.request(
        { host: url.hostname, port: url.port, method: req.method, path: req.url, headers, agent: this.agent },
        (res) => {
          readAll(res).then((resBody) => {
            const h: http.OutgoingHttpHeaders = { ...res.headers };
            delete h['transfer-encoding'];
            delete h.connection;
            resolve({ status: res.statusCode ?? 500, headers: h, body: resBody });
          }, reject);
        },
      );
      out.on('error', reject);
      out.end(body);
    });
  }

  /** Reads each written item back (consistent read) and queues it, or its tombstone, to every other region. */
  private async replicateWrite(
    r: Replica,
    op: string,
    rawRequest: Buffer,
    rawResponse: Buffer,
  ): Promise<void> {
    const keys = writtenKeys(
      op,
      parseBody(rawRequest, `${op} request`),
      parseBody(rawResponse, `${op} response`),
      (t) => this.schema(t),
    );
    for (const k of keys) {
      if (this.regionalTables.has(k.table)) continue; // a regional table: the write stays here
      const { Item } = await r.client.send(
        new GetItemCommand({ TableName: k.table, Key: k.key, ConsistentRead: true }),
      );
      const writeTime: WriteTime = { ms: this.now(), seq: ++this.stampSeq, region: r.region };
      r.lastWrite.set(k.keyId, writeTime);
      for (const to of this.replicas.keys()) {
        if (to !== r.region) this.enqueue(r, to, k, Item, writeTime);
      }
    }
  }

  private schema(table: string): readonly KeySchemaElement[] {
    const s = this.schemas.get(table);
    if (!s)
      throw new Error(
        `replicated-dynamo: table ${JSON.stringify(table)} is not one the engine created; add it to the option \`tables\``,
      );
    return s;
  }

  // ---------------------------------------------------------------- replication

  private enqueue(
    from: Replica,
    to: string,
    k: WrittenKey,
    item: Record<string, AttributeValue> | undefined,
    writeTime: WriteTime,
  ): void {
    const info: ReplicationInfo = {
      from: from.region,
      to,
      table: k.table,
      keyId: k.keyId,
      deleted: item === undefined,
      item,
      writeTime,
    };
    const lag = this.lagFor(info);
    const now = this.now();
    this.queue.push({ ...info, id: ++this.recordSeq, key: k.key, dueAt: now + lag });
    from.stats.replicatedOut += 1;
    this.arm();
  }

  private lagFor(info: ReplicationInfo): number {
    const lag = this.lag;
    const ms =
      typeof lag === 'number'
        ? lag
        : typeof lag === 'function'
          ? lag(info)
          : lag.min + this.random() * (lag.max - lag.min);
    if (!Number.isFinite(ms) || ms < 0) {
      throw new Error(
        `replicated-dynamo: the lag function returned ${ms} for ${info.keyId} ${info.from}->${info.to}; return a finite number of ms >= 0`,
      );
    }
    return ms;
  }

  /** Real-timer mode: one timer, for the earliest due record. */
  private arm(): void {
    if (!this.timers || this.partitioned || this.stopped || this.queue.length === 0) return;
    const dueAt = Math.min(...this.queue.map((q) => q.dueAt));
    if (this.timer !== undefined && dueAt >= this.timerDueAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDueAt = dueAt;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerDueAt = Infinity;
        this.deliverDue().catch((e: unknown) =>
          this.errors.push(e instanceof Error ? e : new Error(String(e))),
        );
      },
      Math.max(0, dueAt - this.now()),
    );
  }

  /** Removes and returns queued records matching `pick`, in due order (ties: queue order). */
  private take(pick: (q: QueuedRecord) => boolean): QueuedRecord[] {
    const taken = this.queue.filter(pick).sort((a, b) => a.dueAt - b.dueAt || a.id - b.id);
    const ids = new Set(taken.map((q) => q.id));
    const kept = this.queue.filter((q) => !ids.has(q.id));
    this.queue.length = 0;
    this.queue.push(...kept);
    return taken;
  }

  /**
   * Applies every record whose lag has elapsed on the engine clock (all destinations, or one).
   * Nothing is delivered during a partition. Resolves to the number of records delivered.
   */
  async deliverDue(region?: string): Promise<number> {
    if (this.partitioned || this.stopped) return 0;
    const now = this.now();
    const due = this.take((q) => q.dueAt <= now && (region === undefined || q.to === region));
    await this.deliver(due);
    this.arm();
    return due.length;
  }

  private async deliver(records: readonly QueuedRecord[]): Promise<void> {
    // Queued on each destination's lock now, in due order; applied one at a time per destination.
    const applies = records.map((q) =>
      this.track(
        this.inflight,
        this.replica(q.to).lock.run(() => this.apply(q)),
      ),
    );
    const results = await Promise.allSettled(applies);
    for (const res of results)
      if (res.status === 'rejected')
        this.errors.push(res.reason instanceof Error ? res.reason : new Error(String(res.reason)));
  }

  /** Last-writer-wins apply at the destination, straight to its dynalite (never re-replicated). */
  private async apply(q: QueuedRecord): Promise<void> {
    const dest = this.replica(q.to);
    const held = dest.lastWrite.get(q.keyId);
    let outcome: DeliveryEvent['outcome'] = 'skipped';
    if (held === undefined || compareWriteTimes(held, q.writeTime) < 0) {
      if (q.item) await dest.client.send(new PutItemCommand({ TableName: q.table, Item: q.item }));
      else await dest.client.send(new DeleteItemCommand({ TableName: q.table, Key: q.key }));
      dest.lastWrite.set(q.keyId, q.writeTime);
      dest.stats.applied += 1;
      outcome = 'applied';
    } else {
      dest.stats.skippedOlder += 1;
    }
    const { from, to, table, keyId, deleted, item, writeTime, id } = q;
    this.log.push({ id, from, to, table, keyId, deleted, item, writeTime, outcome, atMs: this.now() });
  }

  private track<T>(set: Set<Promise<unknown>>, p: Promise<T>): Promise<T> {
    set.add(p);
    const done = (): void => {
      set.delete(p);
    };
    p.then(done, done);
    return p;
  }

  // ---------------------------------------------------------------- control

  /** Cuts every link: records queue up, nothing is delivered until `heal()`. */
  partition(): void {
    this.partitioned = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDueAt = Infinity;
  }

  get isPartitioned(): boolean {
    return this.partitioned;
  }

  /** Restores the links and delivers the whole backlog at once (remaining lag cut short), LWW per key. */
  async heal(): Promise<void> {
    this.partitioned = false;
    await this.flush();
  }

  /**
   * Delivers every queued record now, cutting its remaining lag short (in due order, so the order
   * the lags would have produced is kept), and awaits all deliveries in flight. During a partition it
   * only awaits deliveries already in flight. Rejects if any delivery failed.
   */
  async flush(): Promise<void> {
    do {
      if (!this.partitioned) await this.deliver(this.take(() => true));
      await Promise.allSettled([...this.inflight]);
    } while (!this.partitioned && this.queue.length > 0);
    this.throwErrors();
  }

  /**
   * Waits until the replicas have converged: no request in flight at any proxy, nothing queued, no
   * delivery in flight. Refuses during a partition (convergence cannot happen; `heal()` first).
   */
  async quiesce(): Promise<void> {
    if (this.partitioned)
      throw new Error('replicated-dynamo: quiesce() during a partition cannot converge; call heal() first');
    while (this.proxyInflight.size > 0 || this.queue.length > 0 || this.inflight.size > 0) {
      await Promise.allSettled([...this.proxyInflight]);
      await this.flush();
    }
    this.throwErrors();
  }

  private throwErrors(): void {
    if (this.errors.length === 0) return;
    const errors = this.errors.splice(0);
    throw new AggregateError(
      errors,
      `replicated-dynamo: ${errors.length} error(s): ${errors.map((e) => e.message).join('; ')}`,
    );
  }

  /** Records queued and not yet delivered (held ones during a partition included). */
  pending(): number {
    return this.queue.length;
  }

  /** Every delivery so far, in the order records were applied or skipped. */
  deliveries(): readonly DeliveryEvent[] {
    return [...this.log];
  }

  stats(region: string): RegionStats {
    const s = this.replica(region).stats;
    return { ...s, requests: { ...s.requests } };
  }

  /**
   * Every item of `table` in each region's replica (plain JS values, sorted by key), read straight
   * from dynalite: what a checker compares after `quiesce()`.
   */
  async snapshot(table: string): Promise<Record<string, Record<string, unknown>[]>> {
    const schema = this.schema(table);
    const out: Record<string, Record<string, unknown>[]> = {};
    for (const [region, r] of this.replicas) {
      const items: Record<string, unknown>[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await r.doc.send(
          new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }),
        );
        items.push(...(page.Items ?? []));
        start = page.LastEvaluatedKey;
      } while (start !== undefined);
      const sortKey = (item: Record<string, unknown>): string =>
        JSON.stringify(schema.map((k) => String(item[k.AttributeName ?? ''])));
      out[region] = items.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
    }
    return out;
  }

  /** A document client straight to `region`'s dynalite: an observer's reads, never throttled or counted. */
  directDoc(region: string): DynamoDBDocumentClient {
    return this.replica(region).doc;
  }

  /** The canonical id the engine uses for an item (as in `deliveries()`), from its SDK-shaped key. */
  keyId(table: string, key: SdkKey): string {
    return keyIdFromSdk(table, key, this.schema(table));
  }

  /** Closes proxies, clients and dynalite servers; pending records are dropped. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.partition();
    this.stopped = true;
    await Promise.allSettled([...this.proxyInflight, ...this.inflight]);
    for (const r of this.replicas.values()) {
      if (r.proxy.listening) await close(r.proxy);
      r.client.destroy();
      if (r.dynalite.listening) await close(r.dynalite);
    }
    for (const s of this.orphans) if (s.listening) await close(s);
    this.agent.destroy();
    this.queue.length = 0;
  }
}
