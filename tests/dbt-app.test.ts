import * as assert from 'node:assert/strict';
import { Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import {
  APP_ENV_CONTRACT,
  buildKubeconfig,
  containerEnv,
  deploymentSpec,
  DEFAULT_RESOURCES,
  disruptionBudgetSpec,
  irsaTrustPolicy,
  networkPolicySpec,
  oidcProviderArn,
  RUNS_STATUS_INDEX,
  RUNS_TABLE_NAME,
  SHUTDOWN_GRACE_SECONDS,
} from '../k8s/dbt-app';
import { DBT_REPOSITORY_NAME, lifecycleRules } from '../k8s/dbt-image';
import { diffRuns } from '../local/program-diff';
import type { StackName } from '../contracts/regions';
import { type ProgramRun, runProgram, stackConfig, TEST_SECRETS } from '../local/program';
import { ACCOUNT_ID } from '../local/pulumi-mocks';

const STACKS: StackName[] = ['prod-east', 'prod-west'];
const REGIONS = ['us-east-1', 'us-west-1'];
const REGION_OF: Record<StackName, string> = { 'prod-east': 'us-east-1', 'prod-west': 'us-west-1' };
const CLUSTER_OF: Record<string, string> = {
  'us-east-1': 'dataplatform-prod-use1',
  'us-west-1': 'dataplatform-prod-usw1',
};
const PEER_OF: Record<string, string> = { 'us-east-1': 'us-west-1', 'us-west-1': 'us-east-1' };

/** kubernetes-models class for every Kubernetes type the program declares. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'kubernetes:core/v1:Namespace': Namespace,
  'kubernetes:core/v1:ServiceAccount': ServiceAccount,
  'kubernetes:core/v1:Secret': Secret,
  'kubernetes:core/v1:Service': Service,
  'kubernetes:apps/v1:Deployment': Deployment,
  'kubernetes:policy/v1:PodDisruptionBudget': PodDisruptionBudget,
  'kubernetes:networking.k8s.io/v1:NetworkPolicy': NetworkPolicy,
};

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Kinds whose names must be DNS labels (RFC 1123), not merely subdomains. */
const LABEL_NAMED = new Set(['Namespace', 'Service']);

const kubeObjects = (run: ProgramRun) => run.resources.filter((r) => r.type.startsWith('kubernetes:'));
const deploymentOf = (run: ProgramRun) => run.one('kubernetes:apps/v1:Deployment');
const containerOf = (run: ProgramRun) => deploymentOf(run).inputs.spec.template.spec.containers[0];
const envOf = (run: ProgramRun) => Object.fromEntries(containerOf(run).env.map((e: any) => [e.name, e]));

describe('dbt app on EKS: all four stack × activeRegion combinations', () => {
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
  const all = () =>
    [...runs.entries()].map(([key, run]) => ({
      key,
      run,
      stack: key.split('/')[0] as StackName,
      region: REGION_OF[key.split('/')[0] as StackName],
    }));

  it('every Kubernetes object passes kubernetes-models validation', () => {
    for (const { key, run } of all()) {
      const objects = kubeObjects(run);
      assert.deepEqual(new Set(objects.map((o) => o.type)), new Set(Object.keys(MODELS)), key);
      for (const o of objects) {
        const Model = MODELS[o.type];
        assert.ok(Model, `${key}: no kubernetes-models class for ${o.type}`);
        assert.doesNotThrow(() => new Model(o.inputs).validate(), `${key}: ${o.name} is invalid`);
      }
    }
  });

  it('names, namespaces and the image are valid where kubernetes-models does not look', () => {
    for (const { key, run, region } of all()) {
      for (const o of kubeObjects(run)) {
        const { name, namespace } = o.inputs.metadata;
        const pattern = LABEL_NAMED.has(o.inputs.kind) ? DNS_LABEL : DNS_SUBDOMAIN;
        assert.match(name, pattern, `${key}: ${o.inputs.kind} name "${name}"`);
        if (o.inputs.kind === 'Namespace') assert.equal(name, 'dbt');
        else assert.equal(namespace, 'dbt', `${key}: ${o.name} is not in the app namespace`);
      }
      const image = containerOf(run).image;
      assert.equal(
        image,
        `${ACCOUNT_ID}.dkr.ecr.${region}.amazonaws.com/${DBT_REPOSITORY_NAME}:1.8.7-r3`,
        key,
      );
      assert.equal(run.one('awsx:ecr:Repository').inputs.name, DBT_REPOSITORY_NAME);
    }
  });

  it('the Deployment carries the restricted security profile at pod and container level', () => {
    for (const { key, run } of all()) {
      const pod = deploymentOf(run).inputs.spec.template.spec;
      assert.equal(pod.securityContext.runAsNonRoot, true, key);
      assert.ok(pod.securityContext.runAsUser > 0, key);
      assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
      assert.equal(pod.hostNetwork ?? false, false);
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
        const sc = c.securityContext;
        assert.equal(sc.runAsNonRoot, true);
        assert.ok(sc.runAsUser > 0);
        assert.equal(sc.allowPrivilegeEscalation, false);
        assert.equal(sc.readOnlyRootFilesystem, true);
        assert.equal(sc.privileged, false);
        assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
        assert.deepEqual(sc.seccompProfile, { type: 'RuntimeDefault' });
        // A read-only root needs a writable /tmp.
        const tmp = c.volumeMounts.find((m: any) => m.mountPath === '/tmp');
        assert.ok(pod.volumes.find((v: any) => v.name === tmp.name).emptyDir, 'emptyDir for /tmp');
      }
      // The namespace enforces the same profile at admission.
      assert.equal(
        run.one('kubernetes:core/v1:Namespace').inputs.metadata.labels['pod-security.kubernetes.io/enforce'],
        'restricted',
      );
    }
  });

  it('the container has probes on /healthz, requests and limits, zone spread and its environment', () => {
    for (const { key, run, region } of all()) {
      const container = containerOf(run);
      for (const probe of ['livenessProbe', 'readinessProbe']) {
        assert.equal(container[probe].httpGet.path, '/healthz', `${key} ${probe}`);
        assert.equal(container[probe].httpGet.port, 'http');
      }
      for (const kind of ['requests', 'limits']) {
        assert.ok(container.resources[kind].cpu && container.resources[kind].memory, `${key} ${kind}`);
      }
      const spread = deploymentOf(run).inputs.spec.template.spec.topologySpreadConstraints;
      assert.ok(spread.some((t: any) => t.topologyKey === 'topology.kubernetes.io/zone' && t.maxSkew === 1));
      const env = envOf(run);
      assert.deepEqual(env.DBT_API_TOKEN.valueFrom.secretKeyRef, {
        name: run.one('kubernetes:core/v1:Secret').inputs.metadata.name,
        key: Object.keys(run.one('kubernetes:core/v1:Secret').inputs.stringData)[0],
      });
      assert.equal(env.AWS_REGION.value, region);
      assert.equal(env.SNOWFLAKE_SECRET_ID.value, 'etl-platform/snowflake');
      assert.equal(env.DBT_RUNS_TABLE.value, run.one('aws:dynamodb/table:Table', 'dbt-runs').inputs.name);
      assert.equal(
        env.CONTROL_TABLE.value,
        'etl-platform-control',
        `${key}: the app renews leases on the control table`,
      );
      assert.equal(
        env.PORT.value,
        String(container.ports[0].containerPort),
        `${key}: the app binds the port the container declares`,
      );
    }
  });

  it("the Deployment sets only variables of the app's env contract, every required one, and secrets only by reference", () => {
    for (const { key, run } of all()) {
      const env = envOf(run);
      for (const [name, e] of Object.entries<any>(env)) {
        const entry = APP_ENV_CONTRACT[name];
        assert.ok(entry, `${key}: ${name} is set by the Deployment but is not in dbt-app/env-contract.json`);
        assert.ok(
          entry.from === 'deployment' || entry.from === 'secret',
          `${key}: ${name} is ${entry.from}-supplied, yet the Deployment sets it`,
        );
        assert.equal(
          entry.from === 'secret',
          e.valueFrom?.secretKeyRef !== undefined,
          `${key}: ${name} secret-ness`,
        );
      }
      for (const [name, entry] of Object.entries(APP_ENV_CONTRACT)) {
        if (entry.required && (entry.from === 'deployment' || entry.from === 'secret'))
          assert.ok(env[name], `${key}: required ${name} is not set`);
      }
    }
  });

  it('containerEnv refuses a name outside the contract, a wrong source and a missing required variable', () => {
    const contract = {
      A: { from: 'deployment', required: true, description: '' },
      S: { from: 'secret', required: true, description: '' },
    } as const;
    const ref = { name: 'n', key: 'k' };
    assert.deepEqual(
      containerEnv({ A: '1' }, { S: ref }, contract).map((e) => e.name),
      ['A', 'S'],
    );
    assert.throws(
      () => containerEnv({ A: '1', API_TOKEN: 'x' }, { S: ref }, contract),
      /API_TOKEN is not in dbt-app\/env-contract.json/,
    );
    assert.throws(
      () => containerEnv({ A: '1', S: 'literal' }, {}, contract),
      /S is supplied as deployment but the contract says secret/,
    );
    assert.throws(
      () => containerEnv({}, { S: ref }, contract),
      /A is required by the app but the Deployment does not set it/,
    );
  });

  it("the pod outlives the app's own shutdown grace, so an in-flight run is finished or marked INTERRUPTED before the kill", () => {
    for (const { key, run } of all()) {
      const spec = deploymentOf(run).inputs.spec.template.spec;
      assert.equal(envOf(run).SHUTDOWN_GRACE_SECONDS.value, String(SHUTDOWN_GRACE_SECONDS));
      assert.ok(
        spec.terminationGracePeriodSeconds >= SHUTDOWN_GRACE_SECONDS + 20,
        `${key}: ${spec.terminationGracePeriodSeconds}`,
      );
    }
  });

  it('each region has its own runs table (not global) with the status index the workers query', () => {
    for (const { key, run } of all()) {
      const table = run.one('aws:dynamodb/table:Table', 'dbt-runs');
      assert.equal(table.inputs.name, RUNS_TABLE_NAME);
      assert.deepEqual(table.inputs.replicas ?? [], [], `${key}: the run registry must not replicate`);
      assert.deepEqual(
        table.inputs.globalSecondaryIndexes.map((i: any) => [i.name, i.hashKey, i.rangeKey]),
        [[RUNS_STATUS_INDEX, 'status', 'queuedAt']],
      );
      assert.equal(table.inputs.serverSideEncryption.enabled, true);
      assert.equal(table.inputs.pointInTimeRecovery.enabled, true);
    }
  });

  it('replicas follow the role: 2 when active, 1 when passive (stack files)', () => {
    for (const { key, run, region } of all()) {
      const active = key.endsWith(`/${region}`);
      assert.equal(deploymentOf(run).inputs.spec.replicas, active ? 2 : 1, key);
    }
  });

  for (const stack of STACKS) {
    it(`${stack}: flipping activeRegion changes the Deployment's replicas and nothing else in the dbt app or its image`, () => {
      const { added, removed, changes } = diffRuns(
        get(stack, 'us-east-1').resources,
        get(stack, 'us-west-1').resources,
      );
      assert.deepEqual(added, []);
      assert.deepEqual(removed, []);
      const ours = changes.filter((c) =>
        /^(kubernetes:|awsx:|aws:ecr|pulumi:providers:kubernetes|etl-platform:k8s:)|::etl-dbt/.test(
          c.resource,
        ),
      );
      assert.deepEqual(
        ours.map((c) => [c.resource, c.path]),
        [['kubernetes:apps/v1:Deployment::etl-dbt-deployment', 'spec.replicas']],
      );
    });
  }

  it("each stack's Kubernetes objects go through its own region's provider, whose kubeconfig names that cluster", () => {
    for (const { key, run, region } of all()) {
      const provider = run.one('pulumi:providers:kubernetes');
      assert.equal(provider.name, `k8s-${region}`);
      const kubeconfig = JSON.parse(provider.inputs.kubeconfig);
      const exec = kubeconfig.users[0].user.exec;
      assert.equal(exec.apiVersion, 'client.authentication.k8s.io/v1beta1');
      assert.equal(exec.command, 'aws');
      assert.deepEqual(exec.args.slice(0, 6), [
        'eks',
        'get-token',
        '--cluster-name',
        CLUSTER_OF[region],
        '--region',
        region,
      ]);
      assert.match(
        kubeconfig.clusters[0].cluster.server,
        new RegExp(`^https://[0-9A-F]+\\.gr7\\.${region}\\.eks\\.amazonaws\\.com$`),
      );
      assert.ok(kubeconfig.clusters[0].cluster['certificate-authority-data']);
      assert.ok(
        !provider.inputs.kubeconfig.includes(PEER_OF[region]),
        `${key}: kubeconfig mentions the peer region`,
      );
      for (const o of kubeObjects(run)) {
        assert.ok(
          o.provider.endsWith(`pulumi:providers:kubernetes::k8s-${region}::k8s-${region}_id`),
          `${key}: ${o.name} uses ${o.provider}`,
        );
      }
      // The cluster was looked up by this region's name, through this region's AWS provider.
      const lookups = run.mocks.calls.filter((c) => c.token === 'aws:eks/getCluster:getCluster');
      assert.deepEqual(
        lookups.map((c) => c.inputs.name),
        [CLUSTER_OF[region]],
      );
      assert.ok(lookups.every((c) => (c.provider ?? '').includes(`aws-${region}`)));
    }
  });

  it('the IRSA role trusts exactly the app service account; it may read the Snowflake secret, use its runs table and answer task tokens', () => {
    for (const { key, run, region } of all()) {
      const sa = run.one('kubernetes:core/v1:ServiceAccount');
      const role = run.one('aws:iam/role:Role', 'dbt-irsa');
      assert.equal(role.inputs.name, `etl-dbt-app-${region}`);
      assert.equal(sa.inputs.metadata.annotations['eks.amazonaws.com/role-arn'], role.state.arn, key);

      const trust = JSON.parse(role.inputs.assumeRolePolicy);
      assert.equal(trust.Statement.length, 1);
      const [statement] = trust.Statement;
      assert.equal(statement.Effect, 'Allow');
      assert.equal(statement.Action, 'sts:AssumeRoleWithWebIdentity');
      const provider = statement.Principal.Federated as string;
      assert.match(
        provider,
        new RegExp(
          `^arn:aws:iam::${ACCOUNT_ID}:oidc-provider/oidc\\.eks\\.${region}\\.amazonaws\\.com/id/[0-9A-F]{32}$`,
        ),
      );
      const host = provider.split(':oidc-provider/')[1];
      assert.deepEqual(Object.keys(statement.Condition), ['StringEquals']);
      assert.deepEqual(statement.Condition.StringEquals, {
        [`${host}:sub`]: `system:serviceaccount:${sa.inputs.metadata.namespace}:${sa.inputs.metadata.name}`,
        [`${host}:aud`]: 'sts.amazonaws.com',
      });

      const policy = JSON.parse(run.one('aws:iam/rolePolicy:RolePolicy', 'dbt-irsa').inputs.policy);
      assert.deepEqual(
        policy.Statement.map((s: any) => [s.Effect, s.Action, s.Resource, s.Condition]),
        [
          [
            'Allow',
            ['dynamodb:UpdateItem'],
            [`arn:aws:dynamodb:${region}:${ACCOUNT_ID}:table/etl-platform-control`],
            {
              'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['PIPELINE#*'] },
              'ForAllValues:StringEquals': {
                'dynamodb:Attributes': ['pk', 'sk', 'executionArn', 'leaseExpiresAt', 'leaseRenewedAt'],
              },
              StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
            },
          ],
          [
            'Allow',
            ['secretsmanager:GetSecretValue'],
            [`arn:aws:secretsmanager:${region}:${ACCOUNT_ID}:secret:etl-platform/snowflake-??????`],
            undefined,
          ],
          [
            'Allow',
            ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
            [
              `arn:aws:dynamodb:${region}:${ACCOUNT_ID}:table/${RUNS_TABLE_NAME}`,
              `arn:aws:dynamodb:${region}:${ACCOUNT_ID}:table/${RUNS_TABLE_NAME}/index/${RUNS_STATUS_INDEX}`,
            ],
            undefined,
          ],
          [
            'Allow',
            ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
            ['*'],
            { StringEquals: { 'aws:RequestedRegion': region } },
          ],
        ],
      );
    }
  });

  it('the API token is a Pulumi secret wherever it is stored, and never plain text', () => {
    const token = TEST_SECRETS.dbtApiToken;
    for (const { key, run } of all()) {
      const secret = run.one('kubernetes:core/v1:Secret');
      assert.equal(secret.inputs.stringData.token, token);
      assert.ok(
        secret.secretPaths.some((p) => p === 'stringData' || p === 'stringData.token'),
        `${key}: secret paths ${JSON.stringify(secret.secretPaths)}`,
      );
      for (const r of run.resources) {
        for (const path of pathsContaining(r.inputs, token)) {
          assert.ok(
            r.secretPaths.some((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`)),
            `${key}: the token is in plain text at ${r.type} ${r.name} ${path}`,
          );
        }
      }
      assert.ok(!JSON.stringify(run.outputs).includes(token), `${key}: the token is in a stack output`);
    }
  });

  it('ECR replication is declared only in the home stack, to the peer region, for the dbt repository only', () => {
    for (const active of REGIONS) {
      const replication = get('prod-east', active).one(
        'aws:ecr/replicationConfiguration:ReplicationConfiguration',
      );
      assert.equal(replication.region, 'us-east-1');
      assert.deepEqual(replication.inputs.replicationConfiguration.rules, [
        {
          destinations: [{ region: 'us-west-1', registryId: ACCOUNT_ID }],
          repositoryFilters: [{ filter: DBT_REPOSITORY_NAME, filterType: 'PREFIX_MATCH' }],
        },
      ]);
      assert.equal(
        get('prod-west', active).ofType('aws:ecr/replicationConfiguration:ReplicationConfiguration').length,
        0,
      );
    }
  });

  it('both regions declare the same repository: immutable tags, scan on push, lifecycle policy', () => {
    for (const { key, run } of all()) {
      const repo = run.one('awsx:ecr:Repository').inputs;
      assert.equal(repo.name, DBT_REPOSITORY_NAME, key);
      assert.equal(repo.imageTagMutability, 'IMMUTABLE');
      assert.deepEqual(repo.imageScanningConfiguration, { scanOnPush: true });
      assert.equal(repo.forceDelete, false);
      assert.deepEqual(repo.lifecyclePolicy.rules, JSON.parse(JSON.stringify(lifecycleRules(30, 7))));
    }
  });

  it('the Service is an internal NLB in the Lambda subnets; only their CIDRs reach the app port', () => {
    for (const { key, run, stack, region } of all()) {
      const subnetIds: string[] = JSON.parse(stackConfig(stack)['etl-platform:lambdaNetwork'])[region]
        .subnetIds;
      const service = run.one('kubernetes:core/v1:Service').inputs;
      const a = service.metadata.annotations;
      assert.equal(a['service.beta.kubernetes.io/aws-load-balancer-scheme'], 'internal', key);
      assert.equal(a['service.beta.kubernetes.io/aws-load-balancer-type'], 'external');
      assert.equal(a['service.beta.kubernetes.io/aws-load-balancer-nlb-target-type'], 'ip');
      assert.equal(a['service.beta.kubernetes.io/aws-load-balancer-subnets'], subnetIds.join(','));
      assert.equal(service.spec.type, 'LoadBalancer');

      const cidrs = run.mocks.calls
        .filter((c) => c.token === 'aws:ec2/getSubnet:getSubnet')
        .map((c) => c.inputs.id);
      assert.deepEqual(cidrs, subnetIds, 'every Lambda subnet was looked up');
      const policy = run.one('kubernetes:networking.k8s.io/v1:NetworkPolicy').inputs.spec;
      assert.deepEqual(policy.policyTypes, ['Ingress']);
      assert.equal(policy.ingress.length, 1);
      const from = policy.ingress[0].from.map((f: any) => f.ipBlock.cidr);
      assert.equal(from.length, subnetIds.length);
      for (const cidr of from) assert.match(cidr, /^10\.\d+\.\d+\.0\/24$/);
      assert.deepEqual(service.spec.loadBalancerSourceRanges, from);
      const containerPort = containerOf(run).ports[0].containerPort;
      assert.deepEqual(policy.ingress[0].ports, [{ protocol: 'TCP', port: containerPort }]);
      assert.deepEqual(policy.podSelector.matchLabels, deploymentOf(run).inputs.spec.selector.matchLabels);

      // TLS (shipped stacks): the URL names the certificate's host, which a CNAME points at this NLB.
      assert.match(
        run.outputs.dbtApiUrl,
        new RegExp(`^https://dbt-api\\.[a-z0-9]+\\.dataplatform\\.example-insurer\\.com$`),
      );
      assert.match(
        run.one('aws:route53/record:Record', 'api-dns').inputs.records[0],
        new RegExp(`^[a-z0-9-]+\\.elb\\.${region}\\.amazonaws\\.com$`),
      );
    }
  });

  it('a PodDisruptionBudget that is valid for every replica count and does not change with the role', () => {
    for (const { run } of all()) {
      const pdb = run.one('kubernetes:policy/v1:PodDisruptionBudget').inputs.spec;
      assert.equal(pdb.maxUnavailable, 1);
      assert.equal(pdb.minAvailable, undefined);
      assert.deepEqual(pdb.selector.matchLabels, deploymentOf(run).inputs.spec.selector.matchLabels);
    }
  });
});

describe('dbt app: a cold passive region (dbtReplicas.passive = 0)', () => {
  let active: ProgramRun;
  let cold: ProgramRun;
  before(async () => {
    const config = { dbtReplicas: { active: 2, passive: 0 } };
    active = await runProgram({ stack: 'prod-west', activeRegion: 'us-west-1', config });
    cold = await runProgram({ stack: 'prod-west', activeRegion: 'us-east-1', config });
    if (active.error) throw active.error;
    if (cold.error) throw cold.error;
  });

  it('scales to 0 with every object still valid and only spec.replicas different', () => {
    assert.equal(deploymentOf(cold).inputs.spec.replicas, 0);
    for (const o of kubeObjects(cold)) new MODELS[o.type](o.inputs).validate();
    const { added, removed, changes } = diffRuns(active.resources, cold.resources);
    assert.deepEqual([added, removed], [[], []]);
    assert.deepEqual(
      changes.filter((c) => c.resource.startsWith('kubernetes:')).map((c) => [c.resource, c.path, c.after]),
      [['kubernetes:apps/v1:Deployment::etl-dbt-deployment', 'spec.replicas', 0]],
    );
  });
});

describe('dbt app: pure builders', () => {
  it('buildKubeconfig authenticates through aws eks get-token for that cluster and region', () => {
    const config = JSON.parse(
      buildKubeconfig({
        clusterName: 'c1',
        region: 'us-west-1',
        endpoint: 'https://x.eks.amazonaws.com',
        certificateAuthorityData: 'Q0E=',
      }),
    );
    assert.equal(config['current-context'], 'us-west-1/c1');
    assert.deepEqual(config.users[0].user.exec.args, [
      'eks',
      'get-token',
      '--cluster-name',
      'c1',
      '--region',
      'us-west-1',
      '--output',
      'json',
    ]);
    assert.deepEqual(config.clusters[0].cluster, {
      server: 'https://x.eks.amazonaws.com',
      'certificate-authority-data': 'Q0E=',
    });
  });

  it('oidcProviderArn and irsaTrustPolicy strip the scheme from the issuer', () => {
    const issuer = 'https://oidc.eks.us-east-1.amazonaws.com/id/ABC';
    const arn = oidcProviderArn('aws', ACCOUNT_ID, issuer);
    assert.equal(arn, `arn:aws:iam::${ACCOUNT_ID}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC`);
    const condition = irsaTrustPolicy(arn, issuer, 'dbt', 'dbt-app').Statement[0].Condition!.StringEquals;
    assert.deepEqual(Object.keys(condition), [
      'oidc.eks.us-east-1.amazonaws.com/id/ABC:sub',
      'oidc.eks.us-east-1.amazonaws.com/id/ABC:aud',
    ]);
  });

  it('deploymentSpec and disruptionBudgetSpec validate for 0, 1 and 3 replicas', () => {
    for (const replicas of [0, 1, 3]) {
      const spec = deploymentSpec(replicas, {
        image: 'r/x:1',
        port: 8080,
        region: 'us-east-1',
        snowflakeSecretId: 'etl-platform/snowflake',
        runsTable: RUNS_TABLE_NAME,
        controlTable: 'etl-platform-control',
        resources: DEFAULT_RESOURCES,
      });
      new Deployment({ metadata: { name: 'dbt-app' }, spec: spec as any }).validate();
      new PodDisruptionBudget({
        metadata: { name: 'dbt-app' },
        spec: disruptionBudgetSpec() as any,
      }).validate();
    }
  });

  it('networkPolicySpec refuses an empty CIDR list (it would cut the Lambdas off)', () => {
    assert.throws(() => networkPolicySpec(8080, []), /no Lambda CIDRs/);
  });
});

/** Input paths whose string value contains `needle`. */
function pathsContaining(value: unknown, needle: string, path = ''): string[] {
  if (typeof value === 'string') return value.includes(needle) ? [path] : [];
  if (Array.isArray(value)) return value.flatMap((v, i) => pathsContaining(v, needle, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => pathsContaining(v, needle, path ? `${path}.${k}` : k));
  }
  return [];
}

describe('dbt API TLS (the bearer token never crosses the VPC in clear)', () => {
  const dbtWith = (stack: StackName, extra: Record<string, unknown>) => ({
    ...JSON.parse(stackConfig(stack)['etl-platform:dbt']),
    ...extra,
  });
  const envOfFn = (run: ProgramRun, part: string) =>
    run.one('aws:lambda/function:Function', part).inputs.environment.variables;

  it("the shipped stacks terminate TLS on the NLB with their own region's certificate, behind a CNAME the certificate names", async () => {
    for (const stack of STACKS) {
      const run = await runProgram({ stack });
      if (run.error) throw run.error;
      const region = REGION_OF[stack];
      const tls = JSON.parse(stackConfig(stack)['etl-platform:dbt']).tls;
      const endpoint = tls.endpoints[region];
      const service = run.one('kubernetes:core/v1:Service');
      assert.deepEqual(service.inputs.spec.ports, [
        { name: 'https', port: 443, targetPort: 'http', protocol: 'TCP' },
      ]);
      const annotations = service.inputs.metadata.annotations;
      assert.equal(
        annotations['service.beta.kubernetes.io/aws-load-balancer-ssl-cert'],
        endpoint.certificateArn,
      );
      assert.equal(annotations['service.beta.kubernetes.io/aws-load-balancer-ssl-ports'], 'https');
      assert.equal(endpoint.certificateArn.split(':')[3], region);
      const record = run.one('aws:route53/record:Record', 'api-dns');
      assert.equal(record.inputs.name, endpoint.hostname);
      assert.equal(record.inputs.zoneId, tls.hostedZoneId);
      assert.equal(record.inputs.type, 'CNAME');
      assert.match(record.inputs.records[0], new RegExp(`\\.elb\\.${region}\\.amazonaws\\.com$`));
      for (const fn of ['start-dbt-run', 'get-dbt-run']) {
        const env = envOfFn(run, fn);
        assert.equal(env.DBT_API_URL, `https://${endpoint.hostname}`, `${stack} ${fn}`);
        assert.equal(env.DBT_API_ALLOW_PLAIN_HTTP, undefined);
      }
    }
  });

  it('without dbt.tls the program refuses to deploy, naming the fix, unless plain HTTP is chosen explicitly', async () => {
    const refused = await runProgram({
      stack: 'prod-east',
      config: { dbt: dbtWith('prod-east', { tls: undefined }) },
    });
    assert.match(
      String(refused.error?.message),
      /etl-platform:dbt\.tls.*plain HTTP.*Fix: set dbt\.tls .*dbt\.allowPlainHttp true/s,
    );
    assert.equal(
      refused.resources.filter((r) => !r.type.startsWith('pulumi:')).length,
      0,
      'nothing declared',
    );

    const plain = await runProgram({
      stack: 'prod-east',
      config: { dbt: dbtWith('prod-east', { tls: undefined, allowPlainHttp: true }) },
    });
    if (plain.error) throw plain.error;
    assert.deepEqual(plain.one('kubernetes:core/v1:Service').inputs.spec.ports[0].port, 80);
    assert.equal(plain.ofType('aws:route53/record:Record').length, 0);
    const env = envOfFn(plain, 'start-dbt-run');
    assert.match(env.DBT_API_URL, /^http:\/\/.*\.elb\.us-east-1\.amazonaws\.com$/);
    assert.equal(env.DBT_API_ALLOW_PLAIN_HTTP, 'true');
  });

  it('a certificate from another region, or a region without an endpoint, is refused before anything is declared', async () => {
    const tls = JSON.parse(stackConfig('prod-east')['etl-platform:dbt']).tls;
    const swapped = {
      ...tls,
      endpoints: {
        ...tls.endpoints,
        'us-east-1': {
          ...tls.endpoints['us-east-1'],
          certificateArn: tls.endpoints['us-west-1'].certificateArn,
        },
      },
    };
    const wrongRegion = await runProgram({
      stack: 'prod-east',
      config: { dbt: dbtWith('prod-east', { tls: swapped }) },
    });
    assert.match(
      String(wrongRegion.error?.message),
      /dbt\.tls\.endpoints\.us-east-1\.certificateArn = .*is in us-west-1, but an NLB in us-east-1/,
    );
    const missing = await runProgram({
      stack: 'prod-east',
      config: {
        dbt: dbtWith('prod-east', {
          tls: { ...tls, endpoints: { 'us-east-1': tls.endpoints['us-east-1'] } },
        }),
      },
    });
    assert.match(String(missing.error?.message), /has no endpoint for us-west-1/);
    for (const run of [wrongRegion, missing])
      assert.equal(run.resources.filter((r) => !r.type.startsWith('pulumi:')).length, 0);
  });
});
