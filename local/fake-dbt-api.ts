import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BATCH_ID_PATTERN } from '../contracts/batch-id';

/**
 * A loopback implementation of the dbt REST contract (docs/dbt-api.md) for tests and the local
 * twin. It is a real HTTP server on 127.0.0.1, so the handlers' fetch, timeouts and error
 * classification run for real.
 *
 *   const api = await startFakeDbtApi();
 *   process.env.DBT_API_URL = api.url; process.env.DBT_API_TOKEN = api.token;
 *   api.inject({ kind: 'status', status: 503, count: 2 });   // next 2 requests -> 503
 *   ...
 *   api.runsFor('policycenter-20261127T020000Z').length       // "exactly one dbt run per batch"
 *   await api.close();
 *
 * Lifecycle: a run is created QUEUED. With `autoAdvance` (default) every GET of it moves it one
 * step: QUEUED -> RUNNING -> (RUNNING for `runningPolls` more polls) -> SUCCEEDED, or FAILED if a
 * `fail-run` fault matched it. `advance(runId)` and `finish(runId, status)` move it on demand.
 */

export type FakeRunStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'LOST' | 'INTERRUPTED';

export interface FakeRun {
  runId: string;
  batchId: string;
  pipeline: string;
  command: string;
  select?: string;
  vars?: Record<string, unknown>;
  attempt: number;
  /** The fence the caller checked (docs/dbt-api.md "Fence"); a repeat with another fence is a 409. */
  fence: { region: string; epoch: number };
  status: FakeRunStatus;
  /** When the run was stored (the view's `queuedAt`). */
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Set when the run starts and renewed on every poll while it runs, as the app's worker does. */
  heartbeatAt: string | null;
  error?: string;
  /** Polls spent RUNNING so far, and how many it needs before finishing. */
  pollsRunning: number;
  runningPolls: number;
  /** Set by a `fail-run` fault: the run ends FAILED with this message. */
  failWith?: string;
  /** How many GETs this run has served. */
  polls: number;
  /** The latest task token (a repeat POST with a new token replaces it, as the app does). */
  taskToken?: string;
  /** v2 fields as posted: the lock lease to renew and the deadlines. */
  lease?: { pk: string; sk: string; holder: string; seconds: number };
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
  body?: unknown;
  /** What the server answered, or 'hang' / 'reset'. */
  outcome: number | 'hang' | 'reset';
}

/** Matches requests for a fault; omitted fields match anything. */
export interface RequestMatch {
  method?: 'GET' | 'POST';
  /** Substring or regex tested against the path, e.g. '/api/v1/runs'. */
  path?: string | RegExp;
}

export type Fault =
  /** The next `count` matching requests get `status` (5xx -> retryable, 4xx -> rejected). */
  | ({ kind: 'status'; status: number; count?: number; body?: unknown } & RequestMatch)
  /** The next `count` matching requests are accepted and never answered (client timeout). */
  | ({ kind: 'hang'; count?: number } & RequestMatch)
  /** The next `count` matching requests have their socket destroyed (connection reset). */
  | ({ kind: 'reset'; count?: number } & RequestMatch)
  /** The next `count` matching requests are served (a POST creates its run) but the reply is lost. */
  | ({ kind: 'lose-reply'; count?: number } & RequestMatch)
  /** The next `count` matching requests are answered after `ms` (slow API, not slow run). */
  | ({ kind: 'delay'; ms: number; count?: number } & RequestMatch)
  /** Runs created for `batchId` (or the next `count` created runs) end FAILED with `error`. */
  | { kind: 'fail-run'; batchId?: string; count?: number; error?: string }
  /** Runs created for `batchId` (or the next `count` created runs) stay RUNNING for `polls` polls. */
  | { kind: 'slow-run'; batchId?: string; count?: number; polls: number };

export interface FakeDbtApiOptions {
  /** Bearer token the server accepts; random by default. */
  token?: string;
  /** A token that may GET but not POST (403 on POST). */
  readToken?: string;
  /** Advance a run one step per GET poll (default true). */
  autoAdvance?: boolean;
  /** Polls a run stays RUNNING before finishing (default 1). */
  runningPolls?: number;
}

export interface FakeDbtApi {
  url: string;
  token: string;
  /** Every run ever created, in creation order (repeats that returned an existing run add nothing). */
  runs: FakeRun[];
  /** Every request received, in order. */
  requests: RecordedRequest[];
  runsFor(batchId: string): FakeRun[];
  getRun(runId: string): FakeRun | undefined;
  inject(fault: Fault): void;
  /** Drops faults not yet consumed. */
  clearFaults(): void;
  /** Moves a run one lifecycle step, as a poll would. */
  advance(runId: string): FakeRun;
  /** Ends a run now. */
  finish(runId: string, status: 'SUCCEEDED' | 'FAILED' | 'LOST' | 'INTERRUPTED', error?: string): FakeRun;
  close(): Promise<void>;
}

