import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { parseBatchId } from '../../contracts/batch-id';
import type { ControlTable, SfnOps } from '../clients';
import { errorName, type Io, OpsError, planAndConfirm, type RunOptions } from '../io';
import { PLATFORM } from '../settings';
import { batchKey, getBatch, readFence, statusGsiKey } from './status';

export interface RerunArgs extends RunOptions {
  /** The batch's pipeline. */
  pipeline: string;
  /** The batch to rerun. */
  batchId: string;
  /**
   * Rerun a SUCCEEDED batch too (needs `reason`).
   * @default false
   */
  force?: boolean;
  /**
   * Why, recorded on the batch record; required with `force`.
   * @default `manual rerun by <operator>`
   */
  reason?: string;
  /** Who forces (recorded as `forcedBy`), e.g. `$USER`. */
  operator: string;
  /**
   * Region to run in.
   * @default the fence's active region
   */
  region?: string;
}

export interface RerunDeps {
  /** The control table replica of the region the rerun starts in. */
  control: ControlTable;
  sfn: SfnOps;
  now?: () => Date;
}

export interface RerunResult {
  executionArn?: string;
  executionName: string;
  input: { rerun: { pipeline: string; batchId: string; reason: string } };
}

/** Name of the n-th attempt's execution: `<batchId>-rerun-<n>` (valid as an execution name). */
export function rerunExecutionName(batchId: string, attempt: number): string {
  const name = `${batchId}-rerun-${attempt}`;
  if (name.length > 80 || /[\s:/,;$?"<>{}[\]|\\`^~#*]/.test(name))
    throw new OpsError(`Execution name "${name}" is not valid for Step Functions.`);
  return name;
}

export function rerunCommand(pipeline: string, batchId: string, extra = ''): string {
  return `etl-ops rerun --pipeline ${pipeline} --batch ${batchId}${extra}`;
}

/**
 * Reruns the downstream of one batch. The workflow's claim accepts `{rerun: ...}` only when the
 * downstream record is FAILED, and increments the attempt; a SUCCEEDED batch is first marked
 * FAILED with the reason (--force) so the claim accepts it and the record says why.
 */
export async function rerun(io: Io, args: RerunArgs, deps: RerunDeps): Promise<RerunResult | undefined> {
  const { pipeline, batchId } = args;
  const parsed = parseBatchId(batchId);
  if (!parsed)
    throw new OpsError(
      `"${batchId}" is not a batch id: expected <pipeline>-<yyyyMMdd>T<HHmmss>Z, e.g. ${pipeline}-20261127T020000Z.`,
    );
  if (parsed.pipeline !== pipeline)
    throw new OpsError(`Batch ${batchId} belongs to pipeline "${parsed.pipeline}", not "${pipeline}".`);
  if (args.force && !args.reason?.trim())
    throw new OpsError('--force needs --reason "<why>": the reason is recorded on the batch record.');

  const fence = await readFence(deps.control);
  if (!fence)
    throw new OpsError(
      `No fence (FENCE/ACTIVE) in the ${deps.control.region} replica: no region would accept the rerun. Check the stacks (docs/fence-and-locks.md).`,
    );
  if (fence.activeRegion !== deps.control.region) {
    throw new OpsError(
      `The fence names ${fence.activeRegion} (epoch ${fence.epoch}), not ${deps.control.region}: a rerun started here would end as SKIPPED_NOT_ACTIVE. Run it with --region ${fence.activeRegion}.`,
    );
  }

  const batch = await getBatch(deps.control, pipeline, batchId);
  const down = batch.downstream;
  if (!down) {
    if (!batch.upstream)
      throw new OpsError(
        `Batch ${batchId} does not exist: no upstream or downstream record for pipeline ${pipeline}. Check the id with: etl-ops status --pipeline ${pipeline} --since 7d`,
      );
    throw new OpsError(
      `Batch ${batchId} has no downstream record (upstream ${batch.upstream.status}): the downstream was never triggered, so there is nothing to rerun. ` +
        (batch.upstream.status === 'SUCCEEDED'
          ? 'Redrive the trigger DLQ (etl-ops dlq list) or replay the window from the archive (docs/runbooks/missed-batch.md).'
          : 'The upstream did not succeed: fix and rerun the upstream first (docs/runbooks/missed-batch.md).'),
    );
  }
  const status = String(down.status);
  const attempt = Number(down.attempt ?? 1);
  if (status === 'RUNNING' || status === 'CLAIMED') {
    throw new OpsError(
      `Batch ${batchId} is ${status} (attempt ${attempt}, ${down.executionArn ?? 'no execution ARN'}): wait for it to finish; refusing to start a second run.`,
    );
  }
  if (status === 'SUCCEEDED' && !args.force) {
    throw new OpsError(
      `Batch ${batchId} already SUCCEEDED (attempt ${attempt}). To rebuild it anyway: ${rerunCommand(pipeline, batchId, ' --force --reason "<why>"')}`,
    );
  }
  if (status !== 'SUCCEEDED' && status !== 'FAILED')
    throw new OpsError(
      `Batch ${batchId} has downstream status ${status}; only FAILED (or SUCCEEDED with --force) can be rerun.`,
    );

  const reason = args.reason?.trim() || `manual rerun by ${args.operator}`;
  const nextAttempt = attempt + 1;
  const executionName = rerunExecutionName(batchId, nextAttempt);
  const input = { rerun: { pipeline, batchId, reason } };
  const stateMachineName = PLATFORM.downstreamStateMachine(pipeline);

  const plan: string[] = [];
  if (status === 'SUCCEEDED') {
    plan.push(
      `mark ${batchId} downstream FAILED in ${deps.control.tableName} (${deps.control.region}) with rerunReason="${reason}", forcedBy=${args.operator} (condition: still SUCCEEDED at attempt ${attempt})`,
    );
  }
  plan.push(
    `start ${stateMachineName} in ${deps.control.region}: name ${executionName}, input ${JSON.stringify(input)}`,
  );
  io.out(
    `Batch ${batchId}: downstream ${status}, attempt ${attempt}${down.error ? `, error ${down.error}` : ''}.`,
  );
  if (!(await planAndConfirm(io, plan, args, `Rerun ${batchId} as attempt ${nextAttempt}?`)))
    return { executionName, input };

  if (status === 'SUCCEEDED') {
    const now = (deps.now ?? (() => new Date()))();
    try {
      await deps.control.doc.send(
        new UpdateCommand({
          TableName: deps.control.tableName,
          Key: batchKey(pipeline, batchId, 'DOWNSTREAM'),
          UpdateExpression:
            'SET #status = :failed, gsi1pk = :gsi, rerunReason = :reason, forcedBy = :by, forcedAt = :at',
          ConditionExpression: '#status = :succeeded AND attempt = :attempt',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':failed': 'FAILED',
            ':succeeded': 'SUCCEEDED',
            ':gsi': statusGsiKey(pipeline, 'DOWNSTREAM', 'FAILED'),
            ':reason': reason,
            ':by': args.operator,
            ':at': now.toISOString(),
            ':attempt': attempt,
          },
        }),
      );
      io.out(`Recorded: ${batchId} downstream FAILED, rerunReason "${reason}", forcedBy ${args.operator}.`);
    } catch (error) {
      if (errorName(error) === 'ConditionalCheckFailedException') {
        throw new OpsError(
          `Batch ${batchId} changed while we looked (no longer SUCCEEDED at attempt ${attempt}); nothing started. Run the command again.`,
        );
      }
      throw error;
    }
  }

  const stateMachineArn = await deps.sfn.stateMachineArn(stateMachineName);
  try {
    const started = await deps.sfn.startExecution({
      stateMachineArn,
      name: executionName,
      input: JSON.stringify(input),
    });
    io.out(`Started ${started.executionArn}`);
    io.out(`Follow it with: etl-ops status --pipeline ${pipeline} --since 1d`);
    return { executionArn: started.executionArn, executionName, input };
  } catch (error) {
    if (errorName(error) === 'ExecutionAlreadyExists') {
      throw new OpsError(
        `An execution named ${executionName} already exists (a rerun of attempt ${nextAttempt} was started before, with other input or already finished). Check it: etl-ops status --pipeline ${pipeline}.`,
      );
    }
    throw new OpsError(
      `StartExecution of ${stateMachineName} failed: ${errorName(error)}: ${(error as Error).message}` +
        (status === 'SUCCEEDED'
          ? ` (the record stays FAILED with the reason; run the same command without --force to retry)`
          : ''),
    );
  }
}
