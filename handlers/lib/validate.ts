import type * as z from '../../contracts/zod-mini';
import { InvalidInput } from '../../contracts/errors';

/** Renders zod issues as `path: message; path: message`. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(input)'}: ${issue.message}`)
    .join('; ');
}

/** Parses `input` with `schema`, or throws `InvalidInput` naming the handler and every problem. */
export function parseInput<S extends z.ZodMiniType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new InvalidInput(`Invalid ${what} input: ${formatIssues(result.error.issues)}`);
  }
  return result.data;
}
