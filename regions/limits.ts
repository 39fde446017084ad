/**
 * Transition only: the limits, the trigger modes and the name patterns now live in contracts/.
 * Kept for importers outside regions/ (components/downstream-trigger.ts, scripts/compare-triggers.ts,
 * scripts/program-snapshot.ts, tests/trigger-modes.test.ts); delete once they import contracts/.
 */
export * from '../contracts/limits';
export { TRIGGER_MODES, type TriggerMode } from '../contracts/trigger-modes';
export { PIPELINE_NAME_PATTERN } from '../contracts/pipeline-name';
export { REGION_PATTERN } from '../contracts/regions';
