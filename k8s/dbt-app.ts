import * as aws from '@pulumi/aws';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { pipelinePk, TABLE_KEY } from '../contracts/control-table';
import { DBT_APP_ENV } from '../contracts/env';
import { trustPolicy } from '../contracts/iam';
import { iamRoleName, PROJECT, type AccountContext } from '../contracts/naming';
import envContract from '../dbt-app/env-contract.json';

/**
 * The dbt API (a Flask app that runs dbt against Snowflake) in this region's existing EKS cluster.
 *
 * Everything here is a pure function of the region, the config and a few resource outputs, except
 * `replicas`, which follows the region's role: flipping `activeRegion` scales the Deployment and
 * changes nothing else (tests/dbt-app.test.ts). The manifests are built by the exported functions
 * below so tests can check them directly; `DbtApp` only wires them to resources.
 */

export const APP_NAME = 'dbt-app';
export const SERVICE_ACCOUNT_NAME = 'dbt-app';
export const TOKEN_SECRET_NAME = 'dbt-app-api-token';
export const TOKEN_SECRET_KEY = 'token';
export const HEALTH_PATH = '/healthz';
/** Non-root uid/gid the image runs as (any non-zero id; the image must not need a named user). */
export const RUN_AS_ID = 10001;

/** The app's own run registry: one table per region, never global (docs/dbt-app.md, "Run registry"). */
export const RUNS_TABLE_NAME = 'etl-platform-dbt-runs';
export const RUNS_STATUS_INDEX = 'byStatus';
/** Run records expire this attribute's epoch seconds after creation (the app sets it to +90 days). */
export const RUNS_TTL_ATTRIBUTE = 'expiresAt';

/**
 * After SIGTERM the app finishes an in-flight run for up to this long, then stops dbt and marks the
 * run INTERRUPTED; gunicorn's graceful_timeout (dbt-app/gunicorn.conf.py) sits between the two.
 */
export const SHUTDOWN_GRACE_SECONDS = 100;
/** The pod's grace: the app's own grace plus time to mark the run and send the callback. */
export const TERMINATION_GRACE_SECONDS = SHUTDOWN_GRACE_SECONDS + 30;

/** Who supplies a variable in a deployed pod (dbt-app/env-contract.json). */
export type EnvSource = 'deployment' | 'secret' | 'webhook' | 'image';
export interface EnvContractEntry {
  readonly from: EnvSource;
  readonly required: boolean;
  readonly default?: string;
  readonly description: string;
}
/** The one list of variables the app reads; the Deployment's env is built from it and checked against it. */
export const APP_ENV_CONTRACT: Readonly<Record<string, EnvContractEntry>> = envContract.variables as Record<
  string,
  EnvContractEntry
>;

export interface SecretKeyRef {
  readonly name: string;
  readonly key: string;
}

/**
 * The container's env from the contract: `values` for `deployment` variables, `secrets` for
 * `secret` ones. Throws when a name is not in the contract, comes from the wrong source, or a
 * required variable is missing, so a rename on either side fails the build (tests/dbt-app.test.ts).
 */
export function containerEnv(
  values: Readonly<Record<string, pulumi.Input<string>>>,
  secrets: Readonly<Record<string, SecretKeyRef>>,
  contract: Readonly<Record<string, EnvContractEntry>> = APP_ENV_CONTRACT,
): k8s.types.input.core.v1.EnvVar[] {
  const problems: string[] = [];
  const check = (name: string, from: EnvSource) => {
    const entry = contract[name];
    if (!entry) problems.push(`${name} is not in dbt-app/env-contract.json`);
    else if (entry.from !== from)
      problems.push(`${name} is supplied as ${from} but the contract says ${entry.from}`);
  };
  Object.keys(values).forEach((name) => check(name, 'deployment'));
  Object.keys(secrets).forEach((name) => check(name, 'secret'));
  for (const [name, entry] of Object.entries(contract)) {
    const supplied = name in values || name in secrets;
    if (entry.required && (entry.from === 'deployment' || entry.from === 'secret') && !supplied) {
      problems.push(`${name} is required by the app but the Deployment does not set it`);
    }
  }
  if (problems.length) throw new Error(`dbt-app env does not match its contract: ${problems.join('; ')}`);
  return [
    ...Object.entries(values).map(([name, value]) => ({ name, value })),
    ...Object.entries(secrets).map(([name, ref]) => ({
      name,
      valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } },
    })),
  ];
}

