import * as assert from 'node:assert/strict';
import { runProgram, stackConfig } from './harness/program';

/** Each bad value, the key the message must name, and words of the fix it must give. */
interface BadConfigCase {
  readonly title: string;
  readonly config: Record<string, unknown>;
  readonly secrets?: false;
  readonly expect: ReadonlyArray<RegExp>;
}

const base = stackConfig('prod-east');
const pipelines = JSON.parse(base['etl-platform:pipelines']);
const withPipeline = (index: number, patch: Record<string, unknown>) =>
  pipelines.map((p: any, i: number) => (i === index ? { ...p, ...patch } : p));

export const BAD_CONFIG_CASES: readonly BadConfigCase[] = [
  {
    title: 'activeRegion not among the regions',
    config: { activeRegion: 'eu-west-1' },
    expect: [
      /etl-platform:activeRegion = "eu-west-1": is not one of the configured regions \["us-east-1","us-west-1"\]\. Fix: pulumi config set activeRegion us-east-1/,
    ],
  },
  {
    title: 'aws:region not among the regions',
    config: { 'aws:region': 'us-east-2' },
    expect: [
      /aws:region = "us-east-2": is not one of the configured regions .*Fix: deploy this stack to one of them/,
    ],
  },
  {
    title: 'a region listed twice',
    config: { regions: ['us-east-1', 'us-east-1'] },
    expect: [
      /etl-platform:regions = \["us-east-1","us-east-1"\]: lists a region twice\. Fix: list two different regions/,
    ],
  },
  {
    title: 'fewer than two regions',
    config: { regions: ['us-east-1'] },
    expect: [
      /etl-platform:regions = \["us-east-1"\]: must list exactly two regions \(active-passive\)\. Fix:/,
    ],
  },
  {
    title: 'an unknown default trigger mode',
    config: { defaultTriggerMode: 'rule-sqs' },
    expect: [
      /etl-platform:defaultTriggerMode = "rule-sqs": is not a trigger mode\. Fix: use one of rule-direct, rule-intermediate-sfn, schedule-poll, upstream-direct, rule-lambda/,
    ],
  },
  {
    title: "an unknown pipeline's trigger mode",
    config: { pipelines: withPipeline(1, { triggerMode: 'webhook' }) },
    expect: [/etl-platform:pipelines\[1\]\.triggerMode = "webhook": is not a trigger mode/],
  },
  {
    title: 'a malformed schedule expression',
    config: { pipelines: withPipeline(0, { schedule: { expression: 'cron(0 2 * * *)', timezone: 'UTC' } }) },
    expect: [
      /etl-platform:pipelines\[0\]\.schedule\.expression = "cron\(0 2 \* \* \*\)": is not a valid Scheduler expression: cron\(\) needs 6 fields .* got 5\. Fix: use e\.g\./,
    ],
  },
  {
    title: 'a cron with both day fields set',
    config: { pipelines: withPipeline(0, { schedule: { expression: 'cron(0 2 * * MON *)' } }) },
    expect: [
      /pipelines\[0\]\.schedule\.expression = .*exactly one of day-of-month and day-of-week must be "\?"/,
    ],
  },
  {
    title: 'an unknown time zone',
    config: {
      pipelines: withPipeline(2, {
        schedule: { expression: 'cron(0 3 * * ? *)', timezone: 'America/Gotham' },
      }),
    },
    expect: [
      /etl-platform:pipelines\[2\]\.schedule\.timezone = "America\/Gotham": it is not an IANA time zone name\. Fix: use e\.g\. "America\/New_York"/,
    ],
  },
  {
    title: 'a pipeline name unusable in AWS resource names',
    config: { pipelines: withPipeline(0, { name: 'Policy Center' }) },
    expect: [
      /etl-platform:pipelines\[0\]\.name = "Policy Center": is unusable in AWS resource names\. Fix: use 2-24 lowercase letters/,
    ],
  },
  {
    title: 'duplicate pipeline names',
    config: { pipelines: withPipeline(2, { name: 'policycenter' }) },
    expect: [
      /etl-platform:pipelines\[2\]\.name = "policycenter": duplicates pipelines\[0\]\.name\. Fix: give every pipeline its own name/,
    ],
  },
  {
    title: 'a region without an EKS cluster',
    config: { eksClusters: { 'us-east-1': 'dataplatform-prod-use1' } },
    expect: [
      /etl-platform:eksClusters\.us-west-1 = \(not set\): names no EKS cluster for us-west-1\. Fix: pulumi config set --path 'eksClusters\["us-west-1"\]' <cluster-name>/,
    ],
  },
  {
    title: 'a log retention CloudWatch does not offer',
    config: { logRetentionDays: 45 },
    expect: [
      /etl-platform:logRetentionDays = 45: is not a CloudWatch Logs retention\. Fix: use one of 1, 3, 5, 7, 14, 30, 60/,
    ],
  },
  {
    title: 'a negative archive retention',
    config: { archiveRetentionDays: -1 },
    expect: [/etl-platform:archiveRetentionDays = -1: archiveRetentionDays is below AWS's minimum of 0 days/],
  },
  {
    title: 'retry attempts above EventBridge’s 185',
    config: { triggerRetry: { maximumRetryAttempts: 200, maximumEventAgeSeconds: 3600 } },
    expect: [
      /etl-platform:triggerRetry\.maximumRetryAttempts = 200: maximumRetryAttempts is above AWS's maximum of 185\. Fix: use 0\.\.185/,
    ],
  },
  {
    title: 'an event age below 60 seconds',
    config: { scheduleRetry: { maximumRetryAttempts: 3, maximumEventAgeSeconds: 30 } },
    expect: [
      /etl-platform:scheduleRetry\.maximumEventAgeSeconds = 30: maximumEventAgeSeconds is below AWS's minimum of 60 seconds/,
    ],
  },
  {
    title: 'a Lambda async retry count above 2',
    config: { lambdaAsync: { maximumRetryAttempts: 3, maximumEventAgeSeconds: 3600 } },
    expect: [
      /etl-platform:lambdaAsync\.maximumRetryAttempts = 3: maximumRetryAttempts is above AWS's maximum of 2/,
    ],
  },
  {
    title: 'a bus name too long for its archive',
    config: { eventBusName: 'etl-platform-for-the-insurance-data-lake-prod' },
    expect: [
      /etl-platform:eventBusName = "etl-platform-for-the-insurance-data-lake-prod": is not a usable bus name\. Fix: 1-40 letters/,
    ],
  },
  {
    title: 'a dbt polling setting that no longer means anything (the workflow waits for callbacks)',
    config: { dbt: { imageTag: '1.8.7-r3', pollMaxSeconds: 30, allowPlainHttp: true } },
    expect: [
      /etl-platform:dbt\.pollMaxSeconds = 30: pollMaxSeconds is no longer used: the downstream workflow waits for the dbt app's callback instead of polling\. Fix: remove dbt\.pollMaxSeconds/,
    ],
  },
  {
    title: 'a lock lease shorter than the replication wait before dbt starts',
    config: {
      dbt: { imageTag: '1.8.7-r3', lockLeaseMinutes: 5, replicationWaitMinutes: 10, allowPlainHttp: true },
    },
    expect: [
      /etl-platform:dbt\.lockLeaseMinutes = 5: lockLeaseMinutes = 5 \(300 s\) does not cover the replication wait before dbt starts .* Fix: raise lockLeaseMinutes/,
    ],
  },
  {
    title: 'the dbt API without TLS (and without the explicit plain-HTTP opt-in)',
    config: { dbt: { imageTag: '1.8.7-r3' } },
    expect: [
      /etl-platform:dbt\.tls = \(not set\): is not set, so the API token would cross the VPC in plain HTTP\. Fix: set dbt\.tls .*pulumi config set --path dbt\.allowPlainHttp true/,
    ],
  },
  {
    title: 'a TLS certificate from another region than its endpoint',
    config: {
      dbt: {
        imageTag: '1.8.7-r3',
        tls: {
          hostedZoneId: 'Z04512345ABCDEFGHIJKL',
          endpoints: {
            'us-east-1': {
              hostname: 'dbt-api.use1.example.com',
              certificateArn:
                'arn:aws:acm:us-west-1:123456789012:certificate/7e2d4a9b-1c3f-4b8e-a6d5-9f0e1b2c3d02',
            },
            'us-west-1': {
              hostname: 'dbt-api.usw1.example.com',
              certificateArn:
                'arn:aws:acm:us-west-1:123456789012:certificate/7e2d4a9b-1c3f-4b8e-a6d5-9f0e1b2c3d02',
            },
          },
        },
      },
    },
    expect: [
      /etl-platform:dbt\.tls\.endpoints\.us-east-1\.certificateArn = .*: is in us-west-1, but an NLB in us-east-1 can only use a certificate of its own region/,
    ],
  },
  {
    title: 'a misspelt field',
    config: { dbtReplicas: { active: 2, pasive: 1 } },
    expect: [
      /etl-platform:dbtReplicas = .*has unknown field\(s\) pasive \(did you mean passive\?\)\. Fix: rename or remove them/,
    ],
  },
  {
    title: 'a misspelt top-level key (lakeReplicaton)',
    config: { lakeReplicaton: false },
    expect: [
      /etl-platform:lakeReplicaton = false: is not a key of this project; did you mean lakeReplication\? Fix: pulumi config rm lakeReplicaton, then pulumi config set lakeReplication false/,
    ],
  },
  {
    title: 'a misspelt top-level key (archiveRetentionDay)',
    config: { archiveRetentionDay: 7 },
    expect: [
      /etl-platform:archiveRetentionDay = 7: is not a key of this project; did you mean archiveRetentionDays\? Fix: pulumi config rm archiveRetentionDay, then pulumi config set archiveRetentionDays 7/,
    ],
  },
  {
    title: 'a key that resembles none',
    config: { colour: 'blue' },
    expect: [
      /etl-platform:colour = "blue": is not a key of this project\. Fix: pulumi config rm colour \(the keys are listed in docs\/config\.md\)/,
    ],
  },
  {
    title: 'a misspelt nested field',
    config: { pipelines: withPipeline(1, { glue: { workerType: 'G.1X', numberOfWorker: 4 } }) },
    expect: [
      /etl-platform:pipelines\[1\]\.glue = .*has unknown field\(s\) numberOfWorker \(did you mean numberOfWorkers\?\)/,
    ],
  },
  {
    title: 'a number written in quotes',
    config: {
      pipelines: withPipeline(0, {
        glue: { workerType: 'G.1X', numberOfWorkers: '10', timeoutMinutes: 120 },
      }),
    },
    expect: [
      /etl-platform:pipelines\[0\]\.glue\.numberOfWorkers = "10": is a string; write 10 without quotes\. Fix: pulumi config set --path 'pipelines\[0\]\.glue\.numberOfWorkers' 10$/m,
    ],
  },
  {
    title: 'a boolean written in quotes',
    config: { dbt: { imageTag: '1.8.7-r3', ecrReplication: 'true' } },
    expect: [
      /etl-platform:dbt\.ecrReplication = "true": is a string; write true without quotes\. Fix: pulumi config set --path 'dbt\.ecrReplication' true$/m,
    ],
  },
  {
    title: 'an empty EKS cluster name',
    config: { eksClusters: { 'us-east-1': 'dataplatform-prod-use1', 'us-west-1': '' } },
    expect: [
      /etl-platform:eksClusters\.us-west-1 = "": is empty\. Fix: pulumi config set --path 'eksClusters\["us-west-1"\]' <cluster-name>$/m,
    ],
  },
  {
    title: 'a cron in the spring-forward gap (02:00 New York)',
    config: {
      pipelines: withPipeline(0, {
        schedule: { expression: 'cron(0 2 * * ? *)', timezone: 'America/New_York' },
      }),
    },
    expect: [
      /etl-platform:pipelines\[0\]\.schedule\.expression = "cron\(0 2 \* \* \? \*\)": fires at 02:00 America\/New_York, which does not exist on the spring-forward day in March \(clocks skip 02:00-03:00\), so Scheduler skips that day's batch\. Fix: schedule outside 02:00-03:00 local \(e\.g\. "cron\(0 3 \* \* \? \*\)"\) or use timezone "UTC"; to accept the skipped run: pulumi config set --path 'pipelines\[0\]\.schedule\.allowDstGap' true/,
    ],
  },
  {
    title: 'a cron in the spring-forward gap (02:30 New York)',
    config: {
      pipelines: withPipeline(1, {
        schedule: { expression: 'cron(30 2 * * ? *)', timezone: 'America/New_York' },
      }),
    },
    expect: [
      /etl-platform:pipelines\[1\]\.schedule\.expression = "cron\(30 2 \* \* \? \*\)": fires at 02:30 America\/New_York, which does not exist/,
    ],
  },
  {
    title: 'missing secrets',
    config: {},
    secrets: false,
    expect: [
      /etl-platform:snowflakeCredentials = \(not set\): is a required secret\. Fix: pulumi config set --secret snowflakeCredentials/,
      /etl-platform:dbtApiToken = \(not set\): is a required secret\. Fix: pulumi config set --secret dbtApiToken/,
    ],
  },
  {
    title: 'a required key left out',
    config: { alertEmail: undefined },
    expect: [/etl-platform:alertEmail = \(not set\): is required\. Fix: pulumi config set alertEmail/],
  },
];

describe('config validation: every bad value is named, explained and stops the program before any resource', () => {
  for (const c of BAD_CONFIG_CASES) {
    it(c.title, async () => {
      const run = await runProgram({ stack: 'prod-east', config: c.config, secrets: c.secrets });
      assert.ok(run.error, 'the program must refuse this config');
      assert.equal(run.error.name, 'ConfigValidationError');
      for (const pattern of c.expect) assert.match(run.error.message, pattern);
      assert.match(
        run.error.message,
        /^Invalid configuration for stack "prod-east" \(\d+ problems?\); nothing was deployed:/,
      );
      assert.equal(run.resources.length, 0, 'no resource may be declared');
    });
  }

  it('reports every problem at once', async () => {
    const run = await runProgram({
      stack: 'prod-west',
      config: {
        logRetentionDays: 45,
        defaultTriggerMode: 'x',
        pipelines: withPipeline(0, { name: 'Bad_Name' }),
      },
      secrets: false,
    });
    assert.ok(run.error);
    assert.match(run.error.message, /\(5 problems\)/);
    for (const key of [
      'logRetentionDays',
      'defaultTriggerMode',
      'pipelines[0].name',
      'snowflakeCredentials',
      'dbtApiToken',
    ]) {
      assert.ok(run.error.message.includes(`etl-platform:${key} =`), key);
    }
    assert.equal(run.resources.length, 0);
  });

  it('accepts both committed stack files as they are', async () => {
    for (const stack of ['prod-east', 'prod-west'] as const) {
      const run = await runProgram({ stack });
      assert.equal(run.error, undefined);
    }
  });
});

describe('config validation: secrets', () => {
  it('rejects Snowflake credentials without the required fields, without echoing them', async () => {
    const run = await runProgram({
      stack: 'prod-east',
      secrets: {
        snowflakeCredentials: JSON.stringify({ account: 'xy1', user: 'u', password: 'p4ss-do-not-echo' }),
        dbtApiToken: 't',
      },
    });
    assert.ok(run.error);
    assert.match(
      run.error.message,
      /etl-platform:snowflakeCredentials = "\(secret\)": lacks warehouse, database, role\. Fix: pulumi config set --secret snowflakeCredentials/,
    );
    assert.doesNotMatch(run.error.message, /p4ss-do-not-echo/);
    assert.equal(run.resources.length, 0);
  });
});
