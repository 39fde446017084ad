import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ExecutionDoesNotExist, SFNClient, SFNServiceException } from '@aws-sdk/client-sfn';
import { awsClients, nameFailedCalls, sfnAdapter } from '../ops/aws-clients';
import { run } from '../ops/cli';
import { describeError, explainError, isPulumiMissing } from '../ops/errors';
import { memoryIo } from '../ops/io';
import { automationStackOps } from '../ops/stack-ops';
import { fakeSfn } from './harness/ops-fakes';

/** Environment with no AWS credentials anywhere the default chain looks (and no IMDS). */
const NO_CREDENTIALS: Record<string, string | undefined> = {
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
  AWS_PROFILE: undefined,
  AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
  AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: '/nonexistent/etl-ops-test/config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/etl-ops-test/credentials',
};

function withEnv(vars: Record<string, string | undefined>): () => void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** What the SDK raises for AccessDenied (unmodelled in client-sfn): its service exception class with that name. */
const accessDenied = (message: string) =>
  new SFNServiceException({
    name: 'AccessDeniedException',
    $fault: 'client',
    message,
    $metadata: { httpStatusCode: 400 },
  });

const NO_RAW = (text: string) => {
  assert.doesNotMatch(text, /CredentialsProviderError|ENOENT|CommandError|\n\s+at /, text);
};

const ARN =
  'arn:aws:states:us-east-1:123456789012:execution:etl-policycenter-downstream:policycenter-20261127T020000Z';

