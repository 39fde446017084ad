import type { HandlerEnvName } from '../../contracts/env';
import { MissingConfiguration } from '../../contracts/errors';

/**
 * An optional variable, as set. Callers name it through `HANDLER_ENV` (contracts/env.ts), so the
 * components and the handlers cannot drift apart.
 */
export function readEnv(name: HandlerEnvName): string | undefined {
  return process.env[name];
}

/**
 * Reads a required environment variable at call time (never at module load, so tests and the
 * local twin can set it before invoking). Throws `MissingConfiguration` naming the variable.
 */
export function requireEnv(name: HandlerEnvName): string {
  const value = readEnv(name);
  if (value === undefined || value.trim() === '') {
    throw new MissingConfiguration(
      `Environment variable ${name} is not set. Fix: set ${name} on the Lambda function (see docs/handlers.md)`,
    );
  }
  return value;
}

/** An optional positive integer from the environment, with a default. Rejects garbage loudly. */
export function intEnv(name: HandlerEnvName, fallback: number): number {
  const raw = readEnv(name);
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new MissingConfiguration(`Environment variable ${name}="${raw}" is not a positive integer`);
  }
  return value;
}
