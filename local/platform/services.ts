import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { callbackFor, completeRun } from '../dbt-callback';
import type { ExtractedStateMachine } from '../extract';
import type { FakeDbtApi } from '../fake-dbt-api';
import { StatesError, type ServiceHandlers } from '../sfn-local';
import type { EventBus } from './bus';
import type { VirtualClock } from './clock';
import type { GlueWorld } from './glue';
import type { Alert, ExecutionRecord, Invocation, Metrics, TriggerPath } from './types';

/** What the services use of the platform (the twin) around their region. */
/** StartExecution's arguments in the twin. */
export interface StartExecutionArgs {
  /** The state machine to start. */
  stateMachineArn: string;
  /** The execution name. @default a random UUID, as Step Functions gives */
  name?: string;
  /** The execution input, JSON text. @default "{}" */
  input?: string;
  /** The ARN of the execution that started this one. @default none: started directly */
  parent?: string;
  /** How the execution was triggered (rule, pipe, Lambda, ...). @default [] (started directly) */
  path?: TriggerPath;
}

export interface ServiceHost {
  readonly clock: VirtualClock;
  readonly alerts: Alert[];
  readonly metrics: Metrics;
  readonly glue: GlueWorld;
  log(region: string, component: string, text: string, to?: string): void;
  dynamoView(region: string): { send(cmd: any): Promise<any> };
}

/**
 * What the services use of their region (region.ts's Region): an interface here, so region.ts
 * imports this file and not the other way round.
 */
export interface ServiceRegion {
  readonly twin: ServiceHost;
  readonly region: string;
  readonly up: boolean;
  readonly bus: Pick<EventBus, 'name' | 'arn' | 'putEvents'>;
  readonly dbt: FakeDbtApi;
  invokeLambda(fnName: string, payload: unknown, from: Invocation): Promise<unknown>;
  startExecution(args: StartExecutionArgs): ExecutionRecord;
}

/**
 * The services one execution's Task states reach in its region: the region's DynamoDB replica,
 * its Lambda functions, its bus, SNS, Glue and S3 stand-ins, and Step Functions itself. Each call
 * costs a little virtual time; a dark region answers nothing.
 */
export function executionServices(
  region: ServiceRegion,
  sm: ExtractedStateMachine,
  record: ExecutionRecord,
): ServiceHandlers {
  const twin = region.twin;
  const from: Invocation = { caller: sm.name, path: record.path };
  const guard = () => {
    if (!region.up) throw new StatesError('States.Runtime', `${region.region} is dark`);
  };
  return {
    dynamodb: twin.dynamoView(region.region) as unknown as DynamoDBClient,
    lambda: async (payload, fnName) => {
      guard();
      twin.clock.tick(1000);
      return region.invokeLambda(fnName, payload, from);
    },
    // lambda:invoke.waitForTaskToken: the start Lambda, then the app's callback when the run ends
    // (local/dbt-callback.ts; each step stands for a minute of heartbeats).
    taskToken: async (payload, fnName) => {
      guard();
      twin.clock.tick(1000);
      const started = (await region.invokeLambda(fnName, payload, from)) as { runId: string };
      return callbackFor(await completeRun(region.dbt, started.runId, () => twin.clock.tick(60_000)));
    },
    events: (entries) => {
      guard();
      return putEvents(region, sm, record, entries);
    },
    sns: (params) => {
      guard();
      twin.clock.tick(100);
      const alert = {
        t: twin.clock.now(),
        region: region.region,
        subject: String(params.Subject ?? ''),
        message: String(params.Message ?? ''),
      };
      twin.alerts.push(alert);
      twin.metrics.alerts++;
      twin.log(region.region, sm.name, `ALERT ${alert.subject}`, `SNS ${region.region}`);
    },
    glue: async (params) => {
      guard();
      twin.clock.tick(60_000);
      twin.metrics.hops++;
      return twin.glue.run(region.region, params);
    },
    s3: (action, params) => {
      guard();
      return twin.glue.s3(action, params);
    },
    states: async (resource, params) => {
      guard();
      twin.metrics.hops++;
      return startChild(region, sm, record, resource, params);
    },
  };
}

/**
 * events:putEvents to the region's bus. Step Functions appends the execution and state machine ARNs
 * to each entry's Resources (AWS docs, "Add EventBridge events with Step Functions").
 */
function putEvents(
  region: ServiceRegion,
  sm: ExtractedStateMachine,
  record: ExecutionRecord,
  entries: Array<Record<string, unknown>>,
): unknown {
  const twin = region.twin;
  twin.clock.tick(100);
  const busName = String(entries[0]?.EventBusName ?? region.bus.name);
  if (busName !== region.bus.name && busName !== region.bus.arn)
    throw new StatesError('EventBridge.ResourceNotFoundException', `no bus ${busName}`);
  twin.metrics.hops++;
  for (const e of entries)
    twin.log(region.region, sm.name, `PutEvents ${String(e.DetailType)}`, `bus ${region.region}`);
  const withArns = entries.map((e) => ({
    ...e,
    Resources: [...(Array.isArray(e.Resources) ? (e.Resources as string[]) : []), record.arn, sm.arn],
  }));
  try {
    return region.bus.putEvents(withArns, { publisher: sm.name, path: record.path });
  } catch (e) {
    throw new StatesError('EventBridge.InternalException', (e as Error).message);
  }
}

/** states:startExecution (.sync waits for the child; a failed child is States.TaskFailed). */
async function startChild(
  region: ServiceRegion,
  sm: ExtractedStateMachine,
  record: ExecutionRecord,
  resource: string,
  params: Record<string, unknown>,
): Promise<unknown> {
  try {
    const child = region.startExecution({
      stateMachineArn: String(params.StateMachineArn),
      ...(params.Name ? { name: String(params.Name) } : {}),
      input: typeof params.Input === 'string' ? params.Input : JSON.stringify(params.Input ?? {}),
      parent: sm.name,
      path: [...record.path, `${sm.name} → ${resource.split(':::')[1]}`],
    });
    if (!resource.includes('.sync'))
      return { ExecutionArn: child.arn, StartDate: new Date(child.startedAt).toISOString() };
    const done = await child.done;
    const out = {
      ExecutionArn: done.arn,
      Status: done.status,
      Output: JSON.stringify(done.output ?? null),
      StartDate: done.startedAt,
      StopDate: done.stoppedAt,
    };
    if (done.status !== 'SUCCEEDED')
      throw new StatesError(
        'States.TaskFailed',
        JSON.stringify({ ...out, Error: done.error, Cause: done.cause }),
      );
    return resource.endsWith(':2') ? { ...out, Output: done.output } : out;
  } catch (e) {
    if (e instanceof StatesError) throw e;
    throw new StatesError(
      `StepFunctions.${(e as Error).name}Exception`.replace('ExceptionException', 'Exception'),
      (e as Error).message,
    );
  }
}
