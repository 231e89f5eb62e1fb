/**
 * The real-time journeys custom channel outbound contract over HTTP, `POST /contract/{channel}/messages`: the
 * payload `{ChannelDefinitionId, RequestId, From, To, Message, MarketingAppContext?}`, the response
 * `{ChannelDefinitionId, MessageId, RequestId, Status}` (`ChannelDefinitionId` optional: the relay omits it for
 * outbound-marketing channels, and it is then left out of the answer too), Standard Webhooks signatures verified when secrets are
 * configured, `RequestId` as the idempotency key, and a per-sender rate limit (429 with `Retry-After`).
 */
import { randomUUID } from 'node:crypto';
import type { FaultAction } from './faults.js';
import type { Exchange, Outcome, Prepared, Reply } from './exchange.js';
import type { SimulatedMessage } from './records.js';
import { verifyStandardWebhook } from './standard-webhooks.js';
import { SlidingWindows } from './window.js';

export const CONTRACT_PATH = /^\/contract\/([^/]+)\/messages$/;

export interface ContractOptions {
  /** `whsec_<base64>` secrets; when set, every call must carry a valid Standard Webhooks signature by one of them. @defaultValue undefined: signatures are not checked */
  secrets?: string[];
  /** Largest distance between `webhook-timestamp` and now, seconds. @defaultValue 300 */
  toleranceSeconds?: number;
  /** Messages per second per sender (`From`); one more gets 429 with `Retry-After`. The contract defines no limit: this is the simulator's. @defaultValue 10 */
  perSender?: number;
  /** Per-sender limits over `perSender`. @defaultValue {} */
  perSenderBySender?: Record<string, number>;
  /** Recipients (`To`) the provider refuses: answered `Status: "NotSent"`. @defaultValue [] */
  notSentRecipients?: string[];
  /** Where delivery reports (`Delivered`, `NotDelivered`, `Read`) of every channel are POSTed. @defaultValue undefined: no reports */
  reportsUrl?: string;
  /** Where recipients' replies on every channel are POSTed. @defaultValue undefined: no replies */
  inboundUrl?: string;
  /**
   * Message parts the simulated channel definitions declare as media (`msdyn_channelmessagepart` of a type other
   * than text): each carries one file by URL. Their values must be absolute http(s) URLs (400 otherwise: the
   * strictest reading, see docs/emulators/providers.md) and are recorded as the message's attachments, not its text.
   * @defaultValue []
   */
  mediaParts?: string[];
  /** Per `{channel}` path segment, URLs over `reportsUrl` and `inboundUrl`. @defaultValue {} */
  channelUrls?: Record<string, { reportsUrl?: string; inboundUrl?: string }>;
  /**
   * `whsec_…` secrets the reports and inbound messages are signed with (one `v1,` entry each). Required when a
   * callback URL is configured and `secrets` is not. @defaultValue `secrets`
   */
  callbackSecrets?: string[];
}

export type ResolvedContract = Required<
  Omit<ContractOptions, 'secrets' | 'reportsUrl' | 'inboundUrl' | 'callbackSecrets'>
> &
  Pick<ContractOptions, 'secrets' | 'reportsUrl' | 'inboundUrl' | 'callbackSecrets'>;

export const CONTRACT_DEFAULTS: ResolvedContract = {
  toleranceSeconds: 300,
  perSender: 10,
  perSenderBySender: {},
  notSentRecipients: [],
  mediaParts: [],
  channelUrls: {},
};

function contractError(status: number, code: string, message: string, headers?: Record<string, string>): Reply {
  return { status, body: { error: { code, message } }, ...(headers ? { headers } : {}) };
}

const FAULT_CODES: Record<number, string> = {
  500: 'InternalServerError',
  502: 'BadGateway',
  503: 'ServiceUnavailable',
};

function tooMany(retryAfter: number, message: string): Reply {
  return contractError(429, 'TooManyRequests', message, { 'Retry-After': String(retryAfter) });
}

export class ContractApi {
  readonly #options: ResolvedContract;
  readonly #notSent: Set<string>;
  readonly #answers = new Map<string, Reply>();
  readonly #windows: SlidingWindows;

  constructor(options: ResolvedContract, windowMs: number) {
    this.#options = options;
    this.#notSent = new Set(options.notSentRecipients);
    this.#windows = new SlidingWindows(windowMs);
  }

