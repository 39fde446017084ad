import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import type * as aws from '@pulumi/aws';
import { globalTableArgs } from '../components/control-table';
import { RUNS_TABLE_NAME, runsTableArgs } from '../k8s/dbt-app';

/**
 * The local engines' tables, derived from the very TableArgs the program declares, so a key or
 * index renamed in a component is renamed in every local replica too (what runs locally is what
 * deploys).
 */

type PlainTableArgs = Pick<
  aws.dynamodb.TableArgs,
  'name' | 'hashKey' | 'rangeKey' | 'attributes' | 'globalSecondaryIndexes'
>;

/** A plain (no Outputs) TableArgs as the CreateTable call DynamoDB would receive. */
export function createTableInput(args: PlainTableArgs, tableName?: string): CreateTableCommandInput {
  const plain = <T>(value: unknown): T => value as T;
  const attributes = plain<Array<{ name: string; type: 'S' | 'N' | 'B' }>>(args.attributes ?? []);
  const indexes = plain<
    Array<{
      name: string;
      hashKey: string;
      rangeKey?: string;
      projectionType: 'ALL' | 'KEYS_ONLY' | 'INCLUDE';
    }>
  >(args.globalSecondaryIndexes ?? []);
  const key = (hash: string, range?: string) => [
    { AttributeName: hash, KeyType: 'HASH' as const },
    ...(range ? [{ AttributeName: range, KeyType: 'RANGE' as const }] : []),
  ];
  return {
    TableName: tableName ?? plain<string>(args.name),
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: attributes.map((a) => ({ AttributeName: a.name, AttributeType: a.type })),
    KeySchema: key(plain<string>(args.hashKey), plain<string | undefined>(args.rangeKey)),
    ...(indexes.length
      ? {
          GlobalSecondaryIndexes: indexes.map((g) => ({
            IndexName: g.name,
            KeySchema: key(g.hashKey, g.rangeKey),
            Projection: { ProjectionType: g.projectionType },
          })),
        }
      : {}),
  };
}

/** The control table (components/control-table.ts), under `name`. */
export function controlTableInput(name: string): CreateTableCommandInput {
  return createTableInput(globalTableArgs(name, 'us-west-1'), name);
}

/** The dbt app's regional runs table (k8s/dbt-app.ts). */
export function runsTableInput(name: string = RUNS_TABLE_NAME): CreateTableCommandInput {
  return createTableInput(runsTableArgs({}), name);
}