type Pending = Fault & { remaining: number };
type Answer = { status: number; body: unknown };

const COMMANDS = new Set(['build', 'run', 'test', 'seed', 'snapshot']);
const now = () => new Date().toISOString();

/** A POST body's fields, validated. */
type RunRequest = Pick<FakeRun, 'batchId' | 'pipeline' | 'command' | 'select' | 'vars' | 'attempt' | 'fence'>;

/** The problems of a POST /api/v1/runs body, as the app's validation names them. */
function runRequestProblems(body: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const { batchId, pipeline } = body;
  const command = body.command ?? 'build';
  const attempt = body.attempt ?? 1;
  if (typeof batchId !== 'string' || !BATCH_ID_PATTERN.test(batchId))
    problems.push('batchId: not <pipeline>-<yyyyMMdd>T<HHmmss>Z');
  if (typeof pipeline !== 'string') problems.push('pipeline: required string');
  else if (typeof batchId === 'string' && BATCH_ID_PATTERN.exec(batchId)?.[1] !== pipeline)
    problems.push('batchId: belongs to another pipeline');
  if (typeof command !== 'string' || !COMMANDS.has(command))
    problems.push('command: not an allowed dbt command');
  if (body.select !== undefined && typeof body.select !== 'string') problems.push('select: must be a string');
  if (
    body.vars !== undefined &&
    (typeof body.vars !== 'object' || body.vars === null || Array.isArray(body.vars))
  )
    problems.push('vars: must be an object');
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1 || attempt > 999)
    problems.push('attempt: must be an integer 1..999');
  // The real app requires the claim's fence (it becomes dbt's fence vars); so does the fake.
  const fence = body.fence as { region?: unknown; epoch?: unknown } | undefined;
  if (
    !fence ||
    typeof fence !== 'object' ||
    typeof fence.region !== 'string' ||
    !Number.isInteger(fence.epoch) ||
    (fence.epoch as number) < 1
  ) {
    problems.push('fence: required {region: string, epoch: integer >= 1}');
  }
  if (body.taskToken !== undefined && typeof body.taskToken !== 'string')
    problems.push('taskToken: must be a string');
  return problems;
}

/** A valid body's fields (after `runRequestProblems` found none). */
function runRequest(body: Record<string, unknown>): RunRequest {
  const fence = body.fence as { region: string; epoch: number };
  return {
    batchId: body.batchId as string,
    pipeline: body.pipeline as string,
    command: (body.command ?? 'build') as string,
    select: body.select as string | undefined,
    vars: body.vars as Record<string, unknown> | undefined,
    attempt: (body.attempt ?? 1) as number,
    fence: { region: fence.region, epoch: fence.epoch },
  };
}

/** The app's full run view (the document's Run, every required field). */
function view(run: FakeRun) {
  return {
    runId: run.runId,
    batchId: run.batchId,
    pipeline: run.pipeline,
    command: run.command,
    attempt: run.attempt,
    status: run.status,
    queuedAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    heartbeatAt: run.heartbeatAt,
    fence: { ...run.fence },
    ...(run.error === undefined ? {} : { error: run.error }),
  };
}

/** Moves a run one lifecycle step, as the app's worker would between two polls. */
function advanceRun(run: FakeRun): FakeRun {
  if (run.status === 'QUEUED') {
    run.status = 'RUNNING';
    run.startedAt = now();
    run.heartbeatAt = run.startedAt;
  } else if (run.status === 'RUNNING') {
    run.pollsRunning += 1;
    run.heartbeatAt = now();
    if (run.pollsRunning >= run.runningPolls) {
      run.finishedAt = now();
      if (run.failWith !== undefined) {
        run.status = 'FAILED';
        run.error = run.failWith;
      } else {
        run.status = 'SUCCEEDED';
      }
    }
  }
  return run;
}

/** The same idempotency key with the same parameters (a repeat the app answers with the run). */
function sameParameters(existing: FakeRun, request: RunRequest): boolean {
  return (
    existing.pipeline === request.pipeline &&
    existing.command === request.command &&
    existing.select === request.select &&
    JSON.stringify(existing.vars ?? null) === JSON.stringify(request.vars ?? null) &&
    existing.fence.region === request.fence.region &&
    existing.fence.epoch === request.fence.epoch
  );
}

const unauthorized: Answer = {
  status: 401,
  body: { error: 'Unauthorized', message: 'missing or invalid bearer token' },
};

