import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { startFakeDbtApi, type FakeDbtApi } from './harness/fake-dbt-api';

/** Keeps docs/dbt-api.openapi.yaml and the fake server (which the twin reuses) in step. */
interface Operation {
  responses: Record<string, unknown>;
}
const spec = parse(fs.readFileSync(path.resolve(__dirname, '..', 'docs', 'dbt-api.openapi.yaml'), 'utf8')) as {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { required?: string[]; properties?: Record<string, { pattern?: string }> }> };
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
    assert.deepEqual(Object.keys(spec.paths).sort(), ['/api/v1/batches/{batchId}/attempts/{attempt}', '/api/v1/runs', '/api/v1/runs/{runId}', '/healthz']);
  });

  it('the documented batch id pattern is the handlers\' pattern', async () => {
    const { BATCH_ID_PATTERN } = await import('../handlers/event-schema');
    const documentedPattern = new RegExp((spec.components.schemas.BatchId as unknown as { pattern: string }).pattern);
    for (const id of [BATCH, 'a1-20260101T000000Z', 'x-20260101T000000Z', 'policycenter-2026-11-27', 'Policy-20260101T000000Z']) {
      assert.equal(documentedPattern.test(id), BATCH_ID_PATTERN.test(id), id);
    }
  });

  it('every status the fake returns is documented, and bodies have the documented fields', async () => {
    const cases: Array<[string, string, string, () => Promise<{ status: number; body: Record<string, unknown> }>, number, string]> = [
      ['POST new', '/api/v1/runs', 'post', () => call('POST', '/api/v1/runs', { batchId: BATCH, pipeline: 'policycenter', fence: { region: 'us-east-1', epoch: 1 } }), 202, 'Run'],
      ['POST repeat', '/api/v1/runs', 'post', () => call('POST', '/api/v1/runs', { batchId: BATCH, pipeline: 'policycenter', fence: { region: 'us-east-1', epoch: 1 } }), 200, 'Run'],
      ['POST conflict', '/api/v1/runs', 'post', () => call('POST', '/api/v1/runs', { batchId: BATCH, pipeline: 'policycenter', fence: { region: 'us-east-1', epoch: 1 }, select: 'x' }), 409, 'Error'],
      ['POST invalid', '/api/v1/runs', 'post', () => call('POST', '/api/v1/runs', { batchId: 'nope', pipeline: 'policycenter' }), 422, 'Error'],
      ['POST not an object', '/api/v1/runs', 'post', () => call('POST', '/api/v1/runs', [1]), 400, 'Error'],
      ['POST no token', '/api/v1/runs', 'post', () => call('POST', '/api/v1/runs', {}, null), 401, 'Error'],
      ['POST read-only token', '/api/v1/runs', 'post', () => call('POST', '/api/v1/runs', {}, 'read-only'), 403, 'Error'],
      ['GET unknown run', '/api/v1/runs/{runId}', 'get', () => call('GET', '/api/v1/runs/nope'), 404, 'Error'],
      ['GET wrong token', '/api/v1/runs/{runId}', 'get', () => call('GET', '/api/v1/runs/nope', undefined, 'bad'), 401, 'Error'],
      ['GET run', '/api/v1/runs/{runId}', 'get', () => call('GET', `/api/v1/runs/${api.runs[0].runId}`, undefined, 'read-only'), 200, 'Run'],
      ['GET healthz', '/healthz', 'get', () => call('GET', '/healthz', undefined, null), 200, ''],
    ];
    for (const [what, p, method, run, expected, schema] of cases) {
      const res = await run();
      assert.equal(res.status, expected, `${what}: ${JSON.stringify(res.body)}`);
      assert.ok(documented(p, method, res.status), `${what}: ${res.status} is not documented for ${method} ${p}`);
      for (const field of schema ? spec.components.schemas[schema].required ?? [] : []) {
        assert.ok(field in res.body, `${what}: ${field} missing from ${JSON.stringify(res.body)}`);
      }
    }
  });
});
