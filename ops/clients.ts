/**
 * Narrow client interfaces: the only AWS calls the commands make. The real adapters live in
 * ops/aws-clients.ts; tests pass fakes (or, for the control table, a real dynalite client).
 * Field names follow the AWS APIs so the adapters are one-liners.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** The control table (DynamoDB document client, one region's replica). */
export interface ControlTable {
  readonly doc: DynamoDBDocumentClient;
  readonly tableName: string;
  readonly region: string;
}

// ---- Step Functions ---------------------------------------------------------------------------

export interface ExecutionDescription {
  executionArn: string;
  stateMachineArn: string;
  name?: string;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE' | string;
  startDate?: Date;
  stopDate?: Date;
  input?: string;
  redriveStatus?: 'REDRIVABLE' | 'NOT_REDRIVABLE' | 'REDRIVABLE_BY_MAP_RUN' | string;
  redriveStatusReason?: string;
  redriveCount?: number;
  error?: string;
  cause?: string;
}

export interface StateMachineDescription {
  stateMachineArn: string;
  name: string;
  type: 'STANDARD' | 'EXPRESS' | string;
  definition?: string;
  updateDate?: Date;
  creationDate?: Date;
}

export interface SfnOps {
  startExecution(input: {
    stateMachineArn: string;
    name?: string;
    input: string;
  }): Promise<{ executionArn: string; startDate?: Date }>;
  describeExecution(executionArn: string): Promise<ExecutionDescription>;
  describeStateMachine(stateMachineArn: string): Promise<StateMachineDescription>;
  /** The definition the execution ran with (DescribeStateMachineForExecution). */
  describeStateMachineForExecution(executionArn: string): Promise<{ definition?: string; updateDate?: Date }>;
  redriveExecution(executionArn: string): Promise<{ redriveDate?: Date }>;
  /** Finds a state machine's ARN by name in this client's region. */
  stateMachineArn(name: string): Promise<string>;
}

// ---- EventBridge ------------------------------------------------------------------------------

export interface RuleSummary {
  name: string;
  arn?: string;
  state: string;
}

export interface RuleTarget {
  id: string;
  arn: string;
  deadLetterArn?: string;
}

export interface PutEventEntry {
  Source: string;
  DetailType: string;
  Detail: string;
  Resources?: string[];
  Time?: Date;
  EventBusName: string;
}

export interface ReplayDescription {
  state: 'STARTING' | 'RUNNING' | 'CANCELLING' | 'COMPLETED' | 'CANCELLED' | 'FAILED' | string;
  stateReason?: string;
  eventStartTime?: Date;
  eventEndTime?: Date;
  eventLastReplayedTime?: Date;
  replayStartTime?: Date;
  replayEndTime?: Date;
}

export interface EventsOps {
  listRules(busName: string): Promise<RuleSummary[]>;
  listTargets(ruleName: string, busName: string): Promise<RuleTarget[]>;
  putEvents(entries: PutEventEntry[]): Promise<{ failedEntryCount: number; errors: string[] }>;
  describeArchive(
    archiveName: string,
  ): Promise<{ archiveArn: string; eventSourceArn: string; state?: string }>;
  startReplay(input: {
    replayName: string;
    eventSourceArn: string;
    eventStartTime: Date;
    eventEndTime: Date;
    destinationArn: string;
    filterArns?: string[];
  }): Promise<{ replayArn?: string; state?: string }>;
  describeReplay(replayName: string): Promise<ReplayDescription>;
}

// ---- EventBridge Scheduler --------------------------------------------------------------------

export interface ScheduleSummary {
  name: string;
  groupName: string;
  state: string;
  targetArn?: string;
  deadLetterArn?: string;
}

export interface SchedulerOps {
  /** Every schedule of the group, with its target and DLQ (ListSchedules + GetSchedule). */
  listSchedules(groupName: string): Promise<ScheduleSummary[]>;
}

// ---- SQS --------------------------------------------------------------------------------------

export interface QueueMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  /** Message attributes, string values (RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE, ...). */
  attributes: Record<string, string>;
  /** System attributes (SentTimestamp, ApproximateReceiveCount). */
  system?: Record<string, string>;
}

export interface SqsOps {
  queueUrl(nameOrArn: string): Promise<string>;
  depth(queueUrl: string): Promise<{ visible: number; inFlight: number }>;
  receive(
    queueUrl: string,
    opts: { max: number; visibilityTimeoutSeconds: number; waitSeconds: number },
  ): Promise<QueueMessage[]>;
  delete(queueUrl: string, receiptHandle: string): Promise<void>;
  /** Makes a received message visible again now (ChangeMessageVisibility 0). */
  release(queueUrl: string, receiptHandle: string): Promise<void>;
}

/** Per-region factory: what the CLI hands to the commands. */
export interface RegionClients {
  control(region: string): ControlTable;
  sfn(region: string): SfnOps;
  events(region: string): EventsOps;
  scheduler(region: string): SchedulerOps;
  sqs(region: string): SqsOps;
  /** True when the region's control plane answers within a short timeout. */
  reachable(region: string): Promise<boolean>;
}