export interface ContainerResources {
  readonly requests: { readonly cpu: string; readonly memory: string; readonly 'ephemeral-storage'?: string };
  readonly limits: { readonly cpu: string; readonly memory: string; readonly 'ephemeral-storage'?: string };
}

export const DEFAULT_RESOURCES: ContainerResources = {
  requests: { cpu: '500m', memory: '1Gi', 'ephemeral-storage': '1Gi' },
  limits: { cpu: '2', memory: '2Gi', 'ephemeral-storage': '2Gi' },
};

export interface DbtAppArgs {
  /** This region's existing EKS cluster, looked up by name. */
  readonly clusterName: string;
  /** This stack's region: the cluster's, and the one the app's AWS clients use. */
  readonly region: string;
  /** Namespace the app is created in (created here). */
  readonly namespace: string;
  /** Full image reference, `<repositoryUrl>:<tag>`. Must not depend on the role. */
  readonly image: pulumi.Input<string>;
  /** Replicas for this region's role: the only role-dependent input. */
  readonly replicas: number;
  /** The API token the Lambdas present; stored as a Kubernetes Secret and kept a Pulumi secret. */
  readonly apiToken: pulumi.Input<string>;
  /**
   * The Snowflake credentials secret: the only thing the app's IAM role may read. The ARN is a
   * pattern (AWS appends a random suffix); the app reads the secret by name.
   */
  readonly snowflakeSecret: {
    readonly name: pulumi.Input<string>;
    readonly arnPattern: pulumi.Input<string>;
  };
  /** The control table (global; this region's replica): the app renews pipeline-lock leases on it. */
  readonly controlTable: { readonly name: pulumi.Input<string>; readonly arn: pulumi.Input<string> };
  /** CIDRs of the Lambdas' subnets: the only sources admitted to the app port. */
  readonly lambdaCidrs: pulumi.Input<pulumi.Input<string>[]>;
  /**
   * Subnets the internal NLB is placed in: the Lambdas' subnets, so its health checks come from
   * inside `lambdaCidrs` too. They must be in the cluster's VPC (ip targets).
   */
  readonly loadBalancerSubnetIds: readonly string[];
  /** Account and partition of the deploying credentials (the IRSA provider's ARN). */
  readonly account: AccountContext;
  /**
   * The container's HTTP port.
   * @default 8080
   */
  readonly port?: number;
  /**
   * The container's requests and limits.
   * @default DEFAULT_RESOURCES
   */
  readonly resources?: ContainerResources;
  /**
   * AWS tags for the IAM role and the load balancer.
   * @default none
   */
  readonly tags?: Record<string, string>;
  /**
   * TLS for this region's endpoint; left out only with the explicit, unsafe `dbt.allowPlainHttp`.
   * @default none (plain HTTP)
   */
  readonly tls?: DbtApiTls;
}

/** Labels on every object; the selector is the stable subset. Role-free by construction. */
export function appLabels(): Record<string, string> {
  return {
    'app.kubernetes.io/name': APP_NAME,
    'app.kubernetes.io/part-of': PROJECT,
    'app.kubernetes.io/managed-by': 'pulumi',
  };
}

export function selectorLabels(): Record<string, string> {
  return { 'app.kubernetes.io/name': APP_NAME };
}

export interface ClusterAccess {
  readonly clusterName: string;
  readonly region: string;
  readonly endpoint: string;
  readonly certificateAuthorityData: string;
}

/**
 * A kubeconfig for one cluster that authenticates with `aws eks get-token` (the deployer's AWS
 * credentials, in the cluster's own region). It holds no credentials, so it is not a secret.
 */
export function buildKubeconfig(c: ClusterAccess): string {
  const context = `${c.region}/${c.clusterName}`;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: context,
        cluster: { server: c.endpoint, 'certificate-authority-data': c.certificateAuthorityData },
      },
    ],
    users: [
      {
        name: context,
        user: {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1beta1',
            command: 'aws',
            args: [
              'eks',
              'get-token',
              '--cluster-name',
              c.clusterName,
              '--region',
              c.region,
              '--output',
              'json',
            ],
            interactiveMode: 'Never',
          },
        },
      },
    ],
    contexts: [{ name: context, context: { cluster: context, user: context } }],
    'current-context': context,
  });
}

