import * as assert from 'node:assert/strict';
import { runProgram } from '../local/program';
import { BAD_CONFIG_CASES, withPipeline } from '../local/fixtures/bad-config';

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
