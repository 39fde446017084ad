import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { DBT_APP_ENV } from '../contracts/env';

/**
 * Real dbt app pods for one region: N `gunicorn -c gunicorn.conf.py app:app` processes (dbt-app/),
 * started with the Deployment's rendered environment, behind a round-robin TCP proxy (an NLB without
 * affinity: each new connection goes to the next pod; a pod that refuses the connection is skipped).
 * Only these are replaced locally: PORT, HOME/TMPDIR/DBT_*_PATH (a private directory for the pod's
 * emptyDir /tmp), PATH, the AWS endpoints (AWS_ENDPOINT_URL_DYNAMODB / _SECRETS_MANAGER / _SFN), dummy
 * signing keys, DBT_BIN/DBT_PROJECT_DIR (the dbt stand-in), and the timing overrides the caller passes.
 */

export interface DbtPodsOptions {
  /** Repository root (holds .venv/ and dbt-app/). */
  readonly root: string;
  readonly region: string;
  /** @default 2 */
  readonly replicas?: number;
  /** The container env the program's Deployment renders (secretKeyRefs resolved). */
  readonly deploymentEnv: Readonly<Record<string, string>>;
  readonly endpoints: { readonly dynamodb: string; readonly secretsManager: string; readonly sfn: string };
  /** Overrides for tests, e.g. RUN_HEARTBEAT_SECONDS: '0.3' (decimals allowed). */
  readonly overrides?: Readonly<Record<string, string>>;
  /** Where pod logs, tmp dirs and the stand-in's project dir live. */
  readonly workDir: string;
  /** The dbt executable. @default dbt-app/local_warehouse/dbt_standin.py */
  readonly dbtBin?: string;
}

