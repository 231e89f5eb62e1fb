/**
 * The error model of channel-relay: one error class per boundary, each with a closed union of codes, and whether a
 * code is worth retrying stated once, in the table below: stages decide retry vs dead-letter from the code, never from
 * a message. An error from an upstream service keeps its status, headers and body (`Retry-After`, what it said).
 * Guards check a brand (a registered symbol), not `instanceof`, so they hold across module copies and across the
 * compiled and source trees. The emulators' errors are theirs (src/emulators/errors.ts), not part of this table.
 */
/** Every code, grouped by the boundary it belongs to, with whether it is retryable. */
const CODES = {
  config: {
    /** A configuration value is missing or not of the expected shape. */
    ConfigInvalid: false,
    /** A configuration file could not be read or parsed. */
    ConfigUnreadable: false,
  },
  solutionPackage: {
    /** A Dataverse solution (folder or zip) breaks a rule of its format; `problems` lists each with its file and element. */
    SolutionInvalid: false,
    /** The folder or zip could not be read at all (missing, not a zip). */
    SolutionUnreadable: false,
  },
  dataverse: {
    /** Service protection limit hit (HTTP 429); `retryAfterMs` says when to call again. */
    DataverseThrottled: true,
    /** 5xx, 503 or a connection failure. */
    DataverseUnavailable: true,
    /** The call did not answer within its timeout. */
    DataverseTimeout: true,
    /** 401/403: the identity is wrong or lacks privileges. */
    DataverseUnauthorized: false,
    /** 400 and other refusals of the request itself (bad parameter, unknown column). */
    DataverseBadRequest: false,
    /** 404: the row, table or action does not exist. */
    DataverseNotFound: false,
    /** 412: an `If-Match` condition failed. */
    DataversePreconditionFailed: false,
  },
  provider: {
    /** The provider said 429 (or its own rate code); `retryAfterMs` says when to call again. */
    ProviderRateLimited: true,
    /** 5xx or a connection failure. */
    ProviderUnavailable: true,
    /** The provider did not answer within the timeout. */
    ProviderTimeout: true,
    /** A permanent refusal of this message (invalid number, blocked bot): an outcome, not a fault. */
    ProviderRejected: false,
    /** The credentials were refused. */
    ProviderUnauthorized: false,
    /** The provider answered with something that is not its documented shape (a proxy's error page, a redirect). */
    ProviderBadResponse: true,
    /**
     * The provider took the request (2xx) but its answer is not its documented shape: the message may have been
     * sent, so it is never sent again; a person checks with the provider.
     */
    ProviderAnswerUnreadable: false,
  },
  event: {
    /** The body is not decodable (broken JSON, empty, wrong encoding). */
    EventUndecodable: false,
    /** The body is in a format the relay does not read (.NET binary XML, text XML). */
    EventUnsupportedFormat: false,
    /** The event is for a table or message the relay does not handle. */
    EventUnknownTable: false,
    /** A required attribute is missing or of the wrong type. */
    EventMissingAttribute: false,
    /** No configured channel matches the event. */
    EventUnknownChannel: false,
  },
  directline: {
    /** Direct Line said 429; `retryAfterMs` says when to call again (Direct Line's `Retry-After` is in seconds). */
    DirectLineThrottled: true,
    /** 5xx (502: the bot behind it failed), a connection failure or a timeout. */
    DirectLineUnavailable: true,
    /** 403 with `TokenExpired`: the conversation's token must be refreshed, or renewed with the secret. */
    DirectLineTokenExpired: true,
    /** 404 for the conversation (unknown, or expired after being idle): a new conversation must be started. */
    DirectLineConversationGone: false,
    /** 401, or 403 other than an expired token: the secret is wrong or revoked. */
    DirectLineUnauthorized: false,
    /** 400 or 413: the activity itself is refused (too large, malformed): sending it again cannot help. */
    DirectLineBadRequest: false,
    /** A 2xx answer that is not Direct Line's documented shape. */
    DirectLineAnswerUnreadable: true,
  },
  identity: {
    /** The identity platform refused the app's client credentials (AADSTS code in `context.aadsts`). */
    IdentityRefused: false,
    /** The identity platform could not be reached or answered 5xx. */
    IdentityUnavailable: true,
  },
  servicebus: {
    /** A message is larger than its queue takes, even alone in a batch; nothing of the call was sent. */
    MessageTooLarge: false,
  },
  limiter: {
    /** A rate-limited call could not start by its deadline (a pause or its recipient's turn ends later); nothing was called. */
    StartDeadlineMissed: false,
  },
  solution: {
    /** An option of `channel new` is missing or not of the expected shape (`option` names it). */
    SolutionOptionInvalid: false,
    /** The output folder holds files that are not a solution `channel new` may replace. */
    SolutionOutputExists: false,
  },
  lifecycle: {
    /** Work in flight did not finish within the shutdown budget. */
    ShutdownTimeout: false,
    /** One or more close steps failed; `causes` holds each failure. */
    CloseFailed: false,
  },
} as const;

