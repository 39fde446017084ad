import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local Step Functions callback endpoint: the JSON protocol of SendTaskSuccess / SendTaskFailure /
 * SendTaskHeartbeat (`X-Amz-Target: AWSStepFunctions.<Op>`, body `{taskToken, output | error, cause}`),
 * resolving or rejecting the pending `.waitForTaskToken` wait that owns the token. This is what
 * aws-local-stepfunctions lacks: its Task override IS the wait (see waitForTaskToken below).
 *
 * Heartbeats: each wait has a timer of `heartbeatMs`; a SendTaskHeartbeat re-arms it; when it fires
 * the wait rejects with an Error named `States.HeartbeatTimeout` (what a Catch on that name takes).
 * A token whose wait has ended answers `TaskTimedOut` (as AWS does), an unknown token `InvalidToken`.
 */

/** An error whose `name` is the ASL error code. */
export class TaskError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export interface CallbackCall {
  op: 'SendTaskSuccess' | 'SendTaskFailure' | 'SendTaskHeartbeat' | string;
  token: string;
  at: number;
  /** What the endpoint answered: 'ok' or the error type. */
  answer: string;
}

interface Wait {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  heartbeatMs: number;
  timer: NodeJS.Timeout | undefined;
  deadline: NodeJS.Timeout | undefined;
}

export class TaskTokenEndpoint {
  readonly calls: CallbackCall[] = [];
  /**
   * Fault injection: when it returns true for a SendTaskSuccess/Failure, the call is answered 200 but
   * never reaches the waiting task (a callback lost on the way; the task then times out on heartbeats).
   */
  intercept?: (op: string, token: string) => boolean;
  private readonly waits = new Map<string, Wait>();
  private readonly ended = new Set<string>();

  private constructor(
    private readonly server: http.Server,
    /** `http://127.0.0.1:<port>`: the app's AWS_ENDPOINT_URL_SFN. */
    readonly endpoint: string,
  ) {}

