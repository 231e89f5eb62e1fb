import type { CallbackKeys } from '../correlation/index.js';
import type { LogLevel } from '../log.js';

/** Dataverse authentication modes. */
export type DataverseAuth = 'default' | 'client-secret' | 'emulator';

/** The validated configuration of a relay process; its shape is `config/schema.json`. */
export interface RelayConfig {
  serviceBus: {
    /** Secret: only from the environment. Either this or `namespace`. */
    connectionString?: string;
    /** Fully qualified namespace for identity-based access. */
    namespace?: string;
    queues: { activities: string; outbound: string; interactions: string; conversations: string };
  };
  dataverse: {
    url?: string;
    auth: DataverseAuth;
    tenantId?: string;
    clientId?: string;
    /** Secret: only from the environment. */
    clientSecret?: string;
    timeoutMs: number;
    /** The service protection window the governor spreads the budget over (300,000 for Dataverse). */
    limitsWindowMs: number;
    /** Requests per window for this process (Dataverse: 6,000 per identity, shared by its processes). @defaultValue 6000 */
    requestBudget: number;
    /** Execution ms per window for this process (Dataverse: 1,200,000 per identity, shared by its processes). @defaultValue 1200000 */
    executionBudgetMs: number;
    /** Calls in flight at most for this process (Dataverse: 52 per identity, shared by its processes). @defaultValue 16 */
    maxConcurrency: number;
  };
  /** Absolute path of the channels file. */
  channelsFile: string;
  log: { level: LogLevel };
  health: { host: string; port: number };
  shutdown: { budgetMs: number };
  /**
   * Intake tuning: batch size (one contact read per batch), receive wait, batches at once, and the bytes of event
   * bodies the batches in flight hold at most.
   */
  intake: { batchSize: number; maxWaitMs: number; concurrency: number; maxBytesInFlight: number };
  /** Dispatch tuning: senders held at once, idle release, rate-limit guard, provider attempts (`retry.attempts`). */
  dispatch: {
    maxSessions: number;
    sessionIdleMs: number;
    guardMs: number;
    retry: { attempts: number };
    lostAnswerLookupDelayMs: number;
  };
  /** Recorder tuning: interactions per $batch, receive wait, batches at once. */
  recorder: { batchSize: number; maxWaitMs: number; concurrency: number };
  /**
   * The callbacks service: where it listens, the largest body it reads (413 above), how long a request may take to
   * arrive (`requestTimeoutMs`, default 10000; then 408); the keys of the callback tokens and tracked-link codes
   * (secret: `id:base64secret,…`, the first signs, all verify), as configured: the loader parses them once into
   * `LoadedConfig.callbackKeys`. Required when a channel has callbacks.
   */
  callbacks: {
    host: string;
    port: number;
    bodyLimitBytes: number;
    requestTimeoutMs: number;
    /** How long a message stands for its recipient's keyword replies (the reply cache); 0: none. @defaultValue 24 h */
    replyCacheMaxAgeMs: number;
    signingKeys?: string;
  };
  /**
   * The conversations stage: messages per session batch, customer sessions held at once, the poll interval (doubling
   * up to `maxPollIntervalMs` while nothing comes, none after `idleTimeoutMs` without activity), the token refresh
   * margin, the Direct Line call timeout and the retries of Direct Line calls within a batch.
   */
  conversations: {
    batchSize: number;
    concurrency: number;
    pollIntervalMs: number;
    maxPollIntervalMs: number;
    idleTimeoutMs: number;
    tokenRefreshMarginMs: number;
    timeoutMs: number;
    retry: { attempts: number; initialDelayMs: number; maxDelayMs: number };
  };
}

/** A loaded configuration and where its values came from. */
export interface LoadedConfig {
  config: RelayConfig;
  /** The files merged, in order (the embedded defaults first). */
  files: string[];
  /** For each dotted key path that was set: the file or environment variable it came from. */
  origins: Record<string, string>;
  /** `callbacks.signingKeys` parsed (checked at load); undefined when not configured. Hand these on, never re-parse. */
  callbackKeys?: CallbackKeys;
  /** What works but should change, one line each naming the file and the key (a key's old name, see `RENAMED_KEYS`). */
  warnings: string[];
}
