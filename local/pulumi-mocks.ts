import * as pulumi from '@pulumi/pulumi';
import { createHash } from 'node:crypto';

/**
 * A Pulumi mock monitor that records every registered resource and returns realistic computed
 * state: physical names, ARNs in the right region and account, queue URLs. Tests (and the local
 * twin's extraction) read the recorded raw inputs.
 */

export const ACCOUNT_ID = '123456789012';
const SECRET_SIG = '4dabf18193072939515e22adb298388d';

export interface RecordedResource {
  readonly type: string;
  /** Logical (Pulumi) name. */
  readonly name: string;
  /** Raw inputs, with secret wrappers removed. */
  readonly inputs: Record<string, any>;
  /** Paths (a.b[0].c) of inputs that arrived as secrets. */
  readonly secretPaths: readonly string[];
  /** `<urn>::<id>` of the explicit provider, or "" for the default provider. */
  readonly provider: string;
  /** Region the resource lives in (explicit provider, v7 `region` input, or the stack's). */
  readonly region: string;
  readonly custom: boolean;
  readonly id: string;
  /** The state the mock returned (arn, name, url...). */
  readonly state: Record<string, any>;
}

export function unwrapSecrets(value: unknown, path = '', secretPaths: string[] = []): unknown {
  if (Array.isArray(value)) return value.map((v, i) => unwrapSecrets(v, `${path}[${i}]`, secretPaths));
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (record[SECRET_SIG] === '1b47061264138c4ac30d75fd1eb44270') {
      secretPaths.push(path);
      return unwrapSecrets(record.value, path, secretPaths);
    }
    return Object.fromEntries(
      Object.entries(record).map(([k, v]) => [k, unwrapSecrets(v, path ? `${path}.${k}` : k, secretPaths)]),
    );
  }
  return value;
}

function suffix(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 7);
}

type ArnShape = (
  physical: string,
  inputs: Record<string, any>,
) => { service: string; resource: string; global?: 'iam' | 's3' };

const ARN_SHAPES: Record<string, ArnShape> = {
  'aws:sqs/queue:Queue': (n) => ({ service: 'sqs', resource: n }),
  'aws:sns/topic:Topic': (n) => ({ service: 'sns', resource: n }),
  'aws:kms/key:Key': (n) => ({ service: 'kms', resource: `key/${n}` }),
  'aws:dynamodb/table:Table': (n) => ({ service: 'dynamodb', resource: `table/${n}` }),
  'aws:cloudwatch/eventBus:EventBus': (n) => ({ service: 'events', resource: `event-bus/${n}` }),
  'aws:cloudwatch/eventArchive:EventArchive': (n) => ({ service: 'events', resource: `archive/${n}` }),
  'aws:cloudwatch/eventRule:EventRule': (n, i) => ({
    service: 'events',
    resource: i.eventBusName && i.eventBusName !== 'default' ? `rule/${i.eventBusName}/${n}` : `rule/${n}`,
  }),
  'aws:cloudwatch/eventEndpoint:EventEndpoint': (n) => ({ service: 'events', resource: `endpoint/${n}` }),
  'aws:cloudwatch/metricAlarm:MetricAlarm': (n) => ({ service: 'cloudwatch', resource: `alarm:${n}` }),
  'aws:cloudwatch/logGroup:LogGroup': (n) => ({ service: 'logs', resource: `log-group:${n}` }),
  'aws:cloudwatch/dashboard:Dashboard': (n) => ({
    service: 'cloudwatch',
    resource: `dashboard/${n}`,
    global: 'iam',
  }),
  'aws:iam/role:Role': (n) => ({ service: 'iam', resource: `role/${n}`, global: 'iam' }),
  'aws:iam/policy:Policy': (n) => ({ service: 'iam', resource: `policy/${n}`, global: 'iam' }),
  'aws:lambda/function:Function': (n) => ({ service: 'lambda', resource: `function:${n}` }),
  'aws:sfn/stateMachine:StateMachine': (n) => ({ service: 'states', resource: `stateMachine:${n}` }),
  'aws:glue/job:Job': (n) => ({ service: 'glue', resource: `job/${n}` }),
  'aws:glue/connection:Connection': (n) => ({ service: 'glue', resource: `connection/${n}` }),
  'aws:s3/bucket:Bucket': (n) => ({ service: 's3', resource: n, global: 's3' }),
  'aws:s3/bucketV2:BucketV2': (n) => ({ service: 's3', resource: n, global: 's3' }),
  'aws:scheduler/schedule:Schedule': (n, i) => ({
    service: 'scheduler',
    resource: `schedule/${i.groupName ?? 'default'}/${n}`,
  }),
  'aws:scheduler/scheduleGroup:ScheduleGroup': (n) => ({
    service: 'scheduler',
    resource: `schedule-group/${n}`,
  }),
  'aws:secretsmanager/secret:Secret': (n) => ({
    service: 'secretsmanager',
    resource: `secret:${n}-${suffix(n).slice(0, 6)}`,
  }),
  'aws:ecr/repository:Repository': (n) => ({ service: 'ecr', resource: `repository/${n}` }),
};

