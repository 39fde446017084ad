import * as assert from 'node:assert/strict';
import { redriveQueue, resendFor, showMessages } from '../ops/commands/dlq';
import { parseExecutionArn, redrive } from '../ops/commands/redrive';
import { archiveDelayWarning, replay } from '../ops/commands/replay';
import { memoryIo, OpsError } from '../ops/io';
import { ACCOUNT, FakeQueue, fakeEvents, fakeSfn, smArn } from './harness/ops-fakes';

const RULE_ARN = `arn:aws:events:us-east-1:${ACCOUNT}:rule/etl-platform/policycenter-downstream-trigger`;
const event = (batchId: string) =>
  JSON.stringify({
    version: '0',
    id: `id-${batchId}`,
    'detail-type': 'UpstreamBatchSucceeded',
    source: 'com.example-insurer.etl-platform',
    account: ACCOUNT,
    time: '2026-11-27T02:41:07Z',
    region: 'us-east-1',
    resources: [`arn:aws:states:us-east-1:${ACCOUNT}:execution:etl-policycenter-upstream:${batchId}`],
    detail: { schemaVersion: '1.0', pipeline: 'policycenter', batchId },
  });
const ruleAttrs = {
  RULE_ARN,
  TARGET_ARN: smArn('etl-policycenter-downstream'),
  ERROR_CODE: 'SDK_CLIENT_ERROR',
  ERROR_MESSAGE: 'Throttling',
};