/** The API's state and routes, without HTTP: runs, the faults waiting to fire, the tokens. */
class FakeDbtRegistry {
  readonly runs: FakeRun[] = [];
  readonly byId = new Map<string, FakeRun>();
  faults: Pending[] = [];

  constructor(
    readonly token: string,
    private readonly options: FakeDbtApiOptions,
  ) {}

  private matches(f: Fault, method: string, path: string): boolean {
    if (f.kind === 'fail-run' || f.kind === 'slow-run') return false;
    if (f.method && f.method !== method) return false;
    if (f.path instanceof RegExp) return f.path.test(path);
    if (typeof f.path === 'string') return path.includes(f.path);
    return true;
  }

  takeRequestFault(method: string, path: string): Pending | undefined {
    const fault = this.faults.find((f) => f.remaining > 0 && this.matches(f, method, path));
    if (fault) fault.remaining -= 1;
    this.faults = this.faults.filter((f) => f.remaining > 0);
    return fault;
  }

  private takeRunFault(kind: 'fail-run' | 'slow-run', batchId: string): Pending | undefined {
    const fault = this.faults.find(
      (f) => f.kind === kind && f.remaining > 0 && (f.batchId === undefined || f.batchId === batchId),
    );
    if (fault) fault.remaining -= 1;
    this.faults = this.faults.filter((f) => f.remaining > 0);
    return fault;
  }

  private presented(auth: string | undefined): string | undefined {
    const key = /^Bearer (.+)$/.exec(auth ?? '')?.[1];
    return key && (key === this.token || key === this.options.readToken) ? key : undefined;
  }

  route(method: string, path: string, auth: string | undefined, body: unknown): Answer {
    if (method === 'GET' && path === '/healthz')
      return { status: 200, body: { status: 'ok', runs: this.runs.length } };
    const runMatch = /^\/api\/v1\/runs\/([^/]+)$/.exec(path);
    const keyMatch = /^\/api\/v1\/batches\/([^/]+)\/attempts\/(\d+)$/.exec(path);
    if (keyMatch && method === 'GET') {
      if (!this.presented(auth)) return unauthorized;
      return this.byKey(keyMatch[1], keyMatch[2]);
    }
    if (path !== '/api/v1/runs' && !runMatch)
      return { status: 404, body: { error: 'NotFound', message: `no route ${method} ${path}` } };
    const presented = this.presented(auth);
    if (!presented) return unauthorized;
    if (!runMatch) return this.post(method, presented, body);
    if (method !== 'GET') return { status: 405, body: { error: 'MethodNotAllowed', message: 'use GET' } };
    const run = this.byId.get(decodeURIComponent(runMatch[1]));
    if (!run) return { status: 404, body: { error: 'NotFound', message: `no run ${runMatch[1]}` } };
    run.polls += 1;
    if (this.options.autoAdvance ?? true) advanceRun(run);
    return { status: 200, body: view(run) };
  }

  /** GET /api/v1/batches/{batchId}/attempts/{n}: reconciliation reads the registry, never moves a run. */
  private byKey(batchId: string, attempt: string): Answer {
    const found = this.runs.find(
      (r) => r.batchId === decodeURIComponent(batchId) && r.attempt === Number(attempt),
    );
    if (!found)
      return {
        status: 404,
        body: { error: 'NotFound', message: `no run for batch ${batchId} attempt ${attempt}` },
      };
    return { status: 200, body: view(found) };
  }

  private post(method: string, presented: string, body: unknown): Answer {
    if (method !== 'POST') return { status: 405, body: { error: 'MethodNotAllowed', message: 'use POST' } };
    if (presented !== this.token)
      return { status: 403, body: { error: 'Forbidden', message: 'this token may not start runs' } };
    if (body === undefined || typeof body !== 'object' || body === null || Array.isArray(body)) {
      return { status: 400, body: { error: 'BadRequest', message: 'body must be a JSON object' } };
    }
    return this.createRun(body as Record<string, unknown>);
  }

  private createRun(body: Record<string, unknown>): Answer {
    const problems = runRequestProblems(body);
    if (problems.length)
      return { status: 422, body: { error: 'ValidationError', message: problems.join('; ') } };
    const request = runRequest(body);
    const sameBatch = this.runs.filter((r) => r.batchId === request.batchId);
    const existing = sameBatch.find((r) => r.attempt === request.attempt);
    if (existing) {
      if (!sameParameters(existing, request)) {
        return {
          status: 409,
          body: {
            error: 'Conflict',
            message: `batch ${request.batchId} attempt ${request.attempt} already exists with different parameters`,
            runId: existing.runId,
          },
        };
      }
      if (typeof body.taskToken === 'string') existing.taskToken = body.taskToken;
      return { status: 200, body: view(existing) };
    }
    const inFlight = sameBatch.find((r) => r.status === 'QUEUED' || r.status === 'RUNNING');
    if (inFlight) {
      return {
        status: 409,
        body: {
          error: 'Conflict',
          message: `batch ${request.batchId} has attempt ${inFlight.attempt} still ${inFlight.status}`,
          runId: inFlight.runId,
        },
      };
    }
    const run = this.newRun(request, body);
    this.runs.push(run);
    this.byId.set(run.runId, run);
    return { status: 202, body: view(run) };
  }

