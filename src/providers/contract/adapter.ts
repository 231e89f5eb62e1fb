/**
 * The real-time journeys outbound contract over HTTP: one `POST {url}` per message with the contract payload as
 * JSON, signed with Standard Webhooks v1 headers.
 *
 * Body: `{ChannelDefinitionId, RequestId, From, To, Message}`; `RequestId` is the idempotency key, `Message` the
 * message parts by name (or `{text}` when the request has none), `ChannelDefinitionId` is omitted when the request
 * has none (an outbound-marketing channel served by a contract endpoint, whose `RequestId` is the activity row id). Headers: `webhook-id` (= the idempotency
 * key, stable across retries, so the endpoint can drop repeats), `webhook-timestamp`, `webhook-signature`.
 *
 * The signing secret may hold several `whsec_…` secrets separated by spaces: each signs (one `v1,` entry each),
 * which is how a secret is rotated without a gap (sign with new and old, switch the endpoint, drop the old).
 */
import { postAndMap } from '../http.js';
import { adapterCall, settingError, type AdapterCall, type AdapterOptions } from '../options.js';
import type { Provider, SendRequest, SendResult } from '../provider.js';
import { mapContractResponse } from './map-response.js';
import { webhookHeaders, webhookSecretProblem } from './webhook-signature.js';

export interface ContractSettings {
  /** The endpoint receiving the contract payload. */
  url: string;
  /** One `whsec_<base64>` secret, or several separated by whitespace (rotation). */
  signingSecret: string;
  /**
   * The channel definition's message parts that carry a file's URL: the i-th attachment goes in `mediaParts[i]`
   * (see assumptions.ts: URLs, not msdyncrm_file ids). None: the channel takes no attachments.
   */
  mediaParts?: readonly string[];
}

/** The request payload of the outbound contract. */
export interface ContractPayload {
  ChannelDefinitionId?: string;
  RequestId: string;
  From: string;
  To: string;
  Message: Record<string, string>;
}

/** Splits a signing-secret setting into its secrets, checking each; its `ConfigError` never shows a secret. */
export function contractSecrets(signingSecret: string): string[] {
  const expected = '"whsec_" followed by base64 (several separated by spaces while rotating)';
  const secrets = signingSecret.split(/\s+/).filter((s) => s !== '');
  if (secrets.length === 0)
    throw settingError('contract provider settings', 'provider.signingSecret', expected, 'no secret');
  for (const secret of secrets) {
    const problem = webhookSecretProblem(secret);
    if (problem !== undefined)
      throw settingError('contract provider settings', 'provider.signingSecret', expected, problem);
  }
  return secrets;
}

export class ContractProvider implements Provider {
  readonly type = 'contract' as const;
  readonly #url: string;
  readonly #secrets: readonly string[];
  readonly #call: AdapterCall;
  /** The clock used for `webhook-timestamp` (tests). */
  readonly #now: () => number;
  readonly #mediaParts: readonly string[];

  constructor(settings: ContractSettings, options: AdapterOptions, now: () => number = Date.now) {
    this.#url = settings.url;
    this.#mediaParts = settings.mediaParts ?? [];
    this.maxAttachments = this.#mediaParts.length;
    this.#secrets = contractSecrets(settings.signingSecret);
    this.#call = adapterCall('contract', options, this.#secrets);
    this.#now = now;
  }

  /**
   * One file per media part: the contract's `Message` is a Dictionary<string, string> of message parts, so a file
   * goes by URL in a part the channel definition declares for media (`mediaParts`); without them, none.
   */
  readonly maxAttachments: number;

  async send(request: SendRequest): Promise<SendResult> {
    const attachments = request.attachments ?? [];
    if (attachments.length > this.maxAttachments)
      throw new TypeError(
        `contract: ${attachments.length} attachments, but the channel has ${this.maxAttachments} media parts (provider.mediaParts) to carry them`,
      );
    const media: Record<string, string> = {};
    attachments.forEach((a, i) => (media[this.#mediaParts[i] as string] = a.url));
    const payload: ContractPayload = {
      ...(request.channelDefinitionId === undefined ? {} : { ChannelDefinitionId: request.channelDefinitionId }),
      RequestId: request.idempotencyKey,
      From: request.from,
      To: request.to,
      Message: { ...(request.parts ?? { text: request.text }), ...media },
    };
    const body = JSON.stringify(payload);
    return postAndMap({
      ...this.#call,
      url: this.#url,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        ...webhookHeaders(this.#secrets, request.idempotencyKey, body, this.#now()),
      },
      body,
      signal: request.signal,
      map: (response) => mapContractResponse(response, request.idempotencyKey),
      fields: { idempotencyKey: request.idempotencyKey },
    });
  }
}
