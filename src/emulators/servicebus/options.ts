/**
 * Options of the Service Bus emulator: defaults spread, then validated once, with errors that say what was
 * expected and what was found.
 */
import { configPath } from '../../paths.js';
import { silentLogger, type Logger } from '../../log.js';
import type { ConfigRanges } from './config.js';

export interface ServiceBusEmulatorOptions {
  /** The address to listen on. @defaultValue '127.0.0.1' */
  host?: string;
  /** The TCP port; 0 picks a free one (read it from the handle). @defaultValue 5672 */
  port?: number;
  /**
   * The TCP port of the management REST API (queues' runtime properties for `ServiceBusAdministrationClient`; see
   * docs/emulators/servicebus.md, "Management API"), on `host`; 0 picks a free one (read it from the handle).
   * `channel-relay emulate servicebus` uses 5300, the port of Microsoft's emulator. @defaultValue 0
   */
  managementPort?: number;
  /**
   * A Microsoft emulator `Config.json` file, validated with the ranges of `configRanges`.
   * @defaultValue `config/servicebus-emulator.json` of this package, unless `config` is given
   */
  configFile?: string;
  /**
   * Whose documented ranges `configFile` is checked against: Azure Service Bus's, or Microsoft's emulator's (narrower:
   * for a file Microsoft's emulator is also to load). @defaultValue 'azure'
   */
  configRanges?: ConfigRanges;
  /**
   * A Config.json object given in code (takes precedence over `configFile`). Its durations may be as small as
   * 1 ms (lock duration, TTL, duplicate-detection window) and MaxDeliveryCount has no upper bound, so that tests can
   * expire things quickly. @defaultValue undefined
   */
  config?: unknown;
  /** A folder for the journal; messages whose send was acknowledged survive restarts. @defaultValue undefined (memory only) */
  dataDir?: string;
  /** `fdatasync` each journal batch before acknowledging the sends in it. @defaultValue true */
  fsync?: boolean;
  /** Journal size that triggers compaction. @defaultValue 64 MiB */
  compactBytes?: number;
  /** The largest message or batch a sender may send (Standard tier: 256 KB). @defaultValue 262144 */
  maxMessageSizeBytes?: number;
  /** Resolution of lock, session-lock, schedule and session-wait timers, in ms. @defaultValue 50 */
  tickMs?: number;
  /**
   * An entity (queue, subscription, dead-letter queue) holding more than this many bytes of messages keeps the
   * messages it takes next deflated, and inflates each for its delivery: a deep backlog (a million 6 KB
   * RemoteExecutionContexts) in about a fifth of the memory, for some CPU per message sent and delivered. Nothing a
   * client sees changes. 0 deflates every message; Infinity none. @defaultValue 128 MiB
   */
  deflateAboveBytes?: number;
  /** Where the emulator logs. @defaultValue silentLogger() */
  logger?: Logger;
}

export type ResolvedOptions = Required<Omit<ServiceBusEmulatorOptions, 'config' | 'dataDir'>> &
  Pick<ServiceBusEmulatorOptions, 'config' | 'dataDir'>;

function positiveInteger(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new TypeError(`ServiceBusEmulatorOptions.${name} must be an integer >= ${min}, got ${String(value)}`);
  }
}

/** Spreads the defaults and checks every field once. */
export function resolveOptions(options: ServiceBusEmulatorOptions = {}): ResolvedOptions {
  const resolved: ResolvedOptions = {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 5672,
    managementPort: options.managementPort ?? 0,
    configFile: options.configFile ?? configPath('servicebus-emulator.json'),
    configRanges: options.configRanges ?? 'azure',
    config: options.config,
    dataDir: options.dataDir,
    fsync: options.fsync ?? true,
    compactBytes: options.compactBytes ?? 64 * 1024 * 1024,
    maxMessageSizeBytes: options.maxMessageSizeBytes ?? 256 * 1024,
    tickMs: options.tickMs ?? 50,
    deflateAboveBytes: options.deflateAboveBytes ?? 128 * 1024 * 1024,
    logger: options.logger ?? silentLogger(),
  };
  if (typeof resolved.host !== 'string' || resolved.host === '')
    throw new TypeError(`ServiceBusEmulatorOptions.host must be a host name or address, got ${String(resolved.host)}`);
  if (!Number.isInteger(resolved.port) || resolved.port < 0 || resolved.port > 65535) {
    throw new TypeError(
      `ServiceBusEmulatorOptions.port must be an integer from 0 to 65535, got ${String(resolved.port)}`,
    );
  }
  if (!Number.isInteger(resolved.managementPort) || resolved.managementPort < 0 || resolved.managementPort > 65535) {
    throw new TypeError(
      `ServiceBusEmulatorOptions.managementPort must be an integer from 0 to 65535, got ${String(resolved.managementPort)}`,
    );
  }
  if (resolved.dataDir !== undefined && (typeof resolved.dataDir !== 'string' || resolved.dataDir === '')) {
    throw new TypeError(`ServiceBusEmulatorOptions.dataDir must be a folder path, got ${String(resolved.dataDir)}`);
  }
  if (resolved.configRanges !== 'azure' && resolved.configRanges !== 'microsoft-emulator') {
    throw new TypeError(
      `ServiceBusEmulatorOptions.configRanges must be 'azure' or 'microsoft-emulator', got ${String(resolved.configRanges)}`,
    );
  }
  if (typeof resolved.fsync !== 'boolean')
    throw new TypeError(`ServiceBusEmulatorOptions.fsync must be true or false, got ${String(resolved.fsync)}`);
  positiveInteger('compactBytes', resolved.compactBytes, 1);
  positiveInteger('maxMessageSizeBytes', resolved.maxMessageSizeBytes, 1024);
  positiveInteger('tickMs', resolved.tickMs, 1);
  if (resolved.deflateAboveBytes !== Number.POSITIVE_INFINITY)
    positiveInteger('deflateAboveBytes', resolved.deflateAboveBytes, 0);
  return resolved;
}
