import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  SFNClient,
} from '@aws-sdk/client-sfn';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { TaskTokenEndpoint, waitForTaskToken } from '../local/sfn-callbacks';
import { LocalSecrets, RoundRobinProxy } from '../local/dbt-pods';

/** The small local engines of the exactly-once world (local/): callbacks, secrets, the proxy. */
describe('local engines: Step Functions callbacks, Secrets Manager, round-robin proxy', function () {
  this.timeout(20_000);
  const creds = { accessKeyId: 'x', secretAccessKey: 'x' };

  describe('TaskTokenEndpoint (SendTask* JSON protocol, through the AWS SDK)', () => {
    let ep: TaskTokenEndpoint;
    let sfn: SFNClient;
    before(async () => {
      ep = await TaskTokenEndpoint.start();
      sfn = new SFNClient({ endpoint: ep.endpoint, region: 'us-east-1', credentials: creds, maxAttempts: 1 });
    });
    after(async () => {
      sfn.destroy();
      await ep.stop();
    });

    it('SendTaskSuccess resolves the wait with the parsed output; heartbeats keep it alive past heartbeatMs', async () => {
      const wait = ep.wait('t-ok', { heartbeatMs: 300 });
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 150));
        await sfn.send(new SendTaskHeartbeatCommand({ taskToken: 't-ok' }));
      }
      await sfn.send(
        new SendTaskSuccessCommand({ taskToken: 't-ok', output: JSON.stringify({ runId: 'r1' }) }),
      );
      assert.deepEqual(await wait.result, { runId: 'r1' });
      assert.equal(ep.named('SendTaskHeartbeat', 't-ok').length, 4);
    });

    it('SendTaskFailure rejects with the error as its name and the cause as its message', async () => {
      const wait = ep.wait('t-fail', { heartbeatMs: 5000 });
      await sfn.send(
        new SendTaskFailureCommand({
          taskToken: 't-fail',
          error: 'DbtRunFenced',
          cause: '{"error":"STALE_FENCE"}',
        }),
      );
      await assert.rejects(
        wait.result,
        (e: Error) => e.name === 'DbtRunFenced' && e.message === '{"error":"STALE_FENCE"}',
      );
    });

    it('no heartbeat within heartbeatMs → States.HeartbeatTimeout; a late callback then gets TaskTimedOut, an unknown token InvalidToken', async () => {
      const wait = ep.wait('t-late', { heartbeatMs: 100 });
      await assert.rejects(wait.result, (e: Error) => e.name === 'States.HeartbeatTimeout');
      await assert.rejects(
        sfn.send(new SendTaskSuccessCommand({ taskToken: 't-late', output: '{}' })),
        (e: Error) => e.name === 'TaskTimedOut',
      );
      await assert.rejects(
        sfn.send(new SendTaskHeartbeatCommand({ taskToken: 'never-issued' })),
        (e: Error) => e.name === 'InvalidToken',
      );
      assert.throws(
        () => ep.wait('t-late', { heartbeatMs: 100 }),
        /already used; tokens are unique per task attempt/,
      );
    });

    it('waitForTaskToken mints a fresh token per task attempt, hands it to the start handler, and drops the wait when the start throws', async () => {
      const seen: string[] = [];
      const override = waitForTaskToken({
        endpoint: ep,
        heartbeatMs: 2000,
        start: async (payload) => {
          seen.push(String(payload.taskToken));
          if (seen.length === 1) throw Object.assign(new Error('reply lost'), { name: 'DbtApiUnavailable' });
          setTimeout(
            () =>
              void sfn.send(
                new SendTaskSuccessCommand({ taskToken: String(payload.taskToken), output: '{"n":2}' }),
              ),
            20,
          );
        },
      });
      await assert.rejects(
        override({ taskToken: 'ctx' }, 'fn', 'ctx'),
        (e: Error) => e.name === 'DbtApiUnavailable',
      );
      assert.deepEqual(await override({ taskToken: 'ctx' }, 'fn', 'ctx'), { n: 2 });
      assert.deepEqual(seen, ['ctx#1', 'ctx#2']);
      await assert.rejects(
        sfn.send(new SendTaskSuccessCommand({ taskToken: 'ctx#1', output: '{}' })),
        (e: Error) => e.name === 'TaskTimedOut',
      );
    });
  });

  it('LocalSecrets answers GetSecretValue through the SDK, and ResourceNotFoundException for an unknown id', async () => {
    const secrets = await LocalSecrets.start({ 'etl-platform/snowflake': '{"account":"a"}' });
    const sm = new SecretsManagerClient({
      endpoint: secrets.endpoint,
      region: 'us-east-1',
      credentials: creds,
      maxAttempts: 1,
    });
    try {
      assert.equal(
        (await sm.send(new GetSecretValueCommand({ SecretId: 'etl-platform/snowflake' }))).SecretString,
        '{"account":"a"}',
      );
      await assert.rejects(
        sm.send(new GetSecretValueCommand({ SecretId: 'nope' })),
        (e: Error) => e.name === 'ResourceNotFoundException',
      );
    } finally {
      sm.destroy();
      await secrets.stop();
    }
  });

  it('RoundRobinProxy sends each new connection to the next backend and skips one that refuses', async () => {
    const servers = await Promise.all(
      ['a', 'b'].map(
        (name) =>
          new Promise<http.Server>((resolve) => {
            const s = http.createServer((_req, res) => res.end(name));
            s.listen(0, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    const ports = servers.map((s) => (s.address() as AddressInfo).port);
    const proxy = await RoundRobinProxy.start([...ports]);
    const get = async () =>
      (await fetch(`http://127.0.0.1:${proxy.port}/`, { headers: { connection: 'close' } })).text();
    try {
      const answers = [await get(), await get(), await get(), await get()];
      assert.deepEqual(answers.sort(), ['a', 'a', 'b', 'b']);
      await new Promise<void>((r) => servers[0].close(() => r()));
      assert.deepEqual(
        [await get(), await get(), await get()],
        ['b', 'b', 'b'],
        'the closed backend is skipped',
      );
    } finally {
      await proxy.stop();
      servers[1].closeAllConnections();
      await new Promise<void>((r) => servers[1].close(() => r()));
    }
  });
});
