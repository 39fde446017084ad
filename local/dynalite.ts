import { DEFAULT_NAMES } from '../contracts/naming';
import { controlTableInput } from './table-schemas';
import type { AddressInfo } from 'net';
import dynalite from 'dynalite';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export const CONTROL_TABLE = DEFAULT_NAMES.controlTableName;

export interface LocalDynamo {
  client: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  endpoint: string;
  tableName: string;
  close(): Promise<void>;
}

/** The control table exactly as the program declares it (local/table-schemas.ts). */
export async function createControlTable(client: DynamoDBClient, tableName: string): Promise<void> {
  await client.send(new CreateTableCommand(controlTableInput(tableName)));
  // Even with createTableMs 0, dynalite answers ResourceNotFound until the table turns ACTIVE on a
  // later tick; a write right after the create (a test's seed) would race it.
  for (let i = 0; i < 200; i++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`dynalite table ${tableName} did not become ACTIVE`);
}

/**
 * In-process dynalite (a real DynamoDB emulator: conditional writes are real) with the control
 * table created. Dynalite has no TTL and no transactions: `expiresAt` is just an attribute here.
 */
export async function startDynalite(opts: { tableName?: string } = {}): Promise<LocalDynamo> {
  const tableName = opts.tableName ?? CONTROL_TABLE;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    // The SDK's normal retry (standard, 3 attempts), as in Lambda: a keep-alive socket that dynalite
    // closed (read ECONNRESET) is retried, not failed. Condition failures are never retried.
  });
  await createControlTable(client, tableName);
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return {
    client,
    doc,
    endpoint,
    tableName,
    close: async () => {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
