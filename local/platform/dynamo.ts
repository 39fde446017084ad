import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ReplicatedDynamo } from '../replicated-dynamo';
import { controlTableInput } from '../table-schemas';

/** The control table: one replica per region (local/replicated-dynamo), as the global table is. */
export interface TwinDynamo {
  readonly engine: ReplicatedDynamo;
  readonly tableName: string;
  endpoint(region: string): string;
  client(region: string): DynamoDBClient;
  docOf(region: string): DynamoDBDocumentClient;
  /** The first region's replica (reads after `engine.quiesce()` see every region's writes). */
  readonly doc: DynamoDBDocumentClient;
  close(): Promise<void>;
}

export async function startTwinDynamo(regions: string[], tableName: string): Promise<TwinDynamo> {
  const engine = await ReplicatedDynamo.start({ regions, tables: [controlTableInput(tableName)], lag: 0 });
  const clients = new Map(
    regions.map((r) => [r, new DynamoDBClient({ ...engine.clientConfig(r), maxAttempts: 3 })]),
  );
  const docs = new Map(regions.map((r) => [r, DynamoDBDocumentClient.from(clients.get(r)!)]));
  return {
    engine,
    tableName,
    endpoint: (r) => engine.endpoint(r),
    client: (r) => clients.get(r)!,
    docOf: (r) => docs.get(r)!,
    doc: docs.get(regions[0])!,
    close: async () => {
      for (const c of clients.values()) c.destroy();
      await engine.stop();
    },
  };
}

/** Replication lag: reads of this key in `region` return the stale item captured when injected. */
interface Lag {
  region: string;
  key: string;
  stale: Record<string, unknown> | undefined;
}

/** What a region's DynamoDB view needs from the platform around it. */
export interface ViewHooks {
  /** Each call costs a little virtual time. */
  tick(ms: number): void;
  isUp(region: string): boolean;
}

/** Per-region views of the control table, with injectable stale reads of single keys. */
export class ReplicaViews {
  private readonly lags: Lag[] = [];

  constructor(
    private readonly dynamo: TwinDynamo,
    private readonly hooks: ViewHooks,
  ) {}

  /** Reads of `key` (pk/sk) in `region` return the item as it is now, until healed. */
  async injectLag(region: string, key: { pk: string; sk: string }): Promise<void> {
    await this.dynamo.engine.quiesce();
    const got = await this.dynamo.client(region).send(
      new GetItemCommand({
        TableName: this.dynamo.tableName,
        Key: { pk: { S: key.pk }, sk: { S: key.sk } },
        ConsistentRead: true,
      }),
    );
    this.lags.push({
      region,
      key: `${key.pk}|${key.sk}`,
      stale: got.Item as Record<string, unknown> | undefined,
    });
  }

  heal(): void {
    this.lags.length = 0;
  }

  /** A DynamoDB client of one region's replica, with the injected stale reads of lagging keys. */
  view(region: string): { send(cmd: any): Promise<any> } {
    const client = this.dynamo.client(region);
    return {
      send: async (cmd: any) => {
        this.hooks.tick(20);
        if (!this.hooks.isUp(region))
          throw Object.assign(new Error(`dynamodb.${region} unreachable`), { name: 'InternalServerError' });
        if (cmd instanceof GetItemCommand) {
          const k = cmd.input.Key as any;
          const lag = this.lags.find((l) => l.region === region && l.key === `${k?.pk?.S}|${k?.sk?.S}`);
          if (lag) return lag.stale ? { Item: lag.stale } : {};
        }
        return client.send(cmd);
      },
    };
  }
}
