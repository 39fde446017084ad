/** Every way the downstream workflow can be triggered; see docs/trigger-approaches.md. */
export const TRIGGER_MODES = [
  'rule-direct',
  'rule-intermediate-sfn',
  'schedule-poll',
  'upstream-direct',
  'rule-lambda',
] as const;
export type TriggerMode = (typeof TRIGGER_MODES)[number];
