/**
 * Fakes for the conversations stage's unit tests: a Direct Line that keeps its conversations in memory (tokens that
 * expire, conversations that go, pages of activities, failures on demand), queue senders that record what they send,
 * a media fetcher, the messaging registry and a session.
 */
import type { Channel, MessagingAccount, MessagingChannel, MessagingRegistry } from '../../../../src/channels/index.js';
import { DirectLineError } from '../../../../src/errors.js';
import type {
  AcceptedSession,
  DirectLineActivity,
  DirectLineConversation,
  DirectLinePort,
  MediaFetcher,
  QueueSender,
  UploadFile,
} from '../../../../src/pipeline/ports.js';
import type { Attachment } from '../../../../src/pipeline/messages.js';

export const CUSTOMER = '+15551234567';

export function smsChannel(overrides: Partial<Channel> = {}): Channel {
  return {
    name: 'sms',
    provider: { type: 'twilio', accountSid: 'AC123', authToken: 'secret-token' },
    sender: '+15550000000',
    senderKey: 'twilio:+15550000000',
    addressField: 'mobilephone',
    textField: 'sample_text',
    timeoutMs: 10_000,
    rateLimit: { messages: 5, intervalMs: 1000, concurrency: 10, perRecipientMs: 0, perGroupMs: 0 },
    ...overrides,
  };
}

export function messagingChannel(overrides: Partial<MessagingChannel> = {}): MessagingChannel {
  return {
    name: 'support-sms',
    account: 'contoso',
    channelId: 'sms-channel-id',
    relayChannel: 'sms',
    workstream: 'Support',
    language: 'en-US',
    conversationContext: { source: 'sms' },
    attachments: { customer: true, agent: true },
    attachmentRefusal: 'Sorry, we cannot receive files here.',
    ...overrides,
  };
}

export function registry(...channels: MessagingChannel[]): MessagingRegistry {
  const account: MessagingAccount = {
    name: 'contoso',
    appId: '00000000-0000-0000-0000-000000000001',
    tenant: 'multi',
    directLineSecret: 'dl-secret',
    directLineUrl: 'https://directline.example',
    authorityHost: 'https://login.example',
    channels,
  };
  return {
    accounts: [account],
    account: (name) => (name === account.name ? account : undefined),
    byRelayChannel: (name) => channels.find((c) => c.relayChannel === name),
  };
}

interface FakeConversation {
  activities: DirectLineActivity[];
  tokens: Map<string, number>;
  gone: boolean;
}

type Op = 'start' | 'renew' | 'refresh' | 'post' | 'upload' | 'activities';

/** Direct Line 3.0 in memory. Tokens live `tokenTtlMs`; activities come `pageSize` at a time. */
export class FakeDirectLine implements DirectLinePort {
  readonly conversations = new Map<string, FakeConversation>();
  readonly calls: Array<{ op: Op; conversationId?: string; at: number }> = [];
  /** Files uploaded, by activity id. */
  readonly uploads = new Map<string, UploadFile[]>();
  tokenTtlMs = 3_600_000;
  pageSize = 20;
  readonly #failures: Array<{ op: Op; error: () => Error }> = [];
  #seq = 0;
  #conversations = 0;

  /** The next `times` calls of `op` fail with `error`. */
  fail(op: Op, error: () => Error, times = 1): void {
    for (let i = 0; i < times; i++) this.#failures.push({ op, error });
  }

  /** Adds an activity as the agents (or the bot) would: returns its id. */
  agent(conversationId: string, activity: Partial<DirectLineActivity> = {}): string {
    const conv = this.#conv(conversationId);
    const id = `${conversationId}|${String(conv.activities.length).padStart(7, '0')}`;
    conv.activities.push({ type: 'message', from: { id: 'bot', role: 'bot' }, text: 'agent says hi', ...activity, id });
    return id;
  }

  /** The customer's activities posted to a conversation. */
  posted(conversationId: string): DirectLineActivity[] {
    return this.#conv(conversationId).activities.filter((a) => a.from.id !== 'bot');
  }

  count(op: Op): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  async start(): Promise<DirectLineConversation> {
    this.#call('start');
    const conversationId = `conv-${++this.#conversations}`;
    this.conversations.set(conversationId, { activities: [], tokens: new Map(), gone: false });
    return this.#token(conversationId);
  }

  async renew(conversationId: string): Promise<DirectLineConversation> {
    this.#call('renew', conversationId);
    this.#live(conversationId);
    return this.#token(conversationId);
  }

