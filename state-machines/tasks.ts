import * as pulumi from '@pulumi/pulumi';
import type {
  Catcher,
  ChoiceRule,
  ChoiceState,
  FailState,
  MapState,
  PassState,
  Path,
  PayloadTemplate,
  Retrier,
  State,
  StateMachineDefinition,
  SucceedState,
  TaskState,
  Transition,
  WaitState,
} from './asl';
import type { IamStatement } from '../contracts/iam';

/** What every helper returns: the state plus the IAM it needs (aws-cdk style). */
export interface TaskResult<S extends State = TaskState> {
  state: S;
  statements: IamStatement[];
}

/**
 * Error handling is on by default: either name the state that handles failures (`catchTo`), or
 * pass your own `catch` list, or opt out with `catch: false` — never silently absent.
 */
export type ErrorHandling =
  { catchTo: string; catch?: undefined } | { catchTo?: undefined; catch: Catcher[] | false };

export type TaskOptions = ErrorHandling & {
  /** Next state; omit to end the (sub)machine. */
  next?: string;
  /** Replaces the integration's default Retry; `false` for none. */
  retry?: Retrier[] | false;
  /** Where the default catcher puts `{Error, Cause}`. Default `$.error`. */
  errorResultPath?: Path;
  resultPath?: Path | null;
  resultSelector?: PayloadTemplate;
  inputPath?: Path | null;
  outputPath?: Path | null;
  timeoutSeconds?: number;
  comment?: string;
};

export const DEFAULT_ERROR_RESULT_PATH = '$.error';

/** What a failed DynamoDB condition raises through the optimized integration. */
export const CONDITIONAL_CHECK_FAILED = 'DynamoDB.ConditionalCheckFailedException';

/**
 * Catchers for a conditional write whose failed condition is an expected outcome: that goes to
 * `onConditionFailed` (input unchanged), any other error to `otherwise` with the error at `$.error`
 * (or to the given catchers).
 */
export function conditionFailedTo(onConditionFailed: string, otherwise: string | Catcher[]): Catcher[] {
  return [
    { ErrorEquals: [CONDITIONAL_CHECK_FAILED], Next: onConditionFailed, ResultPath: null },
    ...(typeof otherwise === 'string'
      ? [{ ErrorEquals: ['States.ALL'], Next: otherwise, ResultPath: DEFAULT_ERROR_RESULT_PATH }]
      : otherwise),
  ];
}

/** Exponential backoff with full jitter for transient/throttling errors. */
export function backoff(errorEquals: string[], overrides: Partial<Retrier> = {}): Retrier {
  return {
    ErrorEquals: errorEquals,
    IntervalSeconds: 1,
    MaxAttempts: 4,
    BackoffRate: 2,
    MaxDelaySeconds: 30,
    JitterStrategy: 'FULL',
    ...overrides,
  };
}

// Transient error names per integration. Optimized integrations prefix the service name as
// Step Functions spells it ("DynamoDB."); aws-sdk integrations use PascalCase "DynamoDb." and
// always append "Exception".
export const RETRYABLE = {
  dynamodb: [
    'DynamoDB.ProvisionedThroughputExceededException',
    'DynamoDB.ThrottlingException',
    'DynamoDB.RequestLimitExceeded',
    'DynamoDB.InternalServerErrorException',
    // Optimized integrations name errors after the SDK exception class; unmodelled codes
    // (such as ThrottlingException) arrive as AmazonDynamoDBException.
    'DynamoDB.RequestLimitExceededException',
    'DynamoDB.AmazonDynamoDBException',
  ],
  dynamodbSdk: [
    'DynamoDb.ProvisionedThroughputExceededException',
    'DynamoDb.ThrottlingException',
    'DynamoDb.RequestLimitExceededException',
    'DynamoDb.InternalServerErrorException',
  ],
  lambda: [
    'Lambda.ServiceException',
    'Lambda.AWSLambdaException',
    'Lambda.SdkClientException',
    'Lambda.TooManyRequestsException',
  ],
  events: ['EventBridge.InternalException', 'EventBridge.ThrottlingException', 'EventBridge.FailedEntry'],
  sns: ['SNS.ThrottledException', 'SNS.InternalErrorException', 'SNS.KMSThrottlingException'],
  glue: [
    'Glue.ConcurrentRunsExceededException',
    'Glue.ThrottlingException',
    'Glue.InternalServiceException',
    'Glue.OperationTimeoutException',
  ],
  states: ['StepFunctions.ThrottlingException', 'StepFunctions.SdkClientException'],
  // aws-sdk integration: "S3.<Name>Exception".
  s3: [
    'S3.SlowDownException',
    'S3.InternalErrorException',
    'S3.ServiceUnavailableException',
    'S3.SdkClientException',
  ],
} as const;

