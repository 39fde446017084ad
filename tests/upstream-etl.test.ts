import * as assert from 'node:assert/strict';
import { ACCOUNT_ID } from '../local/pulumi-mocks';
import { type ProgramRun, runProgram, stackConfig } from '../local/program';

const PIPELINES = JSON.parse(stackConfig('prod-east')['etl-platform:pipelines']) as Array<{
  name: string;
  maxConcurrency: number;
  glue: { workerType: string; numberOfWorkers: number; timeoutMinutes: number };
}>;

describe('upstream ETL under mocks', () => {
  const runs: Record<string, ProgramRun> = {};
  before(async () => {
    for (const stack of ['prod-east', 'prod-west'] as const) {
      for (const active of ['us-east-1', 'us-west-1']) {
        const run = await runProgram({ stack, activeRegion: active });
        if (run.error) throw run.error;
        runs[`${stack}/${active}`] = run;
      }
    }
  });

  it('one schedule per pipeline, ENABLED only in the active region', () => {
    for (const [key, run] of Object.entries(runs)) {
      const [stack, active] = key.split('/');
      const expected = (stack === 'prod-east') === (active === 'us-east-1') ? 'ENABLED' : 'DISABLED';
      const schedules = run
        .ofType('aws:scheduler/schedule:Schedule')
        .filter((s) => s.inputs.name.endsWith('-upstream'));
      assert.deepEqual(
        schedules.map((s) => s.inputs.name).sort(),
        PIPELINES.map((p) => `${p.name}-upstream`).sort(),
      );
      for (const s of schedules) assert.equal(s.inputs.state, expected, `${key} ${s.inputs.name}`);
      const toggles = run.outputs.failover.toggles.filter(
        (t: any) => t.kind === 'schedule' && t.name.endsWith('-upstream'),
      );
      assert.deepEqual(
        toggles.map((t: any) => t.state),
        PIPELINES.map(() => expected),
      );
    }
  });

  it('every schedule has a retry policy, a DLQ its role may write, the scheduled time as input and the config cron', () => {
    const run = runs['prod-east/us-east-1'];
    for (const pipeline of PIPELINES) {
      const schedule = run.one('aws:scheduler/schedule:Schedule', `${pipeline.name}-upstream`);
      assert.deepEqual(schedule.inputs.target.retryPolicy, {
        maximumRetryAttempts: 3,
        maximumEventAgeInSeconds: 3600,
      });
      const dlq = run.one('aws:sqs/queue:Queue', `${pipeline.name}-upstream-schedule-dlq`);
      assert.equal(schedule.inputs.target.deadLetterConfig.arn, dlq.state.arn);
      assert.deepEqual(JSON.parse(schedule.inputs.target.input), {
        pipeline: pipeline.name,
        scheduledTime: '<aws.scheduler.scheduled-time>',
      });
      assert.equal(schedule.inputs.scheduleExpressionTimezone, 'UTC');
      assert.deepEqual(schedule.inputs.flexibleTimeWindow, { mode: 'FLEXIBLE', maximumWindowInMinutes: 10 });
      const sm = run.one('aws:sfn/stateMachine:StateMachine', `${pipeline.name}-upstream-workflow`);
      assert.equal(schedule.inputs.target.arn, sm.state.arn);
      const policy = JSON.parse(
        run.one('aws:iam/rolePolicy:RolePolicy', `${pipeline.name}-upstream-schedule-policy`).inputs.policy,
      );
      assert.deepEqual(
        policy.Statement.map((s: any) => [s.Action, s.Resource]),
        [
          [['states:StartExecution'], [sm.state.arn]],
          [['sqs:SendMessage'], [dlq.state.arn]],
        ],
      );
    }
  });

  it('every DLQ in the program has a depth alarm', () => {
    for (const run of Object.values(runs)) {
      const queues = run.ofType('aws:sqs/queue:Queue');
      assert.ok(queues.length >= PIPELINES.length);
      const alarmed = new Set(
        run.ofType('aws:cloudwatch/metricAlarm:MetricAlarm').map((a) => a.inputs.dimensions?.QueueName),
      );
      for (const q of queues) assert.ok(alarmed.has(q.state.name), `${q.name} has no alarm`);
    }
  });

  it('Glue jobs: Glue 4+, MaxConcurrentRuns = the Map concurrency, workers and timeout from config, continuous logs', () => {
    const run = runs['prod-west/us-east-1'];
    for (const pipeline of PIPELINES) {
      for (const job of ['cda-to-lake', 'lake-to-snowflake']) {
        const glue = run.one('aws:glue/job:Job', `${pipeline.name}-upstream-${job}`);
        assert.ok(Number(glue.inputs.glueVersion) >= 4);
        assert.equal(glue.inputs.executionProperty.maxConcurrentRuns, pipeline.maxConcurrency);
        assert.equal(glue.inputs.workerType, pipeline.glue.workerType);
        assert.equal(glue.inputs.numberOfWorkers, pipeline.glue.numberOfWorkers);
        assert.equal(glue.inputs.timeout, pipeline.glue.timeoutMinutes);
        assert.equal(glue.inputs.defaultArguments['--enable-continuous-cloudwatch-log'], 'true');
        assert.match(
          glue.inputs.command.scriptLocation,
          /^s3:\/\/.+\/glue\/(cda_to_lake|lake_to_snowflake)\.py$/,
        );
      }
      const load = run.one('aws:glue/job:Job', `${pipeline.name}-upstream-lake-to-snowflake`);
      assert.deepEqual(load.inputs.connections, ['etl-snowflake']);
    }
  });

  it('the Glue role reads only the Guidewire prefix, its own lake prefixes and the one secret', () => {
    const run = runs['prod-east/us-east-1'];
    const policy = JSON.parse(
      run.one('aws:iam/rolePolicy:RolePolicy', 'policycenter-upstream-glue-policy').inputs.policy,
    );
    const bySid = Object.fromEntries(policy.Statement.map((s: any) => [s.Sid, s]));
    assert.deepEqual(bySid.ReadGuidewireCda.Resource, [
      'arn:aws:s3:::gw-cda-example-insurer-prod/cda/prod/*',
    ]);
    assert.deepEqual(bySid.WriteLakePipelinePrefixes.Resource, [
      `arn:aws:s3:::etl-lake-${ACCOUNT_ID}-us-east-1/raw/policycenter/*`,
      `arn:aws:s3:::etl-lake-${ACCOUNT_ID}-us-east-1/_runs/policycenter/*`,
    ]);
    assert.deepEqual(bySid.SnowflakeSecret.Resource, [
      `arn:aws:secretsmanager:us-east-1:${ACCOUNT_ID}:secret:etl-platform/snowflake-??????`,
    ]);
  });

  it('the workflow role is derived from the definition: Glue only on its own jobs', () => {
    const run = runs['prod-east/us-east-1'];
    const policy = JSON.parse(
      run.one('aws:iam/rolePolicy:RolePolicy', 'policycenter-upstream-workflow-policy').inputs.policy,
    );
    const glueResources = policy.Statement.filter((s: any) =>
      s.Action.some((a: string) => a.startsWith('glue:')),
    ).flatMap((s: any) => s.Resource);
    assert.deepEqual([...new Set(glueResources)].sort(), [
      `arn:aws:glue:us-east-1:${ACCOUNT_ID}:job/etl-policycenter-cda-to-lake`,
      `arn:aws:glue:us-east-1:${ACCOUNT_ID}:job/etl-policycenter-lake-to-snowflake`,
    ]);
    const sm = run.one('aws:sfn/stateMachine:StateMachine', 'policycenter-upstream-workflow');
    assert.equal(sm.inputs.type, 'STANDARD');
    assert.equal(sm.inputs.tracingConfiguration.enabled, true);
    assert.equal(sm.inputs.loggingConfiguration.level, 'ERROR');
    assert.ok(JSON.parse(sm.inputs.definition).States.LoadTables);
  });

  it('the lake bucket is versioned, SSE-KMS, public-blocked, TLS-only, lifecycled, and replicates to the peer lake', () => {
    for (const [stack, region, peer] of [
      ['prod-east', 'us-east-1', 'us-west-1'],
      ['prod-west', 'us-west-1', 'us-east-1'],
    ] as const) {
      const run = runs[`${stack}/us-east-1`];
      const bucket = run.one('aws:s3/bucket:Bucket', 'data-lake-bucket');
      assert.equal(bucket.inputs.bucket, `etl-lake-${ACCOUNT_ID}-${region}`);
      assert.equal(
        run.one('aws:s3/bucketVersioning:BucketVersioning', 'data-lake-versioning').inputs
          .versioningConfiguration.status,
        'Enabled',
      );
      const sse = run.one(
        'aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration',
        'data-lake-sse',
      );
      assert.equal(sse.inputs.rules[0].applyServerSideEncryptionByDefault.sseAlgorithm, 'aws:kms');
      const pab = run.one(
        'aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock',
        'data-lake-public-access',
      );
      assert.deepEqual(
        [
          pab.inputs.blockPublicAcls,
          pab.inputs.blockPublicPolicy,
          pab.inputs.ignorePublicAcls,
          pab.inputs.restrictPublicBuckets,
        ],
        [true, true, true, true],
      );
      const tls = JSON.parse(run.one('aws:s3/bucketPolicy:BucketPolicy', 'data-lake-tls-only').inputs.policy)
        .Statement[0];
      assert.deepEqual([tls.Effect, tls.Condition], ['Deny', { Bool: { 'aws:SecureTransport': 'false' } }]);
      assert.ok(
        run.one('aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration', 'data-lake-lifecycle')
          .inputs.rules.length >= 3,
      );
      const replication = run.one('aws:s3/bucketReplicationConfig:BucketReplicationConfig');
      assert.equal(
        replication.inputs.rules[0].destination.bucket,
        `arn:aws:s3:::etl-lake-${ACCOUNT_ID}-${peer}`,
      );
      assert.equal(
        replication.inputs.rules[0].destination.encryptionConfiguration.replicaKmsKeyId,
        `arn:aws:kms:${peer}:${ACCOUNT_ID}:alias/etl-lake`,
      );
    }
  });

  it('the Glue scripts are uploaded from glue/, tests excluded', () => {
    const keys = runs['prod-east/us-east-1']
      .ofType('aws:s3/bucketObjectv2:BucketObjectv2')
      .map((o) => o.inputs.key)
      .sort();
    assert.deepEqual(keys, ['glue/cda_logic.py', 'glue/cda_to_lake.py', 'glue/lake_to_snowflake.py']);
  });

  it('the Snowflake secret is owned by the home stack, replicated to the peer, and stays a secret', async () => {
    const east = runs['prod-east/us-east-1'];
    const secret = east.one('aws:secretsmanager/secret:Secret', 'snowflake-secret');
    assert.deepEqual(secret.inputs.replicas, [{ region: 'us-west-1' }]);
    const version = east.one('aws:secretsmanager/secretVersion:SecretVersion', 'snowflake-secret-value');
    assert.ok(version.secretPaths.includes('secretString'));
    assert.deepEqual(
      Object.keys(JSON.parse(version.inputs.secretString)).sort(),
      [
        // the dbt app's keys (dbt-app/credentials.py), account included
        'account',
        'database',
        'password',
        'role',
        'user',
        'warehouse',
        // the Glue connector's
        'sfDatabase',
        'sfPassword',
        'sfRole',
        'sfUser',
        'sfWarehouse',
        // the fence writer's key pair (Snowflake SQL API)
        'private_key',
      ].sort(),
    );
    assert.equal(
      runs['prod-west/us-east-1']
        .ofType('aws:secretsmanager/secretVersion:SecretVersion')
        .filter((r) => r.name.includes('snowflake')).length,
      0,
    );
    const connection = runs['prod-west/us-east-1'].one('aws:glue/connection:Connection');
    assert.equal(connection.inputs.connectionType, 'SNOWFLAKE');
    assert.equal(connection.inputs.connectionProperties.SECRET_ID, 'etl-platform/snowflake');
  });

  it('lakeReplication=false leaves the replication out (first deployment)', async () => {
    const run = await runProgram({ stack: 'prod-east', config: { lakeReplication: false } });
    assert.equal(run.error, undefined);
    assert.equal(run.ofType('aws:s3/bucketReplicationConfig:BucketReplicationConfig').length, 0);
  });
});
