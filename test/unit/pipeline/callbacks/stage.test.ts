import assert from 'node:assert/strict';
import { CallbacksStage } from '../../../../src/pipeline/callbacks/index.js';
import { harness } from './fakes.js';

describe('callbacks: CallbacksStage over real HTTP', () => {
  it('listens on 127.0.0.1:0, answers health, 413 for a large body, readiness off after stop, close idempotent', async () => {
    const stage = new CallbacksStage({ ...harness().deps, host: '127.0.0.1', port: 0 });
    try {
      const { url, port } = await stage.start();
      assert.ok(port > 0);
      assert.equal(stage.listening, true);
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      assert.equal((await fetch(`${url}/readyz`)).status, 200);
      const big = await fetch(`${url}/callbacks/sms/twilio/inbound`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'Body='.padEnd(10_000, 'x'),
      });
      assert.equal(big.status, 413);
      assert.deepEqual(await big.json(), { error: 'payload too large' });
      stage.stop();
      const ready = await fetch(`${url}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), /shutting down/);
    } finally {
      await Promise.all([stage.close(), stage.close()]);
    }
    assert.equal(stage.listening, false);
    await assert.rejects(stage.start(), /closed/);
  });

  it('refuses a bad port at construction', () => {
    assert.throws(
      () => new CallbacksStage({ ...harness().deps, port: 70_000 }),
      /port must be an integer 0-65535, found 70000/,
    );
  });
});
