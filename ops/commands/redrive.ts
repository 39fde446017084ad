import { parseBatchId } from '../../contracts/batch-id';
import type { ExecutionDescription, SfnOps } from '../clients';
import { callOf, describeError, tagCall } from '../errors';
import { errorMessage, errorName, type Io, OpsError, planAndConfirm, type RunOptions } from '../io';
import { rerunCommand } from './rerun';

/** Standard workflows can be redriven for 14 days after the execution stopped. */
export const REDRIVE_WINDOW_MS = 14 * 24 * 3_600_000;
const REDRIVABLE_STATUSES = new Set(['FAILED', 'TIMED_OUT', 'ABORTED']);

export interface ParsedExecutionArn {
  partition: string;
  region: string;
  account: string;
  /** `execution` (Standard) or `express`. */
  kind: 'execution' | 'express';
  stateMachineName: string;
  executionName: string;
  stateMachineArn: string;
}

const EXECUTION_ARN =
  /^arn:(aws[a-z-]*):states:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):(execution|express):([A-Za-z0-9_-]{1,80}):([^:\s]{1,80})(?::([^:\s]+))?$/;

export function parseExecutionArn(value: string): ParsedExecutionArn {
  const m = EXECUTION_ARN.exec(value.trim());
  if (!m) {
    throw new OpsError(
      `"${value}" is not a Step Functions execution ARN. Expected arn:aws:states:<region>:<account-id>:execution:<state-machine>:<execution-name>, ` +
        'e.g. arn:aws:states:us-east-1:123456789012:execution:etl-policycenter-downstream:policycenter-20261127T020000Z.',
    );
  }
  const [, partition, region, account, kind, stateMachineName, executionName] = m;
  return {
    partition,
    region,
    account,
    kind: kind as 'execution' | 'express',
    stateMachineName,
    executionName,
    stateMachineArn: `arn:${partition}:states:${region}:${account}:stateMachine:${stateMachineName}`,
  };
}

/** The pipeline of a platform workflow name: etl-<pipeline>-downstream / etl-<pipeline>-upstream. */
export function workflowOf(
  stateMachineName: string,
): { pipeline: string; part: 'downstream' | 'upstream' } | undefined {
  const m = /^etl-(.+)-(downstream|upstream)$/.exec(stateMachineName);
  return m ? { pipeline: m[1], part: m[2] as 'downstream' | 'upstream' } : undefined;
}

/** Finds the batch id of an execution: its name, or its input (event detail or rerun input). */
export function batchIdOf(executionName: string, input?: string): string | undefined {
  const fromName = /^(.+?-\d{8}T\d{6}Z)(?:-rerun-\d+)?$/.exec(executionName)?.[1];
  if (fromName && parseBatchId(fromName)) return fromName;
  if (!input) return undefined;
  try {
    const parsed = JSON.parse(input) as {
      detail?: { batchId?: unknown };
      rerun?: { batchId?: unknown };
      batchId?: unknown;
    };
    const candidate = parsed?.detail?.batchId ?? parsed?.rerun?.batchId ?? parsed?.batchId;
    return typeof candidate === 'string' && parseBatchId(candidate) ? candidate : undefined;
  } catch {
    return undefined;
  }
}

/** What to do instead of a redrive. */
export function alternative(arn: ParsedExecutionArn, execution?: ExecutionDescription): string {
  const workflow = workflowOf(arn.stateMachineName);
  const batchId = batchIdOf(arn.executionName, execution?.input);
  if (workflow?.part === 'downstream' && batchId) {
    return `Start a new attempt instead: ${rerunCommand(workflow.pipeline, batchId)}${execution?.status === 'SUCCEEDED' ? ' --force --reason "<why>"' : ''}`;
  }
  if (workflow?.part === 'downstream') {
    return `Start a new attempt instead: ${rerunCommand(workflow.pipeline, '<batch-id>')} (find the batch with etl-ops status --pipeline ${workflow.pipeline})`;
  }
  return (
    `Start a new execution with the same input instead: aws stepfunctions start-execution --region ${arn.region} ` +
    `--state-machine-arn ${arn.stateMachineArn} --input "$(aws stepfunctions describe-execution --region ${arn.region} --execution-arn <arn> --query input --output text)" ` +
    '(the upstream dedupes by batch id: a batch already recorded ends as DUPLICATE)'
  );
}

/** Tags a failure with the Step Functions call it came from (unless the SDK middleware already did). */
async function named<T>(call: string, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    tagCall(error, call);
    throw error;
  }
}

/**
 * The documented errors of the redrive's calls, explained, naming the call that failed
 * (`call`, default the one recorded on the error, else RedriveExecution).
 */