type Codes = typeof CODES;
/** The boundaries errors belong to. */
export type ErrorKind = keyof Codes;
/** The codes of one boundary. */
export type CodeOf<K extends ErrorKind> = keyof Codes[K] & string;
/** Every error code of the relay: a closed union. */
export type RelayErrorCode = { [K in ErrorKind]: CodeOf<K> }[ErrorKind];

const RETRYABLE: Readonly<Record<string, boolean>> = Object.assign({}, ...Object.values(CODES));

/** Whether errors with this code are worth retrying. */
export function isRetryableCode(code: RelayErrorCode): boolean {
  return RETRYABLE[code] === true;
}

/** What an upstream service answered, kept on the error for the caller and the logs. */
export interface Upstream {
  /** HTTP status, when there was a response. */
  status?: number;
  /** Response headers, lower-cased names. */
  headers?: Record<string, string>;
  /** Parsed JSON body, or text, as the service sent it. */
  body?: unknown;
  /** The service's own error code (`0x80072322`, Twilio's `21211` …). */
  code?: string | number;
}

export interface RelayErrorOptions {
  cause?: unknown;
  upstream?: Upstream;
  /** For throttling codes: how long to wait before the next call, in milliseconds. */
  retryAfterMs?: number;
  /** Structured context for the logs (entity path, activity id …); never secrets. */
  context?: Record<string, unknown>;
}

const BRAND = Symbol.for('channel-relay.error');

/** The base of every error the relay raises on purpose. */
export abstract class RelayError<K extends ErrorKind = ErrorKind> extends Error {
  /** The boundary this error belongs to; also the brand checked by the guards. */
  readonly [BRAND]: K;
  readonly kind: K;
  readonly code: CodeOf<K>;
  readonly retryable: boolean;
  readonly upstream?: Upstream;
  readonly retryAfterMs?: number;
  readonly context?: Record<string, unknown>;

  protected constructor(kind: K, code: CodeOf<K>, message: string, options: RelayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this[BRAND] = kind;
    this.kind = kind;
    this.code = code;
    this.retryable = RETRYABLE[code] === true;
    if (options.upstream !== undefined) this.upstream = options.upstream;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
    if (options.context !== undefined) this.context = options.context;
  }

