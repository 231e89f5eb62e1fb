/**
 * The provider simulators: Twilio's Messages API, Telegram's `sendMessage` and the real-time journeys custom
 * channel contract on one HTTP server, with each provider's limits, a message log, statistics and fault knobs; and
 * the other direction: signed status callbacks, delivery reports, inbound messages and webhook updates, and
 * simulated recipients who open links and reply.
 * The embedded defaults of the provider adapters and their test doubles. See docs/emulators/providers.md.
 */
export { startProviderSimulators } from './simulator.js';
export type { CustomerWrites, ProviderSimulators, ProviderSimulatorsOptions } from './simulator.js';
export type { AddedMedia, MediaItem } from './media.js';
export { PROVIDERS, seededRandom } from './faults.js';
export type { FaultSettings, FaultsSpec, SimulatedProvider } from './faults.js';
export type { MessageFilter, ProviderStats, SimulatedMessage, SimulatorStats, TrafficStats } from './records.js';
export { TWILIO_DEFAULTS } from './twilio.js';
export type { InboundReply, TwilioOptions, TwilioSigning } from './twilio.js';
export { TELEGRAM_DEFAULTS } from './telegram.js';
export type { TelegramOptions } from './telegram.js';
export { CONTRACT_DEFAULTS } from './contract.js';
export type { ContractOptions } from './contract.js';
export { CALLBACK_DEFAULTS, CALLBACK_KINDS, maskUrl, RECIPIENT_DEFAULTS } from './callbacks.js';
export type {
  CallbackFilter,
  CallbackKind,
  CallbackKindStats,
  CallbackOptions,
  CallbackRecord,
  CallbackStats,
  RecipientOptions,
} from './callbacks.js';
export { linksOf, signTwilio } from './feedback.js';
export type { TelegramWebhook } from './telegram.js';
export { verifyStandardWebhook } from './standard-webhooks.js';
export type { VerifyResult, WebhookHeaders } from './standard-webhooks.js';
export type {
  ConversationsOptions,
  CustomerState,
  CustomerStats,
  ReceivedMessage,
  SimulatedCustomer,
  WrittenMessage,
} from './customers.js';
