/**
 * Named errors. Each class's `name` is the exact error string a Step Functions `Retry`/`Catch`
 * matches on (Lambda reports `errorType` = `error.name`), so never rename one without changing the
 * ASL that refers to it.
 *
 * | name               | retry? | meaning                                                          |
 * |--------------------|--------|------------------------------------------------------------------|
 * | DbtApiUnavailable  | yes    | 5xx, 429, timeout, connection refused/reset, unparseable reply   |
 * | DbtApiRejected     | no     | any other 4xx: bad token, bad request, unknown run, conflict      |
 * | DbtRunFailed       | no     | the dbt run itself ended FAILED                                   |
 * | DbtRunNotFound     | no     | no run for (batch, attempt) or run id: the start never reached the app |
 * | InvalidInput       | no     | the handler's input failed validation                             |
 * | MissingConfiguration | no   | a required environment variable is not set (deploy bug)           |
 * | InvalidScheduleExpression | no | a cron()/rate() expression the evaluator (lib/cron.ts) cannot read |
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

/** Errors a workflow may retry. Everything else should go straight to a Catch. */
export const RETRYABLE_ERRORS: readonly string[] = [ERROR_NAMES.DbtApiUnavailable];

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

/** A schedule expression that is malformed, or uses a form handlers/lib/cron.ts does not support. */
export class InvalidScheduleExpression extends Error {
  override readonly name = ERROR_NAMES.InvalidScheduleExpression;
}
