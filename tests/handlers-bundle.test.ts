import { generateKeyPairSync } from 'node:crypto';
import * as http from 'node:http';
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { builtinModules } from 'node:module';
import {
  BUNDLE_BUDGET_BYTES,
  bundleBudget,
  bundleHandler,
  bundleSize,
  HANDLERS,
  RUNTIME_REQUIRES,
} from '../handlers/bundle';
import { defaultProvider } from '../handlers/lib/sdk-credentials';
import { startDynalite } from '../local/dynalite';
import { startFakeDbtApi } from '../local/fake-dbt-api';

const run = promisify(execFile);

/** Runs `script` in a fresh node process in `cwd` with only `env` (no NODE_PATH, no repo around). */
async function node(script: string, cwd: string, env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run(process.execPath, ['--no-warnings', '-e', script], {
    cwd,
    env: { PATH: process.env.PATH ?? '', POWERTOOLS_LOG_LEVEL: 'SILENT', AWS_REGION: 'us-east-1', ...env },
  });
  return stdout;
}

type Handler = (event: unknown) => Promise<unknown>;

/** Loads a bundle the way the Lambda runtime does: a plain CommonJS require of index.js. */
function load(dir: string): { handler?: unknown } {
  return require(path.join(dir, 'index.js')) as { handler?: unknown };
}

