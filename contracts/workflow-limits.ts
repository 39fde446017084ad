/**
 * Step Functions history limits and the downstream workflow's timing rules. The ASL builder
 * (state-machines/downstream.ts) enforces them on its refs and the config check (regions/settings.ts)
 * on the raw config, so a bad setting fails at `pulumi preview` with the config key named.
 */

/** A Standard execution fails, uncatchably, past 25,000 history events. */
export const MAX_HISTORY_EVENTS = 25_000;
/** One lock-wait or replication-wait round: Wait, Pass, Choices and a Task's five events. */
export const HISTORY_EVENTS_PER_ROUND = 20;

/** Slack on StartDbtRun's TimeoutSeconds beyond queue + run bounds (the app's callback, retries). */
export const DBT_TASK_MARGIN_SECONDS = 600;
/** Time between acquiring the lock and the app's first lease renewal, beyond the replication wait. */
export const LEASE_MARGIN_SECONDS = 300;
/** The replication wait's backoff cap when config leaves `dbt.replicationWaitMaxSeconds` unset. */
export const DEFAULT_REPLICATION_WAIT_MAX_SECONDS = 120;

/** The settings the lease rule reads (a subset of the downstream workflow's dbt settings). */
export interface LeaseSettings {
  readonly lockLeaseMinutes: number;
  readonly replicationWaitMinutes: number;
  /** @default DEFAULT_REPLICATION_WAIT_MAX_SECONDS */
  readonly replicationWaitMaxSeconds?: number;
}

/**
 * The lock's lease must outlast the steps between acquiring it and the app's first renewal: the
 * bounded replication wait (plus one capped wait past the bound) and LEASE_MARGIN_SECONDS for the
 * Lambda calls and fence reads. Returned as a problem message, or undefined when it fits.
 */
export function leaseProblem(dbt: LeaseSettings): string | undefined {
  const waitMax = dbt.replicationWaitMaxSeconds ?? DEFAULT_REPLICATION_WAIT_MAX_SECONDS;
  const need = dbt.replicationWaitMinutes * 60 + waitMax + LEASE_MARGIN_SECONDS;
  if (dbt.lockLeaseMinutes * 60 >= need) return undefined;
  return (
    `lockLeaseMinutes = ${dbt.lockLeaseMinutes} (${dbt.lockLeaseMinutes * 60} s) does not cover the replication wait before dbt starts ` +
    `(replicationWaitMinutes × 60 + ${waitMax} + ${LEASE_MARGIN_SECONDS} = ${need} s). Fix: raise lockLeaseMinutes or lower replicationWaitMinutes`
  );
}
