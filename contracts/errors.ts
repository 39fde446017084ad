/**
 * Error names shared by the handlers, the workflows' ASL and the dbt app.
 *
 * Handler errors: each class's `name` is the exact error string a Step Functions `Retry`/`Catch`
 * matches on (Lambda reports `errorType` = `error.name`); the ASL builders take the names from here,
 * so a rename changes both sides.
 *
 * | name               | retry? | meaning                                                          |
 * |--------------------|--------|------------------------------------------------------------------|
 * | DbtApiUnavailable  | yes    | 5xx, 429, timeout, connection refused/reset, unparseable reply   |
 * | DbtApiRejected     | no     | any other 4xx: bad token, bad request, unknown run, conflict      |
 * | DbtRunFailed       | no     | the dbt run itself ended FAILED                                   |
 * | DbtRunNotFound     | no     | no run for (batch, attempt) or run id: the start never reached the app |
 * | InvalidInput       | no     | the handler's input failed validation                             |
 * | MissingConfiguration | no   | a required environment variable is not set (deploy bug)           |
 * | InvalidScheduleExpression | no | a cron()/rate() expression the evaluator (contracts/cron.ts) cannot read |
 */

export const ERROR_NAMES = {
  DbtApiUnavailable: 'DbtApiUnavailable',
  DbtApiRejected: 'DbtApiRejected',
  DbtRunFailed: 'DbtRunFailed',
  DbtRunNotFound: 'DbtRunNotFound',
  InvalidInput: 'InvalidInput',
  MissingConfiguration: 'MissingConfiguration',
  InvalidScheduleExpression: 'InvalidScheduleExpression',
} as const;

// The lists below spell names rather than read ERROR_NAMES: a property read is not side-effect
// free to esbuild, so every handler bundle would carry them (tests/contracts.test.ts checks them).

/** Handler errors a workflow retries (with backoff); every other one goes straight to a Catch. */
export const RETRIED_HANDLER_ERRORS = ['DbtApiUnavailable'] as const;
/** Handler errors a workflow never retries: retrying cannot change the answer. */
export const NEVER_RETRIED_HANDLER_ERRORS = [
  'DbtRunFailed',
  'DbtRunNotFound',
  'DbtApiRejected',
  'InvalidInput',
  'MissingConfiguration',
] as const;

/** Error names the downstream workflow itself raises (Pass → failure path, or Fail states). */
export const WORKFLOW_ERRORS = {
  InvalidTriggerEvent: 'InvalidTriggerEvent',
  FenceMissing: 'FenceMissing',
  FenceMoved: 'FenceMoved',
  DataInconsistencyError: 'DataInconsistencyError',
  DataNotReplicated: 'DataNotReplicated',
  PipelineLockTimeout: 'PipelineLockTimeout',
  DbtRunFailed: 'DbtRunFailed',
  DbtRunLost: 'DbtRunLost',
  DbtRunTimeout: 'DbtRunTimeout',
  DbtRunUnresponsive: 'DbtRunUnresponsive',
  DbtRunNotStarted: 'DbtRunNotStarted',
  DbtRunFateUnknown: 'DbtRunFateUnknown',
  UnexpectedDbtStatus: 'UnexpectedDbtStatus',
  EventPublishFailed: 'EventPublishFailed',
} as const;

/** Errors the dbt app reports through SendTaskFailure (docs/dbt-api.md, callbacks). */
export const CALLBACK_ERRORS = {
  failed: 'DbtRunFailed',
  lost: 'DbtRunLost',
  interrupted: 'DbtRunInterrupted',
  fenced: 'DbtRunFenced',
} as const;

export class DbtApiUnavailable extends Error {
  override readonly name = ERROR_NAMES.DbtApiUnavailable;
  /** HTTP status when the server answered; undefined for timeouts and network errors. */
  readonly status?: number;
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.status = options.status;
  }
}

export class DbtApiRejected extends Error {
  override readonly name = ERROR_NAMES.DbtApiRejected;
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

export class DbtRunFailed extends Error {
  override readonly name = ERROR_NAMES.DbtRunFailed;
  readonly runId: string;
  constructor(message: string, runId: string) {
    super(message);
    this.runId = runId;
  }
}

/** GET of a run (by id or by (batch, attempt)) answered 404: the registry has no such run. */
export class DbtRunNotFound extends Error {
  override readonly name = ERROR_NAMES.DbtRunNotFound;
}

export class InvalidInput extends Error {
  override readonly name = ERROR_NAMES.InvalidInput;
}

export class MissingConfiguration extends Error {
  override readonly name = ERROR_NAMES.MissingConfiguration;
}

/** A schedule expression that is malformed, or uses a form contracts/cron.ts does not support. */
export class InvalidScheduleExpression extends Error {
  override readonly name = ERROR_NAMES.InvalidScheduleExpression;
}
