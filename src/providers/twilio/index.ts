export { TwilioProvider, TWILIO_BASE_URL, TWILIO_MAX_MEDIA, type TwilioSettings } from './adapter.js';
export {
  mapTwilioResponse,
  mapTwilioFetchResponse,
  type TwilioMessage,
  TWILIO_ERROR_CODES,
  TWILIO_DEFAULT_RETRY_AFTER_MS,
  TWILIO_QUEUE_FULL_RETRY_AFTER_MS,
} from './map-response.js';
export { smsSegments } from './segments.js';
export {
  twilioSignature,
  verifyTwilioSignature,
  twilioSignedUrls,
  signatureSettings,
  TWILIO_SIGNATURE_SETTINGS_HEADER,
  type TwilioSignatureAlgorithm,
} from './webhook-signature.js';