/** Resources whose Pulumi id is not their name. */
function idFor(type: string, physical: string, state: Record<string, any>): string {
  if (type === 'aws:sqs/queue:Queue') return state.url;
  if (type === 'aws:s3/bucket:Bucket' || type === 'aws:s3/bucketV2:BucketV2') return state.bucket;
  if (type === 'aws:sfn/stateMachine:StateMachine' || type === 'aws:sns/topic:Topic') return state.arn;
  if (type === 'aws:kms/key:Key') return physical;
  return physical;
}

export class RecordingMocks implements pulumi.runtime.Mocks {
  readonly resources: RecordedResource[] = [];
  readonly calls: pulumi.runtime.MockCallArgs[] = [];
  private readonly providerRegions = new Map<string, string>();

  constructor(
    private readonly stackRegion: string,
    private readonly callResults: Record<string, (inputs: any) => Record<string, any>> = {},
  ) {}

  private regionOf(provider: string | undefined, inputs: Record<string, any>): string {
    if (typeof inputs.region === 'string' && inputs.region) return inputs.region;
    const id = provider ? provider.slice(provider.lastIndexOf('::') + 2) : '';
    return this.providerRegions.get(id) ?? this.stackRegion;
  }

  newResource(args: pulumi.runtime.MockResourceArgs): pulumi.runtime.MockResourceResult {
    const secretPaths: string[] = [];
    const inputs = unwrapSecrets(args.inputs, '', secretPaths) as Record<string, any>;
    const region = this.regionOf(args.provider, inputs);
    const physical: string = inputs.name ?? `${args.name}-${suffix(args.name)}`;
    const state: Record<string, any> = { ...inputs, name: physical };

    const shape = ARN_SHAPES[args.type]?.(physical, inputs);
    if (shape) {
      state.arn =
        shape.global === 's3'
          ? `arn:aws:s3:::${physical}`
          : shape.global === 'iam'
            ? `arn:aws:${shape.service}::${ACCOUNT_ID}:${shape.resource}`
            : `arn:aws:${shape.service}:${region}:${ACCOUNT_ID}:${shape.resource}`;
    }
    if (args.type === 'aws:sqs/queue:Queue')
      state.url = `https://sqs.${region}.amazonaws.com/${ACCOUNT_ID}/${physical}`;
    if (args.type === 'aws:s3/bucketV2:BucketV2' || args.type === 'aws:s3/bucket:Bucket') {
      state.bucket = inputs.bucket ?? physical;
      state.arn = `arn:aws:s3:::${state.bucket}`;
    }
    if (args.type === 'aws:lambda/function:Function') {
      state.invokeArn = `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${state.arn}/invocations`;
    }
    if (args.type === 'aws:lambda/invocation:Invocation') {
      state.result = JSON.stringify({ ...JSON.parse(inputs.input ?? '{}'), epoch: 1, changed: true });
    }
    if (args.type === 'awsx:ecr:Repository') {
      // A remote component: no children under mocks, so return what the real one outputs.
      const repoName: string = inputs.name ?? physical;
      const url = `${ACCOUNT_ID}.dkr.ecr.${region}.amazonaws.com/${repoName}`;
      state.url = url;
      state.repository = {
        name: repoName,
        arn: `arn:aws:ecr:${region}:${ACCOUNT_ID}:repository/${repoName}`,
        repositoryUrl: url,
      };
    }
    if (args.type === 'kubernetes:core/v1:Service' && inputs.spec?.type === 'LoadBalancer') {
      // What the AWS Load Balancer Controller writes back for an internal NLB.
      const lb =
        `k8s-${inputs.metadata?.namespace ?? 'default'}-${inputs.metadata?.name ?? args.name}-${suffix(args.name)}`.slice(
          0,
          32,
        );
      state.status = {
        loadBalancer: { ingress: [{ hostname: `${lb}-${suffix(lb)}.elb.${region}.amazonaws.com` }] },
      };
    }
    if (args.type.startsWith('pulumi:providers:')) {
      const id = `${args.name}_id`;
      if (inputs.region) this.providerRegions.set(id, inputs.region);
      this.resources.push({
        type: args.type,
        name: args.name,
        inputs,
        secretPaths,
        provider: '',
        region,
        custom: true,
        id,
        state,
      });
      return { id, state };
    }

    const id = args.custom === false ? '' : idFor(args.type, physical, state);
    this.resources.push({
      type: args.type,
      name: args.name,
      inputs,
      secretPaths,
      provider: args.provider ?? '',
      region,
      custom: args.custom !== false,
      id,
      state,
    });
    return { id: args.custom === false ? undefined : id, state };
  }

