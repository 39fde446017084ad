/**
 * Benchmark 4: state transitions (StateEntered + StateRetried, what AWS bills) of one downstream run,
 * for a 30-minute and a 4-hour dbt run. The real definition (downstreamWorkflow, with prod-east's dbt
 * settings) runs locally against dynalite, the real handlers and the fake dbt API; StartDbtRun's
 * waitForTaskToken is answered by the callback stand-in (local/dbt-callback.ts), which moves
 * the run one step per heartbeat minute and renews the lock lease each time, as the app does.
 * A paused Task costs no transitions, so both must cost the same. Target: <= 30.
 *   npx ts-node --transpile-only bench/downstream-transitions.ts
 */
import { DynamoDBClient, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { parse as parseYaml } from 'yaml';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { batchSk, FENCE_KEY, pipelinePk, tableSk } from '../contracts/control-table';
import { HANDLER_ENV } from '../contracts/env';
import { DEFAULT_NAMES } from '../contracts/naming';
import { downstreamWorkflow, type DownstreamWorkflowRefs } from '../state-machines/downstream';
import { dbtCallbackDriver } from '../local/dbt-callback';
import { handler as batchContextHandler } from '../handlers/batch-context';
import { handler as checkConsistencyHandler, setDocumentClient } from '../handlers/check-consistency';
import { handler as getDbtRunHandler } from '../handlers/get-dbt-run';
import { handler as startDbtRunHandler } from '../handlers/start-dbt-run';
import { logger } from '../handlers/lib/logger';
import { startDynalite } from '../local/dynalite';
import { startFakeDbtApi } from '../local/fake-dbt-api';
import { runWorkflow, type LambdaHandler } from '../local/sfn-local';
import { ACCOUNT, PIPELINE, REGION, SOURCE, TABLES, upstreamEvent } from '../local/fixtures/malformed-events';
import { exitWith } from './lib';

/** Run lengths in heartbeat minutes: 30 minutes and 4 hours. */
const RUN_MINUTES = [30, 240];
const TARGET = 30;
const TABLE = DEFAULT_NAMES.controlTableName;
const fnArn = (name: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:etl-platform-${name}`;

const stackDbt = (
  parseYaml(fs.readFileSync(path.join(__dirname, '..', 'Pulumi.prod-east.yaml'), 'utf8')) as {
    config: Record<string, any>;
  }
).config['etl-platform:dbt'];
const refs: DownstreamWorkflowRefs = {
  region: REGION,
  eventSource: SOURCE,
  pipeline: { name: PIPELINE, expectedTables: TABLES, dbtSelect: `tag:${PIPELINE}` },
  controlTable: { name: TABLE, arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE}` },
  functions: {
    batchContext: { arn: fnArn('batch-context') },
    checkConsistency: { arn: fnArn('check-consistency') },
    startDbtRun: { arn: fnArn('start-dbt-run') },
    getDbtRun: { arn: fnArn('get-dbt-run') },
  },
  bus: { arn: `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/etl-platform` },
  alerts: {
    arn: `arn:aws:sns:${REGION}:${ACCOUNT}:etl-platform-alerts`,
    kmsKeyArn: `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
  },
  dbt: {
    maxRunMinutes: stackDbt.maxRunMinutes,
    maxQueueMinutes: stackDbt.maxQueueMinutes,
    heartbeatSeconds: stackDbt.heartbeatSeconds,
    maxLostRetries: stackDbt.maxLostRetries,
    lockWaitMinutes: stackDbt.lockWaitMinutes,
    lockLeaseMinutes: stackDbt.lockLeaseMinutes,
    replicationWaitMinutes: stackDbt.replicationWaitMinutes,
  },
};
const { definition } = downstreamWorkflow(refs);
async function main(): Promise<void> {
  logger.setLogLevel('SILENT');
  const db = await startDynalite({ tableName: TABLE });
  const api = await startFakeDbtApi();
  Object.assign(process.env, {
    [HANDLER_ENV.CONTROL_TABLE_NAME]: TABLE,
    [HANDLER_ENV.DBT_API_URL]: api.url,
    [HANDLER_ENV.DBT_API_TOKEN]: api.token,
    [HANDLER_ENV.DBT_API_TIMEOUT_MS]: '2000',
    AWS_ENDPOINT_URL_DYNAMODB: db.endpoint,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: 'x',
    AWS_SECRET_ACCESS_KEY: 'x',
  });
  setDocumentClient(DynamoDBDocumentClient.from(new DynamoDBClient({})));
  const put = (attrs: Record<string, string | number>) =>
    db.client.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: Object.fromEntries(
          Object.entries(attrs).map(([k, v]) => [k, typeof v === 'number' ? { N: String(v) } : { S: v }]),
        ) as Record<string, AttributeValue>,
      }),
    );
  await put({
    ...FENCE_KEY,
    activeRegion: REGION,
    epoch: 1,
    changedAt: '2026-11-01T00:00:00Z',
    changedBy: 'prod-east',
  });
  const lambda: Record<string, LambdaHandler> = {
    [fnArn('batch-context')]: (p) => batchContextHandler(p as never),
    [fnArn('check-consistency')]: (p) => checkConsistencyHandler(p),
    [fnArn('start-dbt-run')]: (p) => startDbtRunHandler(p),
    [fnArn('get-dbt-run')]: (p) => getDbtRunHandler(p),
  };

  const results: Array<{ minutes: number; transitions: number; entered: number; renewals: number }> = [];
  for (const [i, minutes] of RUN_MINUTES.entries()) {
    const batchId = `${PIPELINE}-2026112${i}T020000Z`;
    const pk = pipelinePk(PIPELINE);
    await put({
      pk,
      sk: batchSk(batchId, 'UPSTREAM'),
      pipeline: PIPELINE,
      batchId,
      status: 'SUCCEEDED',
      region: REGION,
    });
    for (const table of TABLES)
      await put({
        pk,
        sk: tableSk(batchId, table),
        pipeline: PIPELINE,
        batchId,
        table,
        status: 'SUCCEEDED',
        rows: 1,
      });
    // QUEUED → RUNNING is one step; RUNNING lasts `minutes` steps of one heartbeat minute each.
    api.inject({ kind: 'slow-run', batchId, polls: minutes });
    const driver = dbtCallbackDriver({
      api,
      start: lambda[fnArn('start-dbt-run')],
      db: { client: db.client, tableName: TABLE },
    });
    const res = await runWorkflow(definition, upstreamEvent({ batchId }, {}, batchId) as never, {
      handlers: { dynamodb: db.client, lambda, taskToken: driver.handler },
    });
    if (res.status !== 'SUCCEEDED')
      throw new Error(`${minutes}-minute run ended ${res.status}: ${res.error}: ${res.cause}`);
    const run = api.runsFor(batchId)[0];
    if (run.pollsRunning !== minutes)
      throw new Error(`the run lasted ${run.pollsRunning} heartbeat minutes, not ${minutes}`);
    const entered = res.events.filter((e) => e.type === 'StateEntered').length;
    results.push({ minutes, transitions: res.transitions, entered, renewals: driver.renewals.ok });
  }
  await api.close();
  await db.close();
  console.log('benchmark 4: transitions per downstream run (callback, no polling)');
  console.log(
    `dbt settings (prod-east): heartbeatSeconds ${refs.dbt.heartbeatSeconds}, maxQueueMinutes ${refs.dbt.maxQueueMinutes}, maxRunMinutes ${refs.dbt.maxRunMinutes}, lockLeaseMinutes ${refs.dbt.lockLeaseMinutes}`,
  );
  for (const r of results) {
    console.log(
      `dbt run of ${r.minutes} minutes: transitions: ${r.transitions} (${r.entered} StateEntered + ${r.transitions - r.entered} StateRetried; lease renewed ${r.renewals} times)`,
    );
  }
  const same = results.every((r) => r.transitions === results[0].transitions);
  const met = same && results.every((r) => r.transitions <= TARGET);
  console.log(
    `transitions: ${results[0].transitions} (target <= ${TARGET}, independent of dbt duration: ${same ? 'yes' : 'NO'}) ${met ? 'MET' : 'NOT MET'}`,
  );
  exitWith(met);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