  refuse(recipient: string): void {
    this.#notSent.add(recipient);
  }
  accept(recipient: string): void {
    this.#notSent.delete(recipient);
  }
  refusedRecipients(): string[] {
    return [...this.#notSent];
  }

  reset(): void {
    this.#answers.clear();
    this.#windows.clear();
  }

  limitOf(sender: string): number {
    return this.#options.perSenderBySender[sender] ?? this.#options.perSender;
  }

  renderFault(action: Exclude<FaultAction, { kind: 'none' | 'timeout' }>): Reply {
    if (action.kind === 'rateLimit')
      return tooMany(action.retryAfterSeconds, `Too many requests; retry after ${action.retryAfterSeconds} s.`);
    return contractError(
      action.status,
      FAULT_CODES[action.status] ?? 'InternalServerError',
      'The provider failed to process the request.',
    );
  }

  prepare(ex: Exchange, channel: string, nowMs: number): Prepared {
    const signed = ex.headers['webhook-signature'] !== undefined;
    const secrets = this.#options.secrets;
    if (secrets !== undefined) {
      const check = verifyStandardWebhook({
        secrets,
        headers: {
          id: ex.headers['webhook-id'],
          timestamp: ex.headers['webhook-timestamp'],
          signature: ex.headers['webhook-signature'],
        },
        body: ex.body,
        nowSeconds: Math.floor(nowMs / 1000),
        toleranceSeconds: this.#options.toleranceSeconds,
      });
      if (!check.ok)
        return {
          refuse: {
            reply: contractError(401, 'InvalidSignature', `Signature verification failed: ${check.reason}.`),
            code: 401,
          },
        };
    }
    let payload: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(ex.body);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      payload = parsed as Record<string, unknown>;
    } catch {
      return {
        refuse: {
          reply: contractError(
            400,
            'InvalidPayload',
            'The body must be a JSON object with ChannelDefinitionId, RequestId, From, To and Message.',
          ),
          code: 400,
        },
      };
    }
    const problems: string[] = [];
    for (const field of ['RequestId', 'From', 'To']) {
      if (typeof payload[field] !== 'string' || payload[field] === '')
        problems.push(`${field} must be a non-empty string`);
    }
    // Required by real-time journeys; the relay leaves it out for outbound-marketing channels served by a contract
    // endpoint, so it is optional here and echoed when given.
    if (
      payload['ChannelDefinitionId'] !== undefined &&
      (typeof payload['ChannelDefinitionId'] !== 'string' || payload['ChannelDefinitionId'] === '')
    ) {
      problems.push('ChannelDefinitionId must be a non-empty string when given');
    }
    const message = payload['Message'];
    const parts: Record<string, string> = {};
    if (
      typeof message !== 'object' ||
      message === null ||
      Array.isArray(message) ||
      Object.keys(message).length === 0
    ) {
      problems.push('Message must be an object of message parts (part name → text)');
    } else {
      for (const [k, v] of Object.entries(message)) {
        if (typeof v !== 'string') problems.push(`Message.${k} must be a string`);
        else parts[k] = v;
      }
    }
    const attachments: Array<{ url: string }> = [];
    for (const name of this.#options.mediaParts) {
      const url = parts[name];
      if (url === undefined) continue;
      if (!/^https?:\/\/[^\s]+$/i.test(url) || !URL.canParse(url))
        problems.push(`Message.${name} is a media part: it must be an absolute http(s) URL`);
      else attachments.push({ url });
    }
    const sender = typeof payload['From'] === 'string' && payload['From'] !== '' ? payload['From'] : undefined;
    if (problems.length > 0)
      return {
        ...(sender ? { sender } : {}),
        refuse: { reply: contractError(400, 'InvalidPayload', problems.join('; ')), code: 400 },
      };
    const channelDefinitionId = payload['ChannelDefinitionId'] as string | undefined;
    const echo = channelDefinitionId === undefined ? {} : { ChannelDefinitionId: channelDefinitionId };
    const requestId = payload['RequestId'] as string;
    const to = payload['To'] as string;
    const from = sender!;

    const execute = (now: number): Outcome => {
      const key = `${channel}\u0000${requestId}`;
      const first = this.#answers.get(key);
      if (first) return { reply: first, duplicate: true };
      if (this.#notSent.has(to)) {
        const reply: Reply = { status: 200, body: { ...echo, RequestId: requestId, Status: 'NotSent' } };
        this.#answers.set(key, reply);
        return { reply, rejected: 'NotSent' };
      }
      const window = this.#windows.get(from);
      const limit = this.limitOf(from);
      const waitMs = window.waitMs(now, limit);
      if (waitMs > 0) {
        const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
        return {
          reply: tooMany(
            retryAfter,
            `Rate limit of ${limit} messages per second for this sender exceeded; retry after ${retryAfter} s.`,
          ),
          rateLimited: true,
        };
      }
      window.add(now);
      const messageId = randomUUID();
      const reply: Reply = {
        status: 200,
        body: { ...echo, MessageId: messageId, RequestId: requestId, Status: 'Sent' },
      };
      this.#answers.set(key, reply);
      const accepted: SimulatedMessage = {
        time: now,
        provider: 'contract',
        channel,
        path: ex.path,
        sender: from,
        recipient: to,
        text: Object.entries(parts)
          .filter(([k]) => !this.#options.mediaParts.includes(k))
          .map(([, v]) => v)
          .join('\n'),
        idempotencyKey: requestId,
        providerMessageId: messageId,
        ...(channelDefinitionId === undefined ? {} : { channelDefinitionId }),
        parts,
        ...(attachments.length > 0 ? { attachments } : {}),
        signed,
        verified: secrets !== undefined,
      };
      return { reply, accepted };
    };
    return { sender: from, execute };
  }
}
