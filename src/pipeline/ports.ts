/**
 * What the stages need from the outside, as narrow interfaces. `src/servicebus/` and `src/dataverse/` implement them
 * with the real SDKs; unit tests implement them with fakes. A stage never imports an SDK.
 */
import type { Span } from '@opentelemetry/api';
import type { Channel } from '../channels/index.js';
import type { DataverseError } from '../errors.js';
import type {
  Attachment,
  ConversationMessage,
  InteractionMessage,
  MarketingContext,
  OutboundMessage,
} from './messages.js';

/** The configured channels, as every stage looks them up (a `ChannelRegistry` fits). */
export interface ChannelLookup {
  byName(name: string): Channel | undefined;
  all(): readonly Channel[];
}

/** How a delivery was settled; `lockLost` and `failed` leave the message to the broker (it comes back). */
export type SettlementOutcome = 'completed' | 'abandoned' | 'deadLettered' | 'lockLost' | 'failed';

/** A received Service Bus message as a stage sees it. Every delivery must be settled exactly once. */
export interface Delivery {
  /** The body as the SDK returned it: an object (JSON bodies), a string, or a Buffer; undefined after `dropBody`. */
  readonly body: unknown;
  readonly messageId: string | undefined;
  readonly contentType: string | undefined;
  /** Application properties; Date values arrive as numbers (ms). */
  readonly applicationProperties: Readonly<Record<string, unknown>>;
  /** How many times it was delivered before, this time included (1 on first delivery). */
  readonly deliveryCount: number;
  /** The session (outbound only). */
  readonly sessionId: string | undefined;
  /**
   * Its `process <queue>` span (src/telemetry), child of the trace context it carried, ended when it is settled; the
   * stage runs its work in it (`inSpan`) and makes what it sends children of it. Absent with tracing off (and in fakes).
   */
  readonly span?: Span | undefined;
  /** Done: remove it from the queue. */
  complete(): Promise<void>;
  /**
   * How its settlement ended, once it has; `undefined` before, while under way, or from a delivery that does not
   * say (fakes). A settlement that resolved is not always done: `lockLost` (the broker had already taken the message
   * back) resolves too, and the message is delivered again.
   */
  readonly outcome?: SettlementOutcome | undefined;
  /** Hand it back for another try (its delivery count goes up; past MaxDeliveryCount the bus dead-letters it). */
  abandon(): Promise<void>;
  /** Move it to the dead-letter queue with a reason (a short code) and a description a person can act on. */
  deadLetter(reason: string, description: string): Promise<void>;
  /**
   * The stage is done with the body (it decoded it): the delivery lets it go, and `body` is undefined from then on,
   * so that a batch kept until its last settlement does not keep every body alive with it. Settling still works.
   * Optional: a delivery without it keeps its body.
   */
  dropBody?(): void;
}

/** Sends to a queue. Messages with the same `messageId` within the duplicate-detection window are dropped by the bus. */
export interface QueueSender<T> {
  /**
   * Sends all, in as few batches as the size limit allows. `sessionId` only for session-enabled queues. A message too
   * large even alone rejects the call with a `MessageTooLargeError` (src/errors.ts) before anything is sent.
   */
  send(
    messages: ReadonlyArray<{
      body: T;
      messageId: string;
      sessionId?: string;
      subject?: string;
      /** Enqueue at this time (ms since the epoch) instead of now: the message stays invisible until then. */
      scheduledAt?: number;
      /**
       * The span of the work this message continues (the delivery it comes from: `Delivery.span`, or the callback's
       * request): the sender makes the message's `create <queue>` span its child and puts that span's W3C trace
       * context in the message's application properties. Absent with tracing off.
       */
      parentSpan?: Span | undefined;
    }>,
    signal?: AbortSignal,
  ): Promise<void>;
}

export type OutboundSender = QueueSender<OutboundMessage>;
export type InteractionSender = QueueSender<InteractionMessage>;
export type ConversationSender = QueueSender<ConversationMessage>;

/** A Direct Line conversation as the relay holds it (in a `conversations` session's state). */
export interface DirectLineConversation {
  conversationId: string;
  /** The conversation's token (never the account's secret). */
  token: string;
  /** When the token expires (ms since the epoch, from `expires_in`). */
  tokenExpiresAt: number;
}

