import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { BATCH_ID_PATTERN } from '../contracts/batch-id';
import { startFakeDbtApi, type FakeDbtApi } from '../local/fake-dbt-api';

/** Keeps docs/dbt-api.openapi.yaml and the fake server (which the twin reuses) in step. */
interface Operation {
  responses: Record<string, unknown>;
}
const spec = parse(
  fs.readFileSync(path.resolve(__dirname, '..', 'docs', 'dbt-api.openapi.yaml'), 'utf8'),
) as {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<string, { required?: string[]; properties?: Record<string, { pattern?: string }> }>;
  };
};

function documented(pathKey: string, method: string, status: number): boolean {
  const codes = Object.keys(spec.paths[pathKey][method].responses);
  return codes.includes(String(status)) || (status >= 500 && codes.includes('5XX'));
}

describe('dbt API contract: OpenAPI document vs the fake server', () => {
  let api: FakeDbtApi;
  const BATCH = 'policycenter-20261127T020000Z';
  before(async () => {
    api = await startFakeDbtApi({ readToken: 'read-only' });
  });
  after(async () => api.close());

  async function call(method: string, p: string, body?: unknown, token: string | null = api.token) {
    const res = await fetch(`${api.url}${p}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('is OpenAPI 3.1 with the four paths', () => {
    assert.equal(spec.openapi, '3.1.0');
    assert.deepEqual(Object.keys(spec.paths).sort(), [
      '/api/v1/batches/{batchId}/attempts/{attempt}',
      '/api/v1/runs',
      '/api/v1/runs/{runId}',
      '/healthz',
    ]);
  });

  it("the documented batch id pattern is the handlers' pattern (contracts/batch-id.ts)", () => {
    const documentedPattern = new RegExp(
      (spec.components.schemas.BatchId as unknown as { pattern: string }).pattern,
    );
    for (const id of [
      BATCH,
      'a1-20260101T000000Z',
      'x-20260101T000000Z',
      'policycenter-2026-11-27',
      'Policy-20260101T000000Z',
    ]) {
      assert.equal(documentedPattern.test(id), BATCH_ID_PATTERN.test(id), id);
    }
  });

  it('every status the fake returns is documented, and bodies have the documented fields', async () => {
    const cases: Array<
      [
        string,
        string,
        string,
        () => Promise<{ status: number; body: Record<string, unknown> }>,
        number,
        string,
      ]
    > = [
      [
        'POST new',
        '/api/v1/runs',
        'post',
        () =>
          call('POST', '/api/v1/runs', {
            batchId: BATCH,
            pipeline: 'policycenter',
            fence: { region: 'us-east-1', epoch: 1 },
          }),
        202,
        'Run',
      ],
      [
        'POST repeat',
        '/api/v1/runs',
        'post',
        () =>
          call('POST', '/api/v1/runs', {
            batchId: BATCH,
            pipeline: 'policycenter',
            fence: { region: 'us-east-1', epoch: 1 },
          }),
        200,
        'Run',
      ],
      [
        'POST conflict',
        '/api/v1/runs',
        'post',
        () =>
          call('POST', '/api/v1/runs', {
            batchId: BATCH,
            pipeline: 'policycenter',
            fence: { region: 'us-east-1', epoch: 1 },
            select: 'x',
          }),
        409,
        'Error',
      ],
      [
        'POST invalid',
        '/api/v1/runs',
        'post',
        () => call('POST', '/api/v1/runs', { batchId: 'nope', pipeline: 'policycenter' }),
        422,
        'Error',
      ],
      ['POST not an object', '/api/v1/runs', 'post', () => call('POST', '/api/v1/runs', [1]), 400, 'Error'],
      ['POST no token', '/api/v1/runs', 'post', () => call('POST', '/api/v1/runs', {}, null), 401, 'Error'],
      [
        'POST read-only token',
        '/api/v1/runs',
        'post',
        () => call('POST', '/api/v1/runs', {}, 'read-only'),
        403,
        'Error',
      ],
      [
        'GET unknown run',
        '/api/v1/runs/{runId}',
        'get',
        () => call('GET', '/api/v1/runs/nope'),
        404,
        'Error',
      ],
      [
        'GET wrong token',
        '/api/v1/runs/{runId}',
        'get',
        () => call('GET', '/api/v1/runs/nope', undefined, 'bad'),
        401,
        'Error',
      ],
      [
        'GET run',
        '/api/v1/runs/{runId}',
        'get',
        () => call('GET', `/api/v1/runs/${api.runs[0].runId}`, undefined, 'read-only'),
        200,
        'Run',
      ],
      ['GET healthz', '/healthz', 'get', () => call('GET', '/healthz', undefined, null), 200, ''],
    ];
    for (const [what, p, method, run, expected, schema] of cases) {
      const res = await run();
      assert.equal(res.status, expected, `${what}: ${JSON.stringify(res.body)}`);
      assert.ok(
        documented(p, method, res.status),
        `${what}: ${res.status} is not documented for ${method} ${p}`,
      );
      for (const field of schema ? (spec.components.schemas[schema].required ?? []) : []) {
        assert.ok(field in res.body, `${what}: ${field} missing from ${JSON.stringify(res.body)}`);
      }
      if (schema === 'Run') {
        const properties = spec.components.schemas.Run.properties ?? {};
        assert.deepEqual(
          Object.keys(res.body).filter((k) => !(k in properties)),
          [],
          `${what}: fields outside the document`,
        );
        assert.match(String(res.body.runId), new RegExp(properties.runId.pattern ?? '^$'), `${what}: runId`);
      }
    }
  });

  it('Run requires every field but error and alreadyBuilt (the app always returns them; so does the fake)', () => {
    const run = spec.components.schemas.Run;
    assert.deepEqual(
      [...(run.required ?? [])].sort(),
      Object.keys(run.properties ?? {})
        .filter((k) => k !== 'error' && k !== 'alreadyBuilt')
        .sort(),
    );
  });

  it("the fake's full view follows a run from QUEUED to FAILED, fence and heartbeat included", async () => {
    const batchId = 'claimcenter-20261127T020000Z';
    const created = await call('POST', '/api/v1/runs', {
      batchId,
      pipeline: 'claimcenter',
      command: 'run',
      attempt: 2,
      fence: { region: 'us-west-2', epoch: 7 },
    });
    assert.equal(created.status, 202);
    assert.deepEqual(
      { ...created.body, queuedAt: typeof created.body.queuedAt },
      {
        runId: `${batchId}.2`,
        batchId,
        pipeline: 'claimcenter',
        command: 'run',
        attempt: 2,
        status: 'QUEUED',
        queuedAt: 'string',
        startedAt: null,
        finishedAt: null,
        heartbeatAt: null,
        fence: { region: 'us-west-2', epoch: 7 },
      },
    );
    const running = await call('GET', `/api/v1/runs/${batchId}.2`);
    assert.equal(running.body.status, 'RUNNING');
    assert.equal(running.body.heartbeatAt, running.body.startedAt);
    api.finish(`${batchId}.2`, 'FAILED', 'boom');
    const failed = await call('GET', `/api/v1/runs/${batchId}.2`);
    assert.equal(failed.body.status, 'FAILED');
    assert.equal(failed.body.error, 'boom');
    assert.equal(failed.body.queuedAt, created.body.queuedAt);
    const otherFence = await call('POST', '/api/v1/runs', {
      batchId,
      pipeline: 'claimcenter',
      command: 'run',
      attempt: 2,
      fence: { region: 'us-west-2', epoch: 8 },
    });
    assert.equal(otherFence.status, 409, 'a repeat with another fence is a conflict, as in the app');
  });
});
