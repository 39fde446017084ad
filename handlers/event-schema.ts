/**
 * Transition only: the event schema lives in contracts/events.ts and the batch-id rule in
 * contracts/batch-id.ts. Kept for tests/ that import it (batch-id-rule, trigger-workflows, watchdog,
 * handlers-start-downstream); delete once they import contracts/.
 */
export * from '../contracts/events';
export { BATCH_ID_PATTERN, formatBatchId, parseBatchId, type ParsedBatchId } from '../contracts/batch-id';