/** `https://oidc.eks.<region>.amazonaws.com/id/<ID>` → `oidc.eks.<region>.amazonaws.com/id/<ID>`. */
export function issuerHost(issuer: string): string {
  return issuer.replace(/^https:\/\//, '');
}

export function oidcProviderArn(partition: string, accountId: string, issuer: string): string {
  return `arn:${partition}:iam::${accountId}:oidc-provider/${issuerHost(issuer)}`;
}

/** IRSA trust: web identity from the cluster's OIDC provider, for exactly one service account. */
export function irsaTrustPolicy(
  providerArn: string,
  issuer: string,
  namespace: string,
  serviceAccount: string,
) {
  const host = issuerHost(issuer);
  return trustPolicy(
    { Federated: providerArn },
    {
      action: 'sts:AssumeRoleWithWebIdentity',
      condition: {
        StringEquals: {
          [`${host}:sub`]: `system:serviceaccount:${namespace}:${serviceAccount}`,
          [`${host}:aud`]: 'sts.amazonaws.com',
        },
      },
    },
  );
}

/** DynamoDB actions the run registry uses (dbt-app/registry.py): create, claim, heartbeat, finish, find. */
export const RUNS_TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:UpdateItem',
  'dynamodb:Query',
] as const;
/** The callbacks that end, or keep alive, a workflow's `.waitForTaskToken` wait. */
export const CALLBACK_ACTIONS = [
  'states:SendTaskSuccess',
  'states:SendTaskFailure',
  'states:SendTaskHeartbeat',
] as const;

/**
 * What the app's role may do: read the Snowflake secret, use its own region's runs table, and
 * answer task tokens. The SendTask* actions have no resource types in the Service Authorization
 * Reference (the token names the execution), so they take Resource "*", held to this region.
 */
/** Attributes the app may write on the control table: a lock's lease, nothing else (dbt-app/lease.py). */
export const LEASE_ATTRIBUTES = [
  TABLE_KEY.hashKey,
  TABLE_KEY.rangeKey,
  'executionArn',
  'leaseExpiresAt',
  'leaseRenewedAt',
] as const;

export function dbtAppPolicy(p: {
  snowflakeSecretArn: string;
  runsTableArn: string;
  controlTableArn: string;
  region: string;
}) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        // Lease renewal of the pipeline lock a run's workflow holds: UpdateItem on PIPELINE# items,
        // touching only the lease attributes (so no status, claim or fence can be written).
        Sid: 'RenewPipelineLockLease',
        Effect: 'Allow',
        Action: ['dynamodb:UpdateItem'],
        Resource: [p.controlTableArn],
        Condition: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [pipelinePk('*')] },
          'ForAllValues:StringEquals': { 'dynamodb:Attributes': [...LEASE_ATTRIBUTES] },
          StringEqualsIfExists: { 'dynamodb:ReturnValues': 'NONE' },
        },
      },
      {
        Sid: 'ReadSnowflakeCredentials',
        Effect: 'Allow',
        Action: ['secretsmanager:GetSecretValue'],
        Resource: [p.snowflakeSecretArn],
      },
      {
        Sid: 'RunRegistry',
        Effect: 'Allow',
        Action: [...RUNS_TABLE_ACTIONS],
        Resource: [p.runsTableArn, `${p.runsTableArn}/index/${RUNS_STATUS_INDEX}`],
      },
      {
        Sid: 'WorkflowCallbacks',
        Effect: 'Allow',
        Action: [...CALLBACK_ACTIONS],
        Resource: ['*'],
        Condition: { StringEquals: { 'aws:RequestedRegion': p.region } },
      },
    ],
  };
}

/** The runs table: per region, on demand, encrypted, PITR, TTL; status index for the workers' queue. */
export function runsTableArgs(tags: Record<string, string>): aws.dynamodb.TableArgs {
  return {
    name: RUNS_TABLE_NAME,
    billingMode: 'PAY_PER_REQUEST',
    hashKey: 'pk',
    rangeKey: 'sk',
    attributes: [
      { name: 'pk', type: 'S' },
      { name: 'sk', type: 'S' },
      { name: 'status', type: 'S' },
      { name: 'queuedAt', type: 'S' },
    ],
    globalSecondaryIndexes: [
      { name: RUNS_STATUS_INDEX, hashKey: 'status', rangeKey: 'queuedAt', projectionType: 'ALL' },
    ],
    pointInTimeRecovery: { enabled: true },
    serverSideEncryption: { enabled: true },
    ttl: { attributeName: RUNS_TTL_ATTRIBUTE, enabled: true },
    tags,
  };
}

