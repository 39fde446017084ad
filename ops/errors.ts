/**
 * The one place that turns an error into what an operator reads: what failed (the AWS call, when
 * known) and what to do. Never a class dump, a raw `spawn ... ENOENT` or a stack trace.
 */

/** What went wrong and, where there is one, the fix. */
export interface Explained {
  /** `no-credentials`, `expired-credentials`, `no-pulumi`, `network`, `access-denied` or `other`. */
  readonly kind:
    | 'no-credentials'
    | 'expired-credentials'
    | 'invalid-credentials'
    | 'no-pulumi'
    | 'network'
    | 'access-denied'
    | 'other';
  /** One line: the failed call (if known) and what happened. */
  readonly summary: string;
  /** What to do about it, when we know. */
  readonly fix?: string;
}

const CALL = Symbol.for('etl-ops.call');

/** Records the AWS call an error came from (set by the SDK middleware in ops/aws-clients.ts). */
export function tagCall(error: unknown, call: string): void {
  if (error && typeof error === 'object' && !(CALL in error))
    Object.defineProperty(error, CALL, { value: call, enumerable: false });
}

/** The AWS call an error came from, e.g. `SFN.DescribeExecution`, if it was recorded. */
export function callOf(error: unknown): string | undefined {
  return error && typeof error === 'object'
    ? ((error as Record<symbol, string>)[CALL] ?? undefined)
    : undefined;
}

const field = (error: unknown, key: string): unknown =>
  error && typeof error === 'object' ? (error as Record<string, unknown>)[key] : undefined;

/** The message without stack frames or blank lines, on one line. */
function firstLines(error: unknown): string {
  const text =
    error instanceof Error ? error.message : typeof error === 'string' ? error : JSON.stringify(error);
  return (text ?? String(error))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^at\s/.test(l))
    .join(' ')
    .slice(0, 500);
}

/** True when a child process (the Pulumi CLI, directly or through the Automation API) could not be found. */
export function isPulumiMissing(error: unknown): boolean {
  if (
    field(error, 'code') === 'ENOENT' &&
    /pulumi/.test(String(field(error, 'path') ?? field(error, 'spawnargs') ?? ''))
  )
    return true;
  const text = error instanceof Error ? error.message : String(error);
  return /spawn \S*pulumi ENOENT|ENOENT: pulumi|Command failed with ENOENT: pulumi/.test(text);
}

const CREDENTIALS_FIX =
  'Set AWS_PROFILE=<profile> (for an SSO profile run `aws sso login --profile <profile>` first), ' +
  'or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (plus AWS_SESSION_TOKEN for temporary keys). ' +
  'Check with: aws sts get-caller-identity';
const PULUMI_FIX =
  'Install it (curl -fsSL https://get.pulumi.com | sh, or brew install pulumi; see https://www.pulumi.com/docs/install/), ' +
  'make sure `pulumi version` works in this shell, then `pulumi login` to the state backend. ' +
  '`etl-ops failover --dry-run` and `failback --dry-run` print their plan without it.';

const EXPIRED = new Set(['ExpiredToken', 'ExpiredTokenException', 'TokenRefreshRequired', 'RequestExpired']);
const INVALID = new Set([
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
]);
const DENIED = new Set([
  'AccessDeniedException',
  'AccessDenied',
  'UnauthorizedOperation',
  'AuthorizationErrorException',
]);
const NETWORK_CODES = new Set([
  'ENOTFOUND',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * Explains an error for the operator. `call` names the operation when the caller knows it better
 * than the recorded tag (e.g. `SFN.DescribeExecution`).
 */
export function explainError(error: unknown, call = callOf(error)): Explained {
  const name = String(field(error, 'name') ?? 'Error');
  const where = call ? `${call}: ` : '';
  const message = firstLines(error);
  if (isPulumiMissing(error)) {
    return {
      kind: 'no-pulumi',
      summary:
        'The Pulumi CLI is not installed or not on PATH (etl-ops runs `pulumi` for config, up and outputs)',
      fix: PULUMI_FIX,
    };
  }
  if (name === 'CredentialsProviderError' || /Could not load credentials from any providers/.test(message)) {
    if (/expired|refresh/i.test(message) && !/any providers/.test(message)) {
      return {
        kind: 'expired-credentials',
        summary: `${where}your AWS session has expired (${message})`,
        fix: 'Run `aws sso login --profile <profile>` (or refresh the keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN) and retry.',
      };
    }
    return { kind: 'no-credentials', summary: `${where}no AWS credentials found`, fix: CREDENTIALS_FIX };
  }
  if (EXPIRED.has(name)) {
    return {
      kind: 'expired-credentials',
      summary: `${where}your AWS credentials have expired (${name})`,
      fix: 'Run `aws sso login --profile <profile>` (or refresh AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN) and retry.',
    };
  }
  if (INVALID.has(name)) {
    return {
      kind: 'invalid-credentials',
      summary: `${where}AWS rejected the credentials (${name}: ${message})`,
      fix: `Check AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY point at the platform's account. ${CREDENTIALS_FIX}`,
    };
  }
  if (DENIED.has(name)) {
    const action = call
      ? call
          .replace(/^SFN\./, 'states:')
          .replace(/^DynamoDB\./, 'dynamodb:')
          .replace(/^EventBridge\./, 'events:')
          .replace(/^Scheduler\./, 'scheduler:')
          .replace(/^SQS\./, 'sqs:')
      : 'this action';
    return {
      kind: 'access-denied',
      summary: `${where}not allowed (${name}: ${message})`,
      fix: `Your identity needs ${action} on that resource; use the operator role (AWS_PROFILE) or ask for it to be granted.`,
    };
  }
  const code = String(field(error, 'code') ?? '');
  if (
    NETWORK_CODES.has(code) ||
    name === 'TimeoutError' ||
    (field(error, '$metadata') !== undefined && NETWORK_CODES.has(String(field(error, 'errno') ?? '')))
  ) {
    return {
      kind: 'network',
      summary: `${where}cannot reach AWS (${code || name}: ${message})`,
      fix: 'Check the network (VPN, proxy: HTTPS_PROXY) and that the region is right, then retry.',
    };
  }
  const label = ['Error', 'OpsError', 'CommandError'].includes(name) ? '' : `${name}: `;
  return { kind: 'other', summary: `${where}${label}${message}` };
}

/** `summary. fix` on one line (the fix on a second line when there is one). */
export function describeError(error: unknown, call?: string): string {
  const e = explainError(error, call ?? callOf(error));
  return e.fix ? `${e.summary}.\n${e.fix}` : e.summary;
}
