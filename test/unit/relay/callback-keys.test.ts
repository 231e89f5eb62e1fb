/** The relay's callback keys: parsed once by the configuration loader, required by the stages that sign or verify with them. */
import assert from 'node:assert/strict';
import { messagingRegistry, type Channel, type ChannelRegistry } from '../../../src/channels/index.js';
import type { RelayConfig } from '../../../src/config/index.js';
import { parseCallbackKeys } from '../../../src/correlation/index.js';
import { isConfigError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/log.js';
import { startRelay } from '../../../src/relay/index.js';
import { callbackKeysFor } from '../../../src/relay/requirements.js';

const KEY = Buffer.alloc(32, 4).toString('base64');
const config = (signingKeys?: string): RelayConfig =>
  ({
    callbacks: {
      host: '0.0.0.0',
      port: 0,
      bodyLimitBytes: 65536,
      ...(signingKeys === undefined ? {} : { signingKeys }),
    },
  }) as RelayConfig;
const registry = (...channels: Array<Partial<Channel>>): ChannelRegistry => ({
  file: '/etc/relay/channels.json',
  all: () => channels as Channel[],
  byName: () => undefined,
  messaging: messagingRegistry([]),
});
const twilio = { type: 'twilio', accountSid: 'AC1', authToken: 't' } as const;
const telegram = { type: 'telegram', unread: true } as const;
const withCallbacks = {
  name: 'sms',
  provider: twilio,
  callbacks: { publicBaseUrl: 'https://r.example', trackLinks: false },
} as Partial<Channel>;
const tracking = {
  name: 'tg',
  provider: telegram,
  callbacks: { publicBaseUrl: 'https://r.example', trackLinks: true },
} as Partial<Channel>;
const missing = (pattern: RegExp) => (err: unknown) => isConfigError(err) && pattern.test(err.message);

describe('relay: callbackKeysFor', () => {
  it('hands on the keys the loader parsed, as given', () => {
    const keys = parseCallbackKeys(`a:${KEY},b:${KEY}`, 'test');
    assert.equal(callbackKeysFor(keys, registry(withCallbacks), ['intake']), keys);
    assert.equal(callbackKeysFor(keys, undefined, ['recorder']), keys);
  });

  it('none configured and no channel with callbacks: intake, dispatch and the recorder need none', () => {
    assert.equal(
      callbackKeysFor(undefined, registry({ name: 'sms', provider: twilio }), ['intake', 'dispatch', 'recorder']),
      undefined,
    );
    assert.equal(callbackKeysFor(undefined, undefined, ['recorder']), undefined);
  });

  it('the callbacks service always needs them: a ConfigError naming the variable and the channels with callbacks', () => {
    assert.throws(
      () => callbackKeysFor(undefined, registry(withCallbacks, tracking), ['callbacks']),
      missing(
        /callbacks\.signingKeys: expected the callback signing keys \(set CALLBACK_SIGNING_KEYS\), because channels sms, tg in \/etc\/relay\/channels\.json have callbacks, found nothing/,
      ),
    );
    assert.throws(
      () => callbackKeysFor(undefined, registry({ name: 'sms', provider: twilio }), ['callbacks']),
      missing(/because the callbacks service verifies its tokens and link codes with them/),
    );
  });

  it('intake needs them for a channel that tracks links; dispatch for a Twilio channel with callbacks (status callback URLs)', () => {
    assert.throws(
      () => callbackKeysFor(undefined, registry(withCallbacks, tracking), ['intake']),
      missing(/because channel tg in \/etc\/relay\/channels\.json tracks links \(callbacks\.trackLinks\), found/),
    );
    assert.equal(
      callbackKeysFor(undefined, registry(withCallbacks), ['intake']),
      undefined,
      'a channel with callbacks but no tracked links',
    );
    assert.throws(
      () => callbackKeysFor(undefined, registry(withCallbacks, tracking), ['dispatch']),
      missing(/because channel sms in \/etc\/relay\/channels\.json gets Twilio status callbacks, found/),
    );
    assert.equal(
      callbackKeysFor(undefined, registry(tracking), ['dispatch']),
      undefined,
      'a Telegram channel has no status callbacks',
    );
    assert.throws(
      () => callbackKeysFor(undefined, registry(withCallbacks, tracking), ['intake', 'dispatch']),
      missing(/tracks links \(callbacks\.trackLinks\) and channel sms .* gets Twilio status callbacks/),
    );
  });

  it('startRelay takes the parsed keys only: configured keys without them are a TypeError, before anything opens', () => {
    assert.throws(
      () => startRelay({ stages: ['recorder'], config: config(`a:${KEY}`), log: silentLogger() }),
      (err: unknown) =>
        err instanceof TypeError &&
        /config\.callbacks\.signingKeys is set but callbackKeys is not/.test(err.message) &&
        !err.message.includes(KEY),
    );
  });
});
