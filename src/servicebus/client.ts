/**
 * The relay's Service Bus client: from a connection string (Azure or the project's emulator, whose connection
 * string carries `UseDevelopmentEmulator=true`) or from a fully qualified namespace with an Azure identity
 * (`DefaultAzureCredential` unless one is given), always with the relay's retry options.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { RetryMode, ServiceBusClient, type RetryOptions } from '@azure/service-bus';
import type { RelayConfig } from '../config/index.js';

/**
 * The retry options every relay client uses unless overridden; each field replaces the SDK's default for a reason:
 *
 * - `retryDelayInMs: 500`, `mode: Exponential`, `maxRetryDelayInMs: 10_000`: the SDK waits this between attempts of
 *   an operation and between `subscribe()`'s reconnects after a dropped connection. Its default is a fixed 30 s, which
 *   `client.close()` does not cut short: a worker would stay down (and a stopping process alive) for 30 s after a
 *   blip. Exponential from 500 ms reconnects quickly and backs off when the namespace stays away.
 * - `maxRetries: 3` (the SDK's default): an operation is tried at most 4 times before its error reaches the caller;
 *   the receive loops then back off on their own (see `BackoffOptions`).
 * - `timeoutInMs: 10_000` (the SDK's is 60 s): how long one attempt of an operation (send, settlement through
 *   `$management`, session state) may take, and **how long `acceptNextSession` waits for a session** before failing
 *   with `ServiceTimeout` (the SDK sends it as the link's timeout; the call's abort signal does not end that wait).
 *   It bounds how long a session loop takes to stop when nothing is in flight; an idle slot re-asks every 10 s,
 *   which costs one link attach.
 */
export const DEFAULT_RETRY_OPTIONS: Readonly<RetryOptions> = Object.freeze({
  maxRetries: 3,
  retryDelayInMs: 500,
  maxRetryDelayInMs: 10_000,
  mode: RetryMode.Exponential,
  timeoutInMs: 10_000,
});

export interface CreateServiceBusClientOptions {
  /** `Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…` (a secret: from the environment). Either this or `namespace`. */
  connectionString?: string;
  /**
   * Fully qualified namespace for identity-based access (`relay.servicebus.windows.net`; a bare name gets
   * `.servicebus.windows.net` appended; an `sb://` prefix and a trailing `/` are dropped). Either this or
   * `connectionString`.
   */
  namespace?: string;
  /** The identity used with `namespace`. @defaultValue new DefaultAzureCredential() */
  credential?: TokenCredential;
  /** Overrides of {@link DEFAULT_RETRY_OPTIONS}, field by field. @defaultValue {} */
  retry?: RetryOptions;
  /** Names the client in the SDK's logs and errors. @defaultValue the SDK's generated id */
  identifier?: string;
}

/** The fully qualified host name for a namespace setting. */
export function normalizeNamespace(namespace: string): string {
  const host = namespace
    .trim()
    .replace(/^sb:\/\//i, '')
    .replace(/\/+$/, '');
  return host.includes('.') || host.includes(':') ? host : `${host}.servicebus.windows.net`;
}

/**
 * Creates a `ServiceBusClient`; see {@link CreateServiceBusClientOptions}. Throws a `TypeError` for bad options. Its
 * AMQP connections send each frame at once (TCP_NODELAY: the project's rhea patch, `patches/rhea+3.0.5.patch`).
 */
export function createServiceBusClient(options: CreateServiceBusClientOptions): ServiceBusClient {
  const { connectionString, namespace } = options;
  const hasConnectionString = typeof connectionString === 'string' && connectionString.trim() !== '';
  const hasNamespace = typeof namespace === 'string' && namespace.trim() !== '';
  if (hasConnectionString === hasNamespace) {
    throw new TypeError(
      `createServiceBusClient: expected exactly one of connectionString and namespace, found ${hasConnectionString ? 'both' : 'neither'}`,
    );
  }
  const retryOptions: RetryOptions = { ...DEFAULT_RETRY_OPTIONS, ...stripUndefined(options.retry ?? {}) };
  for (const key of ['maxRetries', 'retryDelayInMs', 'maxRetryDelayInMs', 'timeoutInMs'] as const) {
    const v = retryOptions[key];
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) {
      throw new TypeError(`createServiceBusClient: retry.${key} must be a finite number >= 0, found ${String(v)}`);
    }
  }
  const clientOptions = { retryOptions, ...(options.identifier ? { identifier: options.identifier } : {}) };
  if (hasConnectionString) return new ServiceBusClient(connectionString!, clientOptions);
  return new ServiceBusClient(
    normalizeNamespace(namespace!),
    options.credential ?? new DefaultAzureCredential(),
    clientOptions,
  );
}

/**
 * The client for a relay configuration (`src/config`): its `serviceBus.connectionString` or `serviceBus.namespace`.
 * `overrides` supplies what the configuration does not carry (a credential, retry options).
 */
export function serviceBusClientFromConfig(
  config: Pick<RelayConfig, 'serviceBus'>,
  overrides: Omit<CreateServiceBusClientOptions, 'connectionString' | 'namespace'> = {},
): ServiceBusClient {
  const { connectionString, namespace } = config.serviceBus;
  return createServiceBusClient({ ...overrides, ...(connectionString ? { connectionString } : { namespace }) });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
