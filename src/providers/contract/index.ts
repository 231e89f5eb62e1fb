export { ContractProvider, contractSecrets, type ContractSettings, type ContractPayload } from './adapter.js';
export {
  mapContractResponse,
  CONTRACT_ACCEPTED_STATUSES,
  CONTRACT_REFUSED_STATUSES,
  CONTRACT_DEFAULT_RETRY_AFTER_MS,
} from './map-response.js';
export {
  signWebhook,
  webhookHeaders,
  verifyWebhook,
  webhookSecretKey,
  WEBHOOK_TOLERANCE_SECONDS,
  type WebhookSecrets,
  type WebhookHeaders,
  type VerifyWebhookOptions,
  type WebhookVerification,
  type WebhookRefusal,
  type HeaderSource,
} from './webhook-signature.js';
export { CONTRACT_MAX_MEDIA_PARTS } from './assumptions.js';
