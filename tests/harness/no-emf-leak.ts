/**
 * Root hook (loaded by .mocharc): CloudWatch EMF lines (`{"_aws":...}`) that handlers print for
 * Lambda must not reach the test output. Tests and tools route them to a sink: the harnesses set
 * POWERTOOLS_METRICS_DISABLED, the twin captures them into its timeline. A line that still gets
 * through is swallowed here and fails the test that printed it.
 */
const leaked: string[] = [];
const write = process.stdout.write.bind(process.stdout) as (...args: unknown[]) => boolean;
process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => {
  const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
  if (text.startsWith('{"_aws"')) {
    leaked.push(text.trim().slice(0, 200));
    const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    done?.();
    return true;
  }
  return write(chunk, ...rest);
}) as typeof process.stdout.write;

export const mochaHooks = {
  afterEach(): void {
    if (leaked.length === 0) return;
    const lines = leaked.splice(0);
    throw new Error(
      `${lines.length} EMF metric line(s) leaked to stdout (set POWERTOOLS_METRICS_DISABLED=true in the handler's env or capture them): ${lines[0]}`,
    );
  },
};
