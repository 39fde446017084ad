import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { upstreamBatchSucceededEventSchema, type UpstreamBatchSucceededEvent } from '../contracts/events';
import { HANDLER_ENV } from '../contracts/env';
import { readEnv, requireEnv } from './lib/env';
import { InvalidInput } from '../contracts/errors';
import { logger, withContext, type LambdaContext } from './lib/logger';
import { parseInput } from './lib/validate';

/**
 * The "rule-lambda" trigger: an EventBridge rule invokes this with `UpstreamBatchSucceeded`, and
 * it starts the downstream workflow with execution name = batch id.
 *
 * Input  the EventBridge event (detail-type UpstreamBatchSucceeded, detail schema 1.0)
 * Output {status: 'STARTED', executionArn, startDate} | {status: 'ALREADY_STARTED', executionName}
 * Env    DOWNSTREAM_STATE_MACHINE_ARN, PIPELINES (comma list), EVENT_SOURCE (optional: if set,
 *        the event's source must equal it)
 * Errors InvalidInput (never retry it: EventBridge/Lambda async retries end in the DLQ),
 *        MissingConfiguration, SFN SDK errors other than ExecutionAlreadyExists (retryable ones
 *        are retried by Lambda's async retry policy)
 *
 * Duplicate deliveries: StartExecution with the same name and input while the first execution
 * runs returns the same execution (reported as STARTED); a different input or a closed
 * execution raises ExecutionAlreadyExists, reported as ALREADY_STARTED. The workflow's own
 * claim is what makes the build exactly-once; this only avoids needless executions.
 */

/** The subset of SFNClient the handler uses; tests inject a stub (no local Step Functions API exists). */
export interface SfnLike {
  send(command: StartExecutionCommand): Promise<{ executionArn?: string; startDate?: Date }>;
}

let sfn: SfnLike = new SFNClient({});
/** Replaces the module-level client (tests, the local twin). Returns the previous one. */
export function setSfnClient(client: SfnLike): SfnLike {
  const previous = sfn;
  sfn = client;
  return previous;
}

export type StartDownstreamOutput =
  | { status: 'STARTED'; executionName: string; executionArn: string; startDate?: string }
  | { status: 'ALREADY_STARTED'; executionName: string };

function configuredPipelines(): Set<string> {
  return new Set(
    requireEnv(HANDLER_ENV.PIPELINES)
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
  );
}

/** Validates the event against the schema and this deployment's config. */
export function validateEvent(event: unknown): UpstreamBatchSucceededEvent {
  const pipelines = configuredPipelines();
  const parsed = parseInput(upstreamBatchSucceededEventSchema, event, 'start-downstream');
  if (!pipelines.has(parsed.detail.pipeline)) {
    throw new InvalidInput(
      `Invalid start-downstream input: detail.pipeline: "${parsed.detail.pipeline}" is not a configured pipeline (PIPELINES=${[...pipelines].join(',')})`,
    );
  }
  const source = readEnv(HANDLER_ENV.EVENT_SOURCE);
  if (source && parsed.source !== source) {
    throw new InvalidInput(
      `Invalid start-downstream input: source: "${parsed.source}" is not the platform's source "${source}"`,
    );
  }
  return parsed;
}

export const handler = async (event: unknown, context?: LambdaContext): Promise<StartDownstreamOutput> => {
  const stateMachineArn = requireEnv(HANDLER_ENV.DOWNSTREAM_STATE_MACHINE_ARN);
  const valid = validateEvent(event);
  const { batchId, pipeline } = valid.detail;
  withContext(context, { pipeline, batchId, eventId: valid.id });
  try {
    const out = await sfn.send(
      new StartExecutionCommand({ stateMachineArn, name: batchId, input: JSON.stringify(event) }),
    );
    logger.info('downstream workflow started', { executionArn: out.executionArn });
    return {
      status: 'STARTED',
      executionName: batchId,
      executionArn: out.executionArn ?? '',
      ...(out.startDate ? { startDate: new Date(out.startDate).toISOString() } : {}),
    };
  } catch (error) {
    if ((error as Error).name === 'ExecutionAlreadyExists') {
      logger.info(
        'downstream execution for this batch already exists; treating the delivery as a duplicate',
        {
          error: (error as Error).message,
        },
      );
      return { status: 'ALREADY_STARTED', executionName: batchId };
    }
    throw error;
  }
};