/** A Bot Framework activity as the relay reads and writes it (Direct Line 3.0; the fields the relay uses). */
export interface DirectLineActivity {
  /** Set by Direct Line; absent on what the relay posts. */
  id?: string;
  /** `message`, `endOfConversation`, `typing`, `event` … */
  type: string;
  from: { id: string; name?: string; role?: string };
  text?: string;
  attachments?: Array<{ contentType: string; contentUrl?: string; name?: string }>;
  channelData?: Record<string, unknown>;
  timestamp?: string;
}

/** A file to upload to a conversation (a customer's attachment, fetched from the provider). */
export interface UploadFile {
  name: string;
  contentType: string;
  data: Buffer;
}

/**
 * Direct Line 3.0 for one account (its secret and base URL): the conversations stage's port to Omnichannel. Failures
 * are `DirectLineError`s (src/errors.ts) by code: throttled, unavailable, token expired, conversation gone,
 * unauthorized, bad request, answer unreadable.
 */
export interface DirectLinePort {
  /** Starts a conversation (POST /v3/directline/conversations with the secret). */
  start(signal?: AbortSignal): Promise<DirectLineConversation>;
  /** A fresh token for an existing conversation (GET /v3/directline/conversations/{id} with the secret). */
  renew(conversationId: string, signal?: AbortSignal): Promise<DirectLineConversation>;
  /** Refreshes a token before it expires (POST /v3/directline/tokens/refresh with the token). */
  refresh(conversation: DirectLineConversation, signal?: AbortSignal): Promise<DirectLineConversation>;
  /** Posts one activity; returns its id. */
  post(conversation: DirectLineConversation, activity: DirectLineActivity, signal?: AbortSignal): Promise<string>;
  /** Uploads files with an activity (POST …/upload?userId=); returns the activity's id. */
  upload(
    conversation: DirectLineConversation,
    activity: DirectLineActivity,
    files: readonly UploadFile[],
    signal?: AbortSignal,
  ): Promise<string>;
  /** The activities after `watermark` (all when undefined), and the watermark to read from next. */
  activities(
    conversation: DirectLineConversation,
    watermark: string | undefined,
    signal?: AbortSignal,
  ): Promise<{ activities: DirectLineActivity[]; watermark: string | undefined }>;
}

/** Fetches a customer's attachment from its provider (Twilio media with the account's credentials, Telegram getFile). */
export interface MediaFetcher {
  fetch(attachment: Attachment, signal?: AbortSignal): Promise<UploadFile>;
}

/** A row as the Web API returns it (column name → value; lookups as `_<name>_value`). */
export type Row = Record<string, unknown>;

/** The reads intake makes. Implementations batch and cache; each call is one or a few requests. */
export interface DataverseReads {
  /** Contacts by id with the given columns (`contactid` is always included); ids not found are absent. */
  contacts(ids: readonly string[], columns: readonly string[], signal?: AbortSignal): Promise<Map<string, Row>>;
  /** A custom message record by entity set and id (cached); `undefined` when it does not exist. */
  messageRecord(
    entitySetName: string,
    id: string,
    columns: readonly string[],
    signal?: AbortSignal,
  ): Promise<Row | undefined>;
  /**
   * Custom Channel Activity rows by id (for events Dataverse truncated, or whose Target lacked attributes), in one
   * request for the lot; ids not found are absent.
   */
  activities(ids: readonly string[], signal?: AbortSignal): Promise<Map<string, Row>>;
}

/** A contact found by its address, with the columns asked for. */
export interface FoundContact {
  contactId: string;
  row: Row;
}

/**
 * A Custom Channel Activity row as the callbacks service reads it, by the fields of the context it gives; a field the
 * row lacks (an empty lookup) is absent, so that such a row is still told apart from none.
 */
export type ActivityRecord = Partial<Omit<MarketingContext, 'kind'>>;

