import { HANDLER_TAG } from '../components/handler-function';
import { HANDLER_ENV } from '../contracts/env';
import type { EventPattern } from '../events/pattern';
import type { StateMachineDefinition } from '../state-machines/asl';
import type { RecordedResource } from './pulumi-mocks';
import { STACK_REGION, STACKS, type StackName } from '../contracts/regions';
import { renderedEnv, runProgram, type ProgramRun } from './program';
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';

/**
 * The one extraction: runs the REAL program (index.ts) under the recording mocks for one stack
 * and reads back what it would deploy, for the local platform, the exactly-once world and the
 * scripts. One code path with the tests: `runProgram`. Nothing here restates a definition, a
 * pattern or a handler (design decision 8).
 */

export interface RetryPolicy {
  maximumRetryAttempts: number;
  maximumEventAgeInSeconds: number;
}

export interface ExtractedStateMachine {
  name: string;
  arn: string;
  region: string;
  definition: StateMachineDefinition;
}

export interface ExtractedTarget {
  arn: string;
  roleArn?: string;
  input?: string;
  retryPolicy?: RetryPolicy;
  dlqArn?: string;
}

export interface ExtractedRule {
  name: string;
  arn: string;
  busName: string;
  pattern: EventPattern;
  state: 'ENABLED' | 'DISABLED';
  targets: ExtractedTarget[];
}

export interface ExtractedSchedule {
  name: string;
  arn: string;
  expression: string;
  timezone: string;
  state: 'ENABLED' | 'DISABLED';
  target: ExtractedTarget;
}

export interface ExtractedFunction {
  name: string;
  arn: string;
  /** handlers/<handler>.ts */
  handler: string;
  env: Record<string, string>;
  /** From FunctionEventInvokeConfig (async invocations); AWS default is 2 retries, 6 h. */
  async: { maximumRetryAttempts: number; maximumEventAgeInSeconds: number; onFailureArn?: string };
}

export interface ExtractedQueue {
  name: string;
  arn: string;
  url: string;
}

export interface StackModel {
  stack: StackName;
  region: string;
  activeRegion: string;
  eventSource: string;
  bus: { name: string; arn: string };
  archive: { name: string; pattern: EventPattern; retentionDays: number };
  stateMachines: ExtractedStateMachine[];
  rules: ExtractedRule[];
  schedules: ExtractedSchedule[];
  functions: ExtractedFunction[];
  queues: ExtractedQueue[];
  topics: Array<{ name: string; arn: string }>;
  controlTableName: string;
  /** What `pulumi up` invokes to move the fence: the function and its input. */
  fenceInvocation: { functionName: string; input: Record<string, unknown> };
  /** Lake bucket(s) the workflows read Glue results from. */
  outputs: Record<string, any>;
  /** The dbt app as deployed: the Deployment's rendered env, its runs table, the Snowflake secret's value. */
  dbtApp: {
    env: Record<string, string>;
    runsTable: CreateTableCommandInput;
    snowflakeSecret: string | undefined;
  };
}

export interface ExtractOptions {
  /** The stack whose program run is read. */
  stack: StackName;
  /** The `activeRegion` config the stack is run with. */
  activeRegion: string;
  /** Extra config overrides (e.g. defaultTriggerMode). */
  config?: Record<string, unknown>;
}

function parseJson<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

function regionOf(arn: string): string {
  return arn.split(':')[3];
}

export async function extractStack(options: ExtractOptions): Promise<StackModel> {
  const run = await runProgram({
    stack: options.stack,
    activeRegion: options.activeRegion,
    ...(options.config ? { config: options.config } : {}),
  });
  if (run.error) throw new Error(`extract ${options.stack}: the program failed: ${run.error.message}`);
  return stackModel(run, options);
}

/** What a program run recorded for one stack, as the local platform runs it. */
export function stackModel(run: ProgramRun, options: ExtractOptions): StackModel {
  const of = (type: string): RecordedResource[] => run.ofType(type);
  const busRes = run.one('aws:cloudwatch/eventBus:EventBus');
  const archiveRes = run.one('aws:cloudwatch/eventArchive:EventArchive');
  const functions = functionsOf(run);
  const invocation = run.one('aws:lambda/invocation:Invocation', 'fence');
  const fenceWriter = functions.find((f) => f.handler === 'fence-writer');
  if (!fenceWriter) throw new Error('extract: no fence-writer function');
  return {
    stack: options.stack,
    region: STACK_REGION[options.stack],
    activeRegion: options.activeRegion,
    eventSource: parseJson<{ source: string[] }>(archiveRes.inputs.eventPattern).source[0],
    bus: { name: busRes.state.name, arn: busRes.state.arn },
    archive: {
      name: archiveRes.state.name,
      pattern: parseJson<EventPattern>(archiveRes.inputs.eventPattern),
      retentionDays: archiveRes.inputs.retentionDays ?? 0,
    },
    stateMachines: of('aws:sfn/stateMachine:StateMachine').map((sm) => ({
      name: sm.state.name as string,
      arn: sm.state.arn as string,
      region: regionOf(sm.state.arn),
      definition: parseJson<StateMachineDefinition>(sm.inputs.definition),
    })),
    rules: rulesOf(run),
    schedules: schedulesOf(run),
    functions,
    queues: of('aws:sqs/queue:Queue').map((q) => ({
      name: q.state.name,
      arn: q.state.arn,
      url: q.state.url,
    })),
    topics: of('aws:sns/topic:Topic').map((t) => ({ name: t.state.name, arn: t.state.arn })),
    controlTableName: fenceWriter.env[HANDLER_ENV.CONTROL_TABLE_NAME],
    fenceInvocation: {
      functionName: invocation.inputs.functionName,
      input: parseJson<Record<string, unknown>>(invocation.inputs.input),
    },
    outputs: run.outputs,
    dbtApp: {
      env: renderedEnv(run),
      runsTable: runsTableInput(run.one('aws:dynamodb/table:Table', 'dbt-runs').inputs),
      snowflakeSecret: of('aws:secretsmanager/secretVersion:SecretVersion').find((r) =>
        r.name.includes('snowflake'),
      )?.inputs.secretString,
    },
  };
}

