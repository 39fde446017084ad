// Typed Amazon States Language, JSONPath mode only: the local engine (aws-local-stepfunctions)
// silently ignores JSONata fields, so they are deliberately absent from these types.

/** A JSONPath (`$.a.b`) or context path (`$$.Execution.Id`). */
export type Path = string;

/**
 * Parameters / ItemSelector / ResultSelector payload templates. Keys ending in `.$` take a path
 * or intrinsic. Values are `unknown` so callers may embed Pulumi Outputs; `renderDefinition`
 * resolves them. The local harness needs plain values.
 */
export type PayloadTemplate = { [key: string]: unknown };

export interface Retrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  MaxAttempts?: number;
  BackoffRate?: number;
  MaxDelaySeconds?: number;
  JitterStrategy?: 'FULL' | 'NONE';
}

export interface Catcher {
  ErrorEquals: string[];
  Next: string;
  ResultPath?: Path | null;
}

/** Exactly one of Next / End. */
export type Transition = { Next: string; End?: never } | { End: true; Next?: never };

interface Common {
  Comment?: string;
}
interface InputOutput {
  InputPath?: Path | null;
  OutputPath?: Path | null;
}
interface WithResult {
  ResultPath?: Path | null;
  ResultSelector?: PayloadTemplate;
}
interface WithErrorHandling {
  Retry?: Retrier[];
  Catch?: Catcher[];
}

export type TaskState = Common &
  InputOutput &
  WithResult &
  WithErrorHandling &
  Transition & {
    Type: 'Task';
    Resource: string;
    Parameters?: PayloadTemplate;
    TimeoutSeconds?: number;
    TimeoutSecondsPath?: Path;
    HeartbeatSeconds?: number;
    HeartbeatSecondsPath?: Path;
  };

export type PassState = Common &
  InputOutput &
  Transition & {
    Type: 'Pass';
    Parameters?: PayloadTemplate;
    Result?: unknown;
    ResultPath?: Path | null;
  };

// ---- Choice rules ----

type StringOps =
  | 'StringEquals'
  | 'StringLessThan'
  | 'StringGreaterThan'
  | 'StringLessThanEquals'
  | 'StringGreaterThanEquals'
  | 'StringMatches'
  | 'TimestampEquals'
  | 'TimestampLessThan'
  | 'TimestampGreaterThan'
  | 'TimestampLessThanEquals'
  | 'TimestampGreaterThanEquals';
type NumericOps =
  | 'NumericEquals'
  | 'NumericLessThan'
  | 'NumericGreaterThan'
  | 'NumericLessThanEquals'
  | 'NumericGreaterThanEquals';
type PathOps =
  | 'StringEqualsPath'
  | 'StringLessThanPath'
  | 'StringGreaterThanPath'
  | 'StringLessThanEqualsPath'
  | 'StringGreaterThanEqualsPath'
  | 'NumericEqualsPath'
  | 'NumericLessThanPath'
  | 'NumericGreaterThanPath'
  | 'NumericLessThanEqualsPath'
  | 'NumericGreaterThanEqualsPath'
  | 'BooleanEqualsPath'
  | 'TimestampEqualsPath'
  | 'TimestampLessThanPath'
  | 'TimestampGreaterThanPath'
  | 'TimestampLessThanEqualsPath'
  | 'TimestampGreaterThanEqualsPath';
type TypeTestOps = 'IsNull' | 'IsPresent' | 'IsNumeric' | 'IsString' | 'IsBoolean' | 'IsTimestamp';

type OperatorValues = { [K in StringOps]: string } & { [K in NumericOps]: number } & {
  [K in PathOps]: Path;
} & { [K in TypeTestOps]: boolean } & { BooleanEquals: boolean };

/** Exactly one key of T. */
type OneOf<T> = {
  [K in keyof T]: { [P in K]: T[P] } & { [P in Exclude<keyof T, K>]?: never };
}[keyof T];

export type ComparisonOperator = keyof OperatorValues;
export type Comparison = { Variable: Path } & OneOf<OperatorValues>;
export type BooleanExpression =
  Comparison | { And: BooleanExpression[] } | { Or: BooleanExpression[] } | { Not: BooleanExpression };
/** A top-level rule in `Choices`: an expression plus where to go. */
export type ChoiceRule = BooleanExpression & { Next: string; Comment?: string };

export type ChoiceState = Common &
  InputOutput & {
    Type: 'Choice';
    Choices: ChoiceRule[];
    Default?: string;
  };

export type WaitState = Common &
  InputOutput &
  Transition & { Type: 'Wait' } & OneOf<{
    Seconds: number;
    Timestamp: string;
    SecondsPath: Path;
    TimestampPath: Path;
  }>;

export type SucceedState = Common & InputOutput & { Type: 'Succeed' };

export type FailState = Common & {
  Type: 'Fail';
  Error?: string;
  Cause?: string;
  ErrorPath?: Path;
  CausePath?: Path;
};

export interface SubMachine {
  Comment?: string;
  StartAt: string;
  States: Record<string, State>;
}

export type MapState = Common &
  InputOutput &
  WithResult &
  WithErrorHandling &
  Transition & {
    Type: 'Map';
    ItemsPath?: Path;
    ItemSelector?: PayloadTemplate;
    ItemProcessor: SubMachine & { ProcessorConfig?: { Mode: 'INLINE' } };
    MaxConcurrency?: number;
  };

export type ParallelState = Common &
  InputOutput &
  WithResult &
  WithErrorHandling &
  Transition & {
    Type: 'Parallel';
    Branches: SubMachine[];
    Parameters?: PayloadTemplate;
  };

export type State =
  TaskState | PassState | ChoiceState | WaitState | SucceedState | FailState | MapState | ParallelState;

export type StateType = State['Type'];

export interface StateMachineDefinition {
  Comment?: string;
  StartAt: string;
  States: Record<string, State>;
  TimeoutSeconds?: number;
  Version?: '1.0';
}