export interface PodSpecInputs {
  readonly image: pulumi.Input<string>;
  readonly port: number;
  readonly region: string;
  readonly snowflakeSecretId: pulumi.Input<string>;
  /** Name of this region's runs table. */
  readonly runsTable: pulumi.Input<string>;
  /** Name of the control table (this region's replica): the app renews pipeline-lock leases there. */
  readonly controlTable: pulumi.Input<string>;
  readonly resources: ContainerResources;
}

/** The app's env as the Deployment sets it: built from the contract, secrets by reference only. */
export function appEnv(
  p: Pick<PodSpecInputs, 'port' | 'region' | 'snowflakeSecretId' | 'runsTable' | 'controlTable'>,
): k8s.types.input.core.v1.EnvVar[] {
  return containerEnv(
    {
      [DBT_APP_ENV.PORT]: String(p.port),
      [DBT_APP_ENV.AWS_REGION]: p.region,
      [DBT_APP_ENV.AWS_STS_REGIONAL_ENDPOINTS]: 'regional',
      [DBT_APP_ENV.DBT_RUNS_TABLE]: p.runsTable,
      [DBT_APP_ENV.CONTROL_TABLE]: p.controlTable,
      [DBT_APP_ENV.SNOWFLAKE_SECRET_ID]: p.snowflakeSecretId,
      [DBT_APP_ENV.DBT_TARGET]: 'prod',
      [DBT_APP_ENV.SHUTDOWN_GRACE_SECONDS]: String(SHUTDOWN_GRACE_SECONDS),
      // The root filesystem is read-only: everything dbt and Python write goes to /tmp.
      [DBT_APP_ENV.HOME]: '/tmp',
      [DBT_APP_ENV.TMPDIR]: '/tmp',
      [DBT_APP_ENV.DBT_LOG_PATH]: '/tmp/dbt/logs',
      [DBT_APP_ENV.DBT_TARGET_PATH]: '/tmp/dbt/target',
      [DBT_APP_ENV.PYTHONDONTWRITEBYTECODE]: '1',
    },
    { [DBT_APP_ENV.DBT_API_TOKEN]: { name: TOKEN_SECRET_NAME, key: TOKEN_SECRET_KEY } },
  );
}

/** Pod-level half of the "restricted" Pod Security Standard. */
export const POD_SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: RUN_AS_ID,
  runAsGroup: RUN_AS_ID,
  fsGroup: RUN_AS_ID,
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

/** Container-level half of the "restricted" Pod Security Standard, plus a read-only root. */
export const CONTAINER_SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: RUN_AS_ID,
  runAsGroup: RUN_AS_ID,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  privileged: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

/** The Deployment's spec. `replicas` is the only role-dependent value. */
export function deploymentSpec(replicas: number, p: PodSpecInputs): k8s.types.input.apps.v1.DeploymentSpec {
  const probe = { httpGet: { path: HEALTH_PATH, port: 'http', scheme: 'HTTP' }, timeoutSeconds: 3 };
  return {
    replicas,
    revisionHistoryLimit: 5,
    selector: { matchLabels: selectorLabels() },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: {
      metadata: { labels: appLabels() },
      spec: {
        serviceAccountName: SERVICE_ACCOUNT_NAME,
        // The app does not call the Kubernetes API. IRSA's web-identity token is a separate
        // projected volume added by the EKS pod identity webhook, so it is unaffected.
        automountServiceAccountToken: false,
        // In-flight dbt runs get SHUTDOWN_GRACE_SECONDS to finish on rollouts and drains; after
        // that the app marks them INTERRUPTED and calls the workflow back before the pod is killed.
        terminationGracePeriodSeconds: TERMINATION_GRACE_SECONDS,
        securityContext: { ...POD_SECURITY_CONTEXT },
        topologySpreadConstraints: [
          {
            maxSkew: 1,
            topologyKey: 'topology.kubernetes.io/zone',
            // ScheduleAnyway: losing a zone must not leave replicas Pending.
            whenUnsatisfiable: 'ScheduleAnyway',
            labelSelector: { matchLabels: selectorLabels() },
            matchLabelKeys: ['pod-template-hash'],
          },
          {
            maxSkew: 1,
            topologyKey: 'kubernetes.io/hostname',
            whenUnsatisfiable: 'ScheduleAnyway',
            labelSelector: { matchLabels: selectorLabels() },
            matchLabelKeys: ['pod-template-hash'],
          },
        ],
        containers: [
          {
            name: APP_NAME,
            image: p.image,
            imagePullPolicy: 'IfNotPresent',
            ports: [{ name: 'http', containerPort: p.port, protocol: 'TCP' }],
            env: appEnv(p),
            resources: { requests: { ...p.resources.requests }, limits: { ...p.resources.limits } },
            startupProbe: { ...probe, periodSeconds: 5, failureThreshold: 24 },
            readinessProbe: { ...probe, periodSeconds: 10, failureThreshold: 3 },
            livenessProbe: { ...probe, periodSeconds: 20, failureThreshold: 3 },
            securityContext: { ...CONTAINER_SECURITY_CONTEXT, capabilities: { drop: ['ALL'] } },
            volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
          },
        ],
        volumes: [{ name: 'tmp', emptyDir: { sizeLimit: '1Gi' } }],
      },
    },
  };
}

