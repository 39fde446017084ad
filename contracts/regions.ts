/**
 * The regions of the active-passive pair and the stack that deploys each. One Pulumi stack per
 * region: `prod-east` deploys us-east-1 and `prod-west` us-west-1. ops/, the twin, the benches and
 * the test harness all read this map instead of spelling it.
 */

/** AWS commercial region names, such as us-east-1 or eu-central-2. */
export const REGION_PATTERN = /^[a-z]{2}(-gov)?-[a-z]+-\d$/;

/** Stack → region, for the stacks this project commits (Pulumi.<stack>.yaml). The first is home. */
export const STACK_REGION = { 'prod-east': 'us-east-1', 'prod-west': 'us-west-1' } as const;
export type StackName = keyof typeof STACK_REGION;
export type PlatformRegion = (typeof STACK_REGION)[StackName];

/** The committed stacks, home first. */
export const STACKS = /* @__PURE__ */ Object.keys(STACK_REGION) as StackName[];

/** Region → stack, the inverse of STACK_REGION. */
export const REGION_STACK: Readonly<Record<PlatformRegion, StackName>> = /* @__PURE__ */ Object.fromEntries(
  STACKS.map((stack) => [STACK_REGION[stack], stack]),
) as Record<PlatformRegion, StackName>;

/** The default `regions` config: the two regions of the pair, home (the global table's) first. */
export const DEFAULT_REGIONS: readonly PlatformRegion[] = /* @__PURE__ */ STACKS.map(
  (stack) => STACK_REGION[stack],
);
