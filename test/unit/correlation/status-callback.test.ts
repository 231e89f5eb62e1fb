/** The status callback URL of a dispatch send: pure, then through the stage to the provider request. */
import assert from 'node:assert/strict';
import sinon from 'sinon';
import { statusCallbackUrls, twilioStatusPath } from '../../../src/correlation/status-callback.js';
import { DispatchStage } from '../../../src/pipeline/dispatch/stage.js';
import { openContext, parseCallbackKeys } from '../../../src/correlation/token.js';
import {
  channel,
  channelCallbacks,
  delivery,
  FakeInteractions,
  FakeProvider,
  lookup,
  outbound,
  session,
} from '../pipeline/dispatch/fakes.js';

const keys = parseCallbackKeys(`k1:${Buffer.alloc(32, 3).toString('base64')}`, 'test');
const callbacks = channelCallbacks({ publicBaseUrl: 'https://relay.example/base' });
const SMS = channel({ callbacks, publicBaseUrl: callbacks.publicBaseUrl });

describe('dispatch: status callback URLs', () => {
  const url = statusCallbackUrls(keys, () => 1_796_663_135_237.6);

  it('a journey message through a Twilio channel with callbacks: the status route with a token of its context and send time', () => {
    const msg = outbound({ key: 'act-7' });
    const out = url(SMS, msg);
    const m = /^https:\/\/relay\.example\/base\/callbacks\/sms\/twilio\/status\?t=([A-Za-z0-9_-]+)$/.exec(out ?? '');
    assert.ok(m, out);
    assert.deepEqual(openContext(m[1] as string, keys), {
      ok: true,
      context: msg.context,
      channel: 'sms',
      keyId: 'k1',
      sentAt: 1_796_663_135_237,
    });
    assert.equal(twilioStatusPath('a b'), '/callbacks/a%20b/twilio/status');
  });

  it('none for a channel without callbacks, another provider, a confirmation or a real-time message', () => {
    assert.equal(url(channel(), outbound()), undefined);
    assert.equal(url(channel({ callbacks, provider: { type: 'telegram', botToken: '1:x' } }), outbound()), undefined);
    assert.equal(
      url(
        channel({ callbacks, provider: { type: 'contract', url: 'https://c.example', signingSecret: 's' } }),
        outbound(),
      ),
      undefined,
    );
    const { context: _ignored, ...confirmation } = outbound({ purpose: 'confirmation' });
    assert.equal(url(SMS, confirmation), undefined);
    assert.equal(
      url(
        SMS,
        outbound({
          context: { kind: 'realtime', channelDefinitionId: 'cd', requestId: 'r', from: 'f', organizationId: 'o' },
        }),
      ),
      undefined,
    );
  });

  it('reaches the provider request through DispatchStage', async () => {
    const clock = sinon.useFakeTimers({
      now: 1_000_000,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    try {
      const p = new FakeProvider();
      const s = new DispatchStage({
        channels: lookup(SMS),
        provider: () => p,
        interactions: new FakeInteractions(),
        statusCallbackUrl: url,
      });
      const handler = await s.sessionHandler(session());
      const done = handler.onBatch([delivery(outbound({ key: 'act-9' }))], new AbortController().signal);
      await clock.tickAsync(10_000);
      await done;
      assert.match(
        p.calls[0]?.request.statusCallbackUrl ?? '',
        /^https:\/\/relay\.example\/base\/callbacks\/sms\/twilio\/status\?t=/,
      );
    } finally {
      clock.restore();
    }
  });
});
