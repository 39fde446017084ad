import { MissingConfiguration } from './errors';

/**
 * Reads a required environment variable at call time (never at module load, so tests and the
 * local twin can set it before invoking). Throws `MissingConfiguration` naming the variable.
 */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value.trim() === '') {
    throw new MissingConfiguration(
      `Environment variable ${name} is not set. Fix: set ${name} on the Lambda function (see docs/handlers.md)`,
    );
  }
  return value;
}

/** An optional positive integer from the environment, with a default. Rejects garbage loudly. */
export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new MissingConfiguration(`Environment variable ${name}="${raw}" is not a positive integer`);
  }
  return value;
}
