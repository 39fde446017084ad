/**
 * The one IAM statement type and the one trust-policy shape (contracts/iam.ts): every role the
 * program declares trusts exactly what `trustPolicy` renders, byte for byte, and the workflows'
 * policy merge keeps what it must not merge.
 */
import { strict as assert } from 'assert';
import { type IamStatement, trustPolicy } from '../contracts/iam';
import { irsaTrustPolicy } from '../k8s/dbt-app';
import { TRIGGER_MODES } from '../contracts/trigger-modes';
import { policyDocument } from '../state-machines/policy';
import { runProgram } from '../local/program';

function resolved<T>(output: { apply(f: (value: T) => unknown): unknown }): Promise<T> {
  return new Promise((resolve) => output.apply((value) => (resolve(value), value)));
}

describe('IAM contract', function () {
  this.timeout(300_000);

  it('the IRSA trust (k8s/dbt-app, built by trustPolicy) renders byte for byte as the hand-written policy it replaced', () => {
    const arn = 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC';
    const issuer = 'https://oidc.eks.us-east-1.amazonaws.com/id/ABC';
    const host = 'oidc.eks.us-east-1.amazonaws.com/id/ABC';
    const handWritten =
      `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"${arn}"},` +
      `"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{` +
      `"${host}:sub":"system:serviceaccount:dbt:dbt-app","${host}:aud":"sts.amazonaws.com"}}}]}`;
    assert.equal(JSON.stringify(irsaTrustPolicy(arn, issuer, 'dbt', 'dbt-app')), handWritten);
  });

  for (const mode of TRIGGER_MODES) {
    it(`${mode}: every role's trust policy is what trustPolicy renders for its principal`, async () => {
      const run = await runProgram({
        stack: 'prod-east',
        activeRegion: 'us-east-1',
        config: mode === 'rule-direct' ? undefined : { defaultTriggerMode: mode },
      });
      const roles = run.ofType('aws:iam/role:Role');
      assert.ok(roles.length > 10);
      const services = new Set<string>();
      for (const role of roles) {
        const text = role.inputs.assumeRolePolicy as string;
        const [statement] = JSON.parse(text).Statement;
        if (statement.Principal.Service) services.add(statement.Principal.Service);
        const expected = trustPolicy(statement.Principal, {
          action: statement.Action,
          condition: statement.Condition,
        });
        assert.equal(text, JSON.stringify(expected), role.name);
      }
      // The six service principals the factory serves, present in every mode's program.
      for (const service of ['lambda', 'states', 'scheduler', 'events', 'glue', 's3'])
        assert.ok(services.has(`${service}.amazonaws.com`), `${mode}: no ${service} role`);
    });
  }

  it('the workflow policy merges unconditional Allow statements and keeps a Deny or a Condition as given', async () => {
    const statements: IamStatement[] = [
      { Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: ['arn:q1'] },
      { Sid: 'Merged', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: ['arn:q2'] },
      {
        Sid: 'OnlyFence',
        Effect: 'Allow',
        Action: ['dynamodb:GetItem'],
        Resource: ['arn:table'],
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['FENCE'] } },
      },
      { Effect: 'Deny', Action: ['s3:DeleteObject'], Resource: ['arn:bucket/*'] },
    ];
    const doc = await resolved(policyDocument(statements));
    assert.deepEqual(doc.Statement, [
      { Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: ['arn:q1', 'arn:q2'] },
      statements[2],
      statements[3],
    ]);
  });
});
