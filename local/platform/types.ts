/** The records the local platform keeps, shared by its parts (twin.ts, region.ts and the services). */

export interface TimelineEntry {
  /** Virtual time, epoch ms. */
  t: number;
  region: string;
  component: string;
  text: string;
  /** The component a message goes to (sequence diagrams). */
  to?: string;
}

export interface Metrics {
  hops: number;
  transitions: number;
  lambdaCalls: number;
  dbtRuns: number;
  alerts: number;
  dlqMessages: number;
  executions: number;
}

/**
 * The services a trigger crossed before it started something, one step each, e.g.
 * `EventBridge rule x → Step Functions`, `etl-x-trigger-sfn → states:startExecution.sync:2`.
 * Empty for an execution a scenario or script started directly.
 */
export type TriggerPath = readonly string[];

export interface ExecutionRecord {
  arn: string;
  name: string;
  region: string;
  stateMachine: string;
  input: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  output?: unknown;
  error?: string;
  cause?: string;
  transitions: number;
  /** StateEntered + StateRetried per state name, once the execution has ended. */
  transitionsByState: Record<string, number>;
  /** How the execution was started (hops from its origin). */
  path: TriggerPath;
  startedAt: number;
  stoppedAt?: number;
  done: Promise<ExecutionRecord>;
}

export interface Alert {
  t: number;
  region: string;
  subject: string;
  message: string;
}

/** Who invokes a Lambda function: the timeline's component, and the path a start from it extends. */
export interface Invocation {
  readonly caller: string;
  readonly path: TriggerPath;
}

/** One Lambda invocation (synchronous, or one attempt of an asynchronous one). */
export interface LambdaCall extends Invocation {
  readonly region: string;
  readonly fn: string;
}

/** One Scheduler invocation of a schedule. */
export interface ScheduleFiring {
  readonly region: string;
  readonly schedule: string;
  /** Virtual time it fired for, epoch ms. */
  readonly at: number;
}

export class TwinError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** Faults a scenario can inject, consumed as they fire. */
export interface Faults {
  /** Lambda throttles (TooManyRequestsException) per handler name: how many calls to refuse. */
  lambdaThrottle: Map<string, number>;
}

export interface TwinOptions {
  /** The region both stacks are deployed for. @default 'us-east-1' */
  activeRegion?: string;
  /** Config overrides applied to both stacks (e.g. defaultTriggerMode). */
  config?: Record<string, unknown>;
  /** Virtual start time. @default '2026-11-27T06:00:00Z' */
  start?: string;
  /** Echo the timeline as it happens. @default false */
  verbose?: boolean;
  /**
   * Fire the lateness watchdog's schedule. Off by default: the handlers stamp records with the
   * wall clock while the twin's schedules run on virtual time, and the watchdog compares the two
   * (it would see every fresh batch as hours old). The watchdog is tested against dynalite in
   * tests/watchdog.test.ts; its alert path through the alert workflow, in the twin, in
   * tests/watchdog-twin.test.ts.
   * @default false
   */
  watchdog?: boolean;
}