/** TLS on the NLB for this region's endpoint: the Lambdas call `https://<hostname>` and verify the certificate. */
export interface DbtApiTls {
  /** DNS name the certificate covers; a CNAME to the NLB is created in `hostedZoneId`. */
  readonly hostname: string;
  /** ACM certificate in this region. */
  readonly certificateArn: string;
  /** Private hosted zone the Lambdas resolve `hostname` in. */
  readonly hostedZoneId: string;
}

/** TLS 1.2+ only (ELB's TLS 1.3 policy that still accepts 1.2 clients). */
export const TLS_POLICY = 'ELBSecurityPolicy-TLS13-1-2-2021-06';

/** AWS Load Balancer Controller annotations for an internal NLB with ip targets (TLS-terminating unless `tls` is undefined). */
export function serviceAnnotations(
  subnetIds: readonly string[],
  tags: Record<string, string>,
  tls?: Pick<DbtApiTls, 'certificateArn'>,
): Record<string, string> {
  const annotations: Record<string, string> = {
    ...(tls
      ? {
          'service.beta.kubernetes.io/aws-load-balancer-ssl-cert': tls.certificateArn,
          'service.beta.kubernetes.io/aws-load-balancer-ssl-ports': 'https',
          'service.beta.kubernetes.io/aws-load-balancer-ssl-negotiation-policy': TLS_POLICY,
        }
      : {}),
    'service.beta.kubernetes.io/aws-load-balancer-type': 'external',
    'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip',
    'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internal',
    'service.beta.kubernetes.io/aws-load-balancer-subnets': subnetIds.join(','),
    // Pods see the Lambda's address, so the NetworkPolicy can admit by source CIDR.
    'service.beta.kubernetes.io/aws-load-balancer-target-group-attributes': 'preserve_client_ip.enabled=true',
    'service.beta.kubernetes.io/aws-load-balancer-attributes': 'load_balancing.cross_zone.enabled=true',
    'service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol': 'http',
    'service.beta.kubernetes.io/aws-load-balancer-healthcheck-path': HEALTH_PATH,
    'service.beta.kubernetes.io/aws-load-balancer-healthcheck-port': 'traffic-port',
  };
  const tagList = Object.entries(tags).map(([k, v]) => `${k}=${v}`);
  if (tagList.length > 0)
    annotations['service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags'] = tagList.join(',');
  return annotations;
}

