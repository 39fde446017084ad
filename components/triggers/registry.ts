import type { TriggerMode } from '../../contracts/trigger-modes';
import { ruleDirect } from './rule-direct';
import { ruleIntermediateSfn } from './rule-intermediate-sfn';
import { ruleLambda } from './rule-lambda';
import { schedulePoll } from './schedule-poll';
import type { TriggerBuilder } from './types';
import { upstreamDirect } from './upstream-direct';

/**
 * Every trigger mode's builder, in the order tools list them. The program, the local twin
 * (twin/scenarios.ts) and `npm run compare-triggers` read the modes from here. A new mode is its
 * name in TRIGGER_MODES (the config's list), one file beside this one, its entry here, its test
 * and its row in docs/trigger-approaches.md.
 */
export const TRIGGER_BUILDERS: Readonly<Record<TriggerMode, TriggerBuilder>> = {
  'rule-direct': ruleDirect,
  'rule-intermediate-sfn': ruleIntermediateSfn,
  'schedule-poll': schedulePoll,
  'upstream-direct': upstreamDirect,
  'rule-lambda': ruleLambda,
};

/** The registered modes, in the registry's order. */
export const TRIGGER_MODE_NAMES = Object.keys(TRIGGER_BUILDERS) as readonly TriggerMode[];