describe('handler bundles (esbuild, node22 cjs, AWS SDK bundled)', function () {
  this.timeout(120_000);
  const outDir = path.resolve(__dirname, '..', 'dist', 'test-bundles');
  // Outside the repo: no node_modules to resolve from, as in Lambda with the SDK bundled.
  let isolated = '';
  const dirs = new Map<string, string>();

  let savedLogLevel: string | undefined;
  let savedSdkWarning: string | undefined;
  before(() => {
    savedLogLevel = process.env.POWERTOOLS_LOG_LEVEL;
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT'; // read when a bundle's logger is constructed
    // Each bundle carries its own SDK copy, and each copy would warn once that this machine's Node 20 is old (Lambda runs 22).
    savedSdkWarning = process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    fs.rmSync(outDir, { recursive: true, force: true });
    for (const name of HANDLERS) dirs.set(name, bundleHandler(name, outDir));
    isolated = fs.mkdtempSync(path.join(os.tmpdir(), 'isolated-bundles-'));
    for (const name of HANDLERS) {
      fs.mkdirSync(path.join(isolated, name));
      fs.copyFileSync(path.join(outDir, name, 'index.js'), path.join(isolated, name, 'index.js'));
    }
  });
  after(() => {
    fs.rmSync(isolated, { recursive: true, force: true });
    if (savedLogLevel === undefined) delete process.env.POWERTOOLS_LOG_LEVEL;
    else process.env.POWERTOOLS_LOG_LEVEL = savedLogLevel;
    if (savedSdkWarning === undefined) delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    else process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = savedSdkWarning;
  });

  it('every handler file under handlers/ is in HANDLERS', () => {
    const files = fs
      .readdirSync(path.resolve(__dirname, '..', 'handlers'))
      .filter((f) => f.endsWith('.ts') && f !== 'bundle.ts')
      .map((f) => f.replace(/\.ts$/, ''));
    assert.deepEqual([...files].sort(), [...HANDLERS].sort());
  });

  for (const name of HANDLERS) {
    const budget = bundleBudget(name);
    it(`${name}: one index.js that exports handler, is under ${budget / 1024} KB and bundles the SDK`, () => {
      const dir = dirs.get(name)!;
      assert.equal(dir, path.join(outDir, name));
      assert.deepEqual(fs.readdirSync(dir), ['index.js']);
      const size = bundleSize(dir);
      assert.ok(size < budget, `${name} is ${(size / 1024).toFixed(1)} KB`);
      const mod = load(dir);
      assert.equal(typeof mod.handler, 'function');
      const source = fs.readFileSync(path.join(dir, 'index.js'), 'utf8');
      // Every module the bundle loads at run time is a Node built-in or a known lazy fallback.
      const loaded = [...source.matchAll(/(?:require|import)\("([^"]+)"\)/g)].map((m) => m[1]);
      const foreign = loaded.filter(
        (m) =>
          !m.startsWith('node:') &&
          !builtinModules.includes(m) &&
          !(RUNTIME_REQUIRES as readonly string[]).includes(m),
      );
      assert.deepEqual(foreign, [], 'the SDK is bundled, not required at run time');
    });
  }

  it(`no handler has a budget exception (every one is under ${BUNDLE_BUDGET_BYTES / 1024} KB)`, () => {
    assert.deepEqual(
      HANDLERS.filter((name) => bundleBudget(name) !== BUNDLE_BUDGET_BYTES),
      [],
    );
  });

  it('the watchdog bundles the Step Functions client and no SNS client (its alerts go through a workflow)', () => {
    const source = fs.readFileSync(path.join(dirs.get('watchdog')!, 'index.js'), 'utf8');
    assert.match(source, /AWSStepFunctions/);
    assert.doesNotMatch(source, /AmazonSimpleNotificationService|client-sns/);
  });

  it('every bundle loads in a fresh process with no node_modules in reach', async () => {
    const files = HANDLERS.map((name) => path.join(isolated, name, 'index.js'));
    const out = await node(
      `process.stdout.write(${JSON.stringify(files)}.map((f) => typeof require(f).handler).join())`,
      isolated,
    );
    assert.equal(out, HANDLERS.map(() => 'function').join());
  });

  it('a bundled SDK client signs with the environment credentials Lambda provides (fence-writer: secret, SQL API, then dynalite)', async () => {
    const db = await startDynalite();
    // One local endpoint plays Secrets Manager (JSON protocol) and the Snowflake SQL API (a stand-in
    // for the row; the statements themselves run against fakesnow in warehouse-fence.test.ts).
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const seen: string[] = [];
    let row: [string, string] | undefined;
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        if (req.headers['x-amz-target'] === 'secretsmanager.GetSecretValue') {
          seen.push(
            `secret ${String(req.headers.authorization).includes('Credential=AKIDLAMBDA/') ? 'signed-with-env' : 'unsigned'}`,
          );
          const secret = {
            account: 'xy12345',
            user: 'ETL',
            private_key: pem,
            warehouse: 'WH',
            database: 'ETL',
            role: 'R',
          };
          res.end(JSON.stringify({ Name: 'etl-platform/snowflake', SecretString: JSON.stringify(secret) }));
          return;
        }
        const { statement, bindings } = JSON.parse(body);
        seen.push(
          `sql ${String(statement).split(' ')[0]} ${req.headers['x-snowflake-authorization-token-type']}`,
        );
        if (statement.startsWith('UPDATE') && row && Number(row[1]) < Number(bindings['3'].value))
          row = [bindings['1'].value, bindings['2'].value];
        if (statement.startsWith('INSERT') && !row) row = [bindings['1'].value, bindings['2'].value];
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ data: statement.startsWith('SELECT') && row ? [row] : [] }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
    try {
      const file = path.join(isolated, 'fence-writer', 'index.js');
      // No node_modules in reach: if the credentials stand-in fell back to the full chain, this would fail.
      const out = await node(
        `require(${JSON.stringify(file)}).handler({ activeRegion: 'us-west-1', stack: 'prod-west' }).then((r) => process.stdout.write(JSON.stringify(r)))`,
        isolated,
        {
          AWS_ACCESS_KEY_ID: 'AKIDLAMBDA',
          AWS_SECRET_ACCESS_KEY: 'secret',
          AWS_SESSION_TOKEN: 'token',
          AWS_REGION: 'us-west-1',
          AWS_ENDPOINT_URL_DYNAMODB: db.endpoint,
          CONTROL_TABLE_NAME: db.tableName,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
          SNOWFLAKE_SECRET_ID: 'etl-platform/snowflake',
          SNOWFLAKE_SQL_API_URL: url,
        },
      );
      assert.deepEqual(JSON.parse(out), {
        action: 'create',
        activeRegion: 'us-west-1',
        epoch: 1,
        changed: true,
        warehouse: { region: 'us-west-1', epoch: 1 },
      });
      assert.deepEqual(seen, [
        'secret signed-with-env',
        'sql SELECT KEYPAIR_JWT',
        'sql UPDATE KEYPAIR_JWT',
        'sql INSERT KEYPAIR_JWT',
        'sql SELECT KEYPAIR_JWT',
      ]);
    } finally {
      server.close();
      await db.close();
    }
  });

  describe('credentials stand-in (handlers/lib/sdk-credentials.ts)', () => {
    const saved = { ...process.env };
    afterEach(() => {
      for (const key of [
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'AWS_SESSION_TOKEN',
        'AWS_PROFILE',
        'AWS_SHARED_CREDENTIALS_FILE',
        'AWS_CONFIG_FILE',
      ]) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    });

    it('returns the environment credentials when no profile is set (what Lambda provides)', async () => {
      delete process.env.AWS_PROFILE;
      Object.assign(process.env, {
        AWS_ACCESS_KEY_ID: 'AKIDENV',
        AWS_SECRET_ACCESS_KEY: 's',
        AWS_SESSION_TOKEN: 't',
      });
      const creds = await defaultProvider()();
      assert.deepEqual([creds.accessKeyId, creds.secretAccessKey, creds.sessionToken], ['AKIDENV', 's', 't']);
    });

    it('falls back to the full default chain (here: a profile in a shared credentials file)', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'creds-'));
      try {
        fs.writeFileSync(
          path.join(dir, 'credentials'),
          '[bench]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = p\n',
        );
        delete process.env.AWS_ACCESS_KEY_ID; // with both set the SDK warns, then takes the profile too
        delete process.env.AWS_SECRET_ACCESS_KEY;
        Object.assign(process.env, {
          AWS_PROFILE: 'bench',
          AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'credentials'),
          AWS_CONFIG_FILE: path.join(dir, 'config-absent'),
        });
        const creds = await defaultProvider()();
        assert.equal(creds.accessKeyId, 'AKIDPROFILE');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('no bundle carries classic zod (its "ZodType" constructor): schemas are built with zod/mini', () => {
    const withClassic = HANDLERS.filter((name) =>
      fs.readFileSync(path.join(dirs.get(name)!, 'index.js'), 'utf8').includes('"ZodType"'),
    );
    assert.deepEqual(withClassic, []);
  });

  it("a bundle reports zod's English default messages, word for word as the unbundled handler does", async () => {
    const env = {
      PIPELINES: 'policycenter',
      DOWNSTREAM_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:1:stateMachine:x',
    };
    // No detail, a numeric source: two default (locale) messages beside the schema's own words.
    const event = { id: 'evt-1', 'detail-type': 'UpstreamBatchSucceeded', source: 7, resources: [1] };
    const file = path.join(isolated, 'start-downstream', 'index.js');
    const bundled = await node(
      `require(${JSON.stringify(file)}).handler(${JSON.stringify(event)}).catch((e) => process.stdout.write(e.message))`,
      isolated,
      env,
    );
    assert.equal(
      bundled,
      'Invalid start-downstream input: source: must be a string; resources.0: Invalid input: expected string, received number; detail: Invalid input: expected object, received undefined',
    );
    const saved = { PIPELINES: process.env.PIPELINES, ARN: process.env.DOWNSTREAM_STATE_MACHINE_ARN };
    Object.assign(process.env, env);
    try {
      const { handler } = await import('../handlers/start-downstream');
      await assert.rejects(handler(event), (e: Error) => e.message === bundled);
    } finally {
      if (saved.PIPELINES === undefined) delete process.env.PIPELINES;
      else process.env.PIPELINES = saved.PIPELINES;
      if (saved.ARN === undefined) delete process.env.DOWNSTREAM_STATE_MACHINE_ARN;
      else process.env.DOWNSTREAM_STATE_MACHINE_ARN = saved.ARN;
    }
  });

  it('a bundled handler keeps the ASL error names through minification', async () => {
    const handler = load(dirs.get('start-downstream')!).handler as Handler;
    process.env.PIPELINES = 'policycenter';
    process.env.DOWNSTREAM_STATE_MACHINE_ARN = 'arn:aws:states:us-east-1:123456789012:stateMachine:x';
    await assert.rejects(handler({ 'detail-type': 'nope' }), (e: Error) => e.name === 'InvalidInput');
  });

  it('the bundled start-dbt-run and get-dbt-run work against the fake dbt API', async () => {
    const api = await startFakeDbtApi();
    const saved = { url: process.env.DBT_API_URL, token: process.env.DBT_API_TOKEN };
    process.env.DBT_API_URL = api.url;
    process.env.DBT_API_TOKEN = api.token;
    try {
      const start = load(dirs.get('start-dbt-run')!).handler as Handler;
      const get = load(dirs.get('get-dbt-run')!).handler as Handler;
      const run = (await start({
        pipeline: 'policycenter',
        batchId: 'policycenter-20261127T020000Z',
        fence: { region: 'us-east-1', epoch: 1 },
      })) as { runId: string };
      assert.equal(((await get({ runId: run.runId })) as { status: string }).status, 'RUNNING');
      api.inject({ kind: 'status', status: 503 });
      await assert.rejects(get({ runId: run.runId }), (e: Error) => e.name === 'DbtApiUnavailable');
    } finally {
      await api.close();
      if (saved.url === undefined) delete process.env.DBT_API_URL;
      else process.env.DBT_API_URL = saved.url;
      if (saved.token === undefined) delete process.env.DBT_API_TOKEN;
      else process.env.DBT_API_TOKEN = saved.token;
    }
  });
});
