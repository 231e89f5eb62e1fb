/**
 * A short, secret-free summary of what a configuration would run with, for `channel-relay config check`.
 */
import type { CallbackKeys } from '../correlation/index.js';
import type { LoadedConfig } from './types.js';

/** The keys as `id1 (signs), id2`: their ids only, never a secret. */
function keyIds(keys: CallbackKeys): string {
  return keys.verify.map((key) => (key === keys.sign ? `${key.id} (signs)` : key.id)).join(', ');
}

/** `Endpoint=sb://h;SharedAccessKeyName=n;SharedAccessKey=s` → the same with the key hidden. */
export function maskConnectionString(cs: string): string {
  return cs
    .split(';')
    .filter((part) => part.trim() !== '')
    .map((part) => {
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      return /^(SharedAccessKey|SharedAccessSignature)$/i.test(key.trim()) ? `${key}=[hidden]` : part;
    })
    .join(';');
}

/** One line per area: where each thing comes from and what it is. */
export function describeConfig(loaded: LoadedConfig): string[] {
  const { config, origins, files } = loaded;
  const from = (key: string): string => (origins[key] ? ` (from ${origins[key]})` : '');
  const sb = config.serviceBus;
  const dv = config.dataverse;
  const busLine = sb.connectionString
    ? `Service Bus: ${maskConnectionString(sb.connectionString)}${from('serviceBus.connectionString')}`
    : sb.namespace
      ? `Service Bus: namespace ${sb.namespace} with DefaultAzureCredential${from('serviceBus.namespace')}`
      : 'Service Bus: not configured';
  const auth =
    dv.auth === 'client-secret'
      ? `client secret for app ${dv.clientId ?? '?'} in tenant ${dv.tenantId ?? '?'} (secret hidden)`
      : dv.auth === 'emulator'
        ? "the emulator's token"
        : 'DefaultAzureCredential';
  return [
    `files: ${files.join(', ')}`,
    busLine,
    `queues: activities=${sb.queues.activities} outbound=${sb.queues.outbound} interactions=${sb.queues.interactions} conversations=${sb.queues.conversations}`,
    `Dataverse: ${dv.url ?? 'not configured'}${from('dataverse.url')} with ${auth}, timeout ${dv.timeoutMs} ms`,
    `channels: ${config.channelsFile}${from('channelsFile')}`,
    `callbacks: ${config.callbacks.host}:${config.callbacks.port}, body limit ${config.callbacks.bodyLimitBytes} bytes, reply cache ${config.callbacks.replyCacheMaxAgeMs === 0 ? 'off' : `${config.callbacks.replyCacheMaxAgeMs / 3_600_000} h`}, signing keys ${
      loaded.callbackKeys === undefined
        ? 'not configured'
        : `${keyIds(loaded.callbackKeys)}${from('callbacks.signingKeys')} (secrets hidden)`
    }`,
    `log level: ${config.log.level}; health endpoints: ${config.health.host}:${config.health.port}; shutdown budget: ${config.shutdown.budgetMs} ms`,
  ];
}