function transition(next: string | undefined): Transition {
  return next === undefined ? { End: true } : { Next: next };
}

/** Applies the shared I/O, Retry and Catch options to a Task or Map state. */
function decorate<S extends TaskState | MapState>(
  state: S,
  defaultRetry: readonly string[],
  opts: TaskOptions,
): S {
  if (opts.comment !== undefined) state.Comment = opts.comment;
  if (opts.inputPath !== undefined) state.InputPath = opts.inputPath;
  if (opts.resultSelector !== undefined) state.ResultSelector = opts.resultSelector;
  if (opts.resultPath !== undefined) state.ResultPath = opts.resultPath;
  if (opts.outputPath !== undefined) state.OutputPath = opts.outputPath;
  const retry = opts.retry ?? (defaultRetry.length > 0 ? [backoff([...defaultRetry])] : false);
  if (retry !== false && retry.length > 0) state.Retry = retry;
  const catchers =
    opts.catchTo !== undefined
      ? [
          {
            ErrorEquals: ['States.ALL'],
            Next: opts.catchTo,
            ResultPath: opts.errorResultPath ?? DEFAULT_ERROR_RESULT_PATH,
          },
        ]
      : opts.catch;
  if (catchers !== false && catchers !== undefined && catchers.length > 0) state.Catch = catchers;
  return state;
}

function buildTask(
  resource: string,
  parameters: PayloadTemplate,
  defaultRetry: readonly string[],
  opts: TaskOptions,
  defaultSelector?: PayloadTemplate,
): TaskState {
  const state = {
    Type: 'Task',
    Resource: resource,
    Parameters: parameters,
    ...transition(opts.next),
  } as TaskState;
  if (defaultSelector !== undefined) state.ResultSelector = defaultSelector;
  if (opts.timeoutSeconds !== undefined) state.TimeoutSeconds = opts.timeoutSeconds;
  return decorate(state, defaultRetry, opts);
}

function allow(actions: string[], resources: pulumi.Input<string>[]): IamStatement {
  return { Effect: 'Allow', Action: actions, Resource: resources };
}

// ---------------------------------------------------------------- DynamoDB

export interface DynamoTable {
  /** Goes into Parameters.TableName. */
  name: pulumi.Input<string>;
  /** Scopes IAM. */
  arn: pulumi.Input<string>;
}

/** DynamoDB request fields in the API's own PascalCase; `.$` keys are allowed. */
export type DynamoParams = {
  ConditionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: PayloadTemplate;
  ReturnValues?: 'NONE' | 'ALL_OLD' | 'UPDATED_OLD' | 'ALL_NEW' | 'UPDATED_NEW';
  [key: string]: unknown;
};

function dynamo(
  action: 'putItem' | 'updateItem' | 'getItem' | 'deleteItem',
  iamAction: string,
  table: DynamoTable,
  params: DynamoParams,
  opts: TaskOptions,
): TaskResult {
  return {
    state: buildTask(
      `arn:aws:states:::dynamodb:${action}`,
      { TableName: table.name, ...params },
      RETRYABLE.dynamodb,
      opts,
    ),
    statements: [allow([iamAction], [table.arn])],
  };
}

export function dynamoPutItem(
  table: DynamoTable,
  params: DynamoParams & { Item: PayloadTemplate },
  opts: TaskOptions,
): TaskResult {
  return dynamo('putItem', 'dynamodb:PutItem', table, params, opts);
}

export function dynamoUpdateItem(
  table: DynamoTable,
  params: DynamoParams & { Key: PayloadTemplate; UpdateExpression: string },
  opts: TaskOptions,
): TaskResult {
  return dynamo('updateItem', 'dynamodb:UpdateItem', table, params, opts);
}

