import * as assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateTableCommand, DynamoDBClient, QueryCommand } from '@aws-sdk/client-dynamodb';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { freePort } from '../local/dbt-pods';
import { createTableInput } from '../local/table-schemas';
import { type ProgramRun, renderedEnv, runProgram } from '../local/program';

/**
 * The seam between the program and the app, both real: the Deployment's env as the program renders
 * it (mocks run of index.ts, secrets stubbed) starts the real app under gunicorn, against a runs
 * table created from the program's own table inputs and the Snowflake secret the program writes.
 * Only these are local: AWS endpoints (moto's server), dummy signing credentials, and the port
 * (the Deployment's 8080 is replaced by a free one; dbt-app.test.ts checks PORT = containerPort).
 */

const ROOT = path.resolve(__dirname, '..');
const APP_DIR = path.join(ROOT, 'dbt-app');
const VENV_BIN = path.join(ROOT, '.venv', 'bin');

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export { renderedEnv } from '../local/program';

describe('the dbt app as deployed: the rendered Deployment env starts the real app', function () {
  this.timeout(120_000);
  let run: ProgramRun;
  let moto: ChildProcess | undefined;
  let app: ChildProcess | undefined;
  let appLog = '';
  let endpoint = '';
  let appUrl = '';
  let env: Record<string, string> = {};
  const aws = { region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } };

  before(async () => {
    run = await runProgram({ stack: 'prod-east' });
    if (run.error) throw run.error;
    env = renderedEnv(run);

    const motoPort = await freePort();
    endpoint = `http://127.0.0.1:${motoPort}`;
    moto = spawn(path.join(VENV_BIN, 'moto_server'), ['-H', '127.0.0.1', '-p', String(motoPort)], {
      stdio: 'ignore',
    });
    await waitFor('moto server', 30_000, async () =>
      (await fetch(`${endpoint}/moto-api/`)).ok ? true : undefined,
    );

    // The runs table exactly as the program declares it.
    const table = run.one('aws:dynamodb/table:Table', 'dbt-runs').inputs;
    const ddb = new DynamoDBClient({ ...aws, endpoint });
    await ddb.send(new CreateTableCommand(createTableInput(table)));
    // The Snowflake secret with the value the program writes (account and the dbt app's keys).
    const secretValue = run.one('aws:secretsmanager/secretVersion:SecretVersion', 'snowflake').inputs
      .secretString;
    await new SecretsManagerClient({ ...aws, endpoint }).send(
      new CreateSecretCommand({ Name: env.SNOWFLAKE_SECRET_ID, SecretString: secretValue }),
    );

    const port = await freePort();
    appUrl = `http://127.0.0.1:${port}`;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dbt-app-deployed-'));
    app = spawn(path.join(VENV_BIN, 'gunicorn'), ['-c', 'gunicorn.conf.py', 'app:app'], {
      cwd: APP_DIR,
      env: {
        ...env,
        PORT: String(port),
        // The pod's /tmp is an emptyDir; here a private directory stands in for it.
        HOME: tmp,
        TMPDIR: tmp,
        DBT_LOG_PATH: path.join(tmp, 'logs'),
        DBT_TARGET_PATH: path.join(tmp, 'target'),
        PATH: `${VENV_BIN}:${process.env.PATH}`,
        AWS_ENDPOINT_URL_DYNAMODB: endpoint,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoint,
        AWS_ENDPOINT_URL_SFN: endpoint,
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    app.stdout!.on('data', (d) => (appLog += d));
    app.stderr!.on('data', (d) => (appLog += d));
  });

  after(async () => {
    await stop(app);
    await stop(moto);
  });

  it('/healthz answers 200 with the env the program renders', async () => {
    const status = await waitFor('the app', 60_000, async () => {
      if (app?.exitCode !== null && app?.exitCode !== undefined)
        throw new Error(`gunicorn exited ${app.exitCode}:\n${appLog}`);
      const response = await fetch(`${appUrl}/healthz`);
      return response.status === 200 ? response.status : undefined;
    }).catch((error) => {
      throw new Error(`${error}\n--- app log ---\n${appLog}`);
    });
    assert.equal(status, 200);
  });

  it("the token from the rendered Secret is the one the app accepts, and runs land in the program's table", async () => {
    const batchId = 'policycenter-20261127T070000Z';
    const body = {
      batchId,
      pipeline: 'policycenter',
      command: 'build',
      select: 'tag:policycenter',
      fence: { region: 'us-east-1', epoch: 1 },
    };
    const post = (token: string) =>
      fetch(`${appUrl}/api/v1/runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    assert.equal((await post('not-the-token')).status, 401);
    const created = await post(env.DBT_API_TOKEN);
    assert.equal(created.status, 202, await created.clone().text());
    const byKey = await fetch(`${appUrl}/api/v1/batches/${batchId}/attempts/1`, {
      headers: { authorization: `Bearer ${env.DBT_API_TOKEN}` },
    });
    assert.equal(byKey.status, 200);
    assert.equal(((await byKey.json()) as { batchId: string }).batchId, batchId);

    const ddb = new DynamoDBClient({ ...aws, endpoint });
    const table = run.one('aws:dynamodb/table:Table', 'dbt-runs').inputs;
    const items = await ddb.send(
      new QueryCommand({
        TableName: table.name,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': table.hashKey },
        ExpressionAttributeValues: { ':pk': { S: `RUN#${batchId}` } },
      }),
    );
    assert.equal(items.Count, 1);
    assert.ok(!JSON.stringify(items.Items).includes(env.DBT_API_TOKEN), 'the API token is not stored');
  });
});