  private newRun(request: RunRequest, body: Record<string, unknown>): FakeRun {
    const failFault = this.takeRunFault('fail-run', request.batchId);
    const slowFault = this.takeRunFault('slow-run', request.batchId);
    const run: FakeRun = {
      // Deterministic, as in the app: the idempotency key names the run.
      runId: `${request.batchId}.${request.attempt}`,
      ...request,
      status: 'QUEUED',
      createdAt: now(),
      startedAt: null,
      finishedAt: null,
      heartbeatAt: null,
      pollsRunning: 0,
      runningPolls: slowFault?.kind === 'slow-run' ? slowFault.polls : (this.options.runningPolls ?? 1),
      ...(failFault?.kind === 'fail-run'
        ? { failWith: failFault.error ?? 'dbt build failed: 1 of 12 models errored' }
        : {}),
      polls: 0,
    };
    if (typeof body.taskToken === 'string') run.taskToken = body.taskToken;
    if (body.lease !== undefined) run.lease = body.lease as FakeRun['lease'];
    if (run.select === undefined) delete run.select;
    if (run.vars === undefined) delete run.vars;
    return run;
  }

  mustGet(runId: string): FakeRun {
    const run = this.byId.get(runId);
    if (!run) throw new Error(`fake dbt api: no run ${runId}`);
    return run;
  }
}

/** Parses a request body: undefined when empty, the raw text (and `badJson`) when not JSON. */
function parseBody(raw: string): { body: unknown; badJson: boolean } {
  if (!raw) return { body: undefined, badJson: false };
  try {
    return { body: JSON.parse(raw), badJson: false };
  } catch {
    return { body: raw, badJson: true };
  }
}

/** One HTTP request: recorded, then faulted or routed. */
function serve(
  registry: FakeDbtRegistry,
  requests: RecordedRequest[],
  req: http.IncomingMessage,
  res: http.ServerResponse,
  raw: string,
): void {
  const method = req.method ?? 'GET';
  const path = (req.url ?? '/').split('?')[0];
  const { body, badJson } = parseBody(raw);
  const auth = req.headers.authorization;
  const record: RecordedRequest = { method, path, authorization: auth, body, outcome: 0 };
  requests.push(record);
  const reply = (status: number, payload: unknown) => {
    record.outcome = status;
    const text = JSON.stringify(payload);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const fault = registry.takeRequestFault(method, path);
  if (fault?.kind === 'hang') {
    record.outcome = 'hang';
    return; // never answered; close() destroys the socket
  }
  if (fault?.kind === 'reset' || fault?.kind === 'lose-reply') {
    if (fault.kind === 'lose-reply' && !badJson) registry.route(method, path, auth, body);
    record.outcome = 'reset';
    req.socket.destroy();
    return;
  }
  if (fault?.kind === 'status') {
    return reply(fault.status, fault.body ?? { error: 'Injected', message: `injected ${fault.status}` });
  }
  const answer = () => {
    if (badJson) return reply(400, { error: 'BadRequest', message: 'body is not JSON' });
    const out = registry.route(method, path, auth, body);
    reply(out.status, out.body);
  };
  if (fault?.kind === 'delay') setTimeout(answer, fault.ms);
  else answer();
}

export async function startFakeDbtApi(options: FakeDbtApiOptions = {}): Promise<FakeDbtApi> {
  const registry = new FakeDbtRegistry(options.token ?? `fake-${randomUUID()}`, options);
  const requests: RecordedRequest[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => serve(registry, requests, req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    token: registry.token,
    runs: registry.runs,
    requests,
    runsFor: (batchId) => registry.runs.filter((r) => r.batchId === batchId),
    getRun: (runId) => registry.byId.get(runId),
    inject: (fault) => {
      registry.faults.push({ ...fault, remaining: fault.count ?? 1 });
    },
    clearFaults: () => {
      registry.faults = [];
    },
    advance: (runId) => advanceRun(registry.mustGet(runId)),
    finish: (runId, status, error) => {
      const run = registry.mustGet(runId);
      run.status = status;
      run.startedAt ??= now();
      run.heartbeatAt ??= run.startedAt;
      run.finishedAt = now();
      if (status !== 'SUCCEEDED') run.error = error ?? `dbt run ${status}`;
      return run;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const socket of sockets) socket.destroy();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}
