import { DeleteItemCommand, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { setDocumentClient } from '../../handlers/check-consistency';
import { logger } from '../../handlers/lib/logger';
import { type LocalDynamo, startDynalite } from '../../local/dynalite';
import { type FakeDbtApi, startFakeDbtApi } from '../../local/fake-dbt-api';

export interface LocalDownstream {
  db: LocalDynamo;
  api: FakeDbtApi;
  /** Empties the table and the dbt API's logs and faults. */
  clear(): Promise<void>;
}

/**
 * Registers mocha hooks that run the downstream's real handlers locally: dynalite with the control
 * table, the loopback dbt API, and the environment the handlers read (restored afterwards). Call
 * it inside a `describe`; its `before` runs ahead of the suite's own.
 */
export function useLocalDownstream(
  tableName: string,
  region: string,
  extraEnv: () => Record<string, string> = () => ({}),
): LocalDownstream {
  const local = {} as LocalDownstream;
  const saved: Record<string, string | undefined> = {};
  before(async () => {
    logger.setLogLevel('SILENT');
    local.db = await startDynalite({ tableName });
    local.api = await startFakeDbtApi();
    const env: Record<string, string> = {
      CONTROL_TABLE_NAME: tableName,
      DBT_API_URL: local.api.url,
      DBT_API_TOKEN: local.api.token,
      DBT_API_TIMEOUT_MS: '2000',
      // The SDK's own per-service endpoint override: the handlers' default clients reach dynalite.
      AWS_ENDPOINT_URL_DYNAMODB: local.db.endpoint,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'x',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true', // EMF lines stay out of test and tool output
      ...extraEnv(),
    };
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    // Other suites swap check-consistency's module client; give it back a default one, configured
    // from the environment above exactly as in Lambda.
    setDocumentClient(DynamoDBDocumentClient.from(new DynamoDBClient({})));
  });
  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await local.api.close();
    await local.db.close();
  });
  local.clear = async () => {
    const { Items = [] } = await local.db.client.send(new ScanCommand({ TableName: tableName }));
    for (const it of Items)
      await local.db.client.send(
        new DeleteItemCommand({ TableName: tableName, Key: { pk: it.pk, sk: it.sk } }),
      );
    local.api.runs.length = 0;
    local.api.requests.length = 0;
    local.api.clearFaults();
  };
  return local;
}
