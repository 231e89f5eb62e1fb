/** The relay's callback keys: parsed from callbacks.signingKeys, required as soon as a channel has callbacks. */
import assert from 'node:assert/strict';
import type { Channel, ChannelRegistry } from '../../../src/channels/index.js';
import type { RelayConfig } from '../../../src/config/index.js';
import { isConfigError } from '../../../src/errors.js';
import { callbackKeysFor } from '../../../src/relay/relay.js';

const KEY = Buffer.alloc(32, 4).toString('base64');
const config = (signingKeys?: string): RelayConfig => ({ callbacks: { host: '0.0.0.0', port: 0, bodyLimitBytes: 65536, ...(signingKeys === undefined ? {} : { signingKeys }) } }) as RelayConfig;
const registry = (...channels: Array<Partial<Channel>>): ChannelRegistry => ({ file: '/etc/relay/channels.json', all: () => channels as Channel[], byName: () => undefined });
const withCallbacks = { name: 'sms', callbacks: { publicBaseUrl: 'https://r.example' } } as Partial<Channel>;

describe('relay: callbackKeysFor', () => {
  it('parses the configured keys', () => {
    const keys = callbackKeysFor(config(`a:${KEY},b:${KEY}`), registry(withCallbacks));
    assert.deepEqual(keys?.verify.map((k) => k.id), ['a', 'b']);
    assert.equal(keys?.sign.id, 'a');
  });

  it('none configured and no channel with callbacks: none needed', () => {
    assert.equal(callbackKeysFor(config(), registry({ name: 'sms' })), undefined);
  });

  it('a channel with callbacks and no keys: a ConfigError naming the variable and the channel', () => {
    assert.throws(
      () => callbackKeysFor(config(), registry(withCallbacks, { name: 'tg', callbacks: withCallbacks.callbacks })),
      (err: unknown) => isConfigError(err) && /callbacks\.signingKeys: expected the callback signing keys \(set CALLBACK_SIGNING_KEYS\), because channels sms, tg in \/etc\/relay\/channels\.json have callbacks, found nothing/.test(err.message),
    );
  });

  it('bad keys: a ConfigError that never shows the secret', () => {
    const short = Buffer.alloc(4, 9).toString('base64');
    assert.throws(
      () => callbackKeysFor(config(`a:${short}`), registry()),
      (err: unknown) => isConfigError(err) && /callbacks\.signingKeys \(CALLBACK_SIGNING_KEYS\)/.test(err.message) && !err.message.includes(short),
    );
  });
});
