import assert from 'node:assert/strict';
import { runKey, runProgram, TEST_SECRETS } from '../local/program';

// local/program caches one evaluation per config: options that spell the same config differently
// must share it, and any change to the config must not.
describe('local/program run cache (one evaluation per config)', () => {
  it('keys options by the config they evaluate, not by how they spell it', () => {
    const plain = runKey({ stack: 'prod-east' });
    // prod-east's stack file already says activeRegion us-east-1 and defaultTriggerMode rule-direct.
    assert.equal(runKey({ stack: 'prod-east', activeRegion: 'us-east-1' }), plain);
    assert.equal(runKey({ stack: 'prod-east', config: { defaultTriggerMode: 'rule-direct' } }), plain);
    assert.equal(runKey({ stack: 'prod-east', config: {}, secrets: { ...TEST_SECRETS } }), plain);
    assert.equal(
      runKey({ stack: 'prod-east', config: { 'etl-platform:activeRegion': 'us-east-1' } }),
      plain,
      'a namespaced key is the same key',
    );
  });

  it('gives a different key for any different config, stack or secret', () => {
    const plain = runKey({ stack: 'prod-east' });
    const different = [
      runKey({ stack: 'prod-west' }),
      runKey({ stack: 'prod-east', activeRegion: 'us-west-1' }),
      runKey({ stack: 'prod-east', config: { defaultTriggerMode: 'rule-lambda' } }),
      runKey({ stack: 'prod-east', config: { activeRegion: undefined } }),
      runKey({ stack: 'prod-east', secrets: false }),
      runKey({ stack: 'prod-east', secrets: { ...TEST_SECRETS, dbtApiToken: 'another-token' } }),
    ];
    for (const key of different) assert.notEqual(key, plain);
    assert.equal(new Set(different).size, different.length);
  });

  it('evaluates equivalent options once and shares the run', async () => {
    const first = await runProgram({ stack: 'prod-west' });
    const again = await runProgram({ stack: 'prod-west', activeRegion: 'us-east-1' });
    assert.equal(first.error, undefined);
    assert.ok(first.resources.length > 100);
    assert.equal(again, first, 'the same run object, not a second evaluation');
    const flipped = await runProgram({ stack: 'prod-west', activeRegion: 'us-west-1' });
    assert.notEqual(flipped, first);
    assert.equal(first.outputs.failover.activeRegion, 'us-east-1');
    assert.equal(flipped.outputs.failover.activeRegion, 'us-west-1');
  });
});
