/** The relay's callback keys: parsed from callbacks.signingKeys, required by the stages that sign or verify with them. */
import assert from 'node:assert/strict';
import type { Channel, ChannelRegistry } from '../../../src/channels/index.js';
import type { RelayConfig } from '../../../src/config/index.js';
import { isConfigError } from '../../../src/errors.js';
import { callbackKeysFor } from '../../../src/relay/requirements.js';

const KEY = Buffer.alloc(32, 4).toString('base64');
const config = (signingKeys?: string): RelayConfig => ({ callbacks: { host: '0.0.0.0', port: 0, bodyLimitBytes: 65536, ...(signingKeys === undefined ? {} : { signingKeys }) } }) as RelayConfig;
const registry = (...channels: Array<Partial<Channel>>): ChannelRegistry => ({ file: '/etc/relay/channels.json', all: () => channels as Channel[], byName: () => undefined });
const twilio = { type: 'twilio', accountSid: 'AC1', authToken: 't' } as const;
const telegram = { type: 'telegram', unread: true } as const;
const withCallbacks = { name: 'sms', provider: twilio, callbacks: { publicBaseUrl: 'https://r.example', trackLinks: false } } as Partial<Channel>;
const tracking = { name: 'tg', provider: telegram, callbacks: { publicBaseUrl: 'https://r.example', trackLinks: true } } as Partial<Channel>;
const missing = (pattern: RegExp) => (err: unknown) => isConfigError(err) && pattern.test(err.message);

describe('relay: callbackKeysFor', () => {
  it('parses the configured keys', () => {
    const keys = callbackKeysFor(config(`a:${KEY},b:${KEY}`), registry(withCallbacks), ['intake']);
    assert.deepEqual(keys?.verify.map((k) => k.id), ['a', 'b']);
    assert.equal(keys?.sign.id, 'a');
  });

  it('none configured and no channel with callbacks: intake, dispatch and the recorder need none', () => {
    assert.equal(callbackKeysFor(config(), registry({ name: 'sms', provider: twilio }), ['intake', 'dispatch', 'recorder']), undefined);
    assert.equal(callbackKeysFor(config(), undefined, ['recorder']), undefined);
  });

  it('the callbacks service always needs them: a ConfigError naming the variable and the channels with callbacks', () => {
    assert.throws(
      () => callbackKeysFor(config(), registry(withCallbacks, tracking), ['callbacks']),
      missing(/callbacks\.signingKeys: expected the callback signing keys \(set CALLBACK_SIGNING_KEYS\), because channels sms, tg in \/etc\/relay\/channels\.json have callbacks, found nothing/),
    );
    assert.throws(() => callbackKeysFor(config(), registry({ name: 'sms', provider: twilio }), ['callbacks']), missing(/because the callbacks service verifies its tokens and link codes with them/));
  });

  it('intake needs them for a channel that tracks links; dispatch for a Twilio channel with callbacks (status callback URLs)', () => {
    assert.throws(() => callbackKeysFor(config(), registry(withCallbacks, tracking), ['intake']), missing(/because channel tg in \/etc\/relay\/channels\.json tracks links \(callbacks\.trackLinks\), found/));
    assert.equal(callbackKeysFor(config(), registry(withCallbacks), ['intake']), undefined, 'a channel with callbacks but no tracked links');
    assert.throws(() => callbackKeysFor(config(), registry(withCallbacks, tracking), ['dispatch']), missing(/because channel sms in \/etc\/relay\/channels\.json gets Twilio status callbacks, found/));
    assert.equal(callbackKeysFor(config(), registry(tracking), ['dispatch']), undefined, 'a Telegram channel has no status callbacks');
    assert.throws(() => callbackKeysFor(config(), registry(withCallbacks, tracking), ['intake', 'dispatch']), missing(/tracks links \(callbacks\.trackLinks\) and channel sms .* gets Twilio status callbacks/));
  });

  it('bad keys: a ConfigError that never shows the secret', () => {
    const short = Buffer.alloc(4, 9).toString('base64');
    assert.throws(
      () => callbackKeysFor(config(`a:${short}`), registry(), ['dispatch']),
      (err: unknown) => isConfigError(err) && /callbacks\.signingKeys \(CALLBACK_SIGNING_KEYS\)/.test(err.message) && !err.message.includes(short),
    );
  });
});
