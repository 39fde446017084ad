import { type DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { CALLBACK_ERRORS } from '../contracts/errors';
import type { FakeDbtApi, FakeRun } from './fake-dbt-api';
import { type LambdaHandler, StatesError } from './sfn-local';

/**
 * A local stand-in for the dbt app's callbacks (docs/dbt-api.md): what StartDbtRun's
 * `lambda:invoke.waitForTaskToken` waits for. It invokes the real start-dbt-run handler, then moves
 * the fake API's run to its end the way the app's worker would, renewing the lock lease on each
 * "heartbeat" (as the app does), and ends the wait the way the callback would:
 * SUCCEEDED → the SendTaskSuccess output; FAILED/LOST/INTERRUPTED → SendTaskFailure errors.
 *
 * A `script` picks, per wait, a behaviour: 'complete' (default), 'heartbeat-timeout' (the run is left
 * QUEUED/RUNNING and heartbeats stop), 'callback-lost' (the run SUCCEEDS but no callback arrives),
 * 'timeout' (the task's TimeoutSeconds passes), or a function returning the output / throwing.
 */

export type WaitBehaviour =
  'complete' | 'heartbeat-timeout' | 'callback-lost' | 'timeout' | ((run: FakeRun) => unknown);

export interface WaitCall {
  /** 1-based count of waits in this driver's life. */
  index: number;
  payload: Record<string, unknown>;
  runId: string;
  run: FakeRun;
}

export interface CallbackDriver {
  handler: (payload: unknown, functionName: string, token: string) => Promise<unknown>;
  /** Every wait, in order (tests assert re-waits and attempts from it). */
  waits: WaitCall[];
  /** Lease renewals that succeeded / were refused (lock not held by the run's holder). */
  renewals: { ok: number; refused: number };
}

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'LOST', 'INTERRUPTED']);
const FAILURE_ERROR: Record<string, string> = {
  FAILED: CALLBACK_ERRORS.failed,
  LOST: CALLBACK_ERRORS.lost,
  INTERRUPTED: CALLBACK_ERRORS.interrupted,
};

/** The SendTaskSuccess output the app sends (docs/dbt-api.md). */
export function callbackOutput(run: FakeRun): Record<string, unknown> {
  return {
    runId: run.runId,
    batchId: run.batchId,
    pipeline: run.pipeline,
    attempt: run.attempt,
    status: 'SUCCEEDED',
    queuedAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
  };
}

/** Ends the wait as the app's callback for a terminal run would: returns or throws. */
export function callbackFor(run: FakeRun): Record<string, unknown> {
  if (run.status === 'SUCCEEDED') return callbackOutput(run);
  const error = FAILURE_ERROR[run.status];
  if (!error) throw new Error(`dbt-callback: run ${run.runId} is ${run.status}, not terminal`);
  throw new StatesError(
    error,
    JSON.stringify({
      runId: run.runId,
      batchId: run.batchId,
      attempt: run.attempt,
      status: run.status,
      error: run.error,
    }),
  );
}

/** Moves a run step by step to its end (as the worker would), calling `beat` on every step. */
export async function completeRun(
  api: FakeDbtApi,
  runId: string,
  beat: (run: FakeRun) => void | Promise<void> = () => {},
): Promise<FakeRun> {
  for (let i = 0; i < 10_000; i++) {
    const run = api.getRun(runId);
    if (!run) throw new Error(`dbt-callback: no run ${runId}`);
    if (TERMINAL.has(run.status)) return run;
    await beat(run);
    api.advance(runId);
  }
  throw new Error(`dbt-callback: run ${runId} never finished`);
}

export function dbtCallbackDriver(opts: {
  api: FakeDbtApi;
  /** The real start-dbt-run handler (it POSTs to the fake API). */
  start: LambdaHandler;
  /** Renews the lease the payload names, as the app does on each heartbeat. */
  db?: { client: DynamoDBClient; tableName: string };
  script?: (
    call: Omit<WaitCall, 'run' | 'runId'> & { runId: string; run: FakeRun },
  ) => WaitBehaviour | undefined;
}): CallbackDriver {
  const waits: WaitCall[] = [];
  const renewals = { ok: 0, refused: 0 };
  const renew = async (lease: FakeRun['lease']) => {
    if (!lease || !opts.db) return;
    try {
      await opts.db.client.send(
        new UpdateItemCommand({
          TableName: opts.db.tableName,
          Key: { pk: { S: lease.pk }, sk: { S: lease.sk } },
          UpdateExpression: 'SET leaseExpiresAt = :t',
          ConditionExpression: 'executionArn = :holder',
          ExpressionAttributeValues: {
            ':t': { N: String(Math.floor(Date.now() / 1000) + lease.seconds) },
            ':holder': { S: lease.holder },
          },
        }),
      );
      renewals.ok++;
    } catch (e) {
      if ((e as Error).name !== 'ConditionalCheckFailedException') throw e;
      renewals.refused++;
    }
  };
  const handler = async (payload: unknown, functionName: string): Promise<unknown> => {
    const started = (await opts.start(payload, functionName)) as { runId: string };
    const run = opts.api.getRun(started.runId);
    if (!run) throw new Error(`dbt-callback: start returned unknown run ${started.runId}`);
    const call: WaitCall = {
      index: waits.length + 1,
      payload: payload as Record<string, unknown>,
      runId: run.runId,
      run,
    };
    waits.push(call);
    const behaviour = opts.script?.(call) ?? 'complete';
    if (typeof behaviour === 'function') return behaviour(run);
    switch (behaviour) {
      case 'heartbeat-timeout':
        if (run.status === 'QUEUED') opts.api.advance(run.runId);
        await renew(run.lease);
        throw new StatesError('States.HeartbeatTimeout', 'no SendTaskHeartbeat within HeartbeatSeconds');
      case 'timeout':
        throw new StatesError('States.Timeout', 'the task timed out');
      case 'callback-lost':
        await completeRun(opts.api, run.runId, () => renew(run.lease));
        throw new StatesError('States.HeartbeatTimeout', 'no SendTaskHeartbeat within HeartbeatSeconds');
      default:
        return callbackFor(await completeRun(opts.api, run.runId, () => renew(run.lease)));
    }
  };
  return { handler, waits, renewals };
}
