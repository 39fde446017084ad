import * as readline from 'node:readline';

/** An expected failure: the CLI prints its message (no stack trace) and exits non-zero. */
export class OpsError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'OpsError';
  }
}

/** Everything a command says or asks goes through here, so tests can capture it. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Asks a yes/no question; resolves true only for an explicit yes. */
  confirm(question: string): Promise<boolean>;
}

/** Options every mutating command shares. */
export interface RunOptions {
  /**
   * Skip the confirmation prompt (--yes).
   * @default false
   */
  readonly yes?: boolean;
  /**
   * Print the plan and change nothing (--dry-run).
   * @default false
   */
  readonly dryRun?: boolean;
}

export function consoleIo(
  input: NodeJS.ReadableStream = process.stdin,
  output: NodeJS.WritableStream = process.stderr,
): Io {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    confirm: (question) =>
      new Promise((resolve) => {
        const rl = readline.createInterface({ input, output, terminal: false });
        let answered = false;
        rl.question(`${question} [y/N] `, (answer) => {
          answered = true;
          rl.close();
          resolve(/^y(es)?$/i.test(answer.trim()));
        });
        // stdin closed without an answer (non-interactive): treat as "no".
        rl.once('close', () => {
          if (!answered) resolve(false);
        });
      }),
  };
}

/** A recording Io for tests: `answers` are consumed by `confirm` in order (default: yes). */
export function memoryIo(
  answers: boolean[] = [],
): Io & { lines: string[]; errors: string[]; questions: string[]; text(): string } {
  const lines: string[] = [];
  const errors: string[] = [];
  const questions: string[] = [];
  return {
    lines,
    errors,
    questions,
    out: (line) => lines.push(line),
    err: (line) => errors.push(line),
    confirm: async (question) => {
      questions.push(question);
      return answers.length > 0 ? (answers.shift() as boolean) : true;
    },
    text: () => [...lines, ...errors].join('\n'),
  };
}

/**
 * Prints the plan, then asks (unless --yes). Returns false for --dry-run (nothing to do) and
 * throws when the operator declines.
 */
export async function planAndConfirm(
  io: Io,
  plan: string[],
  opts: RunOptions,
  question = 'Proceed?',
): Promise<boolean> {
  io.out(opts.dryRun ? 'Plan (dry run, nothing will be changed):' : 'Plan:');
  for (const step of plan) io.out(`  - ${step}`);
  if (opts.dryRun) {
    io.out('Dry run: no changes made.');
    return false;
  }
  if (!opts.yes && !(await io.confirm(question))) {
    throw new OpsError('Aborted: not confirmed (pass --yes to skip the question).');
  }
  return true;
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: string[][]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (c ?? '').padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

export function errorName(error: unknown): string {
  return (error as { name?: string })?.name ?? 'Error';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
