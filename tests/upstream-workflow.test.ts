import { strict as assert } from 'assert';
import * as pulumi from '@pulumi/pulumi';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { checkGraph } from '../state-machines/graph';
import { policyDocument, type PolicyDocument } from '../state-machines/policy';
import { renderDefinition } from '../state-machines/tasks';
import {
  UPSTREAM_BATCH_FAILED,
  UPSTREAM_BATCH_SUCCEEDED,
  type UpstreamBatchSucceededDetail,
} from '../contracts/events';
import { UPSTREAM_STATES, upstreamWorkflow, type UpstreamWorkflowRefs } from '../state-machines/upstream';
import { validateAsl } from './harness/asl-validate';
import { startDynalite, type LocalDynamo } from '../local/dynalite';
import { runWorkflow, StatesError, type GlueJobRunOutcome, type RunResult } from '../local/sfn-local';

// The real handler module (its Logger reads the level when the module loads).
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
const { handler: batchContextHandler } =
  require('../handlers/batch-context') as typeof import('../handlers/batch-context');

const ACCOUNT = '123456789012';
const PIPELINE = 'policycenter';
const TABLES = ['pc_policyperiod', 'pc_contact', 'pc_account'];
const LAKE = 'ins-lake-raw';
const CONTROL_ARN = `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/etl-platform-control`;
const CDA_JOB = {
  name: 'etl-policycenter-cda-to-lake',
  arn: `arn:aws:glue:us-east-1:${ACCOUNT}:job/etl-policycenter-cda-to-lake`,
};
const SF_JOB = {
  name: 'etl-policycenter-lake-to-snowflake',
  arn: `arn:aws:glue:us-east-1:${ACCOUNT}:job/etl-policycenter-lake-to-snowflake`,
};
const FN_ARN = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:etl-batch-context-us-east-1`;
const BUS_ARN = `arn:aws:events:us-east-1:${ACCOUNT}:event-bus/etl-platform`;
const TOPIC_ARN = `arn:aws:sns:us-east-1:${ACCOUNT}:etl-alerts`;
const TIMEOUT = 7200;

const refs: UpstreamWorkflowRefs = {
  pipeline: PIPELINE,
  tables: TABLES,
  maxConcurrency: 2,
  eventSource: 'com.insurer.etl-platform',
  region: 'us-east-1',
  timeoutSeconds: TIMEOUT,
  controlTable: { name: 'etl-platform-control', arn: CONTROL_ARN },
  batchContextFunction: { arn: FN_ARN },
  glueJobs: { cdaToLake: CDA_JOB, lakeToSnowflake: SF_JOB },
  lake: { bucket: LAKE, arn: `arn:aws:s3:::${LAKE}` },
  source: { bucket: 'guidewire-cda-prod', prefix: 'cda/pc' },
  snowflakeConnectionName: 'snowflake-prod',
  bus: { arn: BUS_ARN, name: 'etl-platform' },
  alerts: { arn: TOPIC_ARN },
};

// Built once per file: the engine validates on construction (~0.5 s) and the harness caches by object.
const { definition, statements } = upstreamWorkflow(refs);

const NEW_WATERMARK = '1700000003000';
const ROWS: Record<string, number> = { pc_policyperiod: 1200, pc_contact: 0, pc_account: 37 };

type Outcome = 'ok' | 'fail' | 'concurrent';
type OutcomeFn = (job: 'cda' | 'sf', table: string, attempt: number) => Outcome;

/**
 * Glue stand-in: decides each run's outcome, and on success "writes" the job's result object
 * (glue/README.md) where the s3 getObject stand-in serves it.
 */
function lakeWorld(outcome: OutcomeFn = () => 'ok') {
  const objects = new Map<string, unknown>();
  const glueRuns: Array<{ job: string; table: string; args: Record<string, string> }> = [];
  const attempts = new Map<string, number>();
  const glue = (params: Record<string, unknown>): GlueJobRunOutcome => {
    const args = params.Arguments as Record<string, string>;
    const job = params.JobName === CDA_JOB.name ? 'cda' : 'sf';
    const table = args['--table'];
    const k = `${job}/${table}`;
    const attempt = (attempts.get(k) ?? 0) + 1;
    attempts.set(k, attempt);
    glueRuns.push({ job, table, args });
    const o = outcome(job, table, attempt);
    if (o === 'concurrent') {
      throw new StatesError(
        'Glue.ConcurrentRunsExceededException',
        `Concurrent runs exceeded for ${params.JobName}`,
      );
    }
    const id = `jr_${job}_${table}_${attempt}`;
    if (o === 'fail') return { JobRunState: 'FAILED', Id: id, ErrorMessage: 'AnalysisException: boom' };
    const base = {
      schemaVersion: 1,
      pipeline: args['--pipeline'],
      batchId: args['--batch_id'],
      table,
      status: 'SUCCEEDED',
      rows: ROWS[table],
      lakePath: `s3://${LAKE}/raw/${PIPELINE}/${table}/batch_id=${args['--batch_id']}/`,
      glueRunId: id,
      startedAt: '2026-11-27T07:01:00Z',
      completedAt: '2026-11-27T07:04:00Z',
    };
    const prefix = `_runs/${args['--pipeline']}/${args['--batch_id']}/`;
    if (job === 'cda') {
      objects.set(`${prefix}${table}.json`, {
        ...base,
        job: 'cda_to_lake',
        previousWatermark: args['--watermark'],
        watermark: ROWS[table] > 0 ? NEW_WATERMARK : args['--watermark'],
        folders: [],
        manifestLastSuccessfulWriteTimestamp: NEW_WATERMARK,
        manifestTotalProcessedRecordsCount: 240000,
      });
    } else {
      objects.set(`${prefix}snowflake/${table}.json`, {
        ...base,
        job: 'lake_to_snowflake',
        target: `BASE.${table.toUpperCase()}`,
        stageTable: `BASE.${table.toUpperCase()}__STG_20261127T070000Z`,
        upstreamRows: ROWS[table],
        completedAt: '2026-11-27T07:06:00Z',
      });
    }
    return { JobRunState: 'SUCCEEDED', Id: id, ExecutionTime: 180 };
  };
  const s3 = (action: string, params: Record<string, unknown>) => {
    assert.equal(action, 'getObject');
    assert.equal(params.Bucket, LAKE);
    const body = objects.get(String(params.Key));
    if (body === undefined)
      throw new StatesError('S3.NoSuchKeyException', `no such key ${String(params.Key)}`);
    return { Body: JSON.stringify(body), ContentType: 'application/json' };
  };
  return { glue, s3, glueRuns, objects };
}

