/**
 * The real AWS adapters behind the narrow interfaces of ops/clients.ts: the ONLY module of the
 * CLI that imports AWS SDK clients. Every client is built per region with retryMode 'standard'.
 *
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
import {
  DescribeArchiveCommand,
  DescribeReplayCommand,
  EventBridgeClient,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  PutEventsCommand,
  StartReplayCommand,
} from '@aws-sdk/client-eventbridge';
import { GetScheduleCommand, ListSchedulesCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';

import type {
  ControlTable,
  EventsOps,
  RegionClients,
  RuleSummary,
  RuleTarget,
  ScheduleSummary,
  SchedulerOps,
  SfnOps,
  SqsOps,
} from './clients';
import { tagCall } from './errors';
import { OpsError } from './io';
import { PLATFORM } from './settings';

export const CLIENT_CONFIG = { retryMode: 'standard', maxAttempts: 3 } as const;

interface WithStack {
  middlewareStack: { add(mw: unknown, opts: { step: 'initialize'; name: string; override?: boolean }): void };
}

/**
 * Records on every error which call failed (`SFN.DescribeExecution`), credential resolution
 * included, so ops/errors.ts can name it instead of guessing.
 */
export function nameFailedCalls<C extends WithStack>(client: C): C {
  client.middlewareStack.add(
    (next: (args: unknown) => Promise<unknown>, context: { clientName?: string; commandName?: string }) =>
      async (args: unknown) => {
        try {
          return await next(args);
        } catch (error) {
          tagCall(
            error,
            `${(context.clientName ?? 'AWS').replace(/Client$/, '')}.${(context.commandName ?? 'call').replace(/Command$/, '')}`,
          );
          throw error;
        }
      },
    { step: 'initialize', name: 'etlOpsNameFailedCalls', override: true },
  );
  return client;
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
      return {
        stateMachineArn: r.stateMachineArn as string,
        name: r.name as string,
        type: r.type as string,
        definition: r.definition,
        creationDate: r.creationDate,
      };
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
  const sfnClient = memo((region) => nameFailedCalls(new SFNClient({ region, ...CLIENT_CONFIG })));
  const control = memo((region): ControlTable => {
    const client = nameFailedCalls(new DynamoDBClient({ region, ...CLIENT_CONFIG }));
    return {
      doc: DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }),
      tableName,
      region,
    };
  });
  return {
    control,
    sfn: memo((region) => sfnAdapter(sfnClient(region))),
    events: memo((region) =>
      eventsAdapter(nameFailedCalls(new EventBridgeClient({ region, ...CLIENT_CONFIG }))),
    ),
    scheduler: memo((region) =>
      schedulerAdapter(nameFailedCalls(new SchedulerClient({ region, ...CLIENT_CONFIG }))),
    ),
    sqs: memo((region) => sqsAdapter(nameFailedCalls(new SQSClient({ region, ...CLIENT_CONFIG })))),
    async reachable(region) {
      // A cheap read-only control-plane call in that region, one attempt, short timeout.
      const probe = new SFNClient({ region, retryMode: 'standard', maxAttempts: 1 });
      try {
        await probe.send(new ListStateMachinesCommand({ maxResults: 1 }), {
          abortSignal: AbortSignal.timeout(opts.probeTimeoutMs ?? 5_000),
        });
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

export function eventsAdapter(client: EventBridgeClient): EventsOps {
  return {
    async listRules(busName) {
      const rules: RuleSummary[] = [];
      let NextToken: string | undefined;
      do {
        const page = await client.send(new ListRulesCommand({ EventBusName: busName, NextToken }));
        for (const r of page.Rules ?? [])
          rules.push({ name: r.Name as string, arn: r.Arn, state: r.State as string });
        NextToken = page.NextToken;
      } while (NextToken);
      return rules;
    },
    async listTargets(ruleName, busName) {
      const targets: RuleTarget[] = [];
      let NextToken: string | undefined;
      do {
        const page = await client.send(
          new ListTargetsByRuleCommand({ Rule: ruleName, EventBusName: busName, NextToken }),
        );
        for (const t of page.Targets ?? [])
          targets.push({ id: t.Id as string, arn: t.Arn as string, deadLetterArn: t.DeadLetterConfig?.Arn });
        NextToken = page.NextToken;
      } while (NextToken);
      return targets;
    },
    async putEvents(entries) {
      const r = await client.send(new PutEventsCommand({ Entries: entries }));
      return {
        failedEntryCount: r.FailedEntryCount ?? 0,
        errors: (r.Entries ?? []).filter((e) => e.ErrorCode).map((e) => `${e.ErrorCode}: ${e.ErrorMessage}`),
      };
    },
    async describeArchive(archiveName) {
      const r = await client.send(new DescribeArchiveCommand({ ArchiveName: archiveName }));
      return {
        archiveArn: r.ArchiveArn as string,
        eventSourceArn: r.EventSourceArn as string,
        state: r.State,
      };
    },
    async startReplay(i) {
      const r = await client.send(
        new StartReplayCommand({
          ReplayName: i.replayName,
          EventSourceArn: i.eventSourceArn,
          EventStartTime: i.eventStartTime,
          EventEndTime: i.eventEndTime,
          Destination: { Arn: i.destinationArn, FilterArns: i.filterArns },
        }),
      );
      return { replayArn: r.ReplayArn, state: r.State };
    },
    async describeReplay(replayName) {
      const r = await client.send(new DescribeReplayCommand({ ReplayName: replayName }));
      return {
        state: r.State as string,
        stateReason: r.StateReason,
        eventStartTime: r.EventStartTime,
        eventEndTime: r.EventEndTime,
        eventLastReplayedTime: r.EventLastReplayedTime,
        replayStartTime: r.ReplayStartTime,
        replayEndTime: r.ReplayEndTime,
      };
    },
  };
}

export function schedulerAdapter(client: SchedulerClient): SchedulerOps {
  return {
    async listSchedules(groupName) {
      const out: ScheduleSummary[] = [];
      let NextToken: string | undefined;
      do {
        const page = await client.send(new ListSchedulesCommand({ GroupName: groupName, NextToken }));
        for (const s of page.Schedules ?? []) {
          const full = await client.send(new GetScheduleCommand({ Name: s.Name, GroupName: groupName }));
          out.push({
            name: s.Name as string,
            groupName,
            state: full.State as string,
            targetArn: full.Target?.Arn,
            deadLetterArn: full.Target?.DeadLetterConfig?.Arn,
          });
        }
        NextToken = page.NextToken;
      } while (NextToken);
      return out;
    },
  };
}

export function sqsAdapter(client: SQSClient): SqsOps {
  return {
    async queueUrl(nameOrArn) {
      if (nameOrArn.startsWith('https://')) return nameOrArn;
      const parts = nameOrArn.split(':'); // arn:aws:sqs:<region>:<account>:<name>
      const [QueueName, QueueOwnerAWSAccountId] = nameOrArn.startsWith('arn:')
        ? [parts[5], parts[4]]
        : [nameOrArn, undefined];
      return (await client.send(new GetQueueUrlCommand({ QueueName, QueueOwnerAWSAccountId })))
        .QueueUrl as string;
    },
    async depth(QueueUrl) {
      const r = await client.send(
        new GetQueueAttributesCommand({
          QueueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return {
        visible: Number(r.Attributes?.ApproximateNumberOfMessages ?? 0),
        inFlight: Number(r.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
      };
    },
    async receive(QueueUrl, o) {
      const r = await client.send(
        new ReceiveMessageCommand({
          QueueUrl,
          MaxNumberOfMessages: o.max,
          VisibilityTimeout: o.visibilityTimeoutSeconds,
          WaitTimeSeconds: o.waitSeconds,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['SentTimestamp', 'ApproximateReceiveCount'],
        }),
      );
      return (r.Messages ?? []).map((m) => ({
        messageId: m.MessageId as string,
        receiptHandle: m.ReceiptHandle as string,
        body: m.Body ?? '',
        attributes: Object.fromEntries(
          Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? '']),
        ),
        system: m.Attributes as Record<string, string> | undefined,
      }));
    },
    async delete(QueueUrl, ReceiptHandle) {
      await client.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle }));
    },
    async release(QueueUrl, ReceiptHandle) {
      await client.send(
        new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle, VisibilityTimeout: 0 }),
      );
    },
  };
}
