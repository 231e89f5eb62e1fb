import assert from 'node:assert/strict';
import { isProviderError } from '../../../src/errors.js';
import { decide, type SendDecision } from '../../../src/pipeline/dispatch/send-policy.js';
import type { HttpResponse } from '../../../src/providers/http.js';
import { mapTelegramResponse, TELEGRAM_DEFAULT_RETRY_AFTER_MS } from '../../../src/providers/telegram/map-response.js';
import { telegramError, telegramMessage } from './fixtures.js';

function answer(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body };
}

describe('mapTelegramResponse', () => {
  it('200 ok → accepted with the message_id', () => {
    assert.deepEqual(mapTelegramResponse(answer(200, telegramMessage(4242))), {
      providerMessageId: '4242',
      status: 'sent',
    });
  });

  const failures: Array<[string, HttpResponse, string, number | undefined, RegExp, SendDecision]> = [
    // [name, answer, code, retryAfterMs, message, decision]
    [
      '429 retry_after 7',
      answer(429, telegramError(429, 'Too Many Requests: retry after 7', { retry_after: 7 })),
      'ProviderRateLimited',
      7000,
      /flood control, retry after 7000 ms/,
      'rateLimited',
    ],
    [
      '429 without parameters, Retry-After header',
      answer(429, telegramError(429, 'Too Many Requests: retry after 2'), { 'retry-after': '2' }),
      'ProviderRateLimited',
      2000,
      /retry after 2000 ms/,
      'rateLimited',
    ],
    [
      '429 without any hint',
      answer(429, telegramError(429, 'Too Many Requests')),
      'ProviderRateLimited',
      TELEGRAM_DEFAULT_RETRY_AFTER_MS,
      /flood control/,
      'rateLimited',
    ],
    [
      '403 blocked',
      answer(403, telegramError(403, 'Forbidden: bot was blocked by the user')),
      'ProviderRejected',
      undefined,
      /the user blocked the bot/,
      'rejected',
    ],
    [
      '403 deactivated',
      answer(403, telegramError(403, 'Forbidden: user is deactivated')),
      'ProviderRejected',
      undefined,
      /user account is deleted/,
      'rejected',
    ],
    [
      '403 kicked',
      answer(403, telegramError(403, 'Forbidden: bot was kicked from the group chat')),
      'ProviderRejected',
      undefined,
      /removed from the chat/,
      'rejected',
    ],
    [
      '400 chat not found',
      answer(400, telegramError(400, 'Bad Request: chat not found')),
      'ProviderRejected',
      undefined,
      /chat does not exist/,
      'rejected',
    ],
    [
      '400 migrated',
      answer(
        400,
        telegramError(400, 'Bad Request: group chat was upgraded to a supergroup chat', {
          migrate_to_chat_id: -1001234567890,
        }),
      ),
      'ProviderRejected',
      undefined,
      /supergroup/,
      'rejected',
    ],
    [
      '400 text too long',
      answer(400, telegramError(400, 'Bad Request: message is too long')),
      'ProviderRejected',
      undefined,
      /4096/,
      'rejected',
    ],
    [
      '401 token',
      answer(401, telegramError(401, 'Unauthorized')),
      'ProviderUnauthorized',
      undefined,
      /telegram 401: Unauthorized/,
      'unauthorized',
    ],
    [
      '404 token malformed',
      answer(404, telegramError(404, 'Not Found')),
      'ProviderUnauthorized',
      undefined,
      /telegram 404/,
      'unauthorized',
    ],
    [
      '409 other 4xx',
      answer(409, telegramError(409, 'Conflict: something')),
      'ProviderRejected',
      undefined,
      /telegram 409/,
      'rejected',
    ],
    [
      '500',
      answer(500, telegramError(500, 'Internal Server Error')),
      'ProviderUnavailable',
      undefined,
      /telegram 500/,
      'transient',
    ],
    [
      '502 HTML from a proxy',
      answer(502, '<html><body>502 Bad Gateway</body></html>', { 'content-type': 'text/html' }),
      'ProviderUnavailable',
      undefined,
      /502 Bad Gateway/,
      'transient',
    ],
    [
      '200 HTML',
      answer(200, '<html></html>', { 'content-type': 'text/html' }),
      'ProviderAnswerUnreadable',
      undefined,
      /not a Bot API response/,
      'unconfirmed',
    ],
    [
      '200 ok without result',
      answer(200, { ok: true }),
      'ProviderAnswerUnreadable',
      undefined,
      /without an integer result.message_id/,
      'unconfirmed',
    ],
    [
      '200 ok with a string message_id',
      answer(200, { ok: true, result: { message_id: '12' } }),
      'ProviderAnswerUnreadable',
      undefined,
      /message_id/,
      'unconfirmed',
    ],
    [
      '200 not ok with error_code 429',
      answer(200, telegramError(429, 'Too Many Requests: retry after 1', { retry_after: 1 })),
      'ProviderRateLimited',
      1000,
      /flood control/,
      'rateLimited',
    ],
    [
      '200 not ok without error_code',
      answer(200, { ok: false, description: 'Bad Request: chat not found' }),
      'ProviderRejected',
      undefined,
      /answered 200 with ok:false .*chat does not exist/,
      'rejected',
    ],
    [
      '200 not ok with error_code 200',
      answer(200, { ok: false, error_code: 200, description: 'Something odd' }),
      'ProviderRejected',
      undefined,
      /answered 200 with ok:false \(error_code 200\): Something odd/,
      'rejected',
    ],
    [
      '200 not ok with error_code 403',
      answer(200, telegramError(403, 'Forbidden: bot was blocked by the user')),
      'ProviderRejected',
      undefined,
      /the user blocked the bot/,
      'rejected',
    ],
    [
      "302 not ok (not Telegram's answer)",
      answer(302, { ok: false }),
      'ProviderBadResponse',
      undefined,
      /answered 302 not ok/,
      'transient',
    ],
  ];
  for (const [name, response, code, retryAfterMs, message, decision] of failures) {
    it(`${name} → ${code} (${decision})`, () => {
      const outcome = mapTelegramResponse(response);
      assert.ok(isProviderError(outcome), 'an error');
      assert.equal(outcome.code, code);
      assert.equal(decide(outcome), decision, 'what dispatch does with it (a 2xx it cannot read is never sent again)');
      assert.equal(outcome.retryAfterMs, retryAfterMs);
      assert.match(outcome.message, message);
      assert.equal(outcome.upstream?.status, response.status);
      assert.deepEqual(outcome.upstream?.body, response.body);
    });
  }

  it("keeps Telegram's error_code as the upstream code", () => {
    const outcome = mapTelegramResponse(answer(403, telegramError(403, 'Forbidden: bot was blocked by the user')));
    assert.ok(isProviderError(outcome));
    assert.equal(outcome.upstream?.code, 403);
  });
});