describe('upstream workflow', () => {
  describe('definition', () => {
    it('passes asl-validator and checkGraph (every Task has Retry and Catch, every Next exists)', () => {
      assert.deepEqual(validateAsl(definition), []);
      assert.deepEqual(checkGraph(definition), []);
      assert.equal(definition.TimeoutSeconds, TIMEOUT);
      const map = definition.States[UPSTREAM_STATES.loadTables];
      assert.equal(map.Type, 'Map');
      assert.equal(map.Type === 'Map' && map.MaxConcurrency, 2);
    });

    it('rejects bad refs', () => {
      assert.throws(() => upstreamWorkflow({ ...refs, pipeline: 'Policy Center' }), /bad pipeline/);
      assert.throws(() => upstreamWorkflow({ ...refs, tables: [] }), /no tables/);
      assert.throws(() => upstreamWorkflow({ ...refs, tables: ['a', 'a'] }), /duplicate/);
    });

    it('derives least-privilege statements', async () => {
      const doc = await new Promise<PolicyDocument>((res) => policyDocument(statements).apply(res));
      const byAction = new Map<string, string[]>();
      for (const s of doc.Statement) {
        for (const a of s.Action) {
          assert.ok(!a.includes('*'), `wildcard action ${a}`);
          byAction.set(a, [...(byAction.get(a) ?? []), ...s.Resource].sort());
        }
      }
      for (const a of ['glue:StartJobRun', 'glue:GetJobRun', 'glue:GetJobRuns', 'glue:BatchStopJobRun']) {
        assert.deepEqual(byAction.get(a), [CDA_JOB.arn, SF_JOB.arn].sort(), a);
      }
      for (const a of [
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:GetItem',
        'dynamodb:DeleteItem',
      ]) {
        assert.deepEqual(byAction.get(a), [CONTROL_ARN], a);
      }
      assert.deepEqual(byAction.get('events:PutEvents'), [BUS_ARN]);
      assert.deepEqual(byAction.get('sns:Publish'), [TOPIC_ARN]);
      assert.deepEqual(byAction.get('s3:GetObject'), [`arn:aws:s3:::${LAKE}/_runs/${PIPELINE}/*`]);
      assert.deepEqual(byAction.get('lambda:InvokeFunction'), [FN_ARN, `${FN_ARN}:*`]);
      const allowed = new Set([
        'glue:StartJobRun',
        'glue:GetJobRun',
        'glue:GetJobRuns',
        'glue:BatchStopJobRun',
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:GetItem',
        'dynamodb:DeleteItem',
        'events:PutEvents',
        'sns:Publish',
        's3:GetObject',
        'lambda:InvokeFunction',
      ]);
      assert.deepEqual(
        [...byAction.keys()].filter((a) => !allowed.has(a)),
        [],
      );
      assert.ok(
        doc.Statement.every((s) => s.Resource.every((r) => r !== '*')),
        'no "*" resource',
      );
    });

    it('accepts Pulumi Outputs in refs; renderDefinition resolves them to the same definition', async () => {
      const fromOutputs = upstreamWorkflow({
        ...refs,
        controlTable: { name: pulumi.output('etl-platform-control'), arn: pulumi.output(CONTROL_ARN) },
        glueJobs: {
          cdaToLake: { name: pulumi.output(CDA_JOB.name), arn: pulumi.output(CDA_JOB.arn) },
          lakeToSnowflake: { name: pulumi.output(SF_JOB.name), arn: pulumi.output(SF_JOB.arn) },
        },
        lake: { bucket: pulumi.output(LAKE), arn: pulumi.output(`arn:aws:s3:::${LAKE}`) },
        bus: { arn: pulumi.output(BUS_ARN), name: pulumi.output('etl-platform') },
        alerts: { arn: pulumi.output(TOPIC_ARN) },
      });
      const json = await new Promise<string>((res) => renderDefinition(fromOutputs.definition).apply(res));
      assert.deepEqual(JSON.parse(json), definition);
    });

    it('adds kms statements only for the keys given', async () => {
      const withKeys = upstreamWorkflow({
        ...refs,
        lake: { ...refs.lake, kmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/lake' },
        alerts: { ...refs.alerts, kmsKeyArn: pulumi.output('arn:aws:kms:us-east-1:123456789012:key/alerts') },
      });
      const doc = await new Promise<PolicyDocument>((res) => policyDocument(withKeys.statements).apply(res));
      const kms = doc.Statement.filter((s) => s.Action.some((a) => a.startsWith('kms:')));
      assert.deepEqual(kms.flatMap((s) => s.Resource).sort(), [
        'arn:aws:kms:us-east-1:123456789012:key/alerts',
        'arn:aws:kms:us-east-1:123456789012:key/lake',
      ]);
    });
  });

  describe('local execution (aws-local-stepfunctions + dynalite + the real batch-context handler)', () => {
    let ddb: LocalDynamo;
    const putFence = (attrs: Record<string, { S: string } | { N: string }>) =>
      ddb.client.send(
        new PutItemCommand({
          TableName: ddb.tableName,
          Item: { pk: { S: 'FENCE' }, sk: { S: 'ACTIVE' }, ...attrs },
        }),
      );
    beforeEach(async () => {
      ddb = await startDynalite();
      // Under load the new table may not be ACTIVE yet: retry the first write briefly.
      for (let i = 0; ; i++) {
        try {
          await putFence({ activeRegion: { S: 'us-east-1' }, epoch: { N: '2' } });
          break;
        } catch (e) {
          if ((e as Error).name !== 'ResourceNotFoundException' || i >= 50) throw e;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    });
    afterEach(async () => ddb.close());

    const batchIdOf = (time: string) => `${PIPELINE}-${time.replace(/[-:]/g, '')}`;

    async function item(sk: string): Promise<Record<string, any> | undefined> {
      const out = await ddb.client.send(
        new GetItemCommand({
          TableName: ddb.tableName,
          Key: { pk: { S: `PIPELINE#${PIPELINE}` }, sk: { S: sk } },
        }),
      );
      return out.Item ? unmarshall(out.Item) : undefined;
    }

    function run(input: unknown, world = lakeWorld(), name = `exec-${Math.random().toString(36).slice(2)}`) {
      return runWorkflow(definition, input, {
        handlers: {
          dynamodb: ddb.client,
          lambda: { [FN_ARN]: (payload) => batchContextHandler(payload as never) },
          glue: world.glue,
          s3: world.s3,
        },
        context: { Execution: { Name: name } },
      });
    }

    const entered = (res: RunResult, state: string) =>
      res.events.filter((e) => e.type === 'StateEntered' && (e.state as { name: string }).name === state)
        .length;
    const failMsg = (res: RunResult) => `${res.error}: ${res.cause}`;

    it('all tables succeed: one UpstreamBatchSucceeded with the documented detail, records, watermarks, lock released', async () => {
      const time = '2026-11-27T07:00:00Z';
      const batchId = batchIdOf(time);
      // pc_account already has a newer watermark: it must not move back.
      await ddb.client.send(
        new PutItemCommand({
          TableName: ddb.tableName,
          Item: {
            pk: { S: `PIPELINE#${PIPELINE}` },
            sk: { S: 'WATERMARK#TABLE#pc_account' },
            watermark: { S: '1800000000000' },
          },
        }),
      );
      const world = lakeWorld();
      const res = await run({ pipeline: PIPELINE, scheduledTime: time }, world, 'happy');
      assert.equal(res.status, 'SUCCEEDED', failMsg(res));
      assert.equal(entered(res, UPSTREAM_STATES.done), 1);

      // Glue: job 1 then job 2 per table, with the documented arguments.
      assert.equal(world.glueRuns.length, 6);
      const cda = world.glueRuns.find((r) => r.job === 'cda' && r.table === 'pc_policyperiod');
      assert.deepEqual(cda?.args, {
        '--pipeline': PIPELINE,
        '--batch_id': batchId,
        '--table': 'pc_policyperiod',
        '--source_bucket': 'guidewire-cda-prod',
        '--source_prefix': 'cda/pc',
        '--lake_bucket': LAKE,
        '--watermark': '',
      });
      assert.equal(
        world.glueRuns.find((r) => r.table === 'pc_account' && r.job === 'cda')?.args['--watermark'],
        '1800000000000',
      );
      assert.deepEqual(world.glueRuns.find((r) => r.job === 'sf' && r.table === 'pc_contact')?.args, {
        '--pipeline': PIPELINE,
        '--batch_id': batchId,
        '--table': 'pc_contact',
        '--lake_bucket': LAKE,
        '--snowflake_connection': 'snowflake-prod',
        '--fence_region': 'us-east-1', // the fence the batch started under (beforeEach)
        '--fence_epoch': '2',
      });

      // Exactly one event, with exactly the documented detail (docs/events.md).
      const events = res.router.putEvents;
      assert.equal(events.length, 1);
      const ev = events[0];
      assert.equal(ev.Source, 'com.insurer.etl-platform');
      assert.equal(ev.DetailType, UPSTREAM_BATCH_SUCCEEDED);
      assert.equal(ev.EventBusName, BUS_ARN);
      const detail = ev.Detail as UpstreamBatchSucceededDetail;
      assert.deepEqual(Object.keys(detail).sort(), [
        'batchId',
        'completedAt',
        'pipeline',
        'region',
        'schemaVersion',
        'startedAt',
        'tables',
        'upstreamExecutionArn',
      ]);
      const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
      assert.match(detail.startedAt, iso);
      assert.match(detail.completedAt, iso);
      assert.ok(detail.completedAt >= detail.startedAt);
      assert.deepEqual(detail, {
        schemaVersion: '1.0',
        pipeline: PIPELINE,
        batchId,
        region: 'us-east-1',
        tables: TABLES.map((t) => ({
          name: t,
          rows: ROWS[t],
          lakePath: `s3://${LAKE}/raw/${PIPELINE}/${t}/batch_id=${batchId}/`,
        })),
        startedAt: detail.startedAt,
        completedAt: detail.completedAt,
        upstreamExecutionArn: `arn:aws:states:us-east-1:${ACCOUNT}:execution:local:happy`,
      });
      assert.equal(res.router.snsMessages.length, 0);

      const batch = await item(`BATCH#${batchId}#UPSTREAM`);
      assert.equal(batch?.status, 'SUCCEEDED');
      assert.equal(batch?.gsi1pk, `PIPELINE#${PIPELINE}#UPSTREAM#SUCCEEDED`);
      assert.equal(batch?.gsi1sk, batchId);
      assert.equal(batch?.region, 'us-east-1');
      assert.equal(batch?.scheduledTime, time);
      assert.equal(batch?.executionArn, detail.upstreamExecutionArn);
      assert.equal(batch?.startedAt, detail.startedAt);
      assert.equal(batch?.completedAt, detail.completedAt);
      assert.deepEqual(JSON.parse(batch?.tables), detail.tables);
      assert.equal(typeof batch?.expiresAt, 'number');

      for (const t of TABLES) {
        const load = await item(`BATCH#${batchId}#TABLE#${t}`);
        assert.equal(load?.status, 'SUCCEEDED', t);
        assert.equal(load?.rows, ROWS[t]);
        assert.equal(load?.glueRunId, `jr_cda_${t}_1`);
        assert.equal(load?.snowflakeGlueRunId, `jr_sf_${t}_1`);
        assert.equal(load?.lakePath, `s3://${LAKE}/raw/${PIPELINE}/${t}/batch_id=${batchId}/`);
        assert.equal(load?.completedAt, '2026-11-27T07:06:00Z');
      }
      // Advanced where new data came; untouched where nothing was new; never moved back.
      assert.equal((await item('WATERMARK#TABLE#pc_policyperiod'))?.watermark, NEW_WATERMARK);
      assert.equal(await item('WATERMARK#TABLE#pc_contact'), undefined);
      assert.equal((await item('WATERMARK#TABLE#pc_account'))?.watermark, '1800000000000');
      assert.equal(await item('LOCK#UPSTREAM'), undefined, 'lock released');
    });

    it('a Glue job that fails: batch FAILED, one alert, one UpstreamBatchFailed, execution FAILED, lock released', async () => {
      const time = '2026-11-27T08:00:00Z';
      const batchId = batchIdOf(time);
      const world = lakeWorld((job, table) => (job === 'cda' && table === 'pc_contact' ? 'fail' : 'ok'));
      const res = await run({ pipeline: PIPELINE, scheduledTime: time }, world);
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'States.TaskFailed');
      assert.match(res.cause ?? '', /^table pc_contact: /);
      assert.equal(entered(res, UPSTREAM_STATES.batchFailed), 1);
      assert.equal(entered(res, UPSTREAM_STATES.failureHandlingFailed), 0);

      assert.equal(res.router.snsMessages.length, 1);
      const alert = res.router.snsMessages[0];
      assert.equal(alert.TopicArn, TOPIC_ARN);
      assert.match(String(alert.Subject), /upstream batch of policycenter failed/);
      assert.match(
        String(alert.Message),
        new RegExp(
          `^Upstream batch ${batchId} of pipeline policycenter failed in us-east-1\\. Error: States\\.TaskFailed\\. Cause: table pc_contact: .*AnalysisException: boom`,
        ),
      );

      assert.equal(res.router.putEvents.length, 1);
      const ev = res.router.putEvents[0];
      assert.equal(ev.DetailType, UPSTREAM_BATCH_FAILED);
      assert.ok(!res.router.putEvents.some((e) => e.DetailType === UPSTREAM_BATCH_SUCCEEDED));
      const detail = ev.Detail as Record<string, string>;
      assert.deepEqual(Object.keys(detail).sort(), [
        'batchId',
        'cause',
        'error',
        'failedAt',
        'pipeline',
        'region',
        'schemaVersion',
        'startedAt',
        'upstreamExecutionArn',
      ]);
      assert.equal(detail.batchId, batchId);
      assert.equal(detail.schemaVersion, '1.0');

      const batch = await item(`BATCH#${batchId}#UPSTREAM`);
      assert.equal(batch?.status, 'FAILED');
      assert.equal(batch?.gsi1pk, `PIPELINE#${PIPELINE}#UPSTREAM#FAILED`);
      assert.equal(batch?.error, 'States.TaskFailed');
      assert.match(batch?.cause, /AnalysisException: boom/);
      assert.equal(typeof batch?.completedAt, 'string');
      const load = await item(`BATCH#${batchId}#TABLE#pc_contact`);
      assert.equal(load?.status, 'FAILED');
      assert.equal(load?.error, 'States.TaskFailed');
      assert.equal(await item('WATERMARK#TABLE#pc_contact'), undefined);
      assert.equal(await item('LOCK#UPSTREAM'), undefined, 'lock released');
      // The failed run is not retried (States.TaskFailed is not in the Glue Retry).
      assert.equal(world.glueRuns.filter((r) => r.job === 'cda' && r.table === 'pc_contact').length, 1);
    });

    it('the same scheduled time delivered twice: one batch, the second ends DuplicateDelivery without Glue', async () => {
      const time = '2026-11-27T09:00:00Z';
      const first = await run({ pipeline: PIPELINE, scheduledTime: time }, lakeWorld(), 'first');
      assert.equal(first.status, 'SUCCEEDED', failMsg(first));
      const world = lakeWorld();
      const second = await run({ pipeline: PIPELINE, scheduledTime: time }, world, 'second');
      assert.equal(second.status, 'SUCCEEDED', failMsg(second));
      assert.equal(entered(second, UPSTREAM_STATES.duplicate), 1);
      assert.equal(entered(second, UPSTREAM_STATES.acquireLock), 0);
      assert.equal(world.glueRuns.length, 0);
      assert.equal(second.router.putEvents.length, 0);
      const batch = await item(`BATCH#${batchIdOf(time)}#UPSTREAM`);
      assert.equal(batch?.status, 'SUCCEEDED');
      assert.match(batch?.executionArn, /:first$/, 'the record still names the first execution');
    });

    it('Glue ConcurrentRunsExceeded once, then success: retried and succeeded', async () => {
      const clean = await run({ pipeline: PIPELINE, scheduledTime: '2026-11-27T10:00:00Z' });
      assert.equal(clean.status, 'SUCCEEDED', failMsg(clean));
      // Same starting state (no watermarks, no lock) for the comparison run.
      await ddb.close();
      ddb = await startDynalite();
      await putFence({ activeRegion: { S: 'us-east-1' }, epoch: { N: '2' } });
      const world = lakeWorld((job, table, attempt) =>
        job === 'cda' && table === 'pc_policyperiod' && attempt === 1 ? 'concurrent' : 'ok',
      );
      const res = await run({ pipeline: PIPELINE, scheduledTime: '2026-11-27T10:00:00Z' }, world);
      assert.equal(res.status, 'SUCCEEDED', failMsg(res));
      const retried = res.events.filter(
        (e) => e.type === 'StateRetried' && (e.state as { name: string }).name === UPSTREAM_STATES.cdaToLake,
      );
      assert.equal(retried.length, 1);
      assert.equal(res.transitions - clean.transitions, 1, 'one extra (billed) transition for the retry');
      assert.equal(world.glueRuns.filter((r) => r.job === 'cda' && r.table === 'pc_policyperiod').length, 2);
      assert.equal(res.router.putEvents.length, 1);
      const load = await item(`BATCH#${batchIdOf('2026-11-27T10:00:00Z')}#TABLE#pc_policyperiod`);
      assert.equal(load?.glueRunId, 'jr_cda_pc_policyperiod_2');
    });

    it('a batch while the lock is held: SKIPPED with a reason naming the holder, no Glue; an expired lease is taken over', async () => {
      const now = Math.floor(Date.now() / 1000);
      const holder = `${PIPELINE}-20261127T110000Z`;
      const putLock = (leaseExpiresAt: number) =>
        ddb.client.send(
          new PutItemCommand({
            TableName: ddb.tableName,
            Item: {
              pk: { S: `PIPELINE#${PIPELINE}` },
              sk: { S: 'LOCK#UPSTREAM' },
              holder: { S: holder },
              leaseExpiresAt: { N: String(leaseExpiresAt) },
            },
          }),
        );
      await putLock(now + 3600);
      const world = lakeWorld();
      const time = '2026-11-27T12:00:00Z';
      const res = await run({ pipeline: PIPELINE, scheduledTime: time }, world);
      assert.equal(res.status, 'SUCCEEDED', failMsg(res));
      assert.equal(entered(res, UPSTREAM_STATES.skipped), 1);
      assert.equal(world.glueRuns.length, 0);
      assert.equal(res.router.putEvents.length, 0);
      const batch = await item(`BATCH#${batchIdOf(time)}#UPSTREAM`);
      assert.equal(batch?.status, 'SKIPPED');
      assert.equal(batch?.gsi1pk, `PIPELINE#${PIPELINE}#UPSTREAM#SKIPPED`);
      assert.match(batch?.skipReason, new RegExp(`held by batch ${holder}`));
      assert.equal((await item('LOCK#UPSTREAM'))?.holder, holder, 'the holder keeps its lock');

      // The holder died without releasing: its lease ran out, the next tick takes over.
      await putLock(now - 10);
      const later = '2026-11-27T13:00:00Z';
      const world2 = lakeWorld();
      const takeover = await run({ pipeline: PIPELINE, scheduledTime: later }, world2);
      assert.equal(takeover.status, 'SUCCEEDED', failMsg(takeover));
      assert.equal(entered(takeover, UPSTREAM_STATES.done), 1);
      assert.equal(world2.glueRuns.length, 6);
      assert.equal((await item(`BATCH#${batchIdOf(later)}#UPSTREAM`))?.status, 'SUCCEEDED');
      assert.equal(await item('LOCK#UPSTREAM'), undefined, 'released by the new holder');
    });

    it('D9: the fence names the other region: no batch record, no Glue run, SkippedNotActive with an audit record', async () => {
      await putFence({ activeRegion: { S: 'us-west-1' }, epoch: { N: '3' } });
      const world = lakeWorld();
      const time = '2026-11-27T07:00:00Z';
      const res = await run({ pipeline: PIPELINE, scheduledTime: time }, world);
      assert.equal(res.status, 'SUCCEEDED', failMsg(res));
      assert.equal(entered(res, UPSTREAM_STATES.skippedNotActive), 1);
      assert.equal(world.glueRuns.length, 0);
      assert.equal(await item(`BATCH#${batchIdOf(time)}#UPSTREAM`), undefined);
      assert.equal(await item('LOCK#UPSTREAM'), undefined);
      assert.equal(
        (await item(`BATCH#${batchIdOf(time)}#UPSTREAM#SKIP#us-east-1`))?.status,
        'SKIPPED_NOT_ACTIVE',
      );
      assert.equal(res.router.putEvents.length + res.router.snsMessages.length, 0);
    });

    it('D9: a missing or malformed fence: FenceMissing with an alert, nothing recorded, no Glue run', async () => {
      for (const fence of [undefined, { epoch: { N: '0' }, activeRegion: { S: 'us-east-1' } }]) {
        await ddb.client.send(
          new PutItemCommand({
            TableName: ddb.tableName,
            Item: {
              pk: { S: 'FENCE' },
              sk: { S: 'ACTIVE' },
              ...(fence ?? { note: { S: 'no region, no epoch' } }),
            },
          }),
        );
        const world = lakeWorld();
        const time = '2026-11-27T07:00:00Z';
        const res = await run({ pipeline: PIPELINE, scheduledTime: time }, world);
        assert.equal(res.status, 'FAILED');
        assert.equal(res.error, 'FenceMissing');
        assert.equal(world.glueRuns.length, 0);
        assert.equal(await item(`BATCH#${batchIdOf(time)}#UPSTREAM`), undefined);
        assert.equal(res.router.snsMessages.length, 1);
      }
    });

    it('D9: the fence moves after the lake load: no Snowflake load, table and batch FAILED (FenceMoved), lock released', async () => {
      const world = lakeWorld();
      const glue = world.glue;
      let moved = false;
      // Failover while the first lake load runs (before any table can reach its Snowflake load).
      const moving = async (params: Record<string, unknown>) => {
        if (!moved) {
          moved = true;
          await putFence({ activeRegion: { S: 'us-west-1' }, epoch: { N: '3' } });
        }
        return glue(params);
      };
      const res = await run(
        { pipeline: PIPELINE, scheduledTime: '2026-11-27T07:00:00Z' },
        { ...world, glue: moving as unknown as typeof world.glue },
      );
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, 'FenceMoved');
      assert.ok(entered(res, UPSTREAM_STATES.fenceMovedBeforeLoad) >= 1);
      assert.ok(world.glueRuns.some((r) => r.job === 'cda'));
      assert.equal(world.glueRuns.filter((r) => r.job === 'sf').length, 0, 'no Snowflake load ran');
      assert.equal(await item('LOCK#UPSTREAM'), undefined);
    });

    it('the lock belongs to the execution: a release by another execution of the same batch is a no-op', async () => {
      // A lock held by another execution for this very batch (e.g. a redrive) is not ours to delete.
      const now = Math.floor(Date.now() / 1000);
      const time = '2026-11-27T07:00:00Z';
      await ddb.client.send(
        new PutItemCommand({
          TableName: ddb.tableName,
          Item: {
            pk: { S: `PIPELINE#${PIPELINE}` },
            sk: { S: 'LOCK#UPSTREAM' },
            holder: { S: batchIdOf(time) },
            executionArn: { S: 'arn:other' },
            leaseExpiresAt: { N: String(now + 3600) },
          },
        }),
      );
      const res = await run({ pipeline: PIPELINE, scheduledTime: time }, lakeWorld());
      assert.equal(res.status, 'SUCCEEDED', failMsg(res));
      assert.equal(entered(res, UPSTREAM_STATES.skipped), 1);
      assert.equal((await item('LOCK#UPSTREAM'))?.executionArn, 'arn:other');
    });

    it('a malformed scheduler payload fails clearly and writes nothing', async () => {
      const world = lakeWorld();
      const missing = await run({ pipeline: PIPELINE }, world);
      assert.equal(missing.status, 'FAILED');
      assert.equal(missing.error, 'InvalidInput');
      assert.match(missing.cause ?? '', /scheduledTime/);
      assert.equal(entered(missing, UPSTREAM_STATES.batchContext), 0);

      const otherPipeline = await run(
        { pipeline: 'claimcenter', scheduledTime: '2026-11-27T07:00:00Z' },
        world,
      );
      assert.equal(otherPipeline.error, 'InvalidInput');

      // A present but unparseable time reaches the handler, whose InvalidInput is not retried.
      const badTime = await run({ pipeline: PIPELINE, scheduledTime: 'yesterday' }, world);
      assert.equal(badTime.status, 'FAILED');
      assert.equal(badTime.error, 'InvalidInput');
      assert.match(badTime.cause ?? '', /is not an ISO-8601 timestamp/);
      assert.equal(badTime.events.filter((e) => e.type === 'StateRetried').length, 0);
      assert.equal(entered(badTime, UPSTREAM_STATES.rejectBatchContext), 1);

      for (const r of [missing, otherPipeline, badTime]) {
        assert.equal(
          r.router.calls.filter((c) => !c.resource.includes(':lambda:')).length,
          0,
          'no writes, no Glue',
        );
        assert.equal(r.router.snsMessages.length, 0);
      }
      assert.equal(world.glueRuns.length, 0);
    });
  });
});
