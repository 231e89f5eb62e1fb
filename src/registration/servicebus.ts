/**
 * The Service Bus connection Dataverse posts with: a namespace host, a SAS key name and the key, from a connection
 * string or from separate values, read from the environment exactly like the workers do
 * (`SERVICEBUS_CONNECTION_STRING`, else `SERVICEBUS_NAMESPACE` with `SERVICEBUS_SAS_KEY_NAME` and `SERVICEBUS_SAS_KEY`).
 */
import { ConfigError, type ConfigProblem } from '../errors.js';

/** What the service endpoint needs of the namespace. */
export interface ServiceBusSas {
  /** `host[:port]`, e.g. `contoso.servicebus.windows.net` or `127.0.0.1:5672`. */
  host: string;
  /** `SharedAccessKeyName`, e.g. `RootManageSharedAccessKey`. */
  keyName: string;
  /** `SharedAccessKey`. Secret: never printed or logged. */
  key: string;
}

const DEFAULT_SUFFIX = '.servicebus.windows.net';

function parts(connectionString: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of connectionString.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  return out;
}

/** `host[:port]` of `sb://host[:port]/` or `host[:port]`. */
function hostOf(value: string): string {
  return value
    .trim()
    .replace(/^(sb|amqps?|https?):\/\//i, '')
    .replace(/\/.*$/, '');
}

/** `host[:port]` of `sb://host[:port]/`, `host`, or a bare namespace name (`contoso` → `contoso.servicebus.windows.net`). */
export function namespaceHost(value: string): string {
  const host = hostOf(value);
  return host.includes('.') || host.includes(':') || host === 'localhost' ? host : `${host}${DEFAULT_SUFFIX}`;
}

/**
 * Reads `Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…[;UseDevelopmentEmulator=true]`. Throws a TypeError
 * naming what is missing (never the key).
 */
export function serviceBusFromConnectionString(connectionString: string): ServiceBusSas {
  const p = parts(connectionString);
  const endpoint = p.get('endpoint');
  const keyName = p.get('sharedaccesskeyname');
  const key = p.get('sharedaccesskey');
  const missing = [
    endpoint ? '' : 'Endpoint=sb://…',
    keyName ? '' : 'SharedAccessKeyName=…',
    key ? '' : 'SharedAccessKey=…',
  ].filter(Boolean);
  if (missing.length > 0) {
    const sas = p.has('sharedaccesssignature')
      ? ' (a SharedAccessSignature cannot be used: Dataverse needs the key name and key)'
      : '';
    throw new TypeError(`the Service Bus connection string has no ${missing.join(', ')}${sas}`);
  }
  // An Endpoint is always a full host (`servicebus-emulator` in a Compose network is one): only a bare namespace
  // name given as SERVICEBUS_NAMESPACE gets the Azure suffix.
  const host = hostOf(endpoint!);
  if (host === '') throw new TypeError('the Service Bus connection string has an empty Endpoint host');
  return { host, keyName: keyName!, key: key! };
}

/**
 * The connection from the environment, as the workers read it. Throws a `ConfigError` naming every problem
 * (variables, never values).
 */
export function serviceBusFromEnv(env: NodeJS.ProcessEnv): ServiceBusSas {
  const problem = (variable: string, expected: string, found: string): ConfigProblem => ({
    source: `environment variable ${variable}`,
    path: '',
    expected,
    found,
  });
  const connectionString = env['SERVICEBUS_CONNECTION_STRING'];
  if (connectionString !== undefined && connectionString !== '') {
    try {
      return serviceBusFromConnectionString(connectionString);
    } catch (err) {
      throw new ConfigError('ConfigInvalid', [
        problem(
          'SERVICEBUS_CONNECTION_STRING',
          'Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…',
          (err as Error).message.replace(/^the Service Bus connection string has /, ''),
        ),
      ]);
    }
  }
  const namespace = env['SERVICEBUS_NAMESPACE'];
  const keyName = env['SERVICEBUS_SAS_KEY_NAME'];
  const key = env['SERVICEBUS_SAS_KEY'];
  if (namespace === undefined || namespace === '') {
    throw new ConfigError('ConfigInvalid', [
      problem(
        'SERVICEBUS_CONNECTION_STRING',
        'a connection string with a SAS key, or SERVICEBUS_NAMESPACE with SERVICEBUS_SAS_KEY_NAME and SERVICEBUS_SAS_KEY',
        'neither set',
      ),
    ]);
  }
  const problems: ConfigProblem[] = [];
  if (keyName === undefined || keyName === '')
    problems.push(
      problem(
        'SERVICEBUS_SAS_KEY_NAME',
        'the SAS policy name Dataverse posts with (e.g. RootManageSharedAccessKey, or a Send-only policy)',
        'it unset',
      ),
    );
  if (key === undefined || key === '')
    problems.push(
      problem('SERVICEBUS_SAS_KEY', "that policy's key (Dataverse cannot use an Entra identity to post)", 'it unset'),
    );
  if (problems.length > 0) throw new ConfigError('ConfigInvalid', problems);
  return { host: namespaceHost(namespace), keyName: keyName!, key: key! };
}
