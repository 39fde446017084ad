import * as assert from 'node:assert/strict';
import { diffRuns } from '../local/program-diff';
import { ACCOUNT_ID } from '../local/pulumi-mocks';
import type { StackName } from '../contracts/regions';
import { type ProgramRun, runProgram } from '../local/program';

const STACKS: StackName[] = ['prod-east', 'prod-west'];
const REGIONS = ['us-east-1', 'us-west-1'];
const REGION_OF: Record<StackName, string> = { 'prod-east': 'us-east-1', 'prod-west': 'us-west-1' };

/** Inputs that may differ when only `activeRegion` flips: the fence and the role's toggles. */
const ROLE_DEPENDENT = [
  /^aws:lambda\/invocation:Invocation::.*-fence$/, // the fence: its input (assertedAt changes on every run)
];
const ROLE_DEPENDENT_PATHS = /^(input\.activeRegion|input\.assertedAt|state|desiredCount|spec\.replicas)$/;

describe('foundation: the program in all four stack × activeRegion combinations', () => {
  const runs = new Map<string, ProgramRun>();
  before(async () => {
    for (const stack of STACKS) {
      for (const activeRegion of REGIONS) {
        const run = await runProgram({ stack, activeRegion });
        if (run.error) throw run.error;
        runs.set(`${stack}/${activeRegion}`, run);
      }
    }
  });
  const get = (stack: StackName, active: string) => runs.get(`${stack}/${active}`)!;

  for (const stack of STACKS) {
    for (const active of REGIONS) {
      it(`${stack} with activeRegion=${active}: role, peer and failover output`, () => {
        const { failover } = get(stack, active).outputs;
        const region = REGION_OF[stack];
        assert.equal(failover.region, region);
        assert.equal(failover.role, region === active ? 'active' : 'passive');
        assert.equal(failover.activeRegion, active);
        assert.equal(
          failover.peerRegion,
          REGIONS.find((r) => r !== region),
        );
        assert.equal(failover.homeRegion, 'us-east-1');
        assert.equal(failover.fence.activeRegion, active);
        const standby = REGIONS.find((r) => r !== active)!;
        assert.match(failover.runbook, new RegExp(`pulumi config set activeRegion ${standby} -s prod-east`));
        assert.match(failover.runbook, new RegExp(`pulumi config set activeRegion ${standby} -s prod-west`));
        assert.match(
          failover.runbook,
          new RegExp(`pulumi up -s ${stack === 'prod-east' ? 'prod-west' : 'prod-east'}`),
        );
        for (const toggle of failover.toggles)
          assert.equal(toggle.state, region === active ? 'ENABLED' : 'DISABLED');
      });
    }
  }

  it('declares the control global table once, in the home stack, with a replica in the peer region', () => {
    const home = get('prod-east', 'us-east-1');
    const table = home.one('aws:dynamodb/table:Table', 'control-table');
    assert.equal(table.inputs.name, 'etl-platform-control');
    assert.deepEqual(table.inputs.replicas, [
      { regionName: 'us-west-1', pointInTimeRecovery: true, propagateTags: true },
    ]);
    assert.equal(table.inputs.pointInTimeRecovery.enabled, true);
    assert.equal(table.inputs.serverSideEncryption.enabled, true);
    assert.deepEqual(table.inputs.ttl, { attributeName: 'expiresAt', enabled: true });
    assert.deepEqual(
      table.inputs.globalSecondaryIndexes.map((i: any) => [i.name, i.hashKey, i.rangeKey]),
      [['byPipelineStatus', 'gsi1pk', 'gsi1sk']],
    );
    // The peer declares no control table (only the dbt app's own, regional runs table).
    for (const active of REGIONS) {
      const tables = get('prod-west', active).ofType('aws:dynamodb/table:Table');
      assert.deepEqual(
        tables.map((t) => t.inputs.name),
        ['etl-platform-dbt-runs'],
      );
    }
  });

  it('the peer stack refers to the same table by name, through its own region', () => {
    const west = get('prod-west', 'us-east-1');
    const fn = west.one('aws:lambda/function:Function', 'fence-writer');
    assert.equal(fn.inputs.environment.variables.CONTROL_TABLE_NAME, 'etl-platform-control');
    const policy = JSON.parse(west.one('aws:iam/rolePolicy:RolePolicy', 'fence-writer').inputs.policy);
    const fence = policy.Statement.find((s: any) => s.Sid === 'FenceItemOnly');
    assert.deepEqual(fence.Resource, [`arn:aws:dynamodb:us-west-1:${ACCOUNT_ID}:table/etl-platform-control`]);
    assert.equal(west.outputs.controlTableName, 'etl-platform-control');
  });

  it('the bus has the same name in both stacks, with an archive and an account-scoped policy', () => {
    const names = STACKS.map((s) => get(s, 'us-east-1').one('aws:cloudwatch/eventBus:EventBus').inputs.name);
    assert.deepEqual(names, ['etl-platform', 'etl-platform']);
    for (const stack of STACKS) {
      const run = get(stack, 'us-east-1');
      const archive = run.one('aws:cloudwatch/eventArchive:EventArchive');
      assert.equal(archive.inputs.retentionDays, 35);
      assert.equal(
        archive.inputs.eventSourceArn,
        `arn:aws:events:${REGION_OF[stack]}:${ACCOUNT_ID}:event-bus/etl-platform`,
      );
      assert.deepEqual(JSON.parse(archive.inputs.eventPattern), {
        source: ['com.example-insurer.etl-platform'],
      });
      const policy = JSON.parse(run.one('aws:cloudwatch/eventBusPolicy:EventBusPolicy').inputs.policy);
      const deny = policy.Statement.find((s: any) => s.Effect === 'Deny');
      assert.deepEqual(deny.Condition, { StringNotEquals: { 'aws:PrincipalAccount': ACCOUNT_ID } });
    }
  });

  it('the alerts topic is KMS-encrypted and subscribes the on-call e-mail', () => {
    const run = get('prod-east', 'us-east-1');
    const topic = run.one('aws:sns/topic:Topic');
    assert.match(topic.inputs.kmsMasterKeyId, /^arn:aws:kms:us-east-1:/);
    const sub = run.one('aws:sns/topicSubscription:TopicSubscription');
    assert.deepEqual(
      [sub.inputs.protocol, sub.inputs.endpoint],
      ['email', 'data-platform-oncall@example-insurer.com'],
    );
  });

  it('every AWS resource goes through the stack provider, which carries the role-free tags', () => {
    for (const stack of STACKS) {
      const run = get(stack, 'us-east-1');
      const provider = run.one('pulumi:providers:aws');
      assert.equal(provider.inputs.region, REGION_OF[stack]);
      assert.deepEqual(JSON.parse(provider.inputs.defaultTags).tags, {
        app: 'etl-platform',
        stack,
        region: REGION_OF[stack],
        'managed-by': 'pulumi',
      });
      const awsResources = run.resources.filter((r) => r.custom && r.type.startsWith('aws:'));
      assert.ok(awsResources.length > 10);
      for (const r of awsResources) {
        assert.ok(r.provider.includes('pulumi:providers:aws::aws-'), `${r.name} uses the default provider`);
        assert.equal(r.region, REGION_OF[stack], `${r.name} is in ${r.region}`);
      }
    }
  });

  it('every resource has a unique (type, name): mocks do not catch duplicates, Pulumi would', () => {
    for (const [key, run] of runs) {
      const seen = new Set<string>();
      for (const r of run.resources) {
        const id = `${r.type}::${r.name}`;
        assert.ok(!seen.has(id), `${key}: ${id} declared twice`);
        seen.add(id);
      }
    }
  });

  it('explicit IAM role names include the region (IAM is global)', () => {
    for (const stack of STACKS) {
      for (const role of get(stack, 'us-east-1').ofType('aws:iam/role:Role')) {
        assert.ok(role.inputs.name.endsWith(REGION_OF[stack]), role.inputs.name);
      }
    }
  });

  it('no IAM policy grants a "*" or service-wide action', () => {
    for (const run of runs.values()) {
      for (const policy of run.ofType('aws:iam/rolePolicy:RolePolicy')) {
        for (const statement of JSON.parse(policy.inputs.policy).Statement) {
          for (const action of [statement.Action].flat() as string[]) {
            assert.ok(action !== '*' && !action.endsWith(':*'), `${policy.name} grants ${action}`);
          }
        }
      }
    }
  });

  for (const stack of STACKS) {
    it(`failover diff (${stack}): flipping activeRegion changes role-dependent inputs only`, () => {
      const { added, removed, changes } = diffRuns(
        get(stack, 'us-east-1').resources,
        get(stack, 'us-west-1').resources,
      );
      assert.deepEqual(added, []);
      assert.deepEqual(removed, []);
      assert.ok(changes.length > 0, 'the fence must move');
      for (const change of changes) {
        const allowed =
          ROLE_DEPENDENT.some((p) => p.test(change.resource)) || ROLE_DEPENDENT_PATHS.test(change.path);
        assert.ok(
          allowed,
          `unexpected change ${change.resource} ${change.path}: ${JSON.stringify(change.before)} → ${JSON.stringify(change.after)}`,
        );
      }
      const fence = changes.filter((c) => c.resource.endsWith('-fence') && c.path !== 'input.assertedAt');
      assert.deepEqual(
        fence.map((c) => [c.path, c.after]),
        [['input.activeRegion', 'us-west-1']],
      );
    });
  }
});
