import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as z from '../../contracts/zod-mini';
import { HANDLER_ENV } from '../../contracts/env';
import { intEnv, readEnv, requireEnv } from './env';
import { DbtApiRejected, DbtApiUnavailable, MissingConfiguration } from '../../contracts/errors';
import { formatIssues } from './validate';

/**
 * Client for the dbt REST contract (docs/dbt-api.md). Every failure is one of two named errors:
 * `DbtApiUnavailable` (retry it) or `DbtApiRejected` (do not).
 *
 * Environment (read on every call, never at module load):
 * - DBT_API_URL                 base URL, e.g. http://dbt-api.dbt.svc.cluster.local:8080 (required)
 * - DBT_API_TOKEN_SECRET_ARN    Secrets Manager secret holding the bearer token (required unless DBT_API_TOKEN)
 * - DBT_API_TOKEN               LOCAL ONLY (tests, local twin): the token itself; takes precedence
 * - DBT_API_TIMEOUT_MS          per-request timeout, default 10000
 * - DBT_API_ALLOW_PLAIN_HTTP    'true' only with dbt.allowPlainHttp: permits an http:// URL off loopback
 *
 * https URLs are verified against the runtime's CA store (fetch's default); nothing disables it.
 */

export const RUN_STATUSES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'LOST', 'INTERRUPTED'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
/** Statuses a run never leaves. LOST: its worker stopped heartbeating; INTERRUPTED: stopped at shutdown. */
export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ['SUCCEEDED', 'FAILED', 'LOST', 'INTERRUPTED'];

/** The fence a claim was made under; the app passes it to dbt, whose on-run-start checks the warehouse fence. */
export interface RunFence {
  region: string;
  epoch: number;
}
export const DBT_COMMANDS = ['build', 'run', 'test', 'seed', 'snapshot'] as const;
export type DbtCommand = (typeof DBT_COMMANDS)[number];

export interface CreateRunRequest {
  batchId: string;
  pipeline: string;
  command: DbtCommand;
  select?: string;
  vars?: Record<string, unknown>;
  /** 1 unless the workflow deliberately reruns the batch; (batchId, attempt) is the idempotency key. */
  attempt?: number;
  fence: RunFence;
  /** A Step Functions task token: the app calls back with SendTask* (never logged, never returned). */
  taskToken?: string;
  /** v2 (docs/dbt-api.md): the pipeline lock the app renews on each heartbeat while QUEUED/RUNNING. */
  lease?: RunLease;
  /** v2: queue time and run time have separate bounds; the run's counts from RUNNING. */
  deadlines?: RunDeadlines;
}

/**
 * The lock item the app renews: `UpdateItem Key {pk, sk} SET leaseExpiresAt = now + seconds
 * CONDITION executionArn = :holder` on each heartbeat, so the lease never expires under a live run.
 */
export interface RunLease {
  pk: string;
  sk: string;
  /** The holding execution's ARN. */
  holder: string;
  seconds: number;
}

export interface RunDeadlines {
  /** A run still QUEUED this long after queuedAt ends FAILED (DbtRunQueueTimeout). */
  maxQueueMinutes: number;
  /** A run still RUNNING this long after startedAt ends FAILED (DbtRunTimeout). */
  maxRunMinutes: number;
}

const createRunResponseSchema = z.object({
  runId: z.string().check(z.minLength(1)),
  status: z.enum(RUN_STATUSES),
});
export type CreateRunResponse = z.output<typeof createRunResponseSchema> & { created: boolean };

const runSchema = z.object({
  runId: z.string().check(z.minLength(1)),
  batchId: z.string().check(z.minLength(1)),
  attempt: z.optional(z.number().check(z.int(), z.gte(1))),
  status: z.enum(RUN_STATUSES),
  queuedAt: z.optional(z.nullable(z.string())),
  startedAt: z.optional(z.nullable(z.string())),
  finishedAt: z.optional(z.nullable(z.string())),
  heartbeatAt: z.optional(z.nullable(z.string())),
  error: z.optional(z.nullable(z.string())),
});
export type DbtRun = z.output<typeof runSchema>;

const secrets = new SecretsManagerClient({});
let cachedToken: { arn: string; token: string } | undefined;

/** Drops the cached token (a 401 may mean it was rotated). Exported for tests. */
export function clearTokenCache(): void {
  cachedToken = undefined;
}

