import type {
  EventsOps,
  ExecutionDescription,
  PutEventEntry,
  QueueMessage,
  ReplayDescription,
  SchedulerOps,
  SfnOps,
  SqsOps,
  StateMachineDescription,
} from '../../ops/clients';

export const ACCOUNT = '123456789012';
export const smArn = (name: string, region = 'us-east-1') =>
  `arn:aws:states:${region}:${ACCOUNT}:stateMachine:${name}`;

/** A recording Step Functions fake; override any method per test. */
export function fakeSfn(overrides: Partial<SfnOps> = {}) {
  const started: Array<{ stateMachineArn: string; name?: string; input: string }> = [];
  const redriven: string[] = [];
  const sfn: SfnOps = {
    startExecution: async (input) => {
      started.push(input);
      return {
        executionArn: `${input.stateMachineArn.replace(':stateMachine:', ':execution:')}:${input.name ?? 'generated'}`,
        startDate: new Date(),
      };
    },
    describeExecution: async (arn) =>
      ({ executionArn: arn, stateMachineArn: '', status: 'FAILED' }) as ExecutionDescription,
    describeStateMachine: async (arn) =>
      ({
        stateMachineArn: arn,
        name: arn.split(':').pop() as string,
        type: 'STANDARD',
        definition: '{}',
      }) as StateMachineDescription,
    describeStateMachineForExecution: async () => ({ definition: '{}' }),
    redriveExecution: async (arn) => {
      redriven.push(arn);
      return { redriveDate: new Date('2026-11-27T12:00:00Z') };
    },
    stateMachineArn: async (name) => smArn(name),
    ...overrides,
  };
  return { sfn, started, redriven };
}

/** An in-memory SQS queue with real receive/visibility/delete semantics (enough for the DLQ logic). */
export class FakeQueue implements SqsOps {
  readonly url = `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/prod-east-dlq-queue-abc123`;
  readonly messages = new Map<string, { message: QueueMessage; invisibleUntil: number; receipts: number }>();
  clock = 0;
  deleted: string[] = [];
  private seq = 0;

  add(body: string, attributes: Record<string, string>): string {
    const id = `m-${++this.seq}`;
    this.messages.set(id, {
      message: { messageId: id, receiptHandle: '', body, attributes },
      invisibleUntil: 0,
      receipts: 0,
    });
    return id;
  }
  ids(): string[] {
    return [...this.messages.keys()];
  }
  async queueUrl(): Promise<string> {
    return this.url;
  }
  async depth() {
    const visible = [...this.messages.values()].filter((m) => m.invisibleUntil <= this.clock).length;
    return { visible, inFlight: this.messages.size - visible };
  }
  async receive(
    _url: string,
    opts: { max: number; visibilityTimeoutSeconds: number },
  ): Promise<QueueMessage[]> {
    const out: QueueMessage[] = [];
    for (const entry of this.messages.values()) {
      if (out.length >= opts.max) break;
      if (entry.invisibleUntil > this.clock) continue;
      entry.receipts++;
      entry.invisibleUntil = this.clock + opts.visibilityTimeoutSeconds;
      out.push({ ...entry.message, receiptHandle: `${entry.message.messageId}#${entry.receipts}` });
    }
    return out;
  }
  private find(receiptHandle: string) {
    const [id, n] = receiptHandle.split('#');
    const entry = this.messages.get(id);
    if (!entry || String(entry.receipts) !== n)
      throw Object.assign(new Error(`stale receipt ${receiptHandle}`), { name: 'ReceiptHandleIsInvalid' });
    return id;
  }
  async delete(_url: string, receiptHandle: string): Promise<void> {
    const id = this.find(receiptHandle);
    this.messages.delete(id);
    this.deleted.push(id);
  }
  async release(_url: string, receiptHandle: string): Promise<void> {
    const id = this.find(receiptHandle);
    (this.messages.get(id) as { invisibleUntil: number }).invisibleUntil = 0;
  }
}

export function fakeEvents(overrides: Partial<EventsOps> = {}) {
  const put: PutEventEntry[] = [];
  const replays: Array<Parameters<EventsOps['startReplay']>[0]> = [];
  const states: ReplayDescription[] = [];
  const events: EventsOps = {
    listRules: async () => [
      { name: 'policycenter-downstream-trigger', state: 'ENABLED' },
      { name: 'forward-to-us-west-1', state: 'ENABLED' },
    ],
    listTargets: async (rule) =>
      rule === 'policycenter-downstream-trigger'
        ? [
            {
              id: 'downstream',
              arn: smArn('etl-policycenter-downstream'),
              deadLetterArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:prod-east-trigger-dlq-queue-1a2b3c`,
            },
          ]
        : [
            {
              id: 'peer-bus',
              arn: `arn:aws:events:us-west-1:${ACCOUNT}:event-bus/etl-platform`,
              deadLetterArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:prod-east-forward-dlq-queue-4d5e6f`,
            },
          ],
    putEvents: async (entries) => {
      put.push(...entries);
      return { failedEntryCount: 0, errors: [] };
    },
    describeArchive: async () => ({
      archiveArn: `arn:aws:events:us-west-1:${ACCOUNT}:archive/etl-platform-archive`,
      eventSourceArn: `arn:aws:events:us-west-1:${ACCOUNT}:event-bus/etl-platform`,
    }),
    startReplay: async (input) => {
      replays.push(input);
      return { state: 'STARTING' };
    },
    describeReplay: async () => states.shift() ?? { state: 'COMPLETED' },
    ...overrides,
  };
  return { events, put, replays, states };
}

export function fakeScheduler(): SchedulerOps {
  return {
    listSchedules: async () => [
      {
        name: 'policycenter-upstream',
        groupName: 'etl-platform',
        state: 'ENABLED',
        targetArn: smArn('etl-policycenter-upstream'),
        deadLetterArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:prod-east-schedule-dlq-queue-7a8b9c`,
      },
    ],
  };
}
