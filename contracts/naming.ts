/**
 * Physical names: only what another region, another stack or an operator must find by name is
 * named explicitly (everything else is auto-named by Pulumi). The components name resources with
 * these functions and `etl-ops` finds them with the same ones.
 */
import type * as pulumi from '@pulumi/pulumi';

/** The Pulumi project, and the prefix of the platform's shared names. */
export const PROJECT = 'etl-platform';

/** Defaults of the config keys that name shared resources (docs/config.md). */
export const DEFAULT_NAMES = {
  eventBusName: PROJECT,
  controlTableName: `${PROJECT}-control`,
  scheduleGroup: PROJECT,
} as const;

/** The event bus's archive, from the bus name (archive names stop at 48 characters). */
export const archiveName = (busName: string): string => `${busName}-archive`;

/** A workflow (state machine) or function, by purpose: `etl-<purpose>`. */
export const platformName = (purpose: string): string => `etl-${purpose}`;
export const upstreamWorkflowName = (pipeline: string): string => platformName(`${pipeline}-upstream`);
export const downstreamWorkflowName = (pipeline: string): string => platformName(`${pipeline}-downstream`);
/** The lateness watchdog's alert workflow (one per region): the purpose its role and log group carry. */
export const WATCHDOG_ALERTS_PURPOSE = 'watchdog-alerts';
export const watchdogAlertsWorkflowName = (): string => platformName(WATCHDOG_ALERTS_PURPOSE);

/** The EventBridge rule that triggers a pipeline's downstream workflow. */
export const downstreamRuleName = (pipeline: string): string => `${pipeline}-downstream-trigger`;
/** The rule forwarding platform events to the peer region's bus. */
export const forwardRuleName = (peerRegion: string): string => `forward-to-${peerRegion}`;
/** The Scheduler schedule that starts a pipeline's upstream workflow. */
export const upstreamScheduleName = (pipeline: string): string => `${pipeline}-upstream`;

/** IAM is global, so explicit role names carry the region to stay unique across the two stacks. */
export function iamRoleName(purpose: string, region: string): string {
  const name = `etl-${purpose}-${region}`;
  if (name.length > 64)
    throw new Error(`IAM role name "${name}" exceeds 64 characters; shorten "${purpose}"`);
  return name;
}

/** Account and partition of the deploying credentials, resolved once per component. */
export interface AccountContext {
  readonly accountId: pulumi.Output<string>;
  readonly partition: pulumi.Output<string>;
}