describe('etl-ops dlq', () => {
  it('maps a rule DLQ message to PutEvents on the rule bus, a forward-rule one to the peer bus, a schedule one to StartExecution', () => {
    const onBus = resendFor({
      messageId: '1',
      receiptHandle: '',
      body: event('policycenter-20261127T020000Z'),
      attributes: ruleAttrs,
    });
    assert.equal(onBus.kind, 'putEvents');
    assert.deepEqual(
      onBus.kind === 'putEvents' && {
        region: onBus.region,
        bus: onBus.busName,
        dt: onBus.entry.DetailType,
        detail: JSON.parse(onBus.entry.Detail).batchId,
      },
      {
        region: 'us-east-1',
        bus: 'etl-platform',
        dt: 'UpstreamBatchSucceeded',
        detail: 'policycenter-20261127T020000Z',
      },
    );
    const peerBus = `arn:aws:events:us-west-1:${ACCOUNT}:event-bus/etl-platform`;
    const forward = resendFor({
      messageId: '2',
      receiptHandle: '',
      body: event('b'),
      attributes: {
        RULE_ARN: RULE_ARN.replace('policycenter-downstream-trigger', 'forward-to-us-west-1'),
        TARGET_ARN: peerBus,
      },
    });
    assert.ok(forward.kind === 'putEvents' && forward.busName === peerBus && forward.region === 'us-west-1');
    const schedule = resendFor({
      messageId: '3',
      receiptHandle: '',
      body: '{"scheduledTime":"2026-11-27T07:00:00Z"}',
      attributes: { TARGET_ARN: smArn('etl-policycenter-upstream'), ERROR_CODE: 'ThrottlingException' },
    });
    assert.deepEqual(schedule, {
      kind: 'startExecution',
      region: 'us-east-1',
      stateMachineArn: smArn('etl-policycenter-upstream'),
      input: '{"scheduledTime":"2026-11-27T07:00:00Z"}',
    });
  });

  it('redrive deletes each message only after its re-send succeeded', async () => {
    const queue = new FakeQueue();
    const ids = ['T020000Z', 'T030000Z', 'T040000Z'].map((t) =>
      queue.add(event(`policycenter-20261127${t}`), ruleAttrs),
    );
    const order: string[] = [];
    const { events, put } = fakeEvents({
      putEvents: async (entries) => {
        order.push(`put ${JSON.parse(entries[0].Detail).batchId}`);
        assert.equal(queue.messages.size, 3 - put.length, 'nothing is deleted before its re-send');
        put.push(...entries);
        return { failedEntryCount: 0, errors: [] };
      },
    });
    const origDelete = queue.delete.bind(queue);
    queue.delete = async (url, handle) => {
      order.push(`delete ${handle.split('#')[0]}`);
      await origDelete(url, handle);
    };
    const io = memoryIo();
    const result = await redriveQueue(
      io,
      { queueUrl: queue.url, yes: true },
      { sqs: queue, events: () => events, sfn: () => fakeSfn().sfn },
    );
    assert.deepEqual(result, { resent: 3, failed: [] });
    assert.deepEqual(order, [
      'put policycenter-20261127T020000Z',
      `delete ${ids[0]}`,
      'put policycenter-20261127T030000Z',
      `delete ${ids[1]}`,
      'put policycenter-20261127T040000Z',
      `delete ${ids[2]}`,
    ]);
    assert.equal(queue.messages.size, 0);
    assert.match(
      io.text(),
      /\[1\/3\] m-1: PutEvents UpstreamBatchSucceeded to bus etl-platform \(us-east-1\) ok, deleted/,
    );
  });

  it('a failing re-send leaves its message in the queue: nothing is lost, and the command fails', async () => {
    const queue = new FakeQueue();
    const good = queue.add(event('policycenter-20261127T020000Z'), ruleAttrs);
    const rejected = queue.add(event('policycenter-20261127T030000Z'), ruleAttrs);
    const thrown = queue.add('{"scheduledTime":"2026-11-27T07:00:00Z"}', {
      TARGET_ARN: smArn('etl-policycenter-upstream'),
    });
    const garbage = queue.add('not json', ruleAttrs);
    const { events } = fakeEvents({
      putEvents: async (entries) =>
        JSON.parse(entries[0].Detail).batchId.endsWith('T030000Z')
          ? { failedEntryCount: 1, errors: ['InternalFailure: try again'] }
          : { failedEntryCount: 0, errors: [] },
    });
    const { sfn } = fakeSfn({
      startExecution: async () => {
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      },
    });
    const io = memoryIo();
    await assert.rejects(
      redriveQueue(
        io,
        { queueUrl: queue.url, yes: true },
        { sqs: queue, events: () => events, sfn: () => sfn },
      ),
      (e: Error) => e instanceof OpsError && /3 message\(s\) could not be re-sent/.test(e.message),
    );
    assert.deepEqual(queue.deleted, [good]);
    assert.deepEqual(
      queue.ids().sort(),
      [rejected, thrown, garbage].sort(),
      'every failed message is still in the queue',
    );
    // After the visibility timeout they are receivable again, bodies intact.
    queue.clock += 301;
    assert.deepEqual((await queue.depth()).visible, 3);
    assert.match(
      io.errors.join('\n'),
      /m-2: re-send failed, message kept in the queue \(PutEvents rejected the entry: InternalFailure/,
    );
    assert.match(
      io.errors.join('\n'),
      /m-3: re-send failed, message kept in the queue \(ThrottlingException: Rate exceeded\)/,
    );
  });

  it('--dry-run and a declined confirmation touch nothing', async () => {
    const queue = new FakeQueue();
    queue.add(event('policycenter-20261127T020000Z'), ruleAttrs);
    const { events, put } = fakeEvents();
    await redriveQueue(
      memoryIo(),
      { queueUrl: queue.url, dryRun: true },
      { sqs: queue, events: () => events, sfn: () => fakeSfn().sfn },
    );
    await assert.rejects(
      redriveQueue(
        memoryIo([false]),
        { queueUrl: queue.url },
        { sqs: queue, events: () => events, sfn: () => fakeSfn().sfn },
      ),
      /Aborted/,
    );
    assert.equal(put.length, 0);
    assert.equal(queue.messages.size, 1);
  });

  it('show prints the attributes and the redrive target, and deletes nothing', async () => {
    const queue = new FakeQueue();
    queue.add(event('policycenter-20261127T020000Z'), ruleAttrs);
    const io = memoryIo();
    await showMessages(io, queue, queue.url);
    const text = io.text();
    for (const [k, v] of Object.entries(ruleAttrs)) assert.ok(text.includes(`${k}: ${v}`), k);
    assert.match(text, /redrive: PutEvents UpstreamBatchSucceeded to bus etl-platform \(us-east-1\)/);
    assert.equal((await queue.depth()).visible, 1, 'released for the next reader');
  });
});

describe('etl-ops redrive', () => {
  const ARN = `arn:aws:states:us-east-1:${ACCOUNT}:execution:etl-policycenter-downstream:policycenter-20261127T030000Z`;
  const NOW = new Date('2026-11-27T12:00:00Z');
  const failed = {
    executionArn: ARN,
    stateMachineArn: smArn('etl-policycenter-downstream'),
    status: 'FAILED',
    stopDate: new Date('2026-11-27T03:45:30Z'),
    redriveStatus: 'REDRIVABLE',
  };

  it('rejects a malformed ARN with a clear error, before any call', async () => {
    for (const bad of [
      'nonsense',
      'arn:aws:states:us-east-1:123:execution:sm:name',
      `arn:aws:states:us-east-1:${ACCOUNT}:stateMachine:etl-policycenter-downstream`,
      `arn:aws:lambda:us-east-1:${ACCOUNT}:function:f`,
    ]) {
      await assert.rejects(
        redrive(memoryIo(), { executionArn: bad, yes: true }, () =>
          assert.fail('no client call for a malformed ARN'),
        ),
        (e: Error) =>
          e instanceof OpsError &&
          /is not a Step Functions execution ARN. Expected arn:aws:states:<region>:<account-id>:execution:/.test(
            e.message,
          ),
      );
    }
    assert.equal(parseExecutionArn(ARN).stateMachineArn, smArn('etl-policycenter-downstream'));
  });

  it('redrives a FAILED Standard execution within 14 days', async () => {
    const { sfn, redriven } = fakeSfn({ describeExecution: async () => failed });
    assert.equal(
      await redrive(
        memoryIo(),
        { executionArn: ARN, yes: true },
        () => sfn,
        () => NOW,
      ),
      'redriven',
    );
    assert.deepEqual(redriven, [ARN]);
  });

  const cases: Array<[string, Parameters<typeof fakeSfn>[0], RegExp]> = [
    [
      'SUCCEEDED',
      { describeExecution: async () => ({ ...failed, status: 'SUCCEEDED' }) },
      /status is SUCCEEDED.*--force --reason/s,
    ],
    [
      'older than 14 days',
      { describeExecution: async () => ({ ...failed, stopDate: new Date('2026-11-01T00:00:00Z') }) },
      /more than 14 days ago/,
    ],
    [
      'definition changed',
      {
        describeExecution: async () => failed,
        describeStateMachineForExecution: async () => ({ definition: '{"old":true}' }),
      },
      /definition changed/,
    ],
    [
      'Express',
      {
        describeExecution: async () => failed,
        describeStateMachine: async (a) => ({ stateMachineArn: a, name: 'x', type: 'EXPRESS' }),
      },
      /only Standard/,
    ],
  ];
  for (const [label, overrides, expected] of cases) {
    it(`explains why not (${label}) and prints the rerun command instead`, async () => {
      const { sfn, redriven } = fakeSfn(overrides);
      await assert.rejects(
        redrive(
          memoryIo(),
          { executionArn: ARN, yes: true },
          () => sfn,
          () => NOW,
        ),
        (e: Error) => {
          assert.match(e.message, /^Cannot redrive: /);
          assert.match(e.message, expected);
          assert.match(
            e.message,
            /etl-ops rerun --pipeline policycenter --batch policycenter-20261127T030000Z/,
          );
          return true;
        },
      );
      assert.equal(redriven.length, 0);
    });
  }

  const awsErrors: Array<[string, RegExp]> = [
    [
      'ExecutionNotRedrivable',
      /AWS refused the redrive \(ExecutionNotRedrivable.*definition has not changed/s,
    ],
    ['ExecutionDoesNotExist', /does not exist \(ExecutionDoesNotExist\)/],
    ['ExecutionLimitExceeded', /too many running executions/i],
    ['AccessDeniedException', /states:RedriveExecution/],
    ['ValidationException', /ValidationException/],
  ];
  for (const [name, expected] of awsErrors) {
    it(`maps RedriveExecution's ${name} to an explanation and a rerun suggestion`, async () => {
      const { sfn } = fakeSfn({
        // a generated (rule-delivered) execution name: the batch id comes from the input
        describeExecution: async () => ({
          ...failed,
          executionArn: `${ARN.replace(/:[^:]+$/, ':3f1c9a2e-5b7d')}`,
          input: JSON.stringify({ detail: { batchId: 'policycenter-20261127T030000Z' } }),
        }),
        redriveExecution: async () => {
          throw Object.assign(new Error('server says no'), { name });
        },
      });
      await assert.rejects(
        redrive(
          memoryIo(),
          { executionArn: ARN.replace(/:[^:]+$/, ':3f1c9a2e-5b7d'), yes: true },
          () => sfn,
          () => NOW,
        ),
        (e: Error) => {
          assert.match(e.message, expected);
          assert.match(
            e.message,
            /etl-ops rerun --pipeline policycenter --batch policycenter-20261127T030000Z/,
          );
          return true;
        },
      );
    });
  }
});

describe('etl-ops replay', () => {
  const NOW = new Date('2026-11-27T12:00:00Z');
  const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000);

  it('warns when --until is less than 10 minutes ago, not otherwise', () => {
    assert.match(
      archiveDelayWarning(minutesAgo(3), NOW) ?? '',
      /WARNING: --until 2026-11-27T11:57:00.000Z is 3 minute\(s\) ago.*up to about 10 minutes/,
    );
    assert.equal(archiveDelayWarning(minutesAgo(10), NOW), undefined);
    assert.equal(archiveDelayWarning(minutesAgo(60), NOW), undefined);
  });

  it('starts the replay from the archive to its bus and polls until COMPLETED, with progress', async () => {
    const { events, replays, states } = fakeEvents();
    const since = minutesAgo(240);
    const until = minutesAgo(5);
    states.push(
      { state: 'STARTING' },
      { state: 'RUNNING', eventLastReplayedTime: minutesAgo(180) },
      { state: 'RUNNING', eventLastReplayedTime: minutesAgo(60) },
      { state: 'COMPLETED', eventLastReplayedTime: until },
    );
    const sleeps: number[] = [];
    const io = memoryIo();
    const result = await replay(
      io,
      { region: 'us-west-1', since, until, yes: true, pollMs: 1000 },
      { events, now: () => NOW, sleep: async (ms) => void sleeps.push(ms) },
    );
    assert.equal(result, 'COMPLETED');
    assert.deepEqual(replays, [
      {
        replayName: 'etl-ops-us-west-1-20261127T120000',
        eventSourceArn: `arn:aws:events:us-west-1:${ACCOUNT}:archive/etl-platform-archive`,
        eventStartTime: since,
        eventEndTime: until,
        destinationArn: `arn:aws:events:us-west-1:${ACCOUNT}:event-bus/etl-platform`,
      },
    ]);
    assert.deepEqual(sleeps, [1000, 1000, 1000]);
    assert.match(io.errors.join('\n'), /WARNING: --until .* is 5 minute\(s\) ago/);
    assert.match(io.text(), /RUNNING 26%/);
    assert.match(io.text(), /RUNNING 77%/);
    assert.match(io.text(), /COMPLETED 100%/);
  });

  it('fails with the reason when the replay FAILS, and refuses an empty window', async () => {
    const { events, states } = fakeEvents();
    states.push({ state: 'FAILED', stateReason: 'archive is DISABLED' });
    await assert.rejects(
      replay(
        memoryIo(),
        { region: 'us-west-1', since: minutesAgo(60), until: minutesAgo(30), yes: true },
        { events, now: () => NOW, sleep: async () => undefined },
      ),
      /ended FAILED: archive is DISABLED/,
    );
    await assert.rejects(
      replay(
        memoryIo(),
        { region: 'us-west-1', since: minutesAgo(30), until: minutesAgo(60), yes: true },
        { events, now: () => NOW },
      ),
      /must be before/,
    );
  });
});
