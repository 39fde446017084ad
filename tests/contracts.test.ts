import { strict as assert } from 'assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { BATCH_ID_PATTERN, parseBatchId } from '../contracts/batch-id';
import {
  attributeKey,
  batchSk,
  FENCE_KEY,
  lockSk,
  PIPELINE_PK_PATTERN,
  pipelinePk,
  statusGsiPk,
  tableSk,
} from '../contracts/control-table';
import { DBT_APP_ENV, EXTERNALLY_DEFINED_ENV, HANDLER_ENV, platformEnvNames } from '../contracts/env';
import * as errors from '../contracts/errors';
import { PIPELINE_NAME_BODY, PIPELINE_NAME_PATTERN } from '../contracts/pipeline-name';
import { DEFAULT_REGIONS, REGION_STACK, STACK_REGION, STACKS } from '../contracts/regions';
import * as workflowLimits from '../contracts/workflow-limits';
import { downstreamWorkflow, type DownstreamWorkflowRefs } from '../state-machines/downstream';

/**
 * The contracts agree with what lives outside TypeScript (the dbt app's env contract, the stack
 * files, the Python and OpenAPI copies of the name rules), and the ASL builder enforces the
 * workflow limits the config check reads.
 */
const ROOT = path.resolve(__dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

describe('contracts', () => {
  describe('env names', () => {
    it("DBT_APP_ENV names exactly dbt-app/env-contract.json's variables (the app and the Deployment are checked against the JSON)", () => {
      const json = JSON.parse(read('dbt-app/env-contract.json')) as { variables: Record<string, unknown> };
      assert.deepEqual(Object.keys(DBT_APP_ENV).sort(), Object.keys(json.variables).sort());
    });

    it('every name maps to itself, so a key can never drift from the name it stands for', () => {
      for (const [key, value] of [...Object.entries(HANDLER_ENV), ...Object.entries(DBT_APP_ENV)])
        assert.equal(value, key);
    });

    it('the platform-owned names exclude only names the OS, AWS, Python or dbt define', () => {
      const all = new Set<string>([...Object.values(HANDLER_ENV), ...Object.values(DBT_APP_ENV)]);
      for (const name of EXTERNALLY_DEFINED_ENV)
        assert.ok(all.has(name), `${name} is listed but read by no one`);
      const platform = platformEnvNames();
      assert.equal(platform.length, all.size - EXTERNALLY_DEFINED_ENV.length);
      assert.ok(platform.includes('CONTROL_TABLE_NAME') && platform.includes('DBT_RUNS_TABLE'));
      assert.ok(!platform.includes('AWS_REGION'));
    });
  });

  describe('error names', () => {
    it("the workflow's lists name handler errors exactly as the handlers' classes do", () => {
      const handlerErrors = new Set<string>(Object.values(errors.ERROR_NAMES));
      const listed = [...errors.RETRIED_HANDLER_ERRORS, ...errors.NEVER_RETRIED_HANDLER_ERRORS];
      for (const name of listed) assert.ok(handlerErrors.has(name), name);
      assert.equal(new Set(listed).size, listed.length, 'retried and never retried do not overlap');
      assert.equal(errors.WORKFLOW_ERRORS.DbtRunFailed, new errors.DbtRunFailed('x', 'run-1').name);
      assert.equal(errors.CALLBACK_ERRORS.failed, errors.ERROR_NAMES.DbtRunFailed);
      assert.equal(new errors.DbtApiUnavailable('x').name, errors.RETRIED_HANDLER_ERRORS[0]);
    });
  });

  describe('the region ↔ stack map', () => {
    it("matches each committed Pulumi.<stack>.yaml's aws:region, and lists every stack file", () => {
      const stackFiles = fs
        .readdirSync(ROOT)
        .filter((f) => /^Pulumi\..+\.yaml$/.test(f))
        .map((f) => f.slice('Pulumi.'.length, -'.yaml'.length))
        .sort();
      assert.deepEqual([...STACKS].sort(), stackFiles);
      for (const stack of STACKS) {
        const doc = parseYaml(read(`Pulumi.${stack}.yaml`)) as { config: Record<string, unknown> };
        assert.equal(doc.config['aws:region'], STACK_REGION[stack], stack);
        assert.equal(REGION_STACK[STACK_REGION[stack]], stack);
      }
      assert.deepEqual(DEFAULT_REGIONS, ['us-east-1', 'us-west-1']);
    });
  });

  describe('name rules', () => {
    const NAMES: Array<[string, boolean]> = [
      ['policycenter', true],
      ['pc', true],
      ['a-b-c9', true],
      ['x'.repeat(24), true],
      ['x'.repeat(25), false],
      ['p', false],
      ['9lives', false],
      ['ends-', false],
      ['Upper', false],
      ['under_score', false],
    ];

    it('the pipeline-name pattern, the batch-id pattern and the lease pk pattern accept the same names', () => {
      for (const [name, valid] of NAMES) {
        assert.equal(PIPELINE_NAME_PATTERN.test(name), valid, name);
        assert.equal(BATCH_ID_PATTERN.test(`${name}-20261127T020000Z`), valid, `batch id of ${name}`);
        assert.equal(PIPELINE_PK_PATTERN.test(pipelinePk(name)), valid, `pk of ${name}`);
      }
      assert.equal(parseBatchId('a-b-20261127T020000Z')?.pipeline, 'a-b');
    });

    it('the Python, SQL and OpenAPI copies of the pipeline-name rule spell the same pattern', () => {
      for (const file of [
        'dbt-app/validation.py',
        'dbt-app/registry.py',
        'dbt-app/dbt_project/macros/builds.sql',
        'glue/cda_logic.py',
        'docs/dbt-api.openapi.yaml',
      ])
        assert.ok(read(file).includes(PIPELINE_NAME_BODY), `${file} does not spell ${PIPELINE_NAME_BODY}`);
    });

    it('the dbt app renews exactly the lock the key builders name (dbt-app/validation.py)', () => {
      const validation = read('dbt-app/validation.py');
      assert.ok(validation.includes(`"${lockSk('DOWNSTREAM')}"`));
      assert.ok(validation.includes(`r"^${pipelinePk(PIPELINE_NAME_BODY)}$"`));
    });
  });

  describe('control-table keys', () => {
    it('build the keys docs/control-table.md lists, and the ASL templates with {} for a run-time part', () => {
      assert.equal(batchSk('pc-20261127T020000Z', 'UPSTREAM'), 'BATCH#pc-20261127T020000Z#UPSTREAM');
      assert.equal(tableSk('b', 'pc_contact'), 'BATCH#b#TABLE#pc_contact');
      assert.equal(statusGsiPk('pc', 'DOWNSTREAM', 'FAILED'), 'PIPELINE#pc#DOWNSTREAM#FAILED');
      assert.equal(batchSk('{}', 'DOWNSTREAM'), 'BATCH#{}#DOWNSTREAM');
      assert.deepEqual(attributeKey(FENCE_KEY), { pk: { S: 'FENCE' }, sk: { S: 'ACTIVE' } });
      const doc = read('docs/control-table.md');
      for (const key of ['BATCH#<batchId>#UPSTREAM', 'LOCK#DOWNSTREAM', 'WATERMARK#DOWNSTREAM', '`FENCE`'])
        assert.ok(doc.includes(key), key);
    });
  });

  describe('workflow limits', () => {
    const base = {
      maxRunMinutes: 240,
      maxQueueMinutes: 60,
      heartbeatSeconds: 300,
      maxLostRetries: 1,
      lockWaitMinutes: 60,
    };
    const refs = (dbt: DownstreamWorkflowRefs['dbt']): DownstreamWorkflowRefs => ({
      region: 'us-east-1',
      eventSource: 'com.insurer.etl-platform',
      pipeline: { name: 'policycenter', expectedTables: ['pc_policy'] },
      controlTable: { name: 'control', arn: 'arn:aws:dynamodb:us-east-1:123456789012:table/control' },
      functions: {
        batchContext: { arn: 'arn:aws:lambda:us-east-1:123456789012:function:a' },
        checkConsistency: { arn: 'arn:aws:lambda:us-east-1:123456789012:function:b' },
        startDbtRun: { arn: 'arn:aws:lambda:us-east-1:123456789012:function:c' },
        getDbtRun: { arn: 'arn:aws:lambda:us-east-1:123456789012:function:d' },
      },
      bus: { arn: 'arn:aws:events:us-east-1:123456789012:event-bus/etl-platform' },
      alerts: { arn: 'arn:aws:sns:us-east-1:123456789012:alerts' },
      dbt,
    });

    it('the lease must cover the replication wait, one capped wait past it and the margin', () => {
      // 5 min wait + 300 s cap + LEASE_MARGIN_SECONDS (300) = 900 s: a 15-minute lease, no less.
      const dbt = { replicationWaitMinutes: 5, replicationWaitMaxSeconds: 300 };
      assert.equal(workflowLimits.leaseProblem({ ...dbt, lockLeaseMinutes: 15 }), undefined);
      assert.match(
        workflowLimits.leaseProblem({ ...dbt, lockLeaseMinutes: 14 })!,
        /^lockLeaseMinutes = 14 \(840 s\) does not cover .* = 900 s\)\. Fix: raise lockLeaseMinutes/,
      );
      // Unset, the cap is DEFAULT_REPLICATION_WAIT_MAX_SECONDS (120): 720 s.
      assert.equal(
        workflowLimits.leaseProblem({ replicationWaitMinutes: 5, lockLeaseMinutes: 12 }),
        undefined,
      );
      assert.match(
        workflowLimits.leaseProblem({ replicationWaitMinutes: 5, lockLeaseMinutes: 11 })!,
        /= 720 s\)/,
      );
    });

    it("the builder refuses every setting the config check's lease rule refuses, with its message", () => {
      let problems = 0;
      for (const lockLeaseMinutes of [1, 5, 7, 8, 9, 10, 15, 60])
        for (const replicationWaitMinutes of [0, 1, 5, 10])
          for (const replicationWaitMaxSeconds of [undefined, 30, 120, 600]) {
            const dbt = { ...base, lockLeaseMinutes, replicationWaitMinutes, replicationWaitMaxSeconds };
            const problem = workflowLimits.leaseProblem(dbt);
            const build = () => downstreamWorkflow(refs(dbt));
            if (problem) {
              problems++;
              assert.throws(build, (e: Error) => e.message.includes(`dbt.${problem}`), JSON.stringify(dbt));
            } else {
              assert.doesNotThrow(build, JSON.stringify(dbt));
            }
          }
      assert.ok(problems > 10 && problems < 128, `the grid covers both answers (${problems} problems)`);
    });

    it('the builder refuses waits that would pass the history limit', () => {
      const dbt = { ...base, lockLeaseMinutes: 15, replicationWaitMinutes: 5, lockWaitMinutes: 10_000 };
      const rounds = Math.ceil((10_000 * 60) / 300);
      assert.ok(rounds * workflowLimits.HISTORY_EVENTS_PER_ROUND > workflowLimits.MAX_HISTORY_EVENTS);
      assert.throws(() => downstreamWorkflow(refs(dbt)), /history events, over Step Functions' 25,000/);
    });
  });
});