export function serviceSpec(
  lambdaCidrs: readonly string[],
  tls: boolean,
): k8s.types.input.core.v1.ServiceSpec {
  return {
    type: 'LoadBalancer',
    selector: selectorLabels(),
    // With TLS the NLB listens on 443 and forwards decrypted traffic to the pod, inside the VPC.
    ports: [
      tls
        ? { name: 'https', port: 443, targetPort: 'http', protocol: 'TCP' }
        : { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
    ],
    // Applied by the controller to the NLB's security group.
    loadBalancerSourceRanges: [...lambdaCidrs],
  };
}

/**
 * Ingress to the app port from the Lambdas' subnets only (the NLB sits in those subnets, so its
 * health checks match too; with client IP preservation, forwarded requests carry the Lambda's
 * address). Kubelet probes need no rule: traffic from a pod's own node is always admitted
 * (Kubernetes NetworkPolicy semantics; the VPC CNI agent allows the node IP explicitly).
 * Egress is left open: the app needs Snowflake, STS and Secrets Manager.
 */
export function networkPolicySpec(
  port: number,
  lambdaCidrs: readonly string[],
): k8s.types.input.networking.v1.NetworkPolicySpec {
  if (lambdaCidrs.length === 0)
    throw new Error('dbt-app NetworkPolicy: no Lambda CIDRs; the API would be unreachable');
  return {
    podSelector: { matchLabels: selectorLabels() },
    policyTypes: ['Ingress'],
    ingress: [
      { from: lambdaCidrs.map((cidr) => ({ ipBlock: { cidr } })), ports: [{ protocol: 'TCP', port }] },
    ],
  };
}

/**
 * At most one pod disrupted at a time, whatever the replica count: with 2 replicas this is
 * "minAvailable 1"; with 1 it lets nodes drain; with 0 (a cold passive region) it is still valid.
 * Being independent of the replica count, it does not change when `activeRegion` flips.
 * `AlwaysAllow` lets a drain evict pods that are not ready anyway.
 */
export function disruptionBudgetSpec(): k8s.types.input.policy.v1.PodDisruptionBudgetSpec {
  return {
    selector: { matchLabels: selectorLabels() },
    maxUnavailable: 1,
    unhealthyPodEvictionPolicy: 'AlwaysAllow',
  };
}

/** The hostname of the Service's load balancer; throws if the controller gave it none. */
export function loadBalancerHost(status: k8s.types.output.core.v1.ServiceStatus | undefined): string {
  const ingress = status?.loadBalancer?.ingress?.[0];
  const host = ingress?.hostname ?? ingress?.ip;
  if (!host)
    throw new Error(
      'dbt-app Service has no load balancer address; is the AWS Load Balancer Controller running?',
    );
  return host;
}

/** The Lambdas' DBT_API_URL: `https://<tls hostname>`, or `http://<NLB>` only when plain HTTP was chosen. */
export function apiUrlFor(tls: Pick<DbtApiTls, 'hostname'> | undefined, nlbHost: string): string {
  return tls ? `https://${tls.hostname}` : `http://${nlbHost}`;
}

export class DbtApp extends pulumi.ComponentResource {
  readonly provider: k8s.Provider;
  readonly role: aws.iam.Role;
  /** This region's run registry (the app's own table, not the global control table). */
  readonly runsTable: aws.dynamodb.Table;
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;
  /** `https://<tls hostname>` (or `http://<NLB>` with plain HTTP): the Lambdas' DBT_API_URL. */
  readonly apiUrl: pulumi.Output<string>;

  constructor(name: string, args: DbtAppArgs, opts?: pulumi.ComponentResourceOptions) {
    super('etl-platform:k8s:DbtApp', name, {}, opts);
    const tags = args.tags ?? {};

    const cluster = aws.eks.getClusterOutput({ name: args.clusterName }, { parent: this });
    const kubeconfig = pulumi
      .all([cluster.endpoint, cluster.certificateAuthorities])
      .apply(([endpoint, cas]) =>
        buildKubeconfig({
          clusterName: args.clusterName,
          region: args.region,
          endpoint,
          certificateAuthorityData: cas[0].data,
        }),
      );
    this.provider = new k8s.Provider(`k8s-${args.region}`, { kubeconfig }, { parent: this });

    this.role = this.irsaRole(name, args, cluster, tags);
    this.runsTable = new aws.dynamodb.Table(`${name}-runs`, runsTableArgs(tags), { parent: this });
    new aws.iam.RolePolicy(
      `${name}-irsa-policy`,
      {
        role: this.role.id,
        policy: pulumi
          .all([args.snowflakeSecret.arnPattern, this.runsTable.arn, args.controlTable.arn])
          .apply(([snowflakeSecretArn, runsTableArn, controlTableArn]) =>
            JSON.stringify(
              dbtAppPolicy({ snowflakeSecretArn, runsTableArn, controlTableArn, region: args.region }),
            ),
          ),
      },
      { parent: this },
    );

    const { deployment, service } = this.workloads(name, args, tags);
    this.deployment = deployment;
    this.service = service;

    const nlbHost = this.service.status.apply(loadBalancerHost);
    if (args.tls) {
      // The certificate names `hostname`, so the Lambdas must reach the NLB by that name.
      new aws.route53.Record(
        `${name}-api-dns`,
        {
          zoneId: args.tls.hostedZoneId,
          name: args.tls.hostname,
          type: 'CNAME',
          ttl: 60,
          records: [nlbHost],
        },
        { parent: this },
      );
    }
    this.apiUrl = nlbHost.apply((host) => apiUrlFor(args.tls, host));
    this.registerOutputs({ apiUrl: this.apiUrl });
  }

  /** The app's IAM role, assumable only by its service account through the cluster's OIDC provider (IRSA). */
  private irsaRole(
    name: string,
    args: DbtAppArgs,
    cluster: pulumi.Output<aws.eks.GetClusterResult>,
    tags: Readonly<Record<string, string>>,
  ): aws.iam.Role {
    const ns = args.namespace;
    const issuer = cluster.identities.apply((ids) => {
      const url = ids?.[0]?.oidcs?.[0]?.issuer;
      if (!url) throw new Error(`EKS cluster ${args.clusterName} has no OIDC issuer; IRSA needs one`);
      return url;
    });
    const providerArn = pulumi
      .all([args.account.partition, args.account.accountId, issuer])
      .apply(([partition, accountId, url]) => oidcProviderArn(partition, accountId, url));
    return new aws.iam.Role(
      `${name}-irsa-role`,
      {
        name: iamRoleName('dbt-app', args.region),
        description: `dbt app in ${args.clusterName} (${ns}/${SERVICE_ACCOUNT_NAME})`,
        assumeRolePolicy: pulumi
          .all([providerArn, issuer])
          .apply(([arn, url]) => JSON.stringify(irsaTrustPolicy(arn, url, ns, SERVICE_ACCOUNT_NAME))),
        tags,
      },
      { parent: this },
    );
  }

  /** The Kubernetes objects: namespace, service account, token secret, Deployment, Service, PDB, NetworkPolicy. */
  private workloads(
    name: string,
    args: DbtAppArgs,
    tags: Readonly<Record<string, string>>,
  ): { deployment: k8s.apps.v1.Deployment; service: k8s.core.v1.Service } {
    const port = args.port ?? 8080;
    const k8sOpts = { parent: this, provider: this.provider };
    const labels = appLabels();
    const namespace = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: args.namespace,
          labels: {
            ...labels,
            // Admission enforces the same profile the Deployment declares.
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
      k8sOpts,
    );
    const inNamespace = (objectName: string) => ({
      name: objectName,
      namespace: namespace.metadata.name,
      labels,
    });

    const serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-sa`,
      {
        metadata: {
          ...inNamespace(SERVICE_ACCOUNT_NAME),
          annotations: {
            'eks.amazonaws.com/role-arn': this.role.arn,
            'eks.amazonaws.com/sts-regional-endpoints': 'true',
          },
        },
        automountServiceAccountToken: false,
      },
      k8sOpts,
    );

    const tokenSecret = new k8s.core.v1.Secret(
      `${name}-token`,
      {
        metadata: inNamespace(TOKEN_SECRET_NAME),
        type: 'Opaque',
        stringData: { [TOKEN_SECRET_KEY]: pulumi.secret(args.apiToken) },
      },
      k8sOpts,
    );

    const deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: inNamespace(APP_NAME),
        spec: deploymentSpec(args.replicas, {
          image: args.image,
          port,
          region: args.region,
          snowflakeSecretId: args.snowflakeSecret.name,
          runsTable: this.runsTable.name,
          controlTable: args.controlTable.name,
          resources: args.resources ?? DEFAULT_RESOURCES,
        }),
      },
      { ...k8sOpts, dependsOn: [serviceAccount, tokenSecret] },
    );

    const cidrs = pulumi.output(args.lambdaCidrs);
    const service = new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: {
          ...inNamespace(APP_NAME),
          annotations: serviceAnnotations(args.loadBalancerSubnetIds, tags, args.tls),
        },
        spec: cidrs.apply((c) => serviceSpec(c, args.tls !== undefined)),
      },
      k8sOpts,
    );

    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      { metadata: inNamespace(APP_NAME), spec: disruptionBudgetSpec() },
      k8sOpts,
    );

    new k8s.networking.v1.NetworkPolicy(
      `${name}-netpol`,
      { metadata: inNamespace(`${APP_NAME}-ingress`), spec: cidrs.apply((c) => networkPolicySpec(port, c)) },
      k8sOpts,
    );
    return { deployment, service };
  }
}
