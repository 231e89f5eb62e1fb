import assert from 'node:assert/strict';
import type { TokenCredential } from '@azure/identity';
import { RetryMode } from '@azure/service-bus';
import {
  DEFAULT_RETRY_OPTIONS,
  createServiceBusClient,
  normalizeNamespace,
  serviceBusClientFromConfig,
} from '../../../src/servicebus/client.js';

const credential: TokenCredential = { getToken: async () => ({ token: 't', expiresOnTimestamp: Date.now() + 60_000 }) };
const queues = { activities: 'a', outbound: 'o', interactions: 'i', conversations: 'c' };

describe('servicebus client factory', () => {
  it('needs exactly one of connectionString and namespace', () => {
    assert.throws(
      () => createServiceBusClient({}),
      /expected exactly one of connectionString and namespace, found neither/,
    );
    assert.throws(
      () =>
        createServiceBusClient({
          connectionString: 'Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=v',
          namespace: 'x',
        }),
      /found both/,
    );
    assert.throws(() => serviceBusClientFromConfig({ serviceBus: { queues } }), /found neither/);
  });

  it('builds a namespace client with the given credential (no connection is made before first use)', async () => {
    const client = createServiceBusClient({ namespace: 'sb://relay.servicebus.windows.net/', credential });
    assert.equal(client.fullyQualifiedNamespace, 'relay.servicebus.windows.net');
    await client.close();
    const fromConfig = serviceBusClientFromConfig({ serviceBus: { namespace: 'relay', queues } }, { credential });
    assert.equal(fromConfig.fullyQualifiedNamespace, 'relay.servicebus.windows.net');
    await fromConfig.close();
  });

  it('normalizes namespaces', () => {
    assert.equal(normalizeNamespace('relay'), 'relay.servicebus.windows.net');
    assert.equal(normalizeNamespace(' sb://relay.servicebus.windows.net/ '), 'relay.servicebus.windows.net');
    assert.equal(normalizeNamespace('127.0.0.1:5672'), '127.0.0.1:5672');
  });

  it('has documented retry defaults and validates overrides', () => {
    assert.deepEqual(
      { ...DEFAULT_RETRY_OPTIONS },
      {
        maxRetries: 3,
        retryDelayInMs: 500,
        maxRetryDelayInMs: 10_000,
        mode: RetryMode.Exponential,
        timeoutInMs: 10_000,
      },
    );
    assert.throws(
      () => createServiceBusClient({ namespace: 'relay', credential, retry: { retryDelayInMs: -1 } }),
      /retry.retryDelayInMs must be a finite number >= 0, found -1/,
    );
  });
});