/** Overridable for tests and the local twin; the default is the module-level Secrets Manager client. */
export const tokenSource = {
  getSecretString: async (arn: string): Promise<string | undefined> =>
    (await secrets.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString,
};

async function bearerToken(): Promise<{ token: string; fromSecret: boolean }> {
  const local = readEnv(HANDLER_ENV.DBT_API_TOKEN);
  if (local) return { token: local, fromSecret: false };
  const arn = requireEnv(HANDLER_ENV.DBT_API_TOKEN_SECRET_ARN);
  if (cachedToken?.arn === arn) return { token: cachedToken.token, fromSecret: true };
  const raw = await tokenSource.getSecretString(arn);
  if (!raw)
    throw new MissingConfiguration(`Secret ${arn} has no SecretString; store the dbt API token as a string`);
  // Accept a plain token or {"token": "..."}.
  let token = raw.trim();
  if (token.startsWith('{')) {
    const parsed = JSON.parse(token) as { token?: unknown };
    if (typeof parsed.token !== 'string' || !parsed.token) {
      throw new MissingConfiguration(`Secret ${arn} is JSON without a "token" string`);
    }
    token = parsed.token;
  }
  cachedToken = { arn, token };
  return { token, fromSecret: true };
}

const LOOPBACK_HOSTS = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/;

function baseUrl(): string {
  const raw = requireEnv(HANDLER_ENV.DBT_API_URL);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new MissingConfiguration(`Environment variable DBT_API_URL="${raw}" is not a URL`);
  }
  // The bearer token must not cross the network in clear: plain HTTP only on loopback (tests, the
  // local twin) or with the explicit, unsafe dbt.allowPlainHttp (DBT_API_ALLOW_PLAIN_HTTP=true).
  if (
    url.protocol === 'http:' &&
    !LOOPBACK_HOSTS.test(url.hostname) &&
    readEnv(HANDLER_ENV.DBT_API_ALLOW_PLAIN_HTTP) !== 'true'
  ) {
    throw new MissingConfiguration(
      `DBT_API_URL="${raw}" is plain HTTP. Fix: configure dbt.tls (https), or set dbt.allowPlainHttp true, which sets DBT_API_ALLOW_PLAIN_HTTP=true`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new MissingConfiguration(`DBT_API_URL="${raw}" is not an http(s) URL`);
  return url.toString().replace(/\/+$/, '');
}

interface HttpResult {
  status: number;
  body: unknown;
}

async function send(method: 'GET' | 'POST', path: string, payload?: unknown): Promise<HttpResult> {
  const url = `${baseUrl()}${path}`;
  const timeoutMs = intEnv(HANDLER_ENV.DBT_API_TIMEOUT_MS, 10_000);
  for (let attempt = 1; ; attempt++) {
    const { token, fromSecret } = await bearerToken();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: payload === undefined ? undefined : JSON.stringify(payload),
        signal: controller.signal,
      });
      text = await response.text();
    } catch (error) {
      if (controller.signal.aborted) {
        throw new DbtApiUnavailable(`${method} ${url} timed out after ${timeoutMs} ms`, { cause: error });
      }
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const detail = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new DbtApiUnavailable(`${method} ${url} failed: ${detail}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }

    // A rotated secret: refetch once, then give up.
    if (response.status === 401 && fromSecret && attempt === 1) {
      clearTokenCache();
      continue;
    }
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text.slice(0, 500);
      }
    }
    if (response.status >= 500 || response.status === 429) {
      throw new DbtApiUnavailable(`${method} ${path} returned ${response.status}: ${describe(body)}`, {
        status: response.status,
      });
    }
    if (response.status >= 400) {
      throw new DbtApiRejected(
        `${method} ${path} returned ${response.status}: ${describe(body)}`,
        response.status,
      );
    }
    return { status: response.status, body };
  }
}

function describe(body: unknown): string {
  if (body && typeof body === 'object') {
    const b = body as { error?: unknown; message?: unknown };
    const parts = [b.error, b.message].filter((p) => typeof p === 'string');
    if (parts.length) return parts.join(': ');
    return JSON.stringify(body).slice(0, 500);
  }
  return String(body ?? '(empty body)');
}

function parseReply<S extends z.ZodMiniType>(schema: S, result: HttpResult, what: string): z.output<S> {
  const parsed = schema.safeParse(result.body);
  if (!parsed.success) {
    // A 2xx that breaks the contract is most likely a proxy or a half-deployed app: retry it.
    throw new DbtApiUnavailable(
      `${what} returned ${result.status} with a body outside the contract: ${formatIssues(parsed.error.issues)}`,
      {
        status: result.status,
      },
    );
  }
  return parsed.data;
}

/** POST /api/v1/runs. `created` is true on 202 (new run) and false on 200 (existing run for the key). */
export async function createRun(request: CreateRunRequest): Promise<CreateRunResponse> {
  const result = await send('POST', '/api/v1/runs', request);
  const reply = parseReply(createRunResponseSchema, result, 'POST /api/v1/runs');
  return { ...reply, created: result.status === 202 };
}

/** GET /api/v1/runs/{runId}. */
export async function getRun(runId: string): Promise<DbtRun> {
  const result = await send('GET', `/api/v1/runs/${encodeURIComponent(runId)}`);
  return parseReply(runSchema, result, 'GET /api/v1/runs/{runId}');
}

/** GET /api/v1/batches/{batchId}/attempts/{attempt}: reconciliation by key (404 → DbtApiRejected with status 404). */
export async function getRunByKey(batchId: string, attempt: number): Promise<DbtRun> {
  const result = await send('GET', `/api/v1/batches/${encodeURIComponent(batchId)}/attempts/${attempt}`);
  return parseReply(runSchema, result, 'GET /api/v1/batches/{batchId}/attempts/{attempt}');
}

/** GET /healthz; resolves when the app answers 200. */
export async function health(): Promise<unknown> {
  return (await send('GET', '/healthz')).body;
}
