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

  constructor(settings: ContractSettings, options: AdapterOptions, now: () => number = Date.now) {
    this.#url = settings.url;
    this.#secrets = contractSecrets(settings.signingSecret);
    this.#call = adapterCall('contract', options, this.#secrets);
    this.#now = now;
  }

  /** The contract's payload has no place for files (`Message` is message parts by name, strings). */
  readonly maxAttachments = 0;

  async send(request: SendRequest): Promise<SendResult> {
    if ((request.attachments?.length ?? 0) > 0)
      throw new TypeError(
        'contract: the outbound contract has no place for attachments (its Message is a Dictionary<string, string> of message parts)',
      );
    const payload: ContractPayload = {
      ...(request.channelDefinitionId === undefined ? {} : { ChannelDefinitionId: request.channelDefinitionId }),
      RequestId: request.idempotencyKey,
      From: request.from,
      To: request.to,
      Message: request.parts ?? { text: request.text },
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