  static async start(): Promise<TaskTokenEndpoint> {
    const ref: { self?: TaskTokenEndpoint } = {};
    const server = http.createServer((req, res) => ref.self!.serve(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const self = new TaskTokenEndpoint(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    ref.self = self;
    return self;
  }

  /**
   * Registers a wait for `token`: resolves with SendTaskSuccess's output (parsed JSON), rejects with
   * SendTaskFailure's error/cause, `States.HeartbeatTimeout` after `heartbeatMs` without a heartbeat,
   * or `States.Timeout` after `timeoutMs`. Register before handing the token out.
   */
  wait(
    token: string,
    opts: { heartbeatMs: number; timeoutMs?: number },
  ): { result: Promise<unknown>; cancel: () => void } {
    if (this.waits.has(token) || this.ended.has(token))
      throw new Error(`sfn-callbacks: token ${token} is already used; tokens are unique per task attempt`);
    let wait!: Wait;
    const result = new Promise<unknown>((resolve, reject) => {
      wait = { resolve, reject, heartbeatMs: opts.heartbeatMs, timer: undefined, deadline: undefined };
    });
    void result.catch(() => {}); // observed by the caller later; never an unhandled rejection
    this.waits.set(token, wait);
    this.arm(token, wait);
    if (opts.timeoutMs !== undefined)
      wait.deadline = setTimeout(
        () => this.end(token, new TaskError('States.Timeout', 'the task timed out')),
        opts.timeoutMs,
      );
    return { result, cancel: () => this.end(token, undefined) };
  }

  private arm(token: string, w: Wait): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = setTimeout(
      () =>
        this.end(
          token,
          new TaskError('States.HeartbeatTimeout', `no SendTaskHeartbeat within ${w.heartbeatMs} ms`),
        ),
      w.heartbeatMs,
    );
  }

  private end(token: string, outcome: Error | { output: unknown } | undefined): void {
    const w = this.waits.get(token);
    if (!w) return;
    this.waits.delete(token);
    this.ended.add(token);
    clearTimeout(w.timer);
    clearTimeout(w.deadline);
    if (outcome instanceof Error) w.reject(outcome);
    else if (outcome) w.resolve(outcome.output);
  }

  /** Calls of one operation (optionally for one token). */
  named(op: string, token?: string): CallbackCall[] {
    return this.calls.filter((c) => c.op === op && (token === undefined || c.token === token));
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const op = String(req.headers['x-amz-target'] ?? '').replace(/^AWSStepFunctions\./, '');
      const answer = (status: number, body: Record<string, unknown>, type = 'ok') => {
        this.calls.push({ op, token: String(parsed?.taskToken ?? ''), at: Date.now(), answer: type });
        const text = JSON.stringify(body);
        res.writeHead(status, {
          'Content-Type': 'application/x-amz-json-1.0',
          'Content-Length': Buffer.byteLength(text),
        });
        res.end(text);
      };
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
      } catch {
        return answer(
          400,
          { __type: 'SerializationException', message: 'body is not JSON' },
          'SerializationException',
        );
      }
      if (!['SendTaskSuccess', 'SendTaskFailure', 'SendTaskHeartbeat'].includes(op))
        return answer(
          400,
          {
            __type: 'UnknownOperationException',
            message: `${op} is not served locally; only SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat`,
          },
          'UnknownOperationException',
        );
      const token = parsed.taskToken;
      if (typeof token !== 'string' || token === '')
        return answer(400, { __type: 'InvalidToken', message: 'taskToken is required' }, 'InvalidToken');
      const w = this.waits.get(token);
      if (!w) {
        const type = this.ended.has(token) ? 'TaskTimedOut' : 'InvalidToken';
        return answer(
          400,
          { __type: type, message: type === 'TaskTimedOut' ? 'Task Timed Out' : 'Invalid Token' },
          type,
        );
      }
      if (op === 'SendTaskHeartbeat') {
        this.arm(token, w);
        return answer(200, {});
      }
      if (this.intercept?.(op, token)) return answer(200, {}, 'lost');
      if (op === 'SendTaskSuccess') {
        let output: unknown;
        try {
          output = JSON.parse(String(parsed.output));
        } catch {
          return answer(400, { __type: 'InvalidOutput', message: 'output is not JSON' }, 'InvalidOutput');
        }
        this.end(token, { output });
        return answer(200, {});
      }
      this.end(token, new TaskError(String(parsed.error ?? 'States.TaskFailed'), String(parsed.cause ?? '')));
      return answer(200, {});
    });
  }

  /** Rejects every open wait (`States.Runtime`) and closes the server. */
  async stop(): Promise<void> {
    for (const token of [...this.waits.keys()])
      this.end(token, new TaskError('States.Runtime', 'the callback endpoint stopped'));
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/**
 * The `lambda:invoke.waitForTaskToken` override for aws-local-stepfunctions: mint a fresh token for
 * this task attempt (Step Functions gives every attempt and every re-entry its own token; the local
 * engine has one context token per execution), register the wait, invoke the real start handler
 * with the token in its payload, then wait for the callback. A start that throws fails the task
 * with its error (the wait is dropped).
 */
export function waitForTaskToken(opts: {
  endpoint: TaskTokenEndpoint;
  /** The real start handler (e.g. handlers/start-dbt-run), called with the payload. */
  start: (payload: Record<string, unknown>) => Promise<unknown>;
  /** HeartbeatSeconds of the state, scaled to this run's wall time. */
  heartbeatMs: number;
  timeoutMs?: number;
  /** Sees every minted token (tests assert uniqueness). */
  onToken?: (token: string, payload: Record<string, unknown>) => void;
}): (payload: unknown, functionName: string, token: string) => Promise<unknown> {
  let n = 0;
  return async (payload, _fn, token) => {
    const fresh = `${token}#${++n}`;
    const p = { ...(payload as Record<string, unknown>), taskToken: fresh };
    opts.onToken?.(fresh, p);
    const wait = opts.endpoint.wait(fresh, {
      heartbeatMs: opts.heartbeatMs,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    });
    try {
      await opts.start(p);
    } catch (e) {
      wait.cancel();
      throw e;
    }
    return wait.result;
  };
}
