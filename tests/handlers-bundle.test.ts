import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BUNDLE_BUDGET_BYTES, bundleHandler, bundleSize, HANDLERS } from '../handlers/bundle';
import { startFakeDbtApi } from './harness/fake-dbt-api';

type Handler = (event: unknown) => Promise<unknown>;

/** Loads a bundle the way the Lambda runtime does: a plain CommonJS require of index.js. */
function load(dir: string): { handler?: unknown } {
   
  return require(path.join(dir, 'index.js')) as { handler?: unknown };
}

describe('handler bundles (esbuild, node22 cjs, @aws-sdk external)', function () {
  this.timeout(120_000);
  // Inside the repo so the bundles resolve the runtime-provided @aws-sdk/* from node_modules.
  const outDir = path.resolve(__dirname, '..', 'dist', 'test-bundles');
  const dirs = new Map<string, string>();

  let savedLogLevel: string | undefined;
  before(() => {
    savedLogLevel = process.env.POWERTOOLS_LOG_LEVEL;
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT'; // read when a bundle's logger is constructed
    fs.rmSync(outDir, { recursive: true, force: true });
    for (const name of HANDLERS) dirs.set(name, bundleHandler(name, outDir));
  });
  after(() => {
    if (savedLogLevel === undefined) delete process.env.POWERTOOLS_LOG_LEVEL;
    else process.env.POWERTOOLS_LOG_LEVEL = savedLogLevel;
  });

  it('every handler file under handlers/ is in HANDLERS', () => {
    const files = fs
      .readdirSync(path.resolve(__dirname, '..', 'handlers'))
      .filter((f) => f.endsWith('.ts') && !['bundle.ts', 'event-schema.ts'].includes(f))
      .map((f) => f.replace(/\.ts$/, ''));
    assert.deepEqual([...files].sort(), [...HANDLERS].sort());
  });

  for (const name of HANDLERS) {
    it(`${name}: one index.js that exports handler and is under ${BUNDLE_BUDGET_BYTES / 1024} KB`, () => {
      const dir = dirs.get(name)!;
      assert.equal(dir, path.join(outDir, name));
      assert.deepEqual(fs.readdirSync(dir), ['index.js']);
      const size = bundleSize(dir);
      assert.ok(size < BUNDLE_BUDGET_BYTES, `${name} is ${(size / 1024).toFixed(1)} KB`);
      const mod = load(dir);
      assert.equal(typeof mod.handler, 'function');
      const source = fs.readFileSync(path.join(dir, 'index.js'), 'utf8');
      // Every mention of the SDK is a run-time require: none of its code is bundled.
      const mentions = source.match(/@aws-sdk\/[a-z-]+/g) ?? [];
      const requires = source.match(/require\("@aws-sdk\/[a-z-]+"\)/g) ?? [];
      assert.equal(mentions.length, requires.length, 'the SDK is required at run time, not bundled');
    });
  }

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
      const run = (await start({ pipeline: 'policycenter', batchId: 'policycenter-20261127T020000Z', fence: { region: 'us-east-1', epoch: 1 } })) as { runId: string };
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
