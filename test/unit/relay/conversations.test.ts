/** The conversations stage's wiring: one Direct Line client per bridging account, made up front; readiness per account. */
import assert from 'node:assert/strict';
import type { ServiceBusClient } from '@azure/service-bus';
import type { ChannelRegistry, MessagingRegistry } from '../../../src/channels/index.js';
import { loadConfig } from '../../../src/config/index.js';
import { DirectLineError, isConfigError } from '../../../src/errors.js';
import { Closer } from '../../../src/lifecycle.js';
import { silentLogger } from '../../../src/log.js';
import { wireConversations, type DirectLineClientFactory } from '../../../src/relay/conversations.js';
import { FakeDirectLine, messagingChannel, registry, smsChannel } from '../pipeline/conversations/fakes.js';

function channels(messaging: MessagingRegistry): ChannelRegistry & { messaging: MessagingRegistry } {
  const list = [smsChannel()];
  return {
    file: '/etc/relay/channels.json',
    all: () => list,
    byName: (n) => list.find((c) => c.name === n),
    messaging,
  };
}

describe('relay: the conversations wiring', () => {
  const { config } = loadConfig({ env: {}, forWorkers: false });
  const bus = { createSender: () => assert.fail('nothing is sent while wiring') } as unknown as ServiceBusClient;

  it('makes one Direct Line client per account that bridges a channel, with its URL, secret and the call timeout', () => {
    const made: Array<Parameters<DirectLineClientFactory>[0]> = [];
    const validated: string[] = [];
    const closer = new Closer();
    const wired = wireConversations({
      config,
      bus,
      log: silentLogger(),
      closer,
      channels: channels(registry(messagingChannel())),
      directLineClient: (options) => {
        made.push(options);
        return new FakeDirectLine();
      },
      media: () => undefined,
      accountValidator: (accounts) => {
        validated.push(...accounts.map((a) => a.name));
        return {
          start: async () => [],
          readiness: () => [{ name: 'messaging account contoso', ok: false, detail: 'not validated yet' }],
          close: async () => undefined,
        };
      },
    });
    assert.deepEqual(validated, ['contoso'], 'the bridging account is validated');
    assert.deepEqual(
      made.map(({ baseUrl, secret, timeoutMs }) => ({ baseUrl, secret, timeoutMs })),
      [{ baseUrl: 'https://directline.example', secret: 'dl-secret', timeoutMs: config.conversations.timeoutMs }],
    );
    assert.deepEqual(wired.readiness(false), [
      { name: 'direct line account contoso', ok: true },
      { name: 'messaging account contoso', ok: false, detail: 'not validated yet' },
    ]);
    assert.deepEqual(wired.readiness(true), [
      { name: 'direct line account contoso', ok: false, detail: 'shutting down' },
      { name: 'messaging account contoso', ok: false, detail: 'not validated yet' },
    ]);
    assert.equal(wired.stats().sessions, 0);
  });

  it('refuses an account without its Direct Line secret, naming the account and the key', () => {
    const messaging = registry(messagingChannel());
    delete (messaging.accounts[0] as { directLineSecret?: string }).directLineSecret;
    assert.throws(
      () =>
        wireConversations({
          config,
          bus,
          log: silentLogger(),
          closer: new Closer(),
          channels: channels(messaging),
          directLineClient: () => {
            throw new DirectLineError('DirectLineUnauthorized', 'no client should be made');
          },
          media: () => undefined,
        }),
      (err: unknown) =>
        isConfigError(err) &&
        err.problems[0]?.path === 'messaging.accounts[0].directLineSecret' &&
        err.problems[0].source === '/etc/relay/channels.json' &&
        /account "contoso"/.test(err.problems[0].expected),
    );
  });
});
