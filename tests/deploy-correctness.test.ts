import * as assert from 'node:assert/strict';
import { type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { fenceInvocationArgs } from '../components/control-table';
import { isPublishedMetric, METRIC_NAMES } from '../components/metric-names';
import { RULE_ALARM_METRICS } from '../components/observability';
import { FENCE_KEY, writeFence } from '../handlers/lib/fence';
import { createControlTable, type LocalDynamo, startDynalite } from '../local/dynalite';
import type { StackName } from '../contracts/regions';
import { type ProgramRun, runProgram, stackConfig } from '../local/program';

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';

/** Issue 13 (K): what mocks passed but AWS would refuse or silently get wrong. */

const STACKS: StackName[] = ['prod-east', 'prod-west'];
const runs = new Map<StackName, ProgramRun>();
before(async () => {
  for (const stack of STACKS) {
    const run = await runProgram({ stack });
    if (run.error) throw run.error;
    runs.set(stack, run);
  }
});

describe('deploy correctness: event-bus targets', () => {
  it('no target whose arn is an event bus has a retry policy; the forwarding target keeps its DLQ and role', () => {
    for (const stack of STACKS) {
      const busTargets = runs
        .get(stack)!
        .ofType('aws:cloudwatch/eventTarget:EventTarget')
        .filter((t) => /:event-bus\//.test(String(t.inputs.arn)));
      assert.equal(busTargets.length, 1, `${stack}: the cross-region forwarding target`);
      for (const t of busTargets) {
        assert.equal(t.inputs.retryPolicy, undefined, `${stack} ${t.name}`);
        assert.match(String(t.inputs.deadLetterConfig?.arn), /^arn:aws:sqs:/);
        assert.match(String(t.inputs.roleArn), /^arn:aws:iam::\d{12}:role\//);
      }
    }
  });
});

describe('deploy correctness: alarms watch metrics that exist', () => {
  it('every alarm names a metric its namespace publishes (exact case)', () => {
    for (const stack of STACKS) {
      const alarms = runs.get(stack)!.ofType('aws:cloudwatch/metricAlarm:MetricAlarm');
      assert.ok(alarms.length > 20);
      for (const a of alarms) {
        assert.ok(a.inputs.namespace in METRIC_NAMES, `${a.name}: namespace ${a.inputs.namespace}`);
        assert.ok(
          isPublishedMetric(a.inputs.namespace, a.inputs.metricName),
          `${a.name}: ${a.inputs.namespace} ${a.inputs.metricName} is not published`,
        );
      }
    }
  });

  it('every rule alarms on DLQ deliveries and on deliveries that could not reach the DLQ', () => {
    assert.ok(
      RULE_ALARM_METRICS.includes('InvocationsSentToDlq') &&
        RULE_ALARM_METRICS.includes('InvocationsFailedToBeSentToDlq'),
    );
    for (const stack of STACKS) {
      const run = runs.get(stack)!;
      const alarms = run.ofType('aws:cloudwatch/metricAlarm:MetricAlarm');
      for (const rule of run.ofType('aws:cloudwatch/eventRule:EventRule')) {
        for (const metricName of ['InvocationsSentToDlq', 'InvocationsFailedToBeSentToDlq']) {
          assert.ok(
            alarms.some(
              (a) =>
                a.inputs.namespace === 'AWS/Events' &&
                a.inputs.metricName === metricName &&
                a.inputs.dimensions?.RuleName === rule.inputs.name,
            ),
            `${stack} ${rule.inputs.name} ${metricName}`,
          );
        }
      }
    }
  });

  it('the table rejects the misspelling that slipped through before', () => {
    assert.equal(isPublishedMetric('AWS/Events', 'InvocationsSentToDLQ'), false);
    assert.equal(isPublishedMetric('AWS/Events', 'InvocationsSentToDlq'), true);
  });
});

describe('deploy correctness: ECR replication is opt-in', () => {
  const dbt = JSON.parse(stackConfig('prod-east')['etl-platform:dbt']);
  const replicationOf = (run: ProgramRun) =>
    run.ofType('aws:ecr/replicationConfiguration:ReplicationConfiguration');

  it('off by default: no registry-wide replication configuration in either stack', async () => {
    const { ecrReplication: _dropped, ...withoutKey } = dbt;
    for (const stack of STACKS) {
      const run = await runProgram({ stack, config: { dbt: withoutKey } });
      assert.equal(run.error, undefined);
      assert.equal(replicationOf(run).length, 0, stack);
    }
  });

  it('on (dbt.ecrReplication: true): declared in the home stack only', async () => {
    for (const stack of STACKS) {
      const run = await runProgram({ stack, config: { dbt: { ...dbt, ecrReplication: true } } });
      assert.equal(replicationOf(run).length, stack === 'prod-east' ? 1 : 0, stack);
    }
  });
});

describe('deploy correctness: every up re-asserts the fence', () => {
  it('the invocation is CRUD-scoped, has no triggers (no replacement), and its input changes on every run', () => {
    for (const stack of STACKS) {
      const fence = runs.get(stack)!.one('aws:lambda/invocation:Invocation', 'fence');
      assert.equal(fence.inputs.lifecycleScope, 'CRUD');
      assert.equal(fence.inputs.triggers, undefined);
      const input = JSON.parse(fence.inputs.input);
      assert.equal(input.activeRegion, 'us-east-1');
      assert.equal(input.stack, stack);
      assert.ok(
        Date.now() - Date.parse(input.assertedAt) < 30 * 60_000,
        'assertedAt is the time of this run',
      );
    }
    const a = fenceInvocationArgs('fn', 'us-east-1', 'prod-east', new Date('2027-01-01T00:00:00Z'));
    const b = fenceInvocationArgs('fn', 'us-east-1', 'prod-east', new Date('2027-01-01T00:05:00Z'));
    assert.notEqual(a.input, b.input, 'two ups differ, so the provider updates (and invokes) every time');
    const strip = (s: unknown) => ({ ...JSON.parse(String(s)), assertedAt: undefined });
    assert.deepEqual(strip(a.input), strip(b.input));
  });

  describe('the handler with the actions CRUD mode sends (dynalite)', () => {
    let db: LocalDynamo;
    let client: DynamoDBClient;
    const TABLE = 'fence-crud';
    const fenceWriter = require('../handlers/fence-writer') as typeof import('../handlers/fence-writer');
    const call = (activeRegion: string, stack: string, action?: string, prev?: object) =>
      fenceWriter.handler({
        activeRegion,
        stack,
        assertedAt: new Date().toISOString(),
        ...(action ? { tf: { action, prev_input: prev ?? null } } : {}),
      });
    const read = async () =>
      (await client.send(new GetItemCommand({ TableName: TABLE, Key: FENCE_KEY }))).Item;

    before(async () => {
      db = await startDynalite();
      client = db.client;
      await createControlTable(client, TABLE);
      process.env.CONTROL_TABLE_NAME = TABLE;
      fenceWriter.setDynamoClient(client);
      // The warehouse fence (its SQL runs against the local warehouse in warehouse-fence.test.ts).
      let row: { region: string; epoch: number } | undefined;
      fenceWriter.setWarehouseFence({
        read: async () => row,
        advance: async (region, epoch) => {
          if (row && row.epoch > epoch) throw new Error('the warehouse fence only moves forward');
          row = { region, epoch };
          return row;
        },
      });
    });
    after(() => {
      fenceWriter.setWarehouseFence(undefined);
      return db.close();
    });

    it('create writes the fence; an update with the same region leaves the epoch alone', async () => {
      assert.deepEqual(await call('us-east-1', 'prod-east', 'create'), {
        activeRegion: 'us-east-1',
        epoch: 1,
        changed: true,
        warehouse: { region: 'us-east-1', epoch: 1 },
        action: 'create',
      });
      assert.deepEqual(await call('us-east-1', 'prod-east', 'update', { activeRegion: 'us-east-1' }), {
        activeRegion: 'us-east-1',
        epoch: 1,
        changed: false,
        warehouse: { region: 'us-east-1', epoch: 1 },
        action: 'update',
      });
    });

    it("drift: a fence moved behind this stack's back is put back by the next update, with one epoch step", async () => {
      await writeFence(client, TABLE, 'us-west-1', 'prod-west'); // the other stack's up, never undone
      assert.equal((await read())?.epoch?.N, '2');
      // This stack's state still says us-east-1 (no config change): the old CREATE_ONLY scope never invoked here.
      assert.deepEqual(await call('us-east-1', 'prod-east', 'update', { activeRegion: 'us-east-1' }), {
        activeRegion: 'us-east-1',
        epoch: 3,
        changed: true,
        warehouse: { region: 'us-east-1', epoch: 3 },
        action: 'update',
      });
      assert.equal((await read())?.activeRegion?.S, 'us-east-1');
    });

    it('delete (stack removal, or the old resource after a replacement) never moves the fence', async () => {
      const result = await call('us-west-1', 'prod-east', 'delete', { activeRegion: 'us-west-1' });
      assert.deepEqual(result, { activeRegion: 'us-east-1', epoch: 3, changed: false, action: 'delete' });
      assert.equal((await read())?.activeRegion?.S, 'us-east-1');
    });

    it('an invocation without tf (the old CREATE_ONLY input) still writes; an unknown action is refused', async () => {
      assert.equal((await call('us-east-1', 'prod-east')).action, 'create');
      await assert.rejects(
        call('us-east-1', 'prod-east', 'refresh'),
        (e: Error) => e.name === 'InvalidInput' && /tf\.action/.test(e.message),
      );
    });
  });
});

describe('deploy correctness: a DST-gap cron accepted on purpose warns', () => {
  it('allowDstGap: true deploys and logs a warning naming the key and the skipped time', async () => {
    const pipelines = JSON.parse(stackConfig('prod-east')['etl-platform:pipelines']);
    pipelines[0] = {
      ...pipelines[0],
      schedule: { expression: 'cron(0 2 * * ? *)', timezone: 'America/New_York', allowDstGap: true },
    };
    const warnings: string[] = [];
    const original = console.warn;
    console.warn = (...args: unknown[]) => void warnings.push(args.join(' '));
    let run: ProgramRun;
    try {
      run = await runProgram({ stack: 'prod-east', config: { pipelines } });
    } finally {
      console.warn = original;
    }
    assert.equal(run.error, undefined);
    assert.ok(run.resources.length > 0);
    assert.ok(
      warnings.some((w) =>
        /etl-platform:pipelines\[0\]\.schedule\.expression = "cron\(0 2 \* \* \? \*\)": fires at 02:00 America\/New_York, which does not exist on the spring-forward day in March .*\(accepted: allowDstGap is true\)/.test(
          w,
        ),
      ),
      warnings.join('\n'),
    );
  });
});