  async refresh(conversation: DirectLineConversation): Promise<DirectLineConversation> {
    this.#call('refresh', conversation.conversationId);
    this.#authorised(conversation);
    return this.#token(conversation.conversationId);
  }

  async post(conversation: DirectLineConversation, activity: DirectLineActivity): Promise<string> {
    this.#call('post', conversation.conversationId);
    this.#authorised(conversation);
    return this.#append(conversation.conversationId, activity);
  }

  async upload(
    conversation: DirectLineConversation,
    activity: DirectLineActivity,
    files: readonly UploadFile[],
  ): Promise<string> {
    this.#call('upload', conversation.conversationId);
    this.#authorised(conversation);
    const id = this.#append(conversation.conversationId, {
      ...activity,
      attachments: files.map((f) => ({ contentType: f.contentType, name: f.name, contentUrl: `https://dl/${f.name}` })),
    });
    this.uploads.set(id, [...files]);
    return id;
  }

  async activities(
    conversation: DirectLineConversation,
    watermark: string | undefined,
  ): Promise<{ activities: DirectLineActivity[]; watermark: string | undefined }> {
    this.#call('activities', conversation.conversationId);
    this.#authorised(conversation);
    const all = this.#conv(conversation.conversationId).activities;
    const from = watermark === undefined ? 0 : Number(watermark.slice(1));
    const page = all.slice(from, from + this.pageSize);
    return { activities: page.map((a) => structuredClone(a)), watermark: `w${from + page.length}` };
  }

  #call(op: Op, conversationId?: string): void {
    this.calls.push({ op, ...(conversationId === undefined ? {} : { conversationId }), at: Date.now() });
    const i = this.#failures.findIndex((f) => f.op === op);
    if (i >= 0) {
      const [failure] = this.#failures.splice(i, 1);
      throw failure!.error();
    }
  }

  #conv(conversationId: string): FakeConversation {
    const conv = this.conversations.get(conversationId);
    if (conv === undefined) throw new Error(`no conversation ${conversationId}`);
    return conv;
  }

  #live(conversationId: string): FakeConversation {
    const conv = this.conversations.get(conversationId);
    if (conv === undefined || conv.gone)
      throw new DirectLineError('DirectLineConversationGone', `conversation ${conversationId} is gone`);
    return conv;
  }

  #authorised(conversation: DirectLineConversation): void {
    const conv = this.#live(conversation.conversationId);
    const until = conv.tokens.get(conversation.token);
    if (until === undefined || Date.now() >= until)
      throw new DirectLineError('DirectLineTokenExpired', 'Token Expired', { upstream: { status: 403 } });
  }

  #token(conversationId: string): DirectLineConversation {
    const token = `token-${++this.#seq}`;
    const tokenExpiresAt = Date.now() + this.tokenTtlMs;
    this.#conv(conversationId).tokens.set(token, tokenExpiresAt);
    return { conversationId, token, tokenExpiresAt };
  }

  #append(conversationId: string, activity: DirectLineActivity): string {
    const conv = this.#conv(conversationId);
    const id = `${conversationId}|${String(conv.activities.length).padStart(7, '0')}`;
    conv.activities.push({ ...structuredClone(activity), id });
    return id;
  }
}

/** A queue sender that records what it sends; `failNext` makes the next calls reject. */
export class FakeSender<T> implements QueueSender<T> {
  readonly sent: Array<{ body: T; messageId: string; sessionId?: string; scheduledAt?: number }> = [];
  #failures = 0;
  failNext(times = 1): void {
    this.#failures += times;
  }
  async send(messages: Parameters<QueueSender<T>['send']>[0]): Promise<void> {
    if (this.#failures > 0) {
      this.#failures--;
      throw new Error('the queue is unreachable');
    }
    this.sent.push(...messages.map((m) => ({ ...m })));
  }
}

/** Fetches any attachment as a few bytes named after its URL. */
export class FakeMedia implements MediaFetcher {
  readonly fetched: Attachment[] = [];
  async fetch(attachment: Attachment): Promise<UploadFile> {
    this.fetched.push(attachment);
    return {
      name: attachment.name ?? attachment.url.split('/').pop() ?? 'file',
      contentType: attachment.contentType ?? 'application/octet-stream',
      data: Buffer.from('bytes'),
    };
  }
}

export function session(sessionId: string, state?: Buffer): AcceptedSession & { saved: Buffer[] } {
  const saved: Buffer[] = [];
  const s: AcceptedSession & { saved: Buffer[] } = {
    sessionId,
    state,
    saved,
    setState: async (next: Buffer) => {
      saved.push(next);
    },
  };
  return s;
}
