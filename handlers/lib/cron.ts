/**
 * Transition only: the schedule evaluator lives in contracts/cron.ts (the config check and the
 * watchdog must agree on when a schedule fires). Kept for twin/clock.ts and tests/cron.test.ts;
 * delete once they import contracts/cron.
 */
export * from '../../contracts/cron';
