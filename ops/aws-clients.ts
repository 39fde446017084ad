/**
 * The real AWS adapters behind the narrow interfaces of ops/clients.ts: the ONLY module of the
 * CLI that imports AWS SDK clients. Every client is built per region with retryMode 'standard'.
 *
 * Installed: @aws-sdk/client-dynamodb, @aws-sdk/lib-dynamodb, @aws-sdk/client-sfn.
 * NOT yet installed (see docs/ops-cli.md#dependencies): @aws-sdk/client-eventbridge,
 * @aws-sdk/client-scheduler, @aws-sdk/client-sqs. Until they are added, the factories for those
 * clients throw MissingPackageError, which the CLI reports as a clear failure; the adapters to
 * paste in are in ops/aws-clients.pending.txt.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  DescribeStateMachineForExecutionCommand,
  ListStateMachinesCommand,
  RedriveExecutionCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { ControlTable, EventsOps, RegionClients, SchedulerOps, SfnOps, SqsOps } from './clients';
import { OpsError } from './io';
import { PLATFORM } from './settings';

export const CLIENT_CONFIG = { retryMode: 'standard', maxAttempts: 3 } as const;

export class MissingPackageError extends OpsError {
  constructor(
    readonly packageName: string,
    what: string,
  ) {
    super(`${what} needs the package ${packageName}, which is not installed yet. Add it (npm install ${packageName}) and wire its adapter (ops/aws-clients.pending.txt).`);
  }
}

function memo<T>(make: (region: string) => T): (region: string) => T {
  const cache = new Map<string, T>();
  return (region) => {
    let value = cache.get(region);
    if (value === undefined) {
      value = make(region);
      cache.set(region, value);
    }
    return value;
  };
}

export function sfnAdapter(client: SFNClient): SfnOps {
  return {
    async startExecution({ stateMachineArn, name, input }) {
      const r = await client.send(new StartExecutionCommand({ stateMachineArn, name, input }));
      return { executionArn: r.executionArn as string, startDate: r.startDate };
    },
    async describeExecution(executionArn) {
      const r = await client.send(new DescribeExecutionCommand({ executionArn }));
      return {
        executionArn: r.executionArn as string,
        stateMachineArn: r.stateMachineArn as string,
        name: r.name,
        status: r.status as string,
        startDate: r.startDate,
        stopDate: r.stopDate,
        input: r.input,
        redriveStatus: r.redriveStatus,
        redriveStatusReason: r.redriveStatusReason,
        redriveCount: r.redriveCount,
        error: r.error,
        cause: r.cause,
      };
    },
    async describeStateMachine(stateMachineArn) {
      const r = await client.send(new DescribeStateMachineCommand({ stateMachineArn }));
      return { stateMachineArn: r.stateMachineArn as string, name: r.name as string, type: r.type as string, definition: r.definition, creationDate: r.creationDate };
    },
    async describeStateMachineForExecution(executionArn) {
      const r = await client.send(new DescribeStateMachineForExecutionCommand({ executionArn }));
      return { definition: r.definition, updateDate: r.updateDate };
    },
    async redriveExecution(executionArn) {
      const r = await client.send(new RedriveExecutionCommand({ executionArn }));
      return { redriveDate: r.redriveDate };
    },
    async stateMachineArn(name) {
      let nextToken: string | undefined;
      do {
        const page = await client.send(new ListStateMachinesCommand({ nextToken, maxResults: 1000 }));
        const hit = page.stateMachines?.find((m) => m.name === name);
        if (hit?.stateMachineArn) return hit.stateMachineArn;
        nextToken = page.nextToken;
      } while (nextToken);
      throw new OpsError(`State machine ${name} not found in this region: is the stack deployed?`);
    },
  };
}

export interface AwsClientOptions {
  tableName?: string;
  /** Reachability probe timeout. */
  probeTimeoutMs?: number;
}

/** Real clients, built lazily per region. */
export function awsClients(opts: AwsClientOptions = {}): RegionClients {
  const tableName = opts.tableName ?? PLATFORM.controlTable;
  const sfnClient = memo((region) => new SFNClient({ region, ...CLIENT_CONFIG }));
  const control = memo((region): ControlTable => {
    const client = new DynamoDBClient({ region, ...CLIENT_CONFIG });
    return { doc: DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }), tableName, region };
  });
  const missing = (pkg: string, what: string) => () => {
    throw new MissingPackageError(pkg, what);
  };
  return {
    control,
    sfn: memo((region) => sfnAdapter(sfnClient(region))),
    events: missing('@aws-sdk/client-eventbridge', 'EventBridge (rules, PutEvents, archive replay)') as (region: string) => EventsOps,
    scheduler: missing('@aws-sdk/client-scheduler', 'EventBridge Scheduler (schedule states, schedule DLQs)') as (region: string) => SchedulerOps,
    sqs: missing('@aws-sdk/client-sqs', 'SQS (dead-letter queues)') as (region: string) => SqsOps,
    async reachable(region) {
      // A cheap read-only control-plane call in that region, one attempt, short timeout.
      const probe = new SFNClient({ region, retryMode: 'standard', maxAttempts: 1 });
      try {
        await probe.send(new ListStateMachinesCommand({ maxResults: 1 }), { abortSignal: AbortSignal.timeout(opts.probeTimeoutMs ?? 5_000) });
        return true;
      } catch (error) {
        // The service answered (even AccessDenied): reachable. Timeouts and network errors: not.
        return Boolean((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode);
      } finally {
        probe.destroy();
      }
    },
  };
}
