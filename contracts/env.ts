/**
 * Environment variable names: the components set them, the handlers and the dbt app read them.
 * Spelt here only; a rename changes both sides at once.
 */

/** What the Lambda handlers read (docs/handlers.md); the components set them on each function. */
export const HANDLER_ENV = {
  /** The control table (this region's replica): check-consistency, fence-writer, watchdog. */
  CONTROL_TABLE_NAME: 'CONTROL_TABLE_NAME',
  /** Secrets Manager id of the Snowflake credentials: fence-writer. */
  SNOWFLAKE_SECRET_ID: 'SNOWFLAKE_SECRET_ID',
  /** LOCAL ONLY: fence-writer's Snowflake SQL API endpoint override; unset in AWS. */
  SNOWFLAKE_SQL_API_URL: 'SNOWFLAKE_SQL_API_URL',
  /** The dbt app's base URL: start-dbt-run, get-dbt-run. */
  DBT_API_URL: 'DBT_API_URL',
  /** Secret holding the dbt API bearer token (required unless DBT_API_TOKEN). */
  DBT_API_TOKEN_SECRET_ARN: 'DBT_API_TOKEN_SECRET_ARN',
  /** LOCAL ONLY (tests, the twin): the dbt API token itself; takes precedence over the secret. */
  DBT_API_TOKEN: 'DBT_API_TOKEN',
  /** Per-request timeout of the dbt API client. */
  DBT_API_TIMEOUT_MS: 'DBT_API_TIMEOUT_MS',
  /** 'true' only with dbt.allowPlainHttp: permits an http:// dbt API URL off loopback. */
  DBT_API_ALLOW_PLAIN_HTTP: 'DBT_API_ALLOW_PLAIN_HTTP',
  /** The downstream workflow start-downstream starts. */
  DOWNSTREAM_STATE_MACHINE_ARN: 'DOWNSTREAM_STATE_MACHINE_ARN',
  /** Comma-separated pipelines start-downstream accepts. */
  PIPELINES: 'PIPELINES',
  /** The platform's event source: start-downstream, watchdog. */
  EVENT_SOURCE: 'EVENT_SOURCE',
  /** The watchdog's pipelines: [{name, expression, timezone?, graceMinutes, downstreamArn, anchor?}]. */
  PIPELINES_JSON: 'PIPELINES_JSON',
  /** Watchdog: an upstream SUCCEEDED this long ago without a downstream record is a lost trigger. */
  LOST_TRIGGER_MINUTES: 'LOST_TRIGGER_MINUTES',
  /** Watchdog: a downstream run CLAIMED/RUNNING this long is overrunning. */
  MAX_DOWNSTREAM_MINUTES: 'MAX_DOWNSTREAM_MINUTES',
  /** Watchdog: how far back it looks (default 48). */
  LOOKBACK_HOURS: 'LOOKBACK_HOURS',
  /** Watchdog: its alert workflow (state machine), which publishes each alert to the alerts topic. */
  ALERTS_STATE_MACHINE_ARN: 'ALERTS_STATE_MACHINE_ARN',
  /** Powertools' logger service name; set per function. */
  POWERTOOLS_SERVICE_NAME: 'POWERTOOLS_SERVICE_NAME',
  /** Powertools' own switch: 'true' routes EMF metrics nowhere (tests, local tools). */
  POWERTOOLS_METRICS_DISABLED: 'POWERTOOLS_METRICS_DISABLED',
} as const;
export type HandlerEnvName = keyof typeof HANDLER_ENV;

/**
 * What the dbt app reads: exactly the names of dbt-app/env-contract.json, which the app itself
 * (dbt-app/settings.py) and the Deployment (k8s/dbt-app.ts) are checked against. tests/contracts.test.ts
 * proves this list and the JSON agree; the JSON keeps who supplies each one, defaults and descriptions.
 */
export const DBT_APP_ENV = {
  DBT_API_TOKEN: 'DBT_API_TOKEN',
  DBT_API_READ_TOKEN: 'DBT_API_READ_TOKEN',
  PORT: 'PORT',
  AWS_REGION: 'AWS_REGION',
  DBT_RUNS_TABLE: 'DBT_RUNS_TABLE',
  CONTROL_TABLE: 'CONTROL_TABLE',
  SNOWFLAKE_SECRET_ID: 'SNOWFLAKE_SECRET_ID',
  DBT_TARGET: 'DBT_TARGET',
  DBT_PROJECT_DIR: 'DBT_PROJECT_DIR',
  DBT_PROFILES_DIR: 'DBT_PROFILES_DIR',
  DBT_BIN: 'DBT_BIN',
  PATH: 'PATH',
  DBT_RUN_TIMEOUT_SECONDS: 'DBT_RUN_TIMEOUT_SECONDS',
  RUN_HEARTBEAT_SECONDS: 'RUN_HEARTBEAT_SECONDS',
  RUN_LOST_AFTER_SECONDS: 'RUN_LOST_AFTER_SECONDS',
  TASK_HEARTBEAT_SECONDS: 'TASK_HEARTBEAT_SECONDS',
  QUEUE_POLL_SECONDS: 'QUEUE_POLL_SECONDS',
  SHUTDOWN_GRACE_SECONDS: 'SHUTDOWN_GRACE_SECONDS',
  AWS_ROLE_ARN: 'AWS_ROLE_ARN',
  AWS_WEB_IDENTITY_TOKEN_FILE: 'AWS_WEB_IDENTITY_TOKEN_FILE',
  AWS_STS_REGIONAL_ENDPOINTS: 'AWS_STS_REGIONAL_ENDPOINTS',
  HOME: 'HOME',
  TMPDIR: 'TMPDIR',
  DBT_LOG_PATH: 'DBT_LOG_PATH',
  DBT_TARGET_PATH: 'DBT_TARGET_PATH',
  PYTHONDONTWRITEBYTECODE: 'PYTHONDONTWRITEBYTECODE',
} as const;
export type DbtAppEnvName = keyof typeof DBT_APP_ENV;

/**
 * Names defined outside the platform (the OS, AWS, Python, dbt) that the app reads too. Everything
 * else in HANDLER_ENV and DBT_APP_ENV is the platform's own, and only contracts/ may spell it
 * (tests/architecture.test.ts).
 */
export const EXTERNALLY_DEFINED_ENV: readonly string[] = [
  'PORT',
  'PATH',
  'HOME',
  'TMPDIR',
  'AWS_REGION',
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_STS_REGIONAL_ENDPOINTS',
  'PYTHONDONTWRITEBYTECODE',
  'DBT_PROJECT_DIR',
  'DBT_PROFILES_DIR',
  'DBT_LOG_PATH',
  'DBT_TARGET_PATH',
];

/**
 * The platform's own variable names: what no file outside contracts/ (and tests/, docs) may spell.
 * A function, so the handler bundles (which tree-shake this module) do not compute it at load.
 */
export function platformEnvNames(): string[] {
  const all = new Set<string>([...Object.values(HANDLER_ENV), ...Object.values(DBT_APP_ENV)]);
  return [...all].filter((name) => !EXTERNALLY_DEFINED_ENV.includes(name));
}