export class Pod {
  proc: ChildProcess | undefined;
  log = '';
  constructor(
    readonly index: number,
    public port: number,
  ) {}
  get alive(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** A loopback TCP proxy, round robin per connection; refused backends are skipped. */
export class RoundRobinProxy {
  private next = 0;
  private readonly sockets = new Set<net.Socket>();
  /** Backend port of every connection, in order. */
  readonly routed: number[] = [];
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    public backends: number[],
  ) {}

  static async start(backends: number[]): Promise<RoundRobinProxy> {
    const ref: { self?: RoundRobinProxy } = {};
    const server = net.createServer((c) => ref.self!.accept(c));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const self = new RoundRobinProxy(server, (server.address() as net.AddressInfo).port, backends);
    ref.self = self;
    return self;
  }

  private accept(client: net.Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    const order = this.backends.map((_, i) => this.backends[(this.next + i) % this.backends.length]);
    this.next++;
    const tryNext = (i: number) => {
      if (i >= order.length) return client.destroy();
      const upstream = net.connect(order[i], '127.0.0.1');
      upstream.once('error', () => {
        upstream.destroy();
        tryNext(i + 1);
      });
      upstream.once('connect', () => {
        upstream.removeAllListeners('error');
        upstream.on('error', () => client.destroy());
        this.sockets.add(upstream);
        upstream.on('close', () => {
          this.sockets.delete(upstream);
          client.destroy();
        });
        client.on('close', () => upstream.destroy());
        this.routed.push(order[i]);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    tryNext(0);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export class DbtPods {
  readonly pods: Pod[] = [];
  private constructor(
    readonly options: DbtPodsOptions,
    readonly proxy: RoundRobinProxy,
    /** The stand-in's project dir (standin.json controls build durations and failures). */
    readonly projectDir: string,
  ) {}

  /** `http://127.0.0.1:<proxy>`: the region's DBT_API_URL. */
  get url(): string {
    return `http://127.0.0.1:${this.proxy.port}`;
  }

  /** The bearer token from the Deployment's env (the Kubernetes Secret). */
  get token(): string {
    return this.options.deploymentEnv[DBT_APP_ENV.DBT_API_TOKEN];
  }

  static async start(options: DbtPodsOptions): Promise<DbtPods> {
    const projectDir = path.join(options.workDir, `${options.region}-project`);
    fs.mkdirSync(projectDir, { recursive: true });
    const pods = new DbtPods(options, await RoundRobinProxy.start([]), projectDir);
    try {
      await Promise.all(
        Array.from({ length: options.replicas ?? 2 }, async (_, i) =>
          pods.startPod(new Pod(i, await freePort())),
        ),
      );
    } catch (e) {
      await pods.stop();
      throw e;
    }
    return pods;
  }

  private env(pod: Pod): Record<string, string> {
    const { root, deploymentEnv, endpoints, overrides, workDir, region } = this.options;
    const tmp = path.join(workDir, `${region}-pod-${pod.index}`);
    fs.mkdirSync(tmp, { recursive: true });
    const venvBin = path.join(root, '.venv', 'bin');
    return {
      ...deploymentEnv,
      PORT: String(pod.port),
      HOME: tmp,
      TMPDIR: tmp,
      DBT_LOG_PATH: path.join(tmp, 'logs'),
      DBT_TARGET_PATH: path.join(tmp, 'target'),
      PATH: `${venvBin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      [DBT_APP_ENV.DBT_BIN]:
        this.options.dbtBin ?? path.join(root, 'dbt-app', 'local_warehouse', 'dbt_standin.py'),
      DBT_PROJECT_DIR: this.projectDir,
      DBT_PROFILES_DIR: path.join(root, 'dbt-app', 'profiles'),
      AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secretsManager,
      AWS_ENDPOINT_URL_SFN: endpoints.sfn,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      ...overrides,
    };
  }

  private async startPod(pod: Pod): Promise<void> {
    const { root } = this.options;
    pod.log = '';
    pod.proc = spawn(path.join(root, '.venv', 'bin', 'gunicorn'), ['-c', 'gunicorn.conf.py', 'app:app'], {
      cwd: path.join(root, 'dbt-app'),
      env: this.env(pod),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: a kill reaches gunicorn, its worker and dbt
    });
    const append = (d: Buffer) => (pod.log = (pod.log + String(d)).slice(-50_000));
    pod.proc.stdout!.on('data', append);
    pod.proc.stderr!.on('data', append);
    if (!this.pods.includes(pod)) this.pods.push(pod);
    const deadline = Date.now() + 60_000;
    while ((await health(pod.port)) !== 200) {
      if (!pod.alive)
        throw new Error(`dbt pod ${this.options.region}#${pod.index} exited at start:\n${pod.log}`);
      if (Date.now() > deadline)
        throw new Error(`dbt pod ${this.options.region}#${pod.index} not healthy in 60 s:\n${pod.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!this.proxy.backends.includes(pod.port)) this.proxy.backends.push(pod.port);
  }

  /** Sends `signal` to the pod's process group (SIGKILL: gunicorn, its worker and dbt die at once). */
  async kill(index: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const pod = this.pods[index];
    if (!pod.alive) return;
    const exited = new Promise((r) => pod.proc!.once('exit', r));
    process.kill(-pod.proc!.pid!, signal);
    await exited;
    // The arbiter is gone; its worker may hold the inherited listening socket a moment longer.
    const deadline = Date.now() + 10_000;
    while ((await accepts(pod.port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  /** Starts a killed pod again on its port. */
  async restart(index: number): Promise<void> {
    const pod = this.pods[index];
    if (pod.alive) await this.kill(index);
    await this.startPod(pod);
  }

  /** Pod index whose gunicorn worker has `pid` (the app's workerId is `<host>-<pid>-<suffix>`). */
  podOfWorkerPid(pid: number): number {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return this.pods.findIndex((p) => p.proc?.pid === ppid || p.proc?.pid === pid);
  }

  async stop(): Promise<void> {
    for (const pod of this.pods) if (pod.alive) await this.kill(pod.index, 'SIGKILL').catch(() => undefined);
    await this.proxy.stop();
  }
}

/** True while something accepts TCP connections on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function health(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(undefined));
    req.on('timeout', () => {
      req.destroy();
      resolve(undefined);
    });
  });
}

/**
 * A local Secrets Manager endpoint serving GetSecretValue for fixed secrets (the app reads the
 * Snowflake secret at start). Anything else answers UnknownOperationException.
 */
export class LocalSecrets {
  private constructor(
    private readonly server: http.Server,
    readonly endpoint: string,
  ) {}

  static async start(secrets: Record<string, string>): Promise<LocalSecrets> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const op = String(req.headers['x-amz-target'] ?? '');
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { SecretId?: string };
        const reply = (status: number, payload: unknown) => {
          const text = JSON.stringify(payload);
          res.writeHead(status, {
            'Content-Type': 'application/x-amz-json-1.1',
            'Content-Length': Buffer.byteLength(text),
          });
          res.end(text);
        };
        if (op !== 'secretsmanager.GetSecretValue')
          return reply(400, { __type: 'UnknownOperationException', message: `${op} is not served locally` });
        const value = body.SecretId !== undefined ? secrets[body.SecretId] : undefined;
        if (value === undefined)
          return reply(400, {
            __type: 'ResourceNotFoundException',
            message: `Secrets Manager can't find the specified secret: ${body.SecretId}`,
          });
        reply(200, {
          ARN: `arn:aws:secretsmanager:local:000000000000:secret:${body.SecretId}`,
          Name: body.SecretId,
          SecretString: value,
          VersionId: 'v1',
          VersionStages: ['AWSCURRENT'],
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return new LocalSecrets(server, `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