export function dynamoGetItem(
  table: DynamoTable,
  params: {
    Key: PayloadTemplate;
    ConsistentRead?: boolean;
    ProjectionExpression?: string;
    [key: string]: unknown;
  },
  opts: TaskOptions,
): TaskResult {
  return dynamo('getItem', 'dynamodb:GetItem', table, params, opts);
}

export function dynamoDeleteItem(
  table: DynamoTable,
  params: DynamoParams & { Key: PayloadTemplate },
  opts: TaskOptions,
): TaskResult {
  return dynamo('deleteItem', 'dynamodb:DeleteItem', table, params, opts);
}

/**
 * Deletes a pipeline lock only if this execution holds it, so a slow release never deletes another
 * execution's lock (ConditionalCheckFailed when it does not hold it; `opts` says where that goes).
 */
export function releaseOwnLock(table: DynamoTable, lockKey: PayloadTemplate, opts: TaskOptions): TaskResult {
  return dynamoDeleteItem(
    table,
    {
      Key: lockKey,
      ConditionExpression: 'executionArn = :exec',
      ExpressionAttributeValues: { ':exec': { 'S.$': '$$.Execution.Id' } },
    },
    opts,
  );
}

/** Query has no optimized integration: this is the aws-sdk one (errors named `DynamoDb.*`). */
export function dynamoQuery(
  table: DynamoTable,
  params: {
    KeyConditionExpression: string;
    IndexName?: string;
    ExpressionAttributeNames?: Record<string, string>;
    ExpressionAttributeValues?: PayloadTemplate;
    ScanIndexForward?: boolean;
    Limit?: number;
    [key: string]: unknown;
  },
  opts: TaskOptions,
): TaskResult {
  // Querying an index needs permission on the index ARN only, not on the table.
  const resource = params.IndexName ? pulumi.interpolate`${table.arn}/index/${params.IndexName}` : table.arn;
  return {
    state: buildTask(
      'arn:aws:states:::aws-sdk:dynamodb:query',
      { TableName: table.name, ...params },
      RETRYABLE.dynamodbSdk,
      opts,
    ),
    statements: [allow(['dynamodb:Query'], [resource])],
  };
}

// ---------------------------------------------------------------- Lambda

/**
 * Result is `{ Payload }` (ResultSelector strips the invoke metadata), so with
 * `resultPath: '$.x'` the function's return value is at `$.x.Payload`.
 */
export function lambdaInvoke(
  fn: { arn: pulumi.Input<string> },
  opts: TaskOptions & { payload?: PayloadTemplate; payloadPath?: Path },
): TaskResult {
  const params: PayloadTemplate = { FunctionName: fn.arn };
  if (opts.payload !== undefined) params.Payload = opts.payload;
  else params['Payload.$'] = opts.payloadPath ?? '$';
  return {
    state: buildTask('arn:aws:states:::lambda:invoke', params, RETRYABLE.lambda, opts, {
      'Payload.$': '$.Payload',
    }),
    // Qualified ARNs (versions/aliases) need the `:*` form.
    statements: [allow(['lambda:InvokeFunction'], [fn.arn, pulumi.interpolate`${fn.arn}:*`])],
  };
}

/**
 * `lambda:invoke.waitForTaskToken`: the function starts the work and returns; the Task waits for
 * SendTaskSuccess/SendTaskFailure with the token (`'taskToken.$': '$$.Task.Token'` in `payload`).
 * The result is the callback's output as sent (no `Payload` wrapper). A paused Task costs no
 * transitions; `heartbeatSeconds` fails it with `States.HeartbeatTimeout` when heartbeats stop.
 * IAM: `lambda:InvokeFunction` on the exact (unqualified) ARN only; the app that calls back needs
 * `states:SendTask*`, not this role.
 */
