/**
 * A region's part in the active-passive pair, and everything that follows from it. This is the
 * only role-dependent input in the program: flipping `activeRegion` changes these values and
 * nothing else (see tests/foundation.test.ts, "failover diff").
 */
export type Role = 'active' | 'passive';
export type ToggleState = 'ENABLED' | 'DISABLED';

export interface RegionRole {
  readonly region: string;
  readonly role: Role;
  readonly activeRegion: string;
  readonly peerRegion: string;
  /** The first configured region owns shared, global resources (the control global table). */
  readonly homeRegion: string;
  readonly isHome: boolean;
  /** State of every EventBridge Scheduler schedule declared in this region. */
  readonly scheduleState: ToggleState;
  /** State of every EventBridge rule declared in this region. */
  readonly ruleState: ToggleState;
  /** Replicas of the dbt app in this region's cluster (warm standby when passive). */
  readonly dbtReplicas: number;
}

export function deriveRole(
  region: string,
  regions: readonly string[],
  activeRegion: string,
  replicas: { readonly active: number; readonly passive: number },
): RegionRole {
  const active = region === activeRegion;
  const state: ToggleState = active ? 'ENABLED' : 'DISABLED';
  return {
    region,
    role: active ? 'active' : 'passive',
    activeRegion,
    peerRegion: regions.find((r) => r !== region) ?? region,
    homeRegion: regions[0],
    isHome: region === regions[0],
    scheduleState: state,
    ruleState: state,
    dbtReplicas: active ? replicas.active : replicas.passive,
  };
}
