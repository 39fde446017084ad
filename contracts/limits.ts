/**
 * AWS limits the config is validated against (regions/schema.ts) and the components stay within.
 * Each names the AWS rule it encodes, so an error message can quote it.
 */

/** CloudWatch Logs `retentionInDays` accepts only these values. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** EventBridge rule targets and Scheduler schedules share these retry-policy bounds. */
export const RETRY_ATTEMPTS = { min: 0, max: 185 } as const;
export const EVENT_AGE_SECONDS = { min: 60, max: 86_400 } as const;

/** Lambda asynchronous invocation config bounds. */
export const LAMBDA_ASYNC_RETRIES = { min: 0, max: 2 } as const;
export const LAMBDA_ASYNC_EVENT_AGE_SECONDS = { min: 60, max: 21_600 } as const;

/** Scheduler `FlexibleTimeWindow.MaximumWindowInMinutes`. */
export const FLEXIBLE_WINDOW_MINUTES = { min: 1, max: 1_440 } as const;

/** Glue job worker types that Glue 4.0+ Spark jobs accept. */
export const GLUE_WORKER_TYPES = ['G.1X', 'G.2X', 'G.4X', 'G.8X', 'G.025X', 'Z.2X'] as const;
