import { createHash } from 'node:crypto';
import { StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { Alert, AlertPublisher } from './alert-publisher';

/** The subset of SFNClient the publisher uses (the watchdog's own client). */
export interface StartExecutionClient {
  send(command: StartExecutionCommand): Promise<unknown>;
}

/** Step Functions' limit on an execution name. */
const MAX_EXECUTION_NAME = 80;

/**
 * The execution name of an alert: `alert-<key>`, with every character Step Functions refuses in a
 * name (anything but letters, digits, `-` and `_` is the safe subset) replaced by `-`. A name over
 * 80 characters keeps its first 71 and appends 8 hex digits of the key's SHA-256, so two long keys
 * that share a prefix still get different names.
 */
export function alertExecutionName(key: string): string {
  const name = `alert-${key}`.replace(/[^A-Za-z0-9_-]/g, '-');
  if (name.length <= MAX_EXECUTION_NAME) return name;
  const digest = createHash('sha256').update(key).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX_EXECUTION_NAME - digest.length - 1)}-${digest}`;
}

/**
 * The watchdog's AlertPublisher: StartExecution on the region's alert workflow with input
 * `{subject, message}`, named by the alert's key. A second publish of the same alert meets
 * `ExecutionAlreadyExists` (Standard workflows keep closed names for 90 days), which means it was
 * published already: success. Any other error means it was not (the caller un-claims its marker).
 * Needs only `states:StartExecution` on that one state machine.
 */
export function createStepFunctionsPublisher(
  stateMachineArn: string,
  client: StartExecutionClient,
): AlertPublisher {
  return {
    async publish(alert: Alert): Promise<void> {
      try {
        await client.send(
          new StartExecutionCommand({
            stateMachineArn,
            name: alertExecutionName(alert.key),
            input: JSON.stringify({ subject: alert.subject, message: alert.message }),
          }),
        );
      } catch (error) {
        if ((error as Error).name !== 'ExecutionAlreadyExists') throw error;
      }
    },
  };
}
