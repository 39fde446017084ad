import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import { handler as getDbtRun } from '../handlers/get-dbt-run';
import { clearTokenCache, tokenSource } from '../handlers/lib/dbt-client';
import { logger } from '../handlers/lib/logger';
import { handler as startDbtRun } from '../handlers/start-dbt-run';
import { startFakeDbtApi, type FakeDbtApi } from '../local/fake-dbt-api';

const BATCH = 'policycenter-20261127T020000Z';
const FENCE = { region: 'us-east-1', epoch: 3 };
const ENV_KEYS = ['DBT_API_URL', 'DBT_API_TOKEN', 'DBT_API_TOKEN_SECRET_ARN', 'DBT_API_TIMEOUT_MS'];

async function rejectsWith(promise: Promise<unknown>, name: string, message?: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    const e = error as Error;
    assert.equal(e.name, name, `expected ${name}, got ${e.name}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${name}, but it resolved`);
}

/** A port nothing listens on: bind, read the port, close. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('dbt handlers against the fake dbt API', () => {
  let api: FakeDbtApi;
  const saved: Record<string, string | undefined> = {};

  before(() => {
    logger.setLogLevel('SILENT');
    for (const k of ENV_KEYS) saved[k] = process.env[k];
  });
  after(() => {
    for (const k of ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
  beforeEach(async () => {
    api = await startFakeDbtApi();
    for (const k of ENV_KEYS) delete process.env[k];
    process.env.DBT_API_URL = api.url;
    process.env.DBT_API_TOKEN = api.token;
    clearTokenCache();
  });
  afterEach(async () => {
    await api.close();
  });

  it('starts a run and polls it QUEUED -> RUNNING -> SUCCEEDED', async () => {
    const started = await startDbtRun({
      pipeline: 'policycenter',
      batchId: BATCH,
      fence: FENCE,
      select: 'tag:semantic',
    });
    assert.equal(started.status, 'QUEUED');
    assert.equal(started.created, true);
    assert.equal(api.runs.length, 1);
    assert.equal(api.runs[0].command, 'build', 'command defaults to build');
    assert.equal(api.runs[0].select, 'tag:semantic');
    assert.equal(api.requests[0].authorization, `Bearer ${api.token}`);

    const statuses: string[] = [];
    for (let i = 0; i < 5; i++) {
      const polled = await getDbtRun({ runId: started.runId });
      assert.equal(polled.runId, started.runId);
      assert.equal(polled.batchId, BATCH);
      statuses.push(polled.status);
      if (polled.status === 'SUCCEEDED') {
        assert.ok(polled.startedAt && polled.finishedAt);
        assert.equal(polled.error, undefined);
        break;
      }
    }
    assert.deepEqual(statuses, ['RUNNING', 'SUCCEEDED']);
  });

  it('a repeated start for the same batch returns the same run and creates no second one', async () => {
    const first = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE });
    const second = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE });
    assert.equal(second.runId, first.runId);
    assert.equal(second.created, false);
    assert.equal(api.runsFor(BATCH).length, 1, 'exactly one dbt run per batch');
    assert.deepEqual(
      api.requests.map((r) => r.outcome),
      [202, 200],
    );
  });

  it('a retry after a 503 still yields exactly one run', async () => {
    api.inject({ kind: 'status', status: 503, count: 1, method: 'POST' });
    await rejectsWith(
      startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE }),
      'DbtApiUnavailable',
      /503/,
    );
    const retried = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE });
    assert.equal(retried.created, true);
    assert.equal(api.runsFor(BATCH).length, 1);
  });

  it('500 -> DbtApiUnavailable', async () => {
    api.inject({ kind: 'status', status: 500 });
    const e = await rejectsWith(
      startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE }),
      'DbtApiUnavailable',
      /500/,
    );
    assert.equal((e as { status?: number }).status, 500);
    assert.equal(api.runs.length, 0);
  });

  it('429 -> DbtApiUnavailable (throttled is retryable)', async () => {
    api.inject({ kind: 'status', status: 429 });
    await rejectsWith(
      startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE }),
      'DbtApiUnavailable',
      /429/,
    );
  });

  it('a hung request times out -> DbtApiUnavailable', async () => {
    process.env.DBT_API_TIMEOUT_MS = '150';
    api.inject({ kind: 'hang' });
    const t0 = Date.now();
    await rejectsWith(
      startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE }),
      'DbtApiUnavailable',
      /timed out after 150 ms/,
    );
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 140 && elapsed < 3000, `timed out after ${elapsed} ms`);
  });

  it('a slow answer within the timeout succeeds', async () => {
    process.env.DBT_API_TIMEOUT_MS = '2000';
    api.inject({ kind: 'delay', ms: 100 });
    const started = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE });
    assert.equal(started.created, true);
  });

  it('connection refused -> DbtApiUnavailable', async () => {
    process.env.DBT_API_URL = `http://127.0.0.1:${await closedPort()}`;
    await rejectsWith(
      startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE }),
      'DbtApiUnavailable',
      /ECONNREFUSED/,
    );
  });

  it('connection reset -> DbtApiUnavailable', async () => {
    api.inject({ kind: 'reset' });
    await rejectsWith(getDbtRun({ runId: 'run-1' }), 'DbtApiUnavailable');
  });

  it('400 -> DbtApiRejected, with the server message', async () => {
    api.inject({ kind: 'status', status: 400, body: { error: 'BadRequest', message: 'nope' } });
    const e = await rejectsWith(
      startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE }),
      'DbtApiRejected',
      /400: BadRequest: nope/,
    );
    assert.equal((e as { status?: number }).status, 400);
  });

  it('a wrong token -> 401 -> DbtApiRejected', async () => {
    process.env.DBT_API_TOKEN = 'not-the-token';
    await rejectsWith(
      startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE }),
      'DbtApiRejected',
      /401/,
    );
    assert.equal(api.runs.length, 0);
  });

  it('an unknown run -> 404 -> DbtRunNotFound (its own error: the registry has no such run)', async () => {
    await rejectsWith(getDbtRun({ runId: 'run-does-not-exist' }), 'DbtRunNotFound', /404/);
  });

  it('reconciliation reads a run by (batchId, attempt) without moving it on; an absent attempt is DbtRunNotFound', async () => {
    const started = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE, attempt: 1 });
    const read = await getDbtRun({
      pipeline: 'policycenter',
      batchId: BATCH,
      attempt: 1,
      failOnFailed: false,
    });
    assert.equal(read.runId, started.runId);
    assert.equal(read.attempt, 1);
    assert.equal(read.status, 'QUEUED');
    assert.equal(
      (await getDbtRun({ batchId: BATCH, attempt: 1 })).status,
      'QUEUED',
      'a read by key is not a poll',
    );
    await rejectsWith(getDbtRun({ batchId: BATCH, attempt: 2 }), 'DbtRunNotFound', /attempt 2/);
    api.finish(started.runId, 'LOST');
    await rejectsWith(getDbtRun({ batchId: BATCH, attempt: 1 }), 'DbtRunFailed', /LOST/);
    assert.equal((await getDbtRun({ batchId: BATCH, attempt: 1, failOnFailed: false })).status, 'LOST');
  });

  it('the lease and the deadlines travel to the app with the task token', async () => {
    const lease = {
      pk: 'PIPELINE#policycenter',
      sk: 'LOCK#DOWNSTREAM',
      holder: 'arn:aws:states:us-east-1:123456789012:execution:etl-policycenter-downstream:x',
      seconds: 900,
    };
    await startDbtRun({
      pipeline: 'policycenter',
      batchId: BATCH,
      fence: FENCE,
      taskToken: 'tok',
      lease,
      deadlines: { maxQueueMinutes: 60, maxRunMinutes: 240 },
    });
    const body = api.requests.find((q) => q.method === 'POST')?.body as Record<string, unknown>;
    assert.deepEqual(body.lease, lease);
    assert.deepEqual(body.deadlines, { maxQueueMinutes: 60, maxRunMinutes: 240 });
    assert.equal(body.taskToken, 'tok');
  });

  it('the same batch and attempt with different parameters -> 409 -> DbtApiRejected', async () => {
    await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE, select: 'a' });
    await rejectsWith(
      startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE, select: 'b' }),
      'DbtApiRejected',
      /409/,
    );
    assert.equal(api.runs.length, 1);
  });

  it('a run that ends FAILED -> DbtRunFailed carrying the dbt error; failOnFailed:false returns it', async () => {
    api.inject({ kind: 'fail-run', batchId: BATCH, error: 'Database Error in model dim_policy' });
    const { runId } = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE });
    assert.equal((await getDbtRun({ runId })).status, 'RUNNING');
    const e = await rejectsWith(getDbtRun({ runId }), 'DbtRunFailed', /Database Error in model dim_policy/);
    assert.equal((e as { runId?: string }).runId, runId);
    const again = await getDbtRun({ runId, failOnFailed: false });
    assert.equal(again.status, 'FAILED');
    assert.equal(again.error, 'Database Error in model dim_policy');
  });

  it('a slow run stays RUNNING for the configured polls', async () => {
    api.inject({ kind: 'slow-run', polls: 3 });
    const { runId } = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE });
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) seen.push((await getDbtRun({ runId })).status);
    assert.deepEqual(seen, ['RUNNING', 'RUNNING', 'RUNNING', 'SUCCEEDED', 'SUCCEEDED']);
  });

  it('a rerun with attempt 2 after a FAILED attempt creates a second run', async () => {
    api.inject({ kind: 'fail-run', batchId: BATCH });
    const first = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE });
    api.finish(first.runId, 'FAILED');
    const second = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE, attempt: 2 });
    assert.notEqual(second.runId, first.runId);
    assert.deepEqual(
      api.runsFor(BATCH).map((r) => r.attempt),
      [1, 2],
    );
  });

  describe('malformed input -> InvalidInput', () => {
    const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
      ['no batchId', () => startDbtRun({ pipeline: 'policycenter' }), /batchId/],
      [
        'batchId of another pipeline',
        () => startDbtRun({ pipeline: 'billingcenter', batchId: BATCH, fence: FENCE }),
        /batchId: belongs to pipeline "policycenter"/,
      ],
      [
        'batchId with a colon',
        () =>
          startDbtRun({
            pipeline: 'policycenter',
            batchId: 'policycenter-2026-11-27T02:00:00Z',
            fence: FENCE,
          }),
        /batchId: is not a batch id/,
      ],
      [
        'no fence',
        () => startDbtRun({ pipeline: 'policycenter', batchId: BATCH }),
        /fence: must be \{region, epoch\}/,
      ],
      [
        'fence epoch 0',
        () =>
          startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: { region: 'us-east-1', epoch: 0 } }),
        /fence.epoch/,
      ],
      [
        'fence region not a region',
        () => startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: { region: 'east', epoch: 1 } }),
        /fence.region: is not an AWS region/,
      ],
      [
        'task token empty',
        () => startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE, taskToken: '' }),
        /taskToken/,
      ],
      [
        'unknown command',
        () =>
          startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE, command: 'run-operation' }),
        /command: must be one of/,
      ],
      [
        'shell metacharacters in select',
        () => startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE, select: 'a; rm -rf /' }),
        /select/,
      ],
      [
        'vars not an object',
        () => startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE, vars: 'x' }),
        /vars: must be an object/,
      ],
      ['null event', () => startDbtRun(null), /Invalid start-dbt-run input/],
      ['runId missing', () => getDbtRun({}), /runId/],
      [
        'reconcile with a month-13 batch id',
        () => getDbtRun({ batchId: 'policycenter-20261327T020000Z', attempt: 1 }),
        /batchId: is not a batch id/,
      ],
      ['reconcile with attempt 0', () => getDbtRun({ batchId: BATCH, attempt: 0 }), /attempt/],
      [
        'a lease on another item',
        () =>
          startDbtRun({
            pipeline: 'policycenter',
            batchId: BATCH,
            fence: FENCE,
            lease: { pk: 'PIPELINE#policycenter', sk: 'LOCK#UPSTREAM', holder: 'x', seconds: 900 },
          }),
        /lease.sk: must be LOCK#DOWNSTREAM/,
      ],
      ['runId with a slash', () => getDbtRun({ runId: '../etc' }), /runId: is not a run id/],
      [
        'failOnFailed not boolean',
        () => getDbtRun({ runId: 'r1', failOnFailed: 'no' }),
        /failOnFailed: must be a boolean/,
      ],
    ];
    for (const [what, call, message] of cases) {
      it(what, async () => {
        await rejectsWith(call(), 'InvalidInput', message);
        assert.equal(api.requests.length, 0, 'no request reaches the API');
      });
    }

    it('reconcile by key: a batch id of another pipeline is named; one that is no batch id is not blamed on a pipeline', async () => {
      await rejectsWith(
        getDbtRun({ pipeline: 'billingcenter', batchId: BATCH, attempt: 1 }),
        'InvalidInput',
        /batchId: belongs to pipeline "policycenter", not "billingcenter"/,
      );
      const error = await getDbtRun({
        pipeline: 'policycenter',
        batchId: 'policycenter-20261327T020000Z',
        attempt: 1,
      }).then(
        () => assert.fail('a month-13 batch id was accepted'),
        (e: Error) => e,
      );
      assert.match(error.message, /batchId: is not a batch id/);
      assert.doesNotMatch(error.message, /belongs to pipeline/, 'only the real problem is reported');
      assert.equal(api.requests.length, 0, 'no request reaches the API');
    });
  });

  describe('configuration', () => {
    it('missing DBT_API_URL -> an error naming the variable', async () => {
      delete process.env.DBT_API_URL;
      await rejectsWith(
        startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE }),
        'MissingConfiguration',
        /DBT_API_URL/,
      );
    });

    it('neither DBT_API_TOKEN nor DBT_API_TOKEN_SECRET_ARN -> an error naming the secret variable', async () => {
      delete process.env.DBT_API_TOKEN;
      await rejectsWith(getDbtRun({ runId: 'r1' }), 'MissingConfiguration', /DBT_API_TOKEN_SECRET_ARN/);
    });

    it('plain HTTP off loopback is refused unless dbt.allowPlainHttp set DBT_API_ALLOW_PLAIN_HTTP', async () => {
      // 0.0.0.0 reaches this machine but is not a loopback name, so it stands in for an NLB address.
      process.env.DBT_API_URL = api.url.replace('127.0.0.1', '0.0.0.0');
      await rejectsWith(
        startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE }),
        'MissingConfiguration',
        /plain HTTP\. Fix: configure dbt\.tls/,
      );
      assert.equal(api.requests.length, 0);
      process.env.DBT_API_ALLOW_PLAIN_HTTP = 'true';
      try {
        const started = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE });
        assert.equal(started.status, 'QUEUED');
      } finally {
        delete process.env.DBT_API_ALLOW_PLAIN_HTTP;
      }
    });

    it('https: a certificate the runtime does not trust fails the call before any request is served', async () => {
      const served: string[] = [];
      const server = https.createServer(
        {
          key: fs.readFileSync(path.join(__dirname, 'fixtures/self-signed.key')),
          cert: fs.readFileSync(path.join(__dirname, 'fixtures/self-signed.crt')),
        },
        (req, res) => {
          served.push(req.url ?? '');
          res.end('{}');
        },
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        process.env.DBT_API_URL = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
        await rejectsWith(getDbtRun({ runId: 'r1' }), 'DbtApiUnavailable', /SELF_SIGNED|certificate/i);
        assert.deepEqual(served, [], 'the token was never sent to an unverified server');
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('a non-numeric DBT_API_TIMEOUT_MS is refused', async () => {
      process.env.DBT_API_TIMEOUT_MS = 'soon';
      await rejectsWith(getDbtRun({ runId: 'r1' }), 'MissingConfiguration', /DBT_API_TIMEOUT_MS/);
    });

    it('reads the token from the secret once per container, and refetches once on 401', async () => {
      delete process.env.DBT_API_TOKEN;
      process.env.DBT_API_TOKEN_SECRET_ARN =
        'arn:aws:secretsmanager:us-east-1:123456789012:secret:dbt-api-token-AbCdEf';
      const original = tokenSource.getSecretString;
      const served = ['stale-token', JSON.stringify({ token: api.token })];
      let fetched = 0;
      tokenSource.getSecretString = async () => served[Math.min(fetched++, served.length - 1)];
      try {
        const first = await startDbtRun({ pipeline: 'policycenter', batchId: BATCH, fence: FENCE });
        assert.equal(fetched, 2, 'stale token -> 401 -> refetched once');
        await getDbtRun({ runId: first.runId });
        assert.equal(fetched, 2, 'cached after that');
      } finally {
        tokenSource.getSecretString = original;
      }
    });
  });
});
