import * as assert from 'node:assert/strict';
import { batchContext, batchIdFor } from '../handlers/lib/batch-context';

describe('batch context', () => {
  const now = new Date('2026-11-27T07:00:42.123Z');

  it('derives a stable, execution-name-safe batch id from the scheduled time', () => {
    assert.equal(batchIdFor('policycenter', '2026-11-27T07:00:00Z'), 'policycenter-20261127T070000Z');
    assert.equal(batchIdFor('policycenter', '2026-11-27T02:00:00-05:00'), 'policycenter-20261127T070000Z');
    assert.doesNotMatch(batchIdFor('claimcenter', '2026-11-27T07:30:00Z'), /[:\s/]/);
  });

  it('computes now and the lease expiry in epoch seconds', () => {
    const ctx = batchContext(
      { pipeline: 'policycenter', scheduledTime: '2026-11-27T07:00:00Z', leaseSeconds: 7200 },
      now,
    );
    assert.equal(ctx.now, 1795762842);
    assert.equal(ctx.leaseExpiresAt, 1795762842 + 7200);
    assert.equal(ctx.batchId, 'policycenter-20261127T070000Z');
  });

  it('checks a given batch id instead of deriving one', () => {
    const ctx = batchContext(
      { pipeline: 'claimcenter', batchId: 'claimcenter-20261127T073000Z', leaseSeconds: 60 },
      now,
    );
    assert.equal(ctx.batchId, 'claimcenter-20261127T073000Z');
  });

  const bad: Array<[string, any, RegExp]> = [
    [
      'no time nor id',
      { pipeline: 'policycenter', leaseSeconds: 60 },
      /either scheduledTime or batchId is required/,
    ],
    [
      'a bad time',
      { pipeline: 'policycenter', scheduledTime: 'yesterday', leaseSeconds: 60 },
      /scheduledTime "yesterday" is not an ISO-8601 timestamp/,
    ],
    [
      "another pipeline's batch",
      { pipeline: 'policycenter', batchId: 'claimcenter-20261127T073000Z', leaseSeconds: 60 },
      /is not a batch id of pipeline policycenter/,
    ],
    [
      'a bad pipeline',
      { pipeline: 'Policy Center', scheduledTime: '2026-11-27T07:00:00Z', leaseSeconds: 60 },
      /is not a pipeline name/,
    ],
    [
      'a zero lease',
      { pipeline: 'policycenter', scheduledTime: '2026-11-27T07:00:00Z', leaseSeconds: 0 },
      /must be a positive integer/,
    ],
  ];
  for (const [title, input, message] of bad) {
    it(`rejects ${title} as InvalidInput`, () => {
      assert.throws(
        () => batchContext(input, now),
        (e: Error) => e.name === 'InvalidInput' && message.test(e.message),
      );
    });
  }
});
