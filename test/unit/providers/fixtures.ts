import assert from 'node:assert/strict';
import type { ProviderError } from '../../../src/errors.js';

/**
 * Realistic provider answers (shapes from the providers' documentation; ids and numbers made up), and the adapter
 * tests' `rejection`.
 */
export const ACCOUNT_SID = 'AC0123456789abcdef0123456789abcdef';
export const AUTH_TOKEN = 'f00dfeedc0ffee00f00dfeedc0ffee00';
export const BOT_TOKEN = '123456789:AAE-abcdefghijklmnopqrstuvwxyz0123456';
export const SIGNING_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

/** Twilio's Message resource as answered to a create (201). */
export function twilioMessage(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const sid = 'SM304417148af644198a0efaceebc965a5';
  return {
    account_sid: ACCOUNT_SID,
    api_version: '2010-04-01',
    body: 'Hello Ada',
    date_created: 'Sun, 22 Nov 2026 01:00:00 +0000',
    date_sent: null,
    date_updated: 'Sun, 22 Nov 2026 01:00:00 +0000',
    direction: 'outbound-api',
    error_code: null,
    error_message: null,
    from: '+15005550006',
    messaging_service_sid: null,
    num_media: '0',
    num_segments: '1',
    price: null,
    price_unit: 'USD',
    sid,
    status: 'queued',
    subresource_uris: { media: `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/${sid}/Media.json` },
    to: '+15551234567',
    uri: `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/${sid}.json`,
    ...overrides,
  };
}

/** Twilio's error body. */
export function twilioError(code: number, message: string, status: number): Record<string, unknown> {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

/** Telegram's `sendMessage` success. */
export function telegramMessage(messageId = 4242, chatId = 987654321): Record<string, unknown> {
  return {
    ok: true,
    result: {
      message_id: messageId,
      from: { id: 123456789, is_bot: true, first_name: 'Relay', username: 'relay_bot' },
      chat: { id: chatId, first_name: 'Ada', type: 'private' },
      date: 1795309200,
      text: 'Hello Ada',
    },
  };
}

export function telegramError(
  errorCode: number,
  description: string,
  parameters?: Record<string, unknown>,
): Record<string, unknown> {
  return { ok: false, error_code: errorCode, description, ...(parameters === undefined ? {} : { parameters }) };
}

/** What `promise` rejects with (a ProviderError unless `E` says otherwise); fails the test if it resolves. */
export async function rejection<E = ProviderError>(promise: Promise<unknown>): Promise<E> {
  try {
    await promise;
  } catch (err) {
    return err as E;
  }
  assert.fail('expected a rejection');
}