/** What the callbacks service reads and writes in Dataverse (src/dataverse's `createCallbackDirectory`). */
export interface CallbackDirectory {
  /**
   * Every contact whose `addressField` equals `address` (all pages read, up to a bound): an opt-out applies to each of
   * them; a keyword only when there is one.
   */
  contactsByAddress(
    addressField: string,
    address: string,
    columns: readonly string[],
    signal?: AbortSignal,
  ): Promise<FoundContact[]>;
  /** The contact's most recent activities of one message table, newest first (at most `top`). */
  latestActivities(contactId: string, entityType: string, top: number, signal?: AbortSignal): Promise<ActivityRecord[]>;
  /** The activity whose row id (`msdyncrm_customerjourneycustomchannelactivityid`) is `rowId` (cached); undefined when none. */
  activityByRowId(rowId: string, signal?: AbortSignal): Promise<ActivityRecord | undefined>;
  /**
   * For links and requests written before the relay keyed on the row: the activities whose `msdyncrm_activityid` is
   * `activityId`, at most two (two mean that it names a tile shared by several contacts, not one row). A single one
   * is cached.
   */
  activitiesByActivityId(activityId: string, signal?: AbortSignal): Promise<ActivityRecord[]>;
  /** A message record's columns (cached); undefined when it does not exist. */
  messageRecord(
    entitySetName: string,
    id: string,
    columns: readonly string[],
    signal?: AbortSignal,
  ): Promise<Row | undefined>;
  /** Sets one column of a contact (the compliance field). */
  updateContact(contactId: string, values: Row, signal?: AbortSignal): Promise<void>;
}

/** The result of writing one interaction. */
export type WriteResult = { ok: true } | { ok: false; error: DataverseError };

/** Writes interactions to Dataverse within its service protection limits. */
export interface InteractionWriter {
  /**
   * One result per input, in order. Aborted while writing: what Dataverse answered keeps its result, the rest is a
   * retryable failure. Rejects only when nothing was attempted (aborted before the call).
   */
  write(items: readonly InteractionMessage[], signal?: AbortSignal): Promise<WriteResult[]>;
}

/**
 * One held session on a session-enabled queue (`outbound`: one session = one sender), as the session loop drives it.
 * The loop creates one handler per accepted session, feeds it batches of that session's deliveries, and calls
 * `onClose` before it releases the session (idle, stopping, near its lock deadline, or at the handler's request).
 */
export interface SessionHandler {
  /**
   * Handles one batch of the session's messages, in order; batches of a session never overlap. Resolves to a
   * `SessionRelease` to have the loop release the session after this batch (see there); to nothing to go on.
   */
  onBatch(deliveries: Delivery[], signal: AbortSignal): Promise<void | SessionRelease>;
  /** Called once when the session is released, before its receiver closes (`setState` still works). */
  onClose?(reason: SessionCloseReason): Promise<void> | void;
}

/**
 * What `onBatch` resolves to when the handler asks the loop to release the session after this batch, with the lock
 * still held: the loop receives nothing more from that session, calls `onClose('released')` (state can still be
 * saved: `setState` works), closes the receiver and accepts again (the same session may come back with a fresh lock).
 * Used by dispatch when it handed messages back at the lock deadline: without it, the loop would hand it the same
 * messages again at once, each round raising their delivery count. `reason` says why, for the log.
 */
export interface SessionRelease {
  readonly release: true;
  readonly reason: string;
}

/**
 * Why a session was released: idle for `sessionIdleMs`, the loop stopping, its lock lost, an error,
 * `'renewalBudget'`: the session was busy for so long that the next batch could have outlived its lock (the SDK renews
 * a session lock for a limited time, `maxLockRenewalMs`), so the loop released it between batches while the lock was
 * still held (`setState` works) and accepts again at once; the same session may come back to it with a fresh lock; or
 * `'released'`: the handler asked for it (`SessionRelease`), also with the lock still held, and the loop accepts again.
 * With `'lockLost'` the lock has already run out: `setState` fails and the session's messages go to the next holder.
 */
export type SessionCloseReason = 'idle' | 'stopped' | 'lockLost' | 'error' | 'renewalBudget' | 'released';

/** What the session loop tells a stage about a session it accepted. */
export interface AcceptedSession {
  readonly sessionId: string;
  /** The session state as the last holder left it (`undefined` when none). */
  readonly state: Buffer | undefined;
  /** Replaces the session state (kept by the bus with the session, seen by the next holder, on any replica). */
  setState(state: Buffer): Promise<void>;
  /**
   * Until when the session's lock is held for sure, in ms since the epoch: the end of the SDK's lock renewal or, when
   * later, the lock's current expiry. Past it the lock may run out (then settlements and `setState` fail and the
   * messages go to the next holder). The session loop releases the session before it (`'renewalBudget'`); a handler
   * may use it not to start work it cannot finish in time. Optional: the session loop provides it, fakes need not.
   */
  lockedUntil?(): number;
}

/** Creates the handler of an accepted session. */
export type SessionHandlerFactory = (session: AcceptedSession) => SessionHandler | Promise<SessionHandler>;
