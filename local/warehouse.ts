import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';

/** A CONTROL.BUILDS row as the warehouse holds it (dbt-app/local_warehouse). */
export interface BuildRow {
  invocation_id: string;
  command: string;
  pipeline: string;
  batch_id: string;
  attempt: number;
  run_id: string;
  region: string;
  epoch: number;
  /** `YYYY-MM-DD HH:MM:SS.ffffff` (the server's clock, UTC). */
  started_at: string;
  finished_at: string | null;
  status: string;
}

/**
 * The shared local warehouse (one fakesnow server for both regions), run as
 * `python -m local_warehouse serve-jsonl` in dbt-app/: the server plus a JSON-lines control channel
 * on stdin/stdout for the sink fence and the build log. Nothing here fakes the warehouse's answers.
 */
export class LocalWarehouse {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  log = '';

  private constructor(
    private readonly proc: ChildProcess,
    /** The fakesnow server's port on 127.0.0.1. */
    readonly port: number,
    lines: readline.Interface,
  ) {
    lines.on('line', (line) => {
      if (!line.startsWith('{"id"')) return;
      let msg: { id: number; result?: unknown; error?: string };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch (error) {
        // An answer line that does not parse fails every waiting call loudly, never the process.
        for (const w of this.waiting.values())
          w.reject(
            new Error(
              `local warehouse: unreadable answer ${line.slice(0, 200)}: ${(error as Error).message}`,
            ),
          );
        this.waiting.clear();
        return;
      }
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (msg.error !== undefined) w?.reject(new Error(`local warehouse: ${msg.error}`));
      else w?.resolve(msg.result);
    });
  }

  /** Starts the server (schemas created, nothing seeded); `root` is the repository root. */
  static async start(root: string): Promise<LocalWarehouse> {
    const proc = spawn(path.join(root, '.venv', 'bin', 'python'), ['-m', 'local_warehouse', 'serve-jsonl'], {
      cwd: path.join(root, 'dbt-app'),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-4000)));
    const lines = readline.createInterface({ input: proc.stdout! });
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`local warehouse did not start in 60 s: ${stderr}`)),
        60_000,
      );
      const onLine = (line: string) => {
        if (!line.startsWith('{"port"')) return;
        clearTimeout(timer);
        lines.off('line', onLine);
        resolve((JSON.parse(line) as { port: number }).port);
      };
      lines.on('line', onLine);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`local warehouse exited ${code}: ${stderr}`));
      });
    });
    const wh = new LocalWarehouse(proc, port, lines);
    proc.stderr!.on('data', (d) => (wh.log = (wh.log + String(d)).slice(-20_000)));
    return wh;
  }

  private call<T>(cmd: Record<string, unknown>): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.stdin!.write(`${JSON.stringify({ id, ...cmd })}\n`);
    });
  }

  /** CONTROL.FENCE := (region, epoch); epochs only move forward unless `allowBackwards`. */
  setFence(region: string, epoch: number, allowBackwards = false): Promise<[string, number]> {
    return this.call({ op: 'set_fence', region, epoch, allowBackwards });
  }

  fence(): Promise<[string, number] | null> {
    return this.call({ op: 'fence' });
  }

  /** CONTROL.BUILDS rows, oldest first. */
  builds(filter: { pipeline?: string; batchId?: string } = {}): Promise<BuildRow[]> {
    return this.call({ op: 'builds', ...filter });
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
