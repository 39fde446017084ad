import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Logger } from '@aws-lambda-powertools/logger';
import * as z from '../contracts/zod-mini';
import { HANDLER_ENV } from '../contracts/env';
import { InvalidInput } from '../contracts/errors';
import { readEnv, requireEnv } from './lib/env';
import { type AssertedFence, assertFence, FENCE_KEY, writeFenceWhenReady } from './lib/fence';
import {
  SqlWarehouseFence,
  sqlApiRunner,
  type WarehouseFence,
  type WarehouseFenceRow,
} from './lib/warehouse-fence';

/**
 * Invoked by `pulumi up` (aws.lambda.Invocation, `lifecycleScope: "CRUD"`) in the stack's own
 * region, so the fence is set through the surviving region's replica even when the other region is
 * unreachable. Every `up` invokes it (see docs/fence-and-locks.md); the write is idempotent, so the
 * epoch moves only when the region really changes. The warehouse fence (Snowflake CONTROL.FENCE)
 * is moved first, the DynamoDB fence second; a failed warehouse write leaves DynamoDB untouched and
 * fails the invocation, so `pulumi up` fails.
 */

const logger = new Logger();
let client = new DynamoDBClient({});

/** Tests point the handler at a local DynamoDB. */
export function setDynamoClient(next: DynamoDBClient): void {
  client = next;
}

const secrets = new SecretsManagerClient({});
let warehouse: WarehouseFence | undefined;

/** Tests pass their own warehouse fence (the real one reads the Snowflake secret on first use). */
export function setWarehouseFence(next: WarehouseFence | undefined): void {
  warehouse = next;
}

const SecretFields = z.object({
  account: z.string().check(z.minLength(1)),
  user: z.string().check(z.minLength(1)),
  private_key: z
    .string()
    .check(
      z.includes('PRIVATE KEY', { message: 'must be a PEM private key (key-pair auth for the SQL API)' }),
    ),
  warehouse: z.string().check(z.minLength(1)),
  database: z.string().check(z.minLength(1)),
  role: z.string().check(z.minLength(1)),
});

async function warehouseFence(): Promise<WarehouseFence> {
  if (warehouse) return warehouse;
  const secretId = requireEnv(HANDLER_ENV.SNOWFLAKE_SECRET_ID);
  const raw = (await secrets.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString ?? '{}';
  const parsed = SecretFields.safeParse(JSON.parse(raw));
  if (!parsed.success) {
    throw new Error(
      `Snowflake secret ${secretId} cannot reach the SQL API: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}. ` +
        'Fix: add privateKey to snowflakeCredentials (pulumi config set --secret snowflakeCredentials) and pulumi up the home stack',
    );
  }
  const c = parsed.data;
  // SNOWFLAKE_SQL_API_URL: an endpoint override for local runs (like AWS_ENDPOINT_URL_*); unset in AWS.
  warehouse = new SqlWarehouseFence(
    sqlApiRunner(
      { ...c, privateKey: c.private_key },
      { baseUrl: readEnv(HANDLER_ENV.SNOWFLAKE_SQL_API_URL) || undefined },
    ),
  );
  return warehouse;
}

/**
 * The provider adds `tf: {action, prev_input}` in CRUD mode (Terraform's aws_lambda_invocation:
 * action is "create", "update" or "delete"; prev_input is the previous invocation's input).
 */
const FenceRequest = z.object({
  activeRegion: z
    .string()
    .check(z.regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'activeRegion must be a region name')),
  stack: z.string().check(z.minLength(1)),
  /** Changes on every `up`, so the provider sees an update and invokes; not used otherwise. */
  assertedAt: z.optional(z.string()),
  tf: z.optional(
    z.object({ action: z.enum(['create', 'update', 'delete']), prev_input: z.optional(z.unknown()) }),
  ),
});

export interface FenceResult extends Omit<AssertedFence, 'warehouse' | 'warehouseChanged'> {
  /** The warehouse fence after this invocation (read only on delete). */
  readonly warehouse?: WarehouseFenceRow;
  /** The lifecycle action the provider passed (`create` when invoked without one). */
  readonly action: 'create' | 'update' | 'delete';
}

export async function handler(event: unknown): Promise<FenceResult> {
  const parsed = FenceRequest.safeParse(event);
  if (!parsed.success) {
    throw new InvalidInput(
      `Invalid fence request: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const tableName = requireEnv(HANDLER_ENV.CONTROL_TABLE_NAME);
  const action = parsed.data.tf?.action ?? 'create';
  if (action === 'delete') {
    // Removing the stack (or the old resource after a replacement) must not move the fence: the
    // input of a delete is the OLD config. Report the fence as it is.
    const current = await client.send(
      new GetItemCommand({ TableName: tableName, Key: FENCE_KEY, ConsistentRead: true }),
    );
    const state = {
      activeRegion: current.Item?.activeRegion?.S ?? '',
      epoch: Number(current.Item?.epoch?.N ?? '0'),
      changed: false,
    };
    logger.info('fence left as it is (delete)', { ...state, stack: parsed.data.stack });
    return { ...state, action };
  }
  const wh = await warehouseFence();
  let state: AssertedFence;
  try {
    state = await writeFenceWhenReady(() =>
      assertFence(client, tableName, wh, parsed.data.activeRegion, parsed.data.stack),
    );
  } catch (error) {
    // Loud: the invocation fails, so `pulumi up` fails with this message.
    logger.error('fence NOT asserted: the warehouse fence or the DynamoDB fence could not be written', {
      error: error as Error,
      stack: parsed.data.stack,
    });
    throw error;
  }
  logger.info('fence asserted', {
    ...state,
    action,
    stack: parsed.data.stack,
    region: process.env.AWS_REGION,
  });
  return {
    activeRegion: state.activeRegion,
    epoch: state.epoch,
    changed: state.changed,
    warehouse: state.warehouse,
    action,
  };
}