/** Each function with its handler (by tag), environment and async-invocation config. */
function functionsOf(run: ProgramRun): ExtractedFunction[] {
  const asyncConfigs = run.ofType('aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig');
  return run.ofType('aws:lambda/function:Function').map((fn) => {
    const handler = fn.inputs.tags?.[HANDLER_TAG];
    if (typeof handler !== 'string')
      throw new Error(`extract: function ${fn.state.name} has no ${HANDLER_TAG} tag`);
    const cfg = asyncConfigs.find((c) => c.inputs.functionName === fn.state.name);
    return {
      name: fn.state.name,
      arn: fn.state.arn,
      handler,
      env: { ...(fn.inputs.environment?.variables ?? {}) },
      async: {
        maximumRetryAttempts: cfg?.inputs.maximumRetryAttempts ?? 2,
        maximumEventAgeInSeconds: cfg?.inputs.maximumEventAgeInSeconds ?? 21_600,
        ...(cfg?.inputs.destinationConfig?.onFailure?.destination
          ? { onFailureArn: cfg.inputs.destinationConfig.onFailure.destination }
          : {}),
      },
    };
  });
}

/** Each rule with its pattern, state and targets (matched by rule name and bus). */
function rulesOf(run: ProgramRun): ExtractedRule[] {
  const targets = run.ofType('aws:cloudwatch/eventTarget:EventTarget');
  return run.ofType('aws:cloudwatch/eventRule:EventRule').map((r) => ({
    name: r.state.name,
    arn: r.state.arn,
    busName: r.inputs.eventBusName ?? 'default',
    pattern: parseJson<EventPattern>(r.inputs.eventPattern),
    state: (r.inputs.state ?? 'ENABLED') as 'ENABLED' | 'DISABLED',
    targets: targets
      .filter(
        (t) =>
          t.inputs.rule === r.state.name &&
          (t.inputs.eventBusName ?? 'default') === (r.inputs.eventBusName ?? 'default'),
      )
      .map((t) => ({
        arn: t.inputs.arn,
        ...(t.inputs.roleArn ? { roleArn: t.inputs.roleArn } : {}),
        ...(t.inputs.input ? { input: t.inputs.input } : {}),
        ...(t.inputs.retryPolicy ? { retryPolicy: t.inputs.retryPolicy } : {}),
        ...(t.inputs.deadLetterConfig?.arn ? { dlqArn: t.inputs.deadLetterConfig.arn } : {}),
      })),
  }));
}

function schedulesOf(run: ProgramRun): ExtractedSchedule[] {
  return run.ofType('aws:scheduler/schedule:Schedule').map((s) => ({
    name: s.state.name,
    arn: s.state.arn,
    expression: s.inputs.scheduleExpression,
    timezone: s.inputs.scheduleExpressionTimezone ?? 'UTC',
    state: (s.inputs.state ?? 'ENABLED') as 'ENABLED' | 'DISABLED',
    target: {
      arn: s.inputs.target.arn,
      roleArn: s.inputs.target.roleArn,
      input: s.inputs.target.input,
      ...(s.inputs.target.retryPolicy ? { retryPolicy: s.inputs.target.retryPolicy } : {}),
      ...(s.inputs.target.deadLetterConfig?.arn ? { dlqArn: s.inputs.target.deadLetterConfig.arn } : {}),
    },
  }));
}

/** CreateTable input from the program's aws.dynamodb.Table inputs (hash/range key, GSIs). */
function runsTableInput(t: any): CreateTableCommandInput {
  return {
    TableName: t.name,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: t.attributes.map((a: any) => ({ AttributeName: a.name, AttributeType: a.type })),
    KeySchema: [
      { AttributeName: t.hashKey, KeyType: 'HASH' },
      { AttributeName: t.rangeKey, KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: (t.globalSecondaryIndexes ?? []).map((g: any) => ({
      IndexName: g.name,
      KeySchema: [
        { AttributeName: g.hashKey, KeyType: 'HASH' },
        { AttributeName: g.rangeKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: g.projectionType },
    })),
  };
}

/** Both stacks, as the given active region would deploy them. */
export async function extractPlatform(
  activeRegion: string,
  config?: Record<string, unknown>,
): Promise<Record<StackName, StackModel>> {
  const models: Partial<Record<StackName, StackModel>> = {};
  for (const stack of STACKS)
    models[stack] = await extractStack({ stack, activeRegion, ...(config ? { config } : {}) });
  return models as Record<StackName, StackModel>;
}