export function lambdaInvokeWaitForTaskToken(
  fn: { arn: pulumi.Input<string> },
  opts: TaskOptions & { payload: PayloadTemplate; heartbeatSeconds: number; timeoutSeconds: number },
): TaskResult {
  if (!JSON.stringify(opts.payload).includes('$$.Task.Token')) {
    throw new Error(
      'lambdaInvokeWaitForTaskToken: the payload must pass $$.Task.Token, or nothing can call back',
    );
  }
  if (!(opts.heartbeatSeconds > 0 && opts.heartbeatSeconds < opts.timeoutSeconds)) {
    throw new Error(
      `lambdaInvokeWaitForTaskToken: heartbeatSeconds ${opts.heartbeatSeconds} must be > 0 and below timeoutSeconds ${opts.timeoutSeconds}`,
    );
  }
  const state = buildTask(
    'arn:aws:states:::lambda:invoke.waitForTaskToken',
    { FunctionName: fn.arn, Payload: opts.payload },
    RETRYABLE.lambda,
    opts,
  );
  state.HeartbeatSeconds = opts.heartbeatSeconds;
  return { state, statements: [allow(['lambda:InvokeFunction'], [fn.arn])] };
}

// ---------------------------------------------------------------- EventBridge

export type EventEntry = {
  Source: string;
  DetailType: string;
  Detail?: PayloadTemplate;
  'Detail.$'?: Path;
  [key: string]: unknown;
};

/** EventBusName is set to the bus ARN on every entry. */
export function eventsPutEvents(
  bus: { arn: pulumi.Input<string> },
  entries: EventEntry[],
  opts: TaskOptions,
): TaskResult {
  return {
    state: buildTask(
      'arn:aws:states:::events:putEvents',
      { Entries: entries.map((e) => ({ ...e, EventBusName: bus.arn })) },
      RETRYABLE.events,
      opts,
    ),
    statements: [allow(['events:PutEvents'], [bus.arn])],
  };
}

// ---------------------------------------------------------------- SNS

export function snsPublish(
  topic: { arn: pulumi.Input<string>; kmsKeyArn?: pulumi.Input<string> },
  params: {
    Message?: unknown;
    'Message.$'?: Path;
    Subject?: string;
    'Subject.$'?: Path;
    [key: string]: unknown;
  },
  opts: TaskOptions,
): TaskResult {
  const statements = [allow(['sns:Publish'], [topic.arn])];
  if (topic.kmsKeyArn !== undefined) {
    statements.push(allow(['kms:GenerateDataKey', 'kms:Decrypt'], [topic.kmsKeyArn]));
  }
  return {
    state: buildTask('arn:aws:states:::sns:publish', { TopicArn: topic.arn, ...params }, RETRYABLE.sns, opts),
    statements,
  };
}

// ---------------------------------------------------------------- Glue

/**
 * Waits for the run. A run ending FAILED/ERROR/TIMEOUT/STOPPED fails the task with
 * `States.TaskFailed`, which the default Retry deliberately does not retry.
 */
export function glueStartJobRunSync(
  job: { name: pulumi.Input<string>; arn: pulumi.Input<string> },
  params: { Arguments?: PayloadTemplate; [key: string]: unknown },
  opts: TaskOptions,
): TaskResult {
  return {
    state: buildTask(
      'arn:aws:states:::glue:startJobRun.sync',
      { JobName: job.name, ...params },
      RETRYABLE.glue,
      opts,
    ),
    statements: [
      allow(['glue:StartJobRun', 'glue:GetJobRun', 'glue:GetJobRuns', 'glue:BatchStopJobRun'], [job.arn]),
    ],
  };
}

// ---------------------------------------------------------------- S3

export interface S3Objects {
  /** Bucket name, for Parameters.Bucket. */
  name: pulumi.Input<string>;
  /** Bucket ARN (`arn:aws:s3:::b`); IAM is scoped to `<arn>/<keyPattern>`. */
  arn: pulumi.Input<string>;
  /** The object keys this task may read, e.g. `_runs/policycenter/*`. */
  keyPattern: pulumi.Input<string>;
  /** The bucket's customer managed key, when objects are SSE-KMS encrypted. */
  kmsKeyArn?: pulumi.Input<string>;
}

/**
 * aws-sdk `s3:getObject`: the result's `Body` is the object as a string (state payloads are at
 * most 256 KiB), e.g. `resultSelector: { 'value.$': 'States.StringToJson($.Body)' }`.
 */
