/**
 * The provider adapters behind one interface (`Provider`), made from a channel's provider settings:
 * `twilio` (Messages API), `telegram` (Bot API `sendMessage`), `contract` (the real-time journeys outbound
 * contract over HTTP, Standard Webhooks signed). Also each provider's verification of the requests it makes to the
 * callbacks service: Twilio's `X-Twilio-Signature`, Telegram's secret token, the contract's Standard Webhooks. And
 * the media fetchers that download a customer's attachment (Twilio MMS media, Telegram files): `mediaFetcher`.
 */
import { ContractProvider } from './contract/adapter.js';
import { CONTRACT_MAX_MEDIA_PARTS } from './contract/assumptions.js';
import { adapterOptions, requireHttpUrl, requireText, settingError, type CreateProviderOptions } from './options.js';
import type { Provider, ProviderSettings } from './provider.js';
import { TelegramProvider } from './telegram/adapter.js';
import { TwilioProvider } from './twilio/adapter.js';

export type {
  Provider,
  SendAttachment,
  SendRequest,
  SendResult,
  SentQuery,
  ProviderType,
  ProviderSettings,
} from './provider.js';
export { DEFAULT_PROVIDER_TIMEOUT_MS, type CreateProviderOptions } from './options.js';
export {
  mediaFetcher,
  MAX_MEDIA_BYTES,
  type MediaFile,
  type MediaFetcherOptions,
  type ProviderMediaFetcher,
} from './media.js';
export { parseRetryAfter, type FetchLike, type HttpResponse } from './http.js';
export type { SendOutcome } from './mapping.js';
export {
  mapTwilioResponse,
  mapTwilioFetchResponse,
  smsSegments,
  TwilioProvider,
  TWILIO_BASE_URL,
  TWILIO_MAX_MEDIA,
  TWILIO_ERROR_CODES,
  twilioSignature,
  verifyTwilioSignature,
  twilioSignedUrls,
  signatureSettings,
  TWILIO_SIGNATURE_SETTINGS_HEADER,
  type TwilioMessage,
  type TwilioSignatureAlgorithm,
} from './twilio/index.js';
export {
  isTelegramGroupChat,
  mapTelegramResponse,
  verifySecretToken,
  TELEGRAM_BASE_URL,
  TELEGRAM_GROUP_SPACING_MS,
  TELEGRAM_FILE_SCHEME,
  TELEGRAM_MAX_ATTACHMENTS,
  telegramMessagesOf,
  telegramPartSpacingMs,
  telegramFileUrl,
  telegramFileId,
} from './telegram/index.js';
export {
  mapContractResponse,
  signWebhook,
  webhookHeaders,
  verifyWebhook,
  webhookSecretKey,
  WEBHOOK_TOLERANCE_SECONDS,
  type ContractPayload,
  type WebhookSecrets,
  type WebhookHeaders,
  type VerifyWebhookOptions,
  type WebhookVerification,
  type WebhookRefusal,
  type HeaderSource,
} from './contract/index.js';

/**
 * Makes the adapter for one channel's provider settings. Settings are checked here, once: a missing credential, a
 * URL that does not parse or a signing secret that is not `whsec_<base64>` throws a `ConfigError` whose problem names
 * the key (`provider.signingSecret`), never its value.
 */
/** A contract provider's `mediaParts`: 1-10 distinct, non-empty message part names, none of them `text` (assumptions.ts). */
function requireMediaParts(value: unknown, source: string): string[] {
  const expected = '1-10 distinct message part names, not "text"';
  if (!Array.isArray(value) || value.length < 1 || value.length > CONTRACT_MAX_MEDIA_PARTS)
    throw settingError(
      source,
      'provider.mediaParts',
      expected,
      Array.isArray(value) ? `${value.length} names` : typeof value,
    );
  const names = value.map((v: unknown, i) => requireText(v, source, `provider.mediaParts.${i}`));
  const wrong = names.find((n, i) => n === 'text' || names.indexOf(n) !== i);
  if (wrong !== undefined)
    throw settingError(source, 'provider.mediaParts', expected, `"${wrong}" named twice or text`);
  return names;
}

export function createProvider(settings: ProviderSettings, options?: CreateProviderOptions): Provider {
  const adapter = adapterOptions(options);
  const source = `${settings.type} provider settings`;
  switch (settings.type) {
    case 'twilio':
      return new TwilioProvider(
        {
          accountSid: requireText(settings.accountSid, source, 'provider.accountSid'),
          authToken: requireText(settings.authToken, source, 'provider.authToken'),
          ...(settings.baseUrl === undefined
            ? {}
            : { baseUrl: requireHttpUrl(settings.baseUrl, source, 'provider.baseUrl') }),
        },
        adapter,
      );
    case 'telegram': {
      const botToken = requireText(settings.botToken, source, 'provider.botToken');
      if (/[\s/?#]/.test(botToken))
        throw settingError(
          source,
          'provider.botToken',
          'a bot token without whitespace, "/", "?" or "#"',
          'a token holding one of them',
        );
      return new TelegramProvider(
        {
          botToken,
          ...(settings.baseUrl === undefined
            ? {}
            : { baseUrl: requireHttpUrl(settings.baseUrl, source, 'provider.baseUrl') }),
        },
        adapter,
      );
    }
    case 'contract':
      return new ContractProvider(
        {
          url: requireHttpUrl(settings.url, source, 'provider.url'),
          signingSecret: requireText(settings.signingSecret, source, 'provider.signingSecret'),
          ...(settings.mediaParts === undefined ? {} : { mediaParts: requireMediaParts(settings.mediaParts, source) }),
        },
        adapter,
      );
    default: {
      const unknown: { type?: unknown } = settings;
      throw settingError(
        'provider settings',
        'provider.type',
        'one of twilio, telegram, contract',
        JSON.stringify(unknown.type) ?? 'nothing',
      );
    }
  }
}
