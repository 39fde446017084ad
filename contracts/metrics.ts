/**
 * The platform's own CloudWatch metrics: check-consistency publishes them (embedded metric format)
 * and components/observability.ts graphs and alarms on them.
 */
export const PLATFORM_METRIC_NAMESPACE = 'ETLPlatform';

/** Seconds from the upstream batch's completion to the first consistency check downstream. */
export const TRIGGER_LAG_METRIC = {
  name: 'TriggerLagSeconds',
  unit: 'Seconds',
  dimension: 'Pipeline',
} as const;
