import type { BuildRow } from '../../local/warehouse';
import type { FaultKind } from './schedule';

/**
 * What a soak run leaves behind for the checker: every build (the warehouse's CONTROL.BUILDS), run
 * record (each region's app runs table), control-table item (every replica, after healing), alert,
 * execution outcome, watermark sample and fault, on one virtual clock (seconds since the soak began).
 */

export interface ExecutionRecord {
  region: string;
  pipeline: string;
  batchId: string;
  name: string;
  /** What started it: a delivery of the event, an archive replay, or an operator rerun. */
  cause: 'delivery' | 'replay' | 'rerun';
  startVt: number;
  endVt?: number;
  status?: string;
  error?: string;
  /** The workflow's output `outcome` (e.g. DUPLICATE, SKIPPED_NOT_ACTIVE) when it succeeded. */
  outcome?: string;
}

export interface FaultRecord {
  kind: FaultKind;
  atVt: number;
  /** When the fault ended (partition healed, pod restarted); absent for instant faults. */
  endVt?: number;
  pipeline?: string;
  batchId?: string;
  region?: string;
  detail: string;
}

export interface AlertRecord {
  atVt: number;
  region: string;
  subject: string;
  message: string;
}

export interface WatermarkSample {
  atVt: number;
  region: string;
  pipeline: string;
  batchId: string;
}

/** A build as the checker sees it: the warehouse row, its times on the virtual clock. */
export interface BuildRecord extends BuildRow {
  startVt: number;
  /** Infinity while unfinished; a build killed with its pod ends at the kill (see `endedBy`). */
  endVt: number;
  endedBy?: string;
}

export interface FailoverRecord {
  command: 'failover' | 'failback';
  to: string;
  atVt: number;
  /** The first build that succeeded in the survivor after the command (RTO = firstBuiltVt - atVt). */
  firstBuiltVt?: number;
  firstBuiltBatch?: string;
  /** Batches in flight (claimed, not yet built) when the command ran. */
  inFlight: string[];
}

export interface OperatorAction {
  batchId: string;
  /** The runbook step taken: rerun, replay, mark-failed+rerun, none (built / superseded). */
  action: string;
  detail: string;
}

export interface DueBatch {
  pipeline: string;
  batchId: string;
}

export interface History {
  seed: number;
  batches: number;
  pipelines: string[];
  msPerSecond: number;
  due: DueBatch[];
  executions: ExecutionRecord[];
  faults: FaultRecord[];
  alerts: AlertRecord[];
  watermarks: WatermarkSample[];
  builds: BuildRecord[];
  /** The app's run records per region, for the soak's batches. */
  appRuns: Record<string, Record<string, unknown>[]>;
  /** Control-table items of every replica: after healing (before the operator) and at the end. */
  control: {
    healed: Record<string, Record<string, unknown>[]>;
    final: Record<string, Record<string, unknown>[]>;
  };
  /** Alerts and builds counted before the operator step (invariant 4 judges that moment). */
  beforeOperator: { builtBatches: string[]; alerts: number };
  operator: OperatorAction[];
  failovers: FailoverRecord[];
  wallMs: number;
}

/** Warehouse time (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC) to epoch ms; null (unfinished) is Infinity. */
export function warehouseMs(ts: string | null): number {
  return ts === null ? Infinity : Date.parse(`${ts.replace(' ', 'T')}Z`);
}