export function s3GetObject(
  objects: S3Objects,
  params: { Key?: string; 'Key.$'?: Path; [key: string]: unknown },
  opts: TaskOptions,
): TaskResult {
  const statements = [allow(['s3:GetObject'], [pulumi.interpolate`${objects.arn}/${objects.keyPattern}`])];
  if (objects.kmsKeyArn !== undefined) statements.push(allow(['kms:Decrypt'], [objects.kmsKeyArn]));
  return {
    state: buildTask(
      'arn:aws:states:::aws-sdk:s3:getObject',
      { Bucket: objects.name, ...params },
      RETRYABLE.s3,
      opts,
    ),
    statements,
  };
}

// ---------------------------------------------------------------- Step Functions

export type StartExecutionParams = {
  Input?: PayloadTemplate;
  'Input.$'?: Path;
  Name?: string;
  'Name.$'?: Path;
  [key: string]: unknown;
};

/** `arn:aws:states:<r>:<a>:stateMachine:<name>` → its execution ARN pattern and the managed rule ARN. */
export function syncExecutionArns(stateMachineArn: pulumi.Input<string>): {
  executions: pulumi.Output<string>;
  rule: pulumi.Output<string>;
} {
  const parts = pulumi.output(stateMachineArn).apply((arn) => {
    const m = /^arn:([^:]+):states:([^:]+):(\d+):stateMachine:([^:]+)$/.exec(arn);
    if (!m) throw new Error(`not a state machine ARN: ${arn}`);
    return { partition: m[1], region: m[2], account: m[3], name: m[4] };
  });
  return {
    executions: parts.apply(
      (p) => `arn:${p.partition}:states:${p.region}:${p.account}:execution:${p.name}:*`,
    ),
    rule: parts.apply(
      (p) =>
        `arn:${p.partition}:events:${p.region}:${p.account}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule`,
    ),
  };
}

/** Fire-and-forget child execution. */
export function sfnStartExecution(
  stateMachine: { arn: pulumi.Input<string> },
  params: StartExecutionParams,
  opts: TaskOptions,
): TaskResult {
  return {
    state: buildTask(
      'arn:aws:states:::states:startExecution',
      { StateMachineArn: stateMachine.arn, ...params },
      RETRYABLE.states,
      opts,
    ),
    statements: [allow(['states:StartExecution'], [stateMachine.arn])],
  };
}

/** Starts a child and waits (`.sync:2`: output is parsed JSON). IAM as AWS documents for .sync. */
export function sfnStartExecutionSync(
  stateMachine: { arn: pulumi.Input<string> },
  params: StartExecutionParams,
  opts: TaskOptions,
): TaskResult {
  const arns = syncExecutionArns(stateMachine.arn);
  return {
    state: buildTask(
      'arn:aws:states:::states:startExecution.sync:2',
      { StateMachineArn: stateMachine.arn, ...params },
      RETRYABLE.states,
      opts,
    ),
    statements: [
      allow(['states:StartExecution'], [stateMachine.arn]),
      allow(['states:DescribeExecution', 'states:StopExecution'], [arns.executions]),
      allow(['events:PutTargets', 'events:PutRule', 'events:DescribeRule'], [arns.rule]),
    ],
  };
}

// ---------------------------------------------------------------- flow states

export function pass(
  opts: {
    next?: string;
    result?: unknown;
    parameters?: PayloadTemplate;
    resultPath?: Path | null;
    comment?: string;
  } = {},
): PassState {
  const s = { Type: 'Pass', ...transition(opts.next) } as PassState;
  if (opts.comment !== undefined) s.Comment = opts.comment;
  if (opts.result !== undefined) s.Result = opts.result;
  if (opts.parameters !== undefined) s.Parameters = opts.parameters;
  if (opts.resultPath !== undefined) s.ResultPath = opts.resultPath;
  return s;
}

export function choice(choices: ChoiceRule[], otherwise?: string, comment?: string): ChoiceState {
  const s: ChoiceState = { Type: 'Choice', Choices: choices };
  if (otherwise !== undefined) s.Default = otherwise;
  if (comment !== undefined) s.Comment = comment;
  return s;
}

