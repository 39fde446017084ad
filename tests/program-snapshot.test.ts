import assert from 'node:assert/strict';
import { compareSnapshots } from '../scripts/program-snapshot';

const resource = (urn: string, inputs: unknown, region = 'us-east-1') => ({
  urn,
  type: urn.split('::')[2].split('$').pop()!,
  region,
  provider: '',
  inputs,
});
const before = {
  outputs: { failover: 'us-east-1' },
  resources: [
    resource('urn:pulumi:s::p::aws:sqs/queue:Queue::dlq', { name: 'dlq' }),
    resource('urn:pulumi:s::p::etl:a:A$aws:iam/role:Role::role', { name: 'r' }),
  ],
};

describe('scripts/program-snapshot compareSnapshots (the refactor check)', () => {
  it('accepts a moved URN and an added component, and counts the move', () => {
    const after = {
      outputs: { failover: 'us-east-1' },
      resources: [
        resource('urn:pulumi:s::p::etl:b:B$aws:sqs/queue:Queue::dlq', { name: 'dlq' }),
        resource('urn:pulumi:s::p::etl:a:A$aws:iam/role:Role::role', { name: 'r' }),
        resource('urn:pulumi:s::p::etl:b:B::b', {}),
      ],
    };
    assert.deepEqual(compareSnapshots(before, after), {
      changed: [],
      removed: [],
      added: ['etl:b:B::b'],
      moved: 1,
    });
  });

  it('reports a changed input, a changed region, a removed resource and changed outputs', () => {
    const after = {
      outputs: { failover: 'us-west-1' },
      resources: [resource('urn:pulumi:s::p::aws:sqs/queue:Queue::dlq', { name: 'dlq' }, 'us-west-1')],
    };
    const found = compareSnapshots(before, after);
    assert.deepEqual(found.changed, ['stack outputs', 'aws:sqs/queue:Queue::dlq']);
    assert.deepEqual(found.removed, ['aws:iam/role:Role::role']);
    const renamedInput = {
      outputs: before.outputs,
      resources: [before.resources[0], resource(before.resources[1].urn, { name: 'r2' })],
    };
    assert.deepEqual(compareSnapshots(before, renamedInput).changed, ['aws:iam/role:Role::role']);
  });
});
