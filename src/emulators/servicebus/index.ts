/**
 * The Service Bus emulator: an AMQP 1.0 broker on loopback that the real `@azure/service-bus` SDK uses unmodified.
 * See docs/emulators/servicebus.md.
 */
import { areaLogger, type Logger } from '../../log.js';
import { loadEmulatorConfigFile, parseEmulatorConfig, type NamespaceDefinition } from './config.js';
import type { StoreJournal } from './message-store.js';
import {
  RECORD,
  duplicateIdRecord,
  enqueueRecord,
  nextSeqRecord,
  seqRecord,
  sessionStateRecord,
} from './journal-codec.js';
import { Journal, claimDataDir, replayJournal } from './journal.js';
import { Namespace } from './namespace.js';
import { resolveOptions, type ServiceBusEmulatorOptions } from './options.js';
import { ManagementServer } from './management-http.js';
import { AmqpServer } from './server.js';

export type { ServiceBusEmulatorOptions } from './options.js';
export type { ConfigIssue } from './errors.js';
export { ServiceBusEmulatorConfigError, isServiceBusEmulatorConfigError } from './errors.js';
export type {
  ConfigRanges,
  CorrelationFilter,
  NamespaceDefinition,
  QueueDefinition,
  RuleDefinition,
  SubscriptionDefinition,
  TopicDefinition,
} from './config.js';
export { loadEmulatorConfigFile, parseEmulatorConfig } from './config.js';

/** A running emulator. */
export interface ServiceBusEmulator {
  /** `Endpoint=sb://host:port;SharedAccessKeyName=…;SharedAccessKey=…;UseDevelopmentEmulator=true;` */
  readonly connectionString: string;
  readonly port: number;
  /** The management REST API's port on the same host (`ServiceBusAdministrationClient`; docs/emulators/servicebus.md). */
  readonly managementPort: number;
  /** Stops listening, drops connections, flushes and closes the journal. Idempotent. */
  close(): Promise<void>;
}

const NO_JOURNAL: StoreJournal = { enqueued() {}, updated() {}, removed() {}, deferred() {}, sessionState() {} };

/** The connection string for an emulator at host:port. */
export function emulatorConnectionString(host: string, port: number): string {
  return `Endpoint=sb://${host}:${port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;`;
}

/** Loads the journal of `dataDir` into the namespace and opens it for appending. */
async function openJournal(
  namespace: Namespace,
  dataDir: string,
  o: ReturnType<typeof resolveOptions>,
  log: Logger,
): Promise<Journal> {
  const replayed = replayJournal(dataDir);
  let restored = 0;
  for (const [path, messages] of replayed.messages) {
    const store = namespace.store(path);
    if (!store) {
      if (messages.size > 0)
        log.warn('journal holds messages of an entity that is no longer configured; they are dropped', {
          entity: path,
          messages: messages.size,
        });
      continue;
    }
    for (const msg of [...messages.values()].sort((a, b) => a.seq - b.seq)) {
      store.restore(msg);
      restored++;
    }
  }
  for (const [path, next] of replayed.nextSeq) namespace.store(path)?.advanceSequence(next);
  // Every message id the journal still holds (settled ones too), so that a repeat within the window stays a duplicate.
  for (const [path, messageId, seenAt] of replayed.seenIds) namespace.rememberMessageId(path, messageId, seenAt);
  for (const [path, states] of replayed.sessionStates) {
    const store = namespace.store(path);
    for (const [sessionId, state] of states) store?.restoreSessionState(sessionId, state);
  }
  const journal = await Journal.open({
    dir: dataDir,
    fsync: o.fsync,
    compactBytes: o.compactBytes,
    log,
    snapshot: () => {
      const records: Buffer[] = [];
      for (const [path, messageId, seenAt] of namespace.duplicateHistory(Date.now()))
        records.push(duplicateIdRecord(path, messageId, seenAt));
      for (const store of namespace.stores()) {
        records.push(nextSeqRecord(store.path, store.nextSequenceNumber));
        for (const msg of store.liveMessages()) records.push(enqueueRecord(store.path, msg));
        for (const [sessionId, state] of store.sessionStates())
          records.push(sessionStateRecord(store.path, sessionId, state));
      }
      return records;
    },
  });
  log.info('journal replayed', {
    dataDir,
    records: replayed.records,
    messages: restored,
    discardedBytes: replayed.discardedBytes,
    fsync: o.fsync,
  });
  return journal;
}

/**
 * Starts the emulator; resolves once it listens. Throws `ServiceBusEmulatorConfigError` for a bad configuration,
 * `TypeError` for bad options, and `EmulatorError` (`EmulatorDataDirInUse`) when the data folder is used by another running emulator.
 */
export async function startServiceBusEmulator(options: ServiceBusEmulatorOptions = {}): Promise<ServiceBusEmulator> {
  const o = resolveOptions(options);
  const log = areaLogger(o.logger, 'servicebus-emulator');
  const definition: NamespaceDefinition =
    o.config !== undefined
      ? parseEmulatorConfig(o.config, { strict: false, source: 'options.config' })
      : loadEmulatorConfigFile(o.configFile, o.configRanges);

  let journal: Journal | undefined;
  const port: StoreJournal = {
    enqueued: (store, msg) => journal?.append(enqueueRecord(store.path, msg)),
    updated: (store, msg) => journal?.append(enqueueRecord(store.path, msg)),
    removed: (store, msg) => journal?.append(seqRecord(RECORD.remove, store.path, msg.seq)),
    deferred: (store, msg) => journal?.append(seqRecord(RECORD.defer, store.path, msg.seq)),
    sessionState: (store, sessionId, state) => journal?.append(sessionStateRecord(store.path, sessionId, state)),
  };
  const releaseDataDir = o.dataDir ? claimDataDir(o.dataDir) : undefined;
  const namespace = new Namespace(definition, {
    journal: o.dataDir ? port : NO_JOURNAL,
    log,
    tickMs: o.tickMs,
    deflateAboveBytes: o.deflateAboveBytes,
  });
  let server: AmqpServer | undefined;
  let management: ManagementServer;
  try {
    if (o.dataDir) journal = await openJournal(namespace, o.dataDir, o, log);
    server = await AmqpServer.start({
      host: o.host,
      port: o.port,
      namespace,
      maxMessageSizeBytes: o.maxMessageSizeBytes,
      log,
      commit: () => journal?.commit(),
    });
    management = await ManagementServer.start({ host: o.host, port: o.managementPort, namespace, log });
  } catch (err) {
    await server?.close();
    namespace.close();
    await journal?.close();
    releaseDataDir?.();
    throw err;
  }
  log.info('Service Bus emulator listening', {
    host: o.host,
    port: server.port,
    managementPort: management.port,
    queues: definition.queues.map((q) => q.name),
    topics: definition.topics.map((t) => t.name),
    durable: o.dataDir !== undefined,
  });
  let closing: Promise<void> | undefined;
  return {
    connectionString: emulatorConnectionString(o.host, server.port),
    port: server.port,
    managementPort: management.port,
    close: () => {
      closing ??= (async () => {
        await management.close();
        await server.close();
        namespace.close();
        await journal?.close();
        releaseDataDir?.();
        log.info('Service Bus emulator stopped');
      })();
      return closing;
    },
  };
}