  /** A plain object for structured logs and dead-letter descriptions. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      kind: this.kind,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }),
      ...(this.upstream === undefined ? {} : { upstream: this.upstream }),
      ...(this.context === undefined ? {} : { context: this.context }),
    };
  }
}

/** One problem found in a configuration: where, what was expected, what was found. */
export interface ConfigProblem {
  /** The file (relative path) or `environment variable NAME` the value came from. */
  source: string;
  /** Dotted key path inside the configuration, e.g. `dataverse.auth`. */
  path: string;
  expected: string;
  /** What was there, already rendered for a person (secrets masked); `nothing` when missing. */
  found: string;
}

/** Renders a problem as the one line an operator reads. */
export function formatConfigProblem(p: ConfigProblem): string {
  return `${p.source}: ${p.path || '(root)'}: expected ${p.expected}, found ${p.found}`;
}

export class ConfigError extends RelayError<'config'> {
  override readonly name: string = 'ConfigError';
  readonly problems: readonly ConfigProblem[];
  constructor(code: CodeOf<'config'>, problems: readonly ConfigProblem[], options: RelayErrorOptions = {}) {
    const lines = problems.map(formatConfigProblem);
    const head = `configuration has ${problems.length} problem${problems.length === 1 ? '' : 's'}`;
    super('config', code, [head, ...lines.map((l) => `  - ${l}`)].join('\n'), options);
    this.problems = problems;
  }
}

/** One problem found in a Dataverse solution: the file (path inside the folder or zip), the element, what is wrong. */
export interface SolutionProblem {
  /** The file, relative to the solution folder or the zip's root (`customizations.xml`, `Other/Solution.xml` …). */
  file: string;
  /** The element, as a path from the document's root (`ImportExportXml/msdyn_channeldefinitions/…`), where it applies. */
  element?: string;
  /** 1-based line in `file`, where it is known. */
  line?: number;
  message: string;
}

/** Renders a problem as the one line a person reads: `file:line: <element>: message`. */
export function formatSolutionProblem(p: SolutionProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return `${where}: ${p.element === undefined ? '' : `<${p.element}>: `}${p.message}`;
}

/** A Dataverse solution folder or zip that `channel pack` or `channel check` refuses; every problem is in `problems`. */
export class SolutionPackageError extends RelayError<'solutionPackage'> {
  override readonly name: string = 'SolutionPackageError';
  readonly problems: readonly SolutionProblem[];
  constructor(code: CodeOf<'solutionPackage'>, problems: readonly SolutionProblem[], options: RelayErrorOptions = {}) {
    const head = `the solution has ${problems.length} problem${problems.length === 1 ? '' : 's'}`;
    super(
      'solutionPackage',
      code,
      [head, ...problems.map((p) => `  - ${formatSolutionProblem(p)}`)].join('\n'),
      options,
    );
    this.problems = problems;
  }
}

export class DataverseError extends RelayError<'dataverse'> {
  override readonly name: string = 'DataverseError';
  constructor(code: CodeOf<'dataverse'>, message: string, options: RelayErrorOptions = {}) {
    super('dataverse', code, message, options);
  }
}

export class ProviderError extends RelayError<'provider'> {
  override readonly name: string = 'ProviderError';
  constructor(code: CodeOf<'provider'>, message: string, options: RelayErrorOptions = {}) {
    super('provider', code, message, options);
  }
}

export class EventError extends RelayError<'event'> {
  override readonly name: string = 'EventError';
  constructor(code: CodeOf<'event'>, message: string, options: RelayErrorOptions = {}) {
    super('event', code, message, options);
  }
}

export class DirectLineError extends RelayError<'directline'> {
  override readonly name: string = 'DirectLineError';
  constructor(code: CodeOf<'directline'>, message: string, options: RelayErrorOptions = {}) {
    super('directline', code, message, options);
  }
}

export class IdentityError extends RelayError<'identity'> {
  override readonly name: string = 'IdentityError';
  constructor(code: CodeOf<'identity'>, message: string, options: RelayErrorOptions = {}) {
    super('identity', code, message, options);
  }
}

/** One message is larger than the queue accepts, even alone in a batch (the Service Bus sender's refusal). */
export class MessageTooLargeError extends RelayError<'servicebus'> {
  override readonly name: string = 'MessageTooLargeError';
  constructor(
    readonly queue: string,
    readonly messageId: string,
    /** The size of the JSON body, in bytes. */
    readonly bodyBytes: number,
    /** The largest batch the queue takes, in bytes. */
    readonly maxSizeInBytes: number,
  ) {
    super(
      'servicebus',
      'MessageTooLarge',
      `message ${messageId} is too large for ${queue}: its JSON body is ${bodyBytes} bytes and a batch holds at most ${maxSizeInBytes} bytes`,
      {
        context: { queue, messageId },
      },
    );
  }
}

/** A rate limiter did not start a call: it could not start by its `startBy`. Nothing was called. */
export class StartDeadlineError extends RelayError<'limiter'> {
  override readonly name: string = 'StartDeadlineError';
  constructor(
    /** The deadline (ms since the epoch). */
    readonly startBy: number,
    /** What kept the call from starting in time. */
    readonly why: string,
  ) {
    super('limiter', 'StartDeadlineMissed', `the call could not start by ${new Date(startBy).toISOString()}: ${why}`);
  }
}

/** A refused request to generate a solution: which option (or `--out` folder) and why. */
export class SolutionError extends RelayError<'solution'> {
  override readonly name: string = 'SolutionError';
  constructor(
    code: CodeOf<'solution'>,
    /** The option as the command line spells it (`--parts`, `--publisher-prefix`, `NAME` …). */
    readonly option: string,
    message: string,
    options: RelayErrorOptions = {},
  ) {
    super('solution', code, `${option}: ${message}`, options);
  }
}

export class LifecycleError extends RelayError<'lifecycle'> {
  override readonly name: string = 'LifecycleError';
  readonly causes: readonly unknown[];
  constructor(
    code: CodeOf<'lifecycle'>,
    message: string,
    causes: readonly unknown[] = [],
    options: RelayErrorOptions = {},
  ) {
    super('lifecycle', code, message, options);
    this.causes = causes;
  }
}

function hasBrand(value: unknown, kind?: ErrorKind): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const brand = (value as { [BRAND]?: unknown })[BRAND];
  return kind === undefined ? typeof brand === 'string' && brand in CODES : brand === kind;
}

