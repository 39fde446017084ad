// The polyfill must load before aws-local-stepfunctions (imported by sfn-local).
import '../local/promise-polyfill';
import { strict as assert } from 'node:assert';
import * as pulumi from '@pulumi/pulumi';
import { checkGraph } from '../state-machines/graph';
import { policyDocument } from '../state-machines/policy';
import { RETRYABLE } from '../state-machines/tasks';
import { ALERT_NOT_PUBLISHED, INVALID_ALERT, watchdogAlertWorkflow } from '../state-machines/watchdog-alerts';
import { runWorkflow, StatesError, type RunResult } from '../local/sfn-local';
import { validateAsl } from './harness/asl-validate';

/** The watchdog's alert workflow on aws-local-stepfunctions (docs/watchdog.md). */

const ACCOUNT = '123456789012';
const TOPIC_ARN = `arn:aws:sns:us-east-1:${ACCOUNT}:etl-alerts-topic`;
const KEY_ARN = `arn:aws:kms:us-east-1:${ACCOUNT}:key/alerts-key`;
const built = watchdogAlertWorkflow({ alertTopic: { arn: TOPIC_ARN, kmsKeyArn: KEY_ARN } });
const ALERT = { subject: '[etl-watchdog] policycenter: upstream batch overdue', message: 'The tick ...' };

const entered = (res: RunResult) =>
  res.events.filter((e) => e.type === 'StateEntered').map((e) => (e.state as { name: string }).name);

function resolve<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((res) => o.apply((v) => res(v)));
}

describe('watchdog alert workflow', () => {
  it('is valid ASL (asl-validator) with a sound graph', () => {
    assert.deepEqual(validateAsl(built.definition), []);
    assert.deepEqual(checkGraph(built.definition), []);
  });

  it('its role needs exactly sns:Publish on the topic and the topic key, no wildcard', async () => {
    const doc = await resolve(policyDocument(built.statements));
    const byResource: Record<string, string[]> = {};
    for (const s of doc.Statement) {
      for (const a of s.Action) assert.ok(!a.includes('*'), `wildcard action ${a}`);
      for (const r of s.Resource) byResource[r] = [...(byResource[r] ?? []), ...s.Action].sort();
    }
    assert.deepEqual(byResource, {
      [TOPIC_ARN]: ['sns:Publish'],
      [KEY_ARN]: ['kms:Decrypt', 'kms:GenerateDataKey'],
    });
  });

  it('publishes {subject, message} to the topic and succeeds in 3 transitions', async () => {
    const res = await runWorkflow(built.definition, ALERT, { handlers: {} });
    assert.equal(res.status, 'SUCCEEDED');
    assert.deepEqual(res.router.snsMessages, [
      { TopicArn: TOPIC_ARN, Subject: ALERT.subject, Message: ALERT.message },
    ]);
    assert.deepEqual(entered(res), ['CheckAlert', 'PublishAlert', 'Published']);
    assert.equal(res.transitions, 3);
  });

  it('retries a throttled publish with the helper retries, then fails AlertNotPublished when they are spent', async () => {
    const publish = built.definition.States.PublishAlert;
    assert.equal(publish.Type, 'Task');
    assert.deepEqual(
      publish.Type === 'Task' ? publish.Retry?.map((r) => [r.ErrorEquals, r.MaxAttempts]) : [],
      [[[...RETRYABLE.sns], 4]],
    );
    let calls = 0;
    const res = await runWorkflow(built.definition, ALERT, {
      handlers: {
        sns: () => {
          calls++;
          throw new StatesError('SNS.ThrottledException', 'Rate exceeded');
        },
      },
    });
    assert.equal(res.status, 'FAILED');
    assert.equal(res.error, ALERT_NOT_PUBLISHED);
    assert.match(String(res.cause), /after the task retries/);
    assert.equal(calls, 5, 'the first attempt and 4 retries');
    assert.deepEqual(entered(res), ['CheckAlert', 'PublishAlert', 'AlertNotPublished']);
  });

  it('a throttled publish that then goes through succeeds', async () => {
    let calls = 0;
    const res = await runWorkflow(built.definition, ALERT, {
      handlers: {
        sns: () => {
          if (++calls < 3) throw new StatesError('SNS.ThrottledException', 'Rate exceeded');
        },
      },
    });
    assert.equal(res.status, 'SUCCEEDED');
    assert.equal(calls, 3);
  });

  it('an error the helper does not retry (authorization) fails at once', async () => {
    let calls = 0;
    const res = await runWorkflow(built.definition, ALERT, {
      handlers: {
        sns: () => {
          calls++;
          throw new StatesError('SNS.AuthorizationErrorException', 'not authorized');
        },
      },
    });
    assert.equal(res.status, 'FAILED');
    assert.equal(res.error, ALERT_NOT_PUBLISHED);
    assert.equal(calls, 1);
  });

  for (const [what, input] of [
    ['no subject', { message: 'm' }],
    ['no message', { subject: 's' }],
    ['a message that is not a string', { subject: 's', message: { text: 'm' } }],
  ] as const) {
    it(`${what}: fails InvalidAlert without publishing`, async () => {
      const res = await runWorkflow(built.definition, input, { handlers: {} });
      assert.equal(res.status, 'FAILED');
      assert.equal(res.error, INVALID_ALERT);
      assert.deepEqual(res.router.snsMessages, []);
    });
  }
});