export function explainRedriveError(error: unknown, call = callOf(error) ?? 'SFN.RedriveExecution'): string {
  const name = errorName(error);
  switch (name) {
    case 'ExecutionNotRedrivable':
      return `${call}: AWS refused the redrive (ExecutionNotRedrivable: ${errorMessage(error)}). Redrive needs a Standard execution that FAILED, TIMED_OUT or ABORTED less than 14 days ago, whose state machine definition has not changed since, and that has not reached the redrive limit.`;
    case 'ExecutionDoesNotExist':
      return `${call}: the execution does not exist (ExecutionDoesNotExist): check the ARN and the region; executions are kept 90 days after they stop.`;
    case 'ExecutionLimitExceeded':
      return `${call}: too many running executions in this account and region (ExecutionLimitExceeded): wait for some to finish and retry.`;
    case 'InvalidArn':
      return `${call}: AWS rejected the ARN (InvalidArn: ${errorMessage(error)}).`;
    case 'ValidationException':
      return `${call}: the request was invalid (ValidationException: ${errorMessage(error)}); Express executions, for one, cannot be redriven.`;
    case 'AccessDeniedException':
      return `${call}: not allowed (AccessDeniedException): your role needs ${call.replace(/^SFN\./, 'states:')} on the execution. ${errorMessage(error)}`;
    case 'ThrottlingException':
      return `${call}: throttled by Step Functions (ThrottlingException): retry in a minute.`;
    default:
      return describeError(error, call);
  }
}

/** Why this execution cannot be redriven, or undefined when AWS should accept it. */
export async function redriveBlocker(
  sfn: SfnOps,
  arn: ParsedExecutionArn,
  execution: ExecutionDescription,
  now: Date,
): Promise<string | undefined> {
  if (arn.kind === 'express') return 'it is an Express execution; only Standard workflows can be redriven';
  if (!REDRIVABLE_STATUSES.has(execution.status)) {
    return execution.status === 'RUNNING' || execution.status === 'PENDING_REDRIVE'
      ? `it is ${execution.status}; wait for it to finish`
      : `its status is ${execution.status}; only FAILED, TIMED_OUT or ABORTED executions can be redriven`;
  }
  if (execution.stopDate && now.getTime() - execution.stopDate.getTime() > REDRIVE_WINDOW_MS) {
    return `it stopped at ${execution.stopDate.toISOString()}, more than 14 days ago`;
  }
  if (execution.redriveStatus === 'NOT_REDRIVABLE') {
    return `AWS reports it NOT_REDRIVABLE${execution.redriveStatusReason ? `: ${execution.redriveStatusReason}` : ''}`;
  }
  const machine = await named(
    'SFN.DescribeStateMachine',
    sfn.describeStateMachine(execution.stateMachineArn || arn.stateMachineArn),
  );
  if (machine.type !== 'STANDARD')
    return `its state machine is ${machine.type}; only Standard workflows can be redriven`;
  const ran = await named(
    'SFN.DescribeStateMachineForExecution',
    sfn.describeStateMachineForExecution(execution.executionArn),
  );
  if (
    ran.definition !== undefined &&
    machine.definition !== undefined &&
    ran.definition !== machine.definition
  ) {
    return 'the state machine definition changed after the execution ran (a redrive would run the old definition); start a new execution instead';
  }
  return undefined;
}

export interface RedriveArgs extends RunOptions {
  /** The failed execution to redrive from its failed state. */
  executionArn: string;
}

/** Redrives a stopped Standard execution where AWS allows it; otherwise explains and suggests a rerun. */
export async function redrive(
  io: Io,
  args: RedriveArgs,
  sfnFor: (region: string) => SfnOps,
  now: () => Date = () => new Date(),
): Promise<'redriven' | 'dry-run'> {
  const arn = parseExecutionArn(args.executionArn);
  const sfn = sfnFor(arn.region);
  let execution: ExecutionDescription;
  try {
    execution = await named('SFN.DescribeExecution', sfn.describeExecution(args.executionArn.trim()));
  } catch (error) {
    throw new OpsError(`${explainRedriveError(error)}\n${alternative(arn)}`);
  }
  io.out(
    `Execution ${arn.executionName} of ${arn.stateMachineName} (${arn.region}): ${execution.status}${execution.error ? ` (${execution.error})` : ''}, stopped ${execution.stopDate?.toISOString() ?? '-'}, redrives so far ${execution.redriveCount ?? 0}.`,
  );
  let blocker: string | undefined;
  try {
    blocker = await redriveBlocker(sfn, arn, execution, now());
  } catch (error) {
    throw new OpsError(`${explainRedriveError(error)}\n${alternative(arn, execution)}`);
  }
  if (blocker) throw new OpsError(`Cannot redrive: ${blocker}.\n${alternative(arn, execution)}`);

  const plan = [
    `RedriveExecution ${execution.executionArn}: same ARN and input; the steps that succeeded are not run again, the run resumes at the failed state`,
  ];
  if (!(await planAndConfirm(io, plan, args, 'Redrive this execution?'))) return 'dry-run';
  try {
    const result = await named('SFN.RedriveExecution', sfn.redriveExecution(execution.executionArn));
    io.out(
      `Redriven at ${result.redriveDate?.toISOString() ?? now().toISOString()}: ${execution.executionArn}`,
    );
    return 'redriven';
  } catch (error) {
    throw new OpsError(`${explainRedriveError(error)}\n${alternative(arn, execution)}`);
  }
}
