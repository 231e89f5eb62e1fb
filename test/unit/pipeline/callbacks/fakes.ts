/** Channels, keys, a Dataverse directory and queue senders for the callbacks service's unit tests. */
import { createHmac, randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { DEFAULT_OPT_IN_MAX_AGE_MS, type Channel, type ChannelCallbacks } from '../../../../src/channels/index.js';
import { createLogger, type Logger } from '../../../../src/log.js';
import type {
  CallbackKey,
  CallbackKeys,
  CallbacksDeps,
  TwilioMessageFetcher,
} from '../../../../src/pipeline/callbacks/index.js';
import type { TwilioMessage } from '../../../../src/providers/index.js';
import type {
  ActivityRecord,
  CallbackDirectory,
  FoundContact,
  InteractionMessage,
  MarketingContext,
  OutboundMessage,
  QueueSender,
  Row,
} from '../../../../src/pipeline/index.js';
import { CaptureStream } from '../../../helpers/capture.js';

export const PUBLIC_BASE = 'https://relay.example.com';
export const AUTH_TOKEN = 'twilio-auth-token-current-0001';
export const OLD_AUTH_TOKEN = 'twilio-auth-token-previous-002';
/** The secret of the SharedKey a Twilio Webhooks Rule signs the `sms` channel's callbacks with. */
export const SHARED_KEY = 'twilio-shared-key-secret-0003';
export const TG_SECRET = 'tg-secret-new-AAAA';
export const TG_OLD_SECRET = 'tg-secret-old-BBBB';
export const WHSEC_NEW = `whsec_${randomBytes(32).toString('base64')}`;
export const WHSEC_OLD = `whsec_${randomBytes(32).toString('base64')}`;
export const PHONE = '+15551234567';
export const CHAT_ID = '987654321';
export const CONTACT = '11111111-2222-4333-8444-555555555555';

export const KEYS: CallbackKeys = {
  sign: { id: 'k2', secret: randomBytes(32) },
  verify: [],
};
KEYS.verify.push(KEYS.sign, { id: 'k1', secret: randomBytes(32) });
/** Keys no longer accepted (a rotated-out key). */
export const OLD_KEYS: CallbackKeys = { sign: { id: 'k0', secret: randomBytes(32) }, verify: [] };
/** The second verify key as the signing key: a token from before a rotation. */
export const ROTATED_KEYS: CallbackKeys = { sign: KEYS.verify[1]!, verify: [KEYS.verify[1]!] };

/**
 * A link code as the relay wrote it before it carried the contact and the tile, byte for byte, written here
 * independently of token.ts: `version | keyIdLength | keyId | 0 (GUID tag) | 16 bytes of the id | index |
 * HMAC-SHA256('lnk' | all before)[0..12]`, base64url. Version 1 (the default) held `msdyncrm_activityid`, version 2
 * the activity row id.
 */
export function legacyLinkCode(activityId: string, index: number, key: CallbackKey, version: 1 | 2 = 1): string {
  const head = Buffer.concat([
    Buffer.from([version, key.id.length]),
    Buffer.from(key.id),
    Buffer.from([0]),
    Buffer.from(activityId.replace(/-/g, ''), 'hex'),
    Buffer.from([index]),
  ]);
  const mac = createHmac('sha256', key.secret).update('lnk').update(head).digest().subarray(0, 12);
  return Buffer.concat([head, mac]).toString('base64url');
}

/** `msdyncrm_activityid` of every {@link context}: the journey tile's id, shared by the rows of the tile. */
export const TILE_ACTIVITY_ID = 'a1000000-0000-4000-8000-000000000000';

/** Activity row `n` of one tile (one contact; its own row id, journey, iteration and message record). */
export function context(n = 1): MarketingContext {
  const id = (p: string): string => `${p}${String(n).padStart(6, '0')}-0000-4000-8000-000000000000`;
  return {
    kind: 'marketing',
    activityId: TILE_ACTIVITY_ID,
    activityRowId: id('b1'),
    contactId: CONTACT,
    journeyId: id('c1'),
    iterationId: id('d1'),
    entityType: 'sample_sms',
    entityId: id('e1'),
  };
}

/** The activity row of `context` as the directory reads it. */
export function activityRecord(c: MarketingContext): ActivityRecord {
  const { kind: _kind, ...record } = c;
  return record;
}

const callbacks = (extra: Partial<ChannelCallbacks> = {}): ChannelCallbacks => ({
  publicBaseUrl: PUBLIC_BASE,
  trackLinks: true,
  keywords: { YES: 'YES', INFO: 'INFO' },
  optOutWords: ['STOP', 'UNSUBSCRIBE'],
  optInWords: ['START'],
  optInMaxAgeMs: DEFAULT_OPT_IN_MAX_AGE_MS,
  optOutConfirmation: 'You are unsubscribed.',
  optInConfirmation: 'You are subscribed.',
  deliveredResponseType: 'delivered',
  openedResponseType: 'opened',
  ...extra,
});

const tile = (entityType: string): NonNullable<Channel['tile']> => ({
  file: 'tile.xml',
  entityType,
  entitySetName: `${entityType}es`,
  lookupViewId: '00000000-0000-0000-00aa-000010001003',
  complianceField: 'sample_optout',
  responseTypes: ['sent', 'delivered', 'failed', 'opened', 'keyword'].map((id) => ({
    id,
    custom: id === 'keyword',
    labels: {},
  })),
  customResponseType: 'keyword',
  labels: {},
});

const base = {
  rateLimit: { messages: 1, intervalMs: 1000, concurrency: 1, perRecipientMs: 0, perGroupMs: 0 },
  timeoutMs: 1000,
  textField: 'sample_text',
};

export const SMS: Channel = {
  ...base,
  name: 'sms',
  tile: tile('sample_sms'),
  provider: { type: 'twilio', accountSid: 'AC0001', authToken: AUTH_TOKEN },
  sender: '+15550000000',
  senderKey: 'twilio:+15550000000',
  addressField: 'mobilephone',
  failureResponseType: 'failed',
  callbacks: callbacks({ previousAuthToken: OLD_AUTH_TOKEN, sharedKeySecret: SHARED_KEY }),
};
export const TG: Channel = {
  ...base,
  name: 'tg',
  tile: tile('sample_sms'),
  provider: { type: 'telegram', botToken: '123456:abc' },
  sender: 'relaybot',
  senderKey: 'telegram:relaybot',
  addressField: 'sample_chatid',
  callbacks: callbacks({ webhookSecretToken: `${TG_SECRET} ${TG_OLD_SECRET}` }),
};
export const CT: Channel = {
  ...base,
  name: 'ct',
  tile: tile('sample_sms'),
  provider: {
    type: 'contract',
    url: 'https://provider.example.com/send',
    signingSecret: `${WHSEC_NEW} ${WHSEC_OLD}`,
    mediaParts: ['image', 'document'],
  },
  sender: 'ct-sender',
  senderKey: 'contract:ct-sender',
  addressField: 'mobilephone',
  failureResponseType: 'failed',
  callbacks: callbacks(),
};
export const RT: Channel = {
  ...base,
  name: 'rt',
  channelDefinitionId: 'f0000000-0000-4000-8000-000000000001',
  provider: { type: 'contract', url: 'https://provider.example.com/send', signingSecret: WHSEC_NEW },
  sender: 'rt-sender',
  senderKey: 'contract:rt-sender',
  addressField: 'mobilephone',
  callbacks: callbacks({ organizationId: 'f0000000-0000-4000-8000-0000000000aa' }),
};
/** A channel without callbacks: nothing comes back from it. */
export const QUIET: Channel = {
  ...base,
  name: 'quiet',
  provider: { type: 'twilio', accountSid: 'AC2', authToken: 'quiet-token' },
  sender: '+15550000001',
  senderKey: 'twilio:+15550000001',
  addressField: 'mobilephone',
};

export const CHANNELS = [SMS, TG, CT, RT, QUIET];

/** A recording queue sender. */
export class FakeSender<T> implements QueueSender<T> {
  readonly sent: Array<{ body: T; messageId: string; sessionId?: string }> = [];
  failWith: Error | undefined;
  async send(messages: ReadonlyArray<{ body: T; messageId: string; sessionId?: string }>): Promise<void> {
    if (this.failWith) throw this.failWith;
    this.sent.push(...messages);
  }
  /** Messages as a bus with duplicate detection would keep them. */
  kept(): Array<{ body: T; messageId: string; sessionId?: string }> {
    const seen = new Set<string>();
    return this.sent.filter((m) => !seen.has(m.messageId) && seen.add(m.messageId));
  }
}

/** An in-memory Dataverse: contacts by address, activities newest first, message records, contact updates. */
export class FakeDirectory implements CallbackDirectory {
  contacts: Row[] = [{ contactid: CONTACT, mobilephone: PHONE, sample_chatid: CHAT_ID, sample_optout: false }];
  /** Newest first. */
  activities: ActivityRecord[] = [activityRecord(context(2)), activityRecord(context(1))];
  records = new Map<string, Row>([
    [context(1).entityId, { sample_text: 'Hi! See https://example.com/offer?x=1 and http://example.org/b' }],
    [context(2).entityId, { sample_text: 'Sale https://example.com/two' }],
  ]);
  updates: Array<{ contactId: string; values: Row }> = [];
  /** The activity reads made, by method and key. */
  readonly activityReads: string[] = [];
  /** Every contact and latest-activities read and every contact update, by method: what Dataverse would be asked. */
  readonly calls: string[] = [];
  async contactsByAddress(field: string, address: string): Promise<FoundContact[]> {
    this.calls.push('contactsByAddress');
    return this.contacts
      .filter((c) => c[field] === address)
      .map((row) => ({ contactId: row['contactid'] as string, row }));
  }
  async latestActivities(contactId: string, entityType: string, top: number): Promise<ActivityRecord[]> {
    this.calls.push('latestActivities');
    return this.activities.filter((a) => a.contactId === contactId && a.entityType === entityType).slice(0, top);
  }
  async activityByRowId(rowId: string): Promise<ActivityRecord | undefined> {
    this.activityReads.push(`row ${rowId}`);
    return this.activities.find((a) => a.activityRowId === rowId);
  }
  async activitiesByActivityId(activityId: string): Promise<ActivityRecord[]> {
    this.activityReads.push(`activity ${activityId}`);
    return this.activities.filter((a) => a.activityId === activityId).slice(0, 2);
  }
  async messageRecord(_set: string, id: string): Promise<Row | undefined> {
    return this.records.get(id);
  }
  async updateContact(contactId: string, values: Row): Promise<void> {
    this.calls.push('updateContact');
    this.updates.push({ contactId, values });
    const c = this.contacts.find((x) => x['contactid'] === contactId);
    if (c) Object.assign(c, values);
  }
}

/**
 * Twilio's messages as `fetchMessage` answers them: by sid; `failWith` throws instead (for the first `failTimes`
 * calls when set, else always); `unseenCalls` answers 404 that many times first; every call recorded.
 */
export class FakeTwilioMessages implements TwilioMessageFetcher {
  readonly messages = new Map<string, TwilioMessage>();
  readonly calls: string[] = [];
  failWith: Error | undefined;
  failTimes: number | undefined;
  unseenCalls = 0;
  /** Remembers an inbound message created at `createdAt` (as Twilio would hold the reply). */
  receive(sid: string, from: string, to: string, body: string, createdAt = Date.now()): TwilioMessage {
    const m: TwilioMessage = { sid, direction: 'inbound', from, to, body, dateCreated: createdAt };
    this.messages.set(sid, m);
    return m;
  }
  async fetchMessage(sid: string, signal: AbortSignal): Promise<TwilioMessage | undefined> {
    this.calls.push(sid);
    signal.throwIfAborted();
    if (this.failWith && (this.failTimes === undefined || this.calls.length <= this.failTimes)) throw this.failWith;
    if (this.calls.length <= this.unseenCalls) return undefined;
    return this.messages.get(sid);
  }
}

export interface Harness {
  deps: CallbacksDeps;
  interactions: FakeSender<InteractionMessage>;
  outbound: FakeSender<OutboundMessage>;
  directory: FakeDirectory;
  /** The Twilio message fetch of the `sms` channel. */
  twilio: FakeTwilioMessages;
  logs: CaptureStream;
  log: Logger;
  registry: Registry;
}

export function harness(overrides: Partial<CallbacksDeps> = {}): Harness {
  const interactions = new FakeSender<InteractionMessage>();
  const outbound = new FakeSender<OutboundMessage>();
  const directory = new FakeDirectory();
  const twilio = new FakeTwilioMessages();
  const logs = new CaptureStream();
  const log = createLogger({ level: 'debug', stream: logs, pretty: false });
  const registry = new Registry();
  const byName = new Map(CHANNELS.map((c) => [c.name, c]));
  const deps: CallbacksDeps = {
    channels: { byName: (n) => byName.get(n), all: () => CHANNELS },
    keys: KEYS,
    interactions,
    outbound,
    directory,
    twilioMessages: (channel) => (channel.provider.type === 'twilio' ? twilio : undefined),
    log,
    registry,
    bodyLimitBytes: 4096,
    ...overrides,
  };
  return { deps, interactions, outbound, directory, twilio, logs, log, registry };
}

/** Every secret and personal value the tests use: none may appear in a log line or an error body. */
export const NEVER_SHOWN = [
  AUTH_TOKEN,
  OLD_AUTH_TOKEN,
  SHARED_KEY,
  TG_SECRET,
  TG_OLD_SECRET,
  WHSEC_NEW.slice(6),
  WHSEC_OLD.slice(6),
  PHONE,
  PHONE.slice(1),
  KEYS.sign.secret.toString('base64'),
];
