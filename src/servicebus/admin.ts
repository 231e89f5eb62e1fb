/**
 * The relay's `ServiceBusAdministrationClient` (queues' runtime properties, for `channel-relay status`), from the same
 * configuration as the workers' client: a connection string, or a namespace with `DefaultAzureCredential`.
 *
 * A development-emulator connection string (`UseDevelopmentEmulator=true`) needs two things @azure/service-bus 7.9.5
 * does not do by itself: its administration client always calls `https://<Endpoint's host:port>/`
 * (`ServiceBusAdministrationClient.getUrl`), while emulators serve their management API over plain HTTP on a port of
 * their own (Microsoft's emulator: 5300; this project's: `emulate servicebus --management-port`, 5300 too). So for
 * such a connection string only, the client gets the Endpoint's port replaced by the management port and a pipeline
 * policy that sends its requests over `http:`. Later SDK versions use HTTP for the emulator themselves
 * (Azure/azure-sdk-for-js pull request #32771, "update atom admin client to use HTTP for emulator"). The host is not
 * required to be loopback (the SDK team's wish in Azure/azure-sdk-for-js issue #28549, which 7.9.5's AMQP side does
 * not enforce either): docker-compose.yml's workers reach Microsoft's emulator as `servicebus-emulator`, in plain
 * AMQP with the same key, and status must reach it as they do.
 */
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { ServiceBusAdministrationClient, type ServiceBusAdministrationClientOptions } from '@azure/service-bus';
import type { RelayConfig } from '../config/index.js';
import { normalizeNamespace } from './client.js';

/** The management port of Microsoft's Service Bus emulator, and the default of `emulate servicebus`. */
export const EMULATOR_MANAGEMENT_PORT = 5300;

export interface AdministrationClientOptions {
  /** The identity used with a namespace. @defaultValue new DefaultAzureCredential() */
  credential?: TokenCredential;
  /** An emulator connection string's management port. @defaultValue {@link EMULATOR_MANAGEMENT_PORT} */
  emulatorManagementPort?: number;
  /** The HTTP pipeline's retries. @defaultValue the SDK's (3 retries, exponential from 1 s) */
  retryOptions?: ServiceBusAdministrationClientOptions['retryOptions'];
}

/** Key=value pairs of a connection string (keys as written; values may contain `=`). */
function connectionStringParts(connectionString: string): Map<string, string> {
  const parts = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) parts.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  return parts;
}

/** Whether the connection string is a development emulator's (`UseDevelopmentEmulator=true`). */
export function isDevelopmentEmulatorConnectionString(connectionString: string): boolean {
  return connectionStringParts(connectionString).get('usedevelopmentemulator')?.toLowerCase() === 'true';
}

/** A policy of the administration client's pipeline (@azure/core-rest-pipeline's, which is not a direct dependency). */
type PipelinePolicy = Parameters<ServiceBusAdministrationClient['pipeline']['addPolicy']>[0];

/** Sends the administration client's requests to the emulator over plain HTTP (see the module comment). */
function plainHttpPolicy(): PipelinePolicy {
  return {
    name: 'channelRelayEmulatorPlainHttp',
    sendRequest: (request, next) => {
      const url = new URL(request.url);
      if (url.protocol === 'https:') {
        url.protocol = 'http:';
        request.url = url.toString();
        request.allowInsecureConnection = true;
      }
      return next(request);
    },
  };
}

/**
 * The administration client for `config.serviceBus`. Throws a `TypeError` naming the problem for an emulator
 * connection string without a usable Endpoint, or a bad management port.
 */
export function serviceBusAdministrationClientFromConfig(
  config: Pick<RelayConfig, 'serviceBus'>,
  options: AdministrationClientOptions = {},
): ServiceBusAdministrationClient {
  const { connectionString, namespace } = config.serviceBus;
  const clientOptions: ServiceBusAdministrationClientOptions = options.retryOptions
    ? { retryOptions: options.retryOptions }
    : {};
  if (!connectionString) {
    if (!namespace) throw new TypeError('Service Bus: expected a connection string or a namespace, found neither');
    return new ServiceBusAdministrationClient(
      normalizeNamespace(namespace),
      options.credential ?? new DefaultAzureCredential(),
      clientOptions,
    );
  }
  if (!isDevelopmentEmulatorConnectionString(connectionString))
    return new ServiceBusAdministrationClient(connectionString, clientOptions);
  const port = options.emulatorManagementPort ?? EMULATOR_MANAGEMENT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new TypeError(`emulator management port: expected an integer from 1 to 65535, found ${String(port)}`);
  const parts = connectionStringParts(connectionString);
  const endpoint = /^[a-z]+:\/\/([^/:]+|\[[^\]]+\])(?::\d+)?\/?$/i.exec(parts.get('endpoint') ?? '');
  const host = endpoint?.[1];
  if (host === undefined) {
    throw new TypeError(
      `SERVICEBUS_CONNECTION_STRING: expected an Endpoint such as sb://localhost or sb://127.0.0.1:5672, found '${parts.get('endpoint') ?? ''}'`,
    );
  }
  const key = parts.get('sharedaccesskey') ?? '';
  const keyName = parts.get('sharedaccesskeyname') ?? '';
  const client = new ServiceBusAdministrationClient(
    `Endpoint=sb://${host}:${port};SharedAccessKeyName=${keyName};SharedAccessKey=${key}`,
    clientOptions,
  );
  client.pipeline.addPolicy(plainHttpPolicy());
  return client;
}