export function isRelayError(value: unknown): value is RelayError {
  return hasBrand(value);
}
export function isConfigError(value: unknown): value is ConfigError {
  return hasBrand(value, 'config');
}
export function isSolutionPackageError(value: unknown): value is SolutionPackageError {
  return hasBrand(value, 'solutionPackage');
}
export function isDataverseError(value: unknown): value is DataverseError {
  return hasBrand(value, 'dataverse');
}
export function isProviderError(value: unknown): value is ProviderError {
  return hasBrand(value, 'provider');
}
export function isEventError(value: unknown): value is EventError {
  return hasBrand(value, 'event');
}
export function isDirectLineError(value: unknown): value is DirectLineError {
  return hasBrand(value, 'directline');
}
export function isIdentityError(value: unknown): value is IdentityError {
  return hasBrand(value, 'identity');
}
export function isMessageTooLargeError(value: unknown): value is MessageTooLargeError {
  return hasBrand(value, 'servicebus') && (value as MessageTooLargeError).code === 'MessageTooLarge';
}
export function isStartDeadlineError(value: unknown): value is StartDeadlineError {
  return hasBrand(value, 'limiter') && (value as StartDeadlineError).code === 'StartDeadlineMissed';
}
export function isSolutionError(value: unknown): value is SolutionError {
  return hasBrand(value, 'solution');
}
export function isLifecycleError(value: unknown): value is LifecycleError {
  return hasBrand(value, 'lifecycle');
}

/** Whether an error (ours or not) should be retried: ours by code; anything unknown is not. */
export function isRetryable(error: unknown): boolean {
  return isRelayError(error) && error.retryable;
}

/** A message for any thrown value, for logs. */
export function errorMessage(error: unknown): string {
  // An AggregateError (Node's net module after every address failed, the AMQP library's lock timeouts) often has an
  // empty message of its own: its inner errors say what happened.
  if (error instanceof AggregateError && error.errors.length > 0) {
    const inner = [...new Set(error.errors.map((e: unknown) => errorMessage(e)))].join('; ');
    return error.message === '' ? inner : `${error.message} (${inner})`;
  }
  if (error instanceof Error) return error.message;
  return typeof error === 'string' ? error : JSON.stringify(error);
}