export function wait(
  by: { seconds: number } | { secondsPath: Path } | { timestampPath: Path },
  next?: string,
): WaitState {
  const t = transition(next);
  if ('seconds' in by) return { Type: 'Wait', Seconds: by.seconds, ...t } as WaitState;
  if ('secondsPath' in by) return { Type: 'Wait', SecondsPath: by.secondsPath, ...t } as WaitState;
  return { Type: 'Wait', TimestampPath: by.timestampPath, ...t } as WaitState;
}

export function succeed(comment?: string): SucceedState {
  return comment === undefined ? { Type: 'Succeed' } : { Type: 'Succeed', Comment: comment };
}

export function fail(
  opts: { error?: string; cause?: string; errorPath?: Path; causePath?: Path; comment?: string } = {},
): FailState {
  const s: FailState = { Type: 'Fail' };
  if (opts.error !== undefined) s.Error = opts.error;
  if (opts.cause !== undefined) s.Cause = opts.cause;
  if (opts.errorPath !== undefined) s.ErrorPath = opts.errorPath;
  if (opts.causePath !== undefined) s.CausePath = opts.causePath;
  if (opts.comment !== undefined) s.Comment = opts.comment;
  return s;
}

/** A states map whose entries may be plain states or helper results. */
export type StatesInput = Record<string, State | TaskResult<State>>;

function isResult(x: State | TaskResult<State>): x is TaskResult<State> {
  return 'state' in x && 'statements' in x;
}

/** Separates helper results into plain states and the statements they carry (in state order). */
export function splitStates(states: StatesInput): {
  states: Record<string, State>;
  statements: IamStatement[];
} {
  const out: Record<string, State> = {};
  const statements: IamStatement[] = [];
  for (const [name, s] of Object.entries(states)) {
    if (isResult(s)) {
      out[name] = s.state;
      statements.push(...s.statements);
    } else out[name] = s;
  }
  return { states: out, statements };
}

/**
 * Inline Map; the processor's statements (those its helper results carry, then `statements`, e.g.
 * from `composeFragments`) are carried up. Default catch as for tasks.
 */
export function map(
  processor: { startAt: string; states: StatesInput; statements?: readonly IamStatement[] },
  opts: TaskOptions & { itemsPath?: Path; itemSelector?: PayloadTemplate; maxConcurrency?: number },
): TaskResult<MapState> {
  const inner = splitStates(processor.states);
  const state = decorate(
    {
      Type: 'Map',
      ItemProcessor: {
        ProcessorConfig: { Mode: 'INLINE' },
        StartAt: processor.startAt,
        States: inner.states,
      },
      ...transition(opts.next),
    } as MapState,
    [], // a Map is retried per item by its processor's tasks
    opts,
  );
  if (opts.itemsPath !== undefined) state.ItemsPath = opts.itemsPath;
  if (opts.itemSelector !== undefined) state.ItemSelector = opts.itemSelector;
  if (opts.maxConcurrency !== undefined) state.MaxConcurrency = opts.maxConcurrency;
  return { state, statements: [...inner.statements, ...(processor.statements ?? [])] };
}

/**
 * Assembles a definition from helper results and plain states, collecting their statements (then
 * `spec.statements`, e.g. from `composeFragments`).
 */
export function workflow(spec: {
  startAt: string;
  states: StatesInput;
  statements?: readonly IamStatement[];
  comment?: string;
  timeoutSeconds?: number;
}): { definition: StateMachineDefinition; statements: IamStatement[] } {
  const split = splitStates(spec.states);
  const states = split.states;
  const statements = [...split.statements, ...(spec.statements ?? [])];
  const definition: StateMachineDefinition = { StartAt: spec.startAt, States: states };
  if (spec.comment !== undefined) definition.Comment = spec.comment;
  if (spec.timeoutSeconds !== undefined) definition.TimeoutSeconds = spec.timeoutSeconds;
  return { definition, statements };
}

/** Definition JSON for `aws.sfn.StateMachine.definition`; resolves any Outputs embedded in Parameters. */
export function renderDefinition(definition: StateMachineDefinition): pulumi.Output<string> {
  return pulumi.jsonStringify(pulumi.output(definition));
}