describe('etl-ops errors say what to do', function () {
  this.timeout(30_000);
  let restore: () => void;
  let emptyBin: string;
  before(() => {
    emptyBin = fs.mkdtempSync(path.join(os.tmpdir(), 'etl-ops-nobin-'));
    restore = withEnv({ ...NO_CREDENTIALS, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  });
  after(() => {
    restore();
    fs.rmSync(emptyBin, { recursive: true, force: true });
  });

  /** The error a real SDK client raises with no credentials (resolution fails before any network). */
  async function realNoCredentials(): Promise<unknown> {
    const client = nameFailedCalls(new DynamoDBClient({ region: 'us-east-1', maxAttempts: 1 }));
    try {
      await client.send(new GetItemCommand({ TableName: 't', Key: { pk: { S: 'x' } } }));
    } catch (error) {
      return error;
    } finally {
      client.destroy();
    }
    assert.fail('the call should fail without credentials');
  }

  it('no credentials: names the call and the variables/profile to set, not the class', async () => {
    const error = await realNoCredentials();
    assert.equal((error as Error).name, 'CredentialsProviderError', 'the real SDK error');
    const e = explainError(error);
    assert.equal(e.kind, 'no-credentials');
    assert.equal(e.summary, 'DynamoDB.GetItem: no AWS credentials found');
    for (const fix of ['AWS_PROFILE', 'aws sso login', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'])
      assert.ok(e.fix?.includes(fix), fix);
    NO_RAW(describeError(error));
  });

  it('an expired SSO session (a CredentialsProviderError constructed from the SDK class) says to log in again', () => {
    const { CredentialsProviderError } = require('@smithy/core/config') as {
      CredentialsProviderError: new (m: string) => Error;
    };
    const e = explainError(
      new CredentialsProviderError(
        'The SSO session associated with this profile has expired. To refresh this SSO session run aws sso login.',
      ),
    );
    assert.equal(e.kind, 'expired-credentials');
    assert.match(e.fix ?? '', /aws sso login --profile/);
  });

  it('service errors from the real SDK classes: denied names the IAM action of the failed call', () => {
    const denied = accessDenied('User is not authorized to perform states:DescribeExecution');
    const e = explainError(denied, 'SFN.DescribeExecution');
    assert.equal(e.kind, 'access-denied');
    assert.match(e.fix ?? '', /states:DescribeExecution/);
    const missing = new ExecutionDoesNotExist({ message: 'Execution Does Not Exist', $metadata: {} });
    assert.equal(
      describeError(missing, 'SFN.DescribeExecution'),
      'SFN.DescribeExecution: ExecutionDoesNotExist: Execution Does Not Exist',
    );
  });

  it('a real spawn of a missing pulumi binary and the Automation API without the CLI both map to "install Pulumi"', async () => {
    const spawned = await new Promise<Error>((resolve) =>
      spawn('pulumi', ['version'], { env: { PATH: emptyBin } }).on('error', resolve),
    );
    assert.match(spawned.message, /spawn pulumi ENOENT/, 'the raw error this maps');
    assert.ok(isPulumiMissing(spawned));
    const undo = withEnv({ PATH: emptyBin });
    let automation: unknown;
    try {
      await automationStackOps(path.join(__dirname, '..')).getConfig('prod-east', 'activeRegion');
    } catch (error) {
      automation = error;
    } finally {
      undo();
    }
    assert.ok(automation, 'the Automation API fails without the CLI');
    for (const error of [spawned, automation]) {
      const e = explainError(error);
      assert.equal(e.kind, 'no-pulumi', String(error));
      assert.match(e.fix ?? '', /get\.pulumi\.com/);
      NO_RAW(describeError(error));
    }
    assert.doesNotMatch(explainError(new Error('spawn dbt ENOENT')).kind, /no-pulumi/);
  });

  describe('the CLI end to end', () => {
    const workDir = path.join(__dirname, '..');
    const cli = async (argv: string[], clients = awsClients()) => {
      const io = memoryIo();
      const undo = withEnv({ PATH: emptyBin });
      try {
        const code = await run(argv, {
          io,
          clients: () => clients,
          stackOps: (dir) => automationStackOps(dir),
          workDir,
          operator: 'alice',
          now: () => new Date('2026-11-27T12:00:00Z'),
        });
        return { code, text: io.text() };
      } finally {
        undo();
      }
    };

    it('failover/failback --dry-run print their plan without the Pulumi CLI; a real run says to install it', async () => {
      for (const argv of [
        ['failover', '--to', 'us-west-1', '--dry-run'],
        ['failback', '--dry-run'],
      ]) {
        const r = await cli(argv);
        assert.equal(r.code, 0, r.text);
        assert.match(r.text, /Pulumi CLI is not installed: reading the current config from the committed/);
        assert.match(r.text, /Current activeRegion: prod-east=us-east-1, prod-west=us-east-1/);
        assert.match(
          r.text,
          /Plan \(dry run, nothing will be changed\):\n {2}- pulumi config set activeRegion/,
        );
        NO_RAW(r.text);
      }
      const real = await cli(['failover', '--to', 'us-west-1', '--yes']);
      assert.equal(real.code, 1);
      assert.match(real.text, /^error: The Pulumi CLI is not installed or not on PATH/m);
      assert.match(real.text, /failover --dry-run/);
      NO_RAW(real.text);
    });

    it('status without credentials: each section names its call, the fix is printed once', async () => {
      const r = await cli(['status', '--pipeline', 'policycenter', '--region', 'us-east-1']);
      assert.equal(r.code, 1);
      assert.match(r.text, /could not read batches: DynamoDB\.Query: no AWS credentials found/);
      assert.match(
        r.text,
        /rules on bus etl-platform: unavailable \(EventBridge\.ListRules: no AWS credentials found\)/,
      );
      assert.equal(r.text.match(/Set AWS_PROFILE=/g)?.length, 1, r.text);
      NO_RAW(r.text);
    });

    it('redrive --dry-run names the call that failed: DescribeExecution, not RedriveExecution', async () => {
      const real = awsClients();
      const r = await cli(['redrive', '--dry-run', '--execution', ARN], real);
      assert.equal(r.code, 1);
      assert.match(r.text, /^error: SFN\.DescribeExecution: no AWS credentials found\.$/m);
      assert.doesNotMatch(r.text, /RedriveExecution/);
      assert.match(r.text, /AWS_PROFILE/);
      assert.match(r.text, /etl-ops rerun --pipeline policycenter --batch policycenter-20261127T020000Z/);
      NO_RAW(r.text);
    });

    it('redrive: a failure in a later read names that read (fakes; the real adapter tags the same way)', async () => {
      const denied = accessDenied('not authorized');
      const { sfn } = fakeSfn({
        describeStateMachine: async () => {
          throw denied;
        },
      });
      const base = awsClients();
      const r = await cli(['redrive', '--dry-run', '--execution', ARN], { ...base, sfn: () => sfn });
      assert.equal(r.code, 1);
      assert.match(
        r.text,
        /^error: SFN\.DescribeStateMachine: not allowed \(AccessDeniedException\): your role needs states:DescribeStateMachine/m,
      );
      // The real adapter: the SDK middleware records the call on the error.
      const client = nameFailedCalls(new SFNClient({ region: 'us-east-1', maxAttempts: 1 }));
      await assert.rejects(
        sfnAdapter(client).describeStateMachine('arn:aws:states:us-east-1:123456789012:stateMachine:x'),
        (e: unknown) => describeError(e).startsWith('SFN.DescribeStateMachine: no AWS credentials found'),
      );
      client.destroy();
    });
  });
});

describe('etl-ops runs without a build step', function () {
  this.timeout(60_000);
  const root = path.join(__dirname, '..');
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    scripts: Record<string, string>;
  };

  it('the package.json bin is a committed shim (not tsc output) that runs the CLI from any directory', () => {
    const bin = path.join(root, pkg.bin['etl-ops']);
    assert.ok(fs.existsSync(bin), `${pkg.bin['etl-ops']} exists after npm ci, with no build`);
    assert.match(fs.readFileSync(bin, 'utf8'), /^#!\/usr\/bin\/env node/);
    const ignored = spawnSync('git', ['check-ignore', '-q', pkg.bin['etl-ops']], { cwd: root });
    if (ignored.status !== 128)
      assert.equal(ignored.status, 1, `${pkg.bin['etl-ops']} must not be gitignored`); // 128: not a git checkout
    const r = spawnSync(process.execPath, [bin, 'failback', '--dry-run'], {
      cwd: os.tmpdir(),
      env: {
        ...process.env,
        PATH: '/nonexistent',
        ...Object.fromEntries(Object.entries(NO_CREDENTIALS).filter(([, v]) => v !== undefined)),
      },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Plan \(dry run, nothing will be changed\):/);
    assert.doesNotMatch(r.stdout + r.stderr, /NodeVersionSupportWarning|ENOENT/);
  });

  it('npm run ops runs the TypeScript directly; the README shows failback beside failover', () => {
    assert.match(pkg.scripts.ops, /ts-node .*ops\/cli\.ts/);
    const r = spawnSync('npm', ['run', '-s', 'ops', '--', '--help'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /failback/);
    assert.match(fs.readFileSync(path.join(root, 'README.md'), 'utf8'), /`failover`, `failback`/);
  });
});
