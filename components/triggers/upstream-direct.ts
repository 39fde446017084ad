import { AWS_DOCS } from './rule-with-target';
import { NO_TRIGGER_PARTS, type TriggerBuilder } from './types';

/**
 * `upstream-direct`: the upstream workflow's last state starts the downstream itself, so this mode
 * declares nothing. No EventBridge in the path: it cannot cross regions and ignores replay.
 */
export const upstreamDirect: TriggerBuilder = {
  upstreamStartsDownstream: true,
  latency: () =>
    `none added: the upstream's last state calls StartExecution [StartExecution](${AWS_DOCS.sfnStart})`,
  build: () => NO_TRIGGER_PARTS,
};