  call(args: pulumi.runtime.MockCallArgs): pulumi.runtime.MockCallResult {
    this.calls.push(args);
    const custom = this.callResults[args.token];
    if (custom) return custom(args.inputs);
    switch (args.token) {
      case 'aws:index/getCallerIdentity:getCallerIdentity':
        return {
          accountId: ACCOUNT_ID,
          arn: `arn:aws:iam::${ACCOUNT_ID}:user/deployer`,
          userId: 'AIDEXAMPLE',
          id: ACCOUNT_ID,
        };
      case 'aws:index/getPartition:getPartition':
        return { partition: 'aws', dnsSuffix: 'amazonaws.com', id: 'aws' };
      case 'aws:index/getRegion:getRegion':
        return {
          name: this.regionOf(args.provider, args.inputs ?? {}),
          region: this.regionOf(args.provider, args.inputs ?? {}),
        };
      case 'aws:eks/getCluster:getCluster': {
        const region = this.regionOf(args.provider, args.inputs ?? {});
        const name: string = args.inputs.name;
        const oidcId = createHash('sha256')
          .update(`${region}/${name}`)
          .digest('hex')
          .slice(0, 32)
          .toUpperCase();
        return {
          id: name,
          name,
          arn: `arn:aws:eks:${region}:${ACCOUNT_ID}:cluster/${name}`,
          endpoint: `https://${oidcId}.gr7.${region}.eks.amazonaws.com`,
          certificateAuthorities: [{ data: Buffer.from(`test CA for ${name}`).toString('base64') }],
          identities: [{ oidcs: [{ issuer: `https://oidc.eks.${region}.amazonaws.com/id/${oidcId}` }] }],
          vpcConfig: {
            vpcId: `vpc-${suffix(name)}0`,
            subnetIds: [`subnet-${suffix(`${name}-a`)}0a`, `subnet-${suffix(`${name}-b`)}0b`],
            clusterSecurityGroupId: `sg-${suffix(name)}0c`,
            endpointPrivateAccess: true,
            endpointPublicAccess: false,
          },
          status: 'ACTIVE',
          version: '1.33',
        };
      }
      case 'aws:ec2/getSubnet:getSubnet': {
        // A stable /24 derived from the subnet id.
        const digest = createHash('sha256').update(String(args.inputs.id)).digest();
        return {
          ...args.inputs,
          cidrBlock: `10.${digest[0] % 64}.${digest[1]}.0/24`,
          vpcId: 'vpc-0123456789abcdef0',
        };
      }
      case 'aws:secretsmanager/getSecret:getSecret': {
        const region = this.regionOf(args.provider, args.inputs ?? {});
        const name: string = args.inputs.name;
        const arn = `arn:aws:secretsmanager:${region}:${ACCOUNT_ID}:secret:${name}-${suffix(name).slice(0, 6)}`;
        return { ...args.inputs, arn, id: arn };
      }
      default:
        return args.inputs ?? {};
    }
  }
}
