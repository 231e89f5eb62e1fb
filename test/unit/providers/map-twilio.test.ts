import assert from 'node:assert/strict';
import { isProviderError } from '../../../src/errors.js';
import { decide, type SendDecision } from '../../../src/pipeline/dispatch/send-policy.js';
import type { HttpResponse } from '../../../src/providers/http.js';
import {
  mapTwilioResponse,
  TWILIO_DEFAULT_RETRY_AFTER_MS,
  TWILIO_QUEUE_FULL_RETRY_AFTER_MS,
} from '../../../src/providers/twilio/map-response.js';
import { twilioError, twilioMessage } from './fixtures.js';

const json = { 'content-type': 'application/json; charset=utf-8' };
function answer(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { ...json, ...headers }, body };
}

describe('mapTwilioResponse', () => {
  const accepted: Array<[string, HttpResponse, string, string]> = [
    ['201 queued', answer(201, twilioMessage()), 'SM304417148af644198a0efaceebc965a5', 'queued'],
    [
      '201 accepted (Messaging Service)',
      answer(201, twilioMessage({ sid: 'SMaaaa', status: 'accepted', messaging_service_sid: 'MG0123' })),
      'SMaaaa',
      'accepted',
    ],
    ['200 with a sid', answer(200, twilioMessage({ sid: 'MMbbbb', status: 'sent' })), 'MMbbbb', 'sent'],
  ];
  for (const [name, response, sid, status] of accepted) {
    it(`${name} → accepted`, () => {
      assert.deepEqual(mapTwilioResponse(response), { providerMessageId: sid, status });
    });
  }

  const failures: Array<[string, HttpResponse, string, number | undefined, number | undefined, SendDecision]> = [
    // [name, answer, code, upstream code, retryAfterMs, decision]
    [
      '429 20429 with Retry-After',
      answer(429, twilioError(20429, 'Too Many Requests', 429), { 'retry-after': '3' }),
      'ProviderRateLimited',
      20429,
      3000,
      'rateLimited',
    ],
    [
      '429 20429 without Retry-After',
      answer(429, twilioError(20429, 'Too Many Requests', 429)),
      'ProviderRateLimited',
      20429,
      TWILIO_DEFAULT_RETRY_AFTER_MS,
      'rateLimited',
    ],
    [
      '429 without a Twilio body',
      answer(429, 'Too Many Requests'),
      'ProviderRateLimited',
      undefined,
      TWILIO_DEFAULT_RETRY_AFTER_MS,
      'rateLimited',
    ],
    [
      '400 21611 queue full',
      answer(400, twilioError(21611, "This 'From' number has exceeded the maximum number of queued messages", 400)),
      'ProviderRateLimited',
      21611,
      TWILIO_QUEUE_FULL_RETRY_AFTER_MS,
      'rateLimited',
    ],
    [
      '400 21211 invalid To',
      answer(400, twilioError(21211, "The 'To' number +1555 is not a valid phone number.", 400)),
      'ProviderRejected',
      21211,
      undefined,
      'rejected',
    ],
    [
      '400 21610 unsubscribed',
      answer(400, twilioError(21610, 'Attempt to send to unsubscribed recipient', 400)),
      'ProviderRejected',
      21610,
      undefined,
      'rejected',
    ],
    [
      '400 21614 not a mobile number',
      answer(400, twilioError(21614, "'To' number is not a valid mobile number", 400)),
      'ProviderRejected',
      21614,
      undefined,
      'rejected',
    ],
    [
      '400 21612 unreachable',
      answer(400, twilioError(21612, "The 'To' phone number is not currently reachable via SMS", 400)),
      'ProviderRejected',
      21612,
      undefined,
      'rejected',
    ],
    [
      '400 21408 region not enabled',
      answer(
        400,
        twilioError(
          21408,
          'Permission to send an SMS has not been enabled for the region indicated by the To number',
          400,
        ),
      ),
      'ProviderRejected',
      21408,
      undefined,
      'rejected',
    ],
    [
      '400 21617 too long',
      answer(400, twilioError(21617, 'The concatenated message body exceeds the 1600 character limit', 400)),
      'ProviderRejected',
      21617,
      undefined,
      'rejected',
    ],
    [
      '400 unknown code',
      answer(400, twilioError(21999, 'Something new', 400)),
      'ProviderRejected',
      21999,
      undefined,
      'rejected',
    ],
    [
      '401 20003',
      answer(401, twilioError(20003, 'Authenticate', 401)),
      'ProviderUnauthorized',
      20003,
      undefined,
      'unauthorized',
    ],
    ['401 without a body', answer(401, ''), 'ProviderUnauthorized', undefined, undefined, 'unauthorized'],
    [
      '403',
      answer(403, twilioError(20403, 'Forbidden', 403)),
      'ProviderUnauthorized',
      20403,
      undefined,
      'unauthorized',
    ],
    [
      '404 20404 (no such account)',
      answer(404, twilioError(20404, 'The requested resource was not found', 404)),
      'ProviderUnauthorized',
      20404,
      undefined,
      'unauthorized',
    ],
    [
      '400 21660 From not of this account',
      answer(400, twilioError(21660, "Mismatch between the 'From' number and the account", 400)),
      'ProviderUnauthorized',
      21660,
      undefined,
      'unauthorized',
    ],
    [
      '500 20500',
      answer(500, twilioError(20500, 'Internal Server Error', 500)),
      'ProviderUnavailable',
      20500,
      undefined,
      'transient',
    ],
    [
      '503 HTML from a proxy',
      answer(503, '<html>Service Unavailable</html>', { 'content-type': 'text/html' }),
      'ProviderUnavailable',
      undefined,
      undefined,
      'transient',
    ],
    [
      '201 without a sid',
      answer(201, { status: 'queued' }),
      'ProviderAnswerUnreadable',
      undefined,
      undefined,
      'unconfirmed',
    ],
    ['200 text', answer(200, 'OK'), 'ProviderAnswerUnreadable', undefined, undefined, 'unconfirmed'],
    [
      '302 redirect',
      answer(302, '', { location: 'https://elsewhere.example' }),
      'ProviderBadResponse',
      undefined,
      undefined,
      'transient',
    ],
  ];
  for (const [name, response, code, upstreamCode, retryAfterMs, decision] of failures) {
    it(`${name} → ${code} (${decision})`, () => {
      const outcome = mapTwilioResponse(response);
      assert.ok(isProviderError(outcome), 'an error');
      assert.equal(outcome.code, code);
      assert.equal(decide(outcome), decision, 'what dispatch does with it (a 2xx it cannot read is never sent again)');
      assert.equal(outcome.upstream?.code, upstreamCode);
      assert.equal(outcome.upstream?.status, response.status);
      assert.deepEqual(outcome.upstream?.body, response.body);
      assert.deepEqual(outcome.upstream?.headers, response.headers);
      assert.equal(outcome.retryAfterMs, retryAfterMs);
    });
  }

  it('says which error it was, with Twilio code and message', () => {
    const outcome = mapTwilioResponse(
      answer(400, twilioError(21610, 'Attempt to send to unsubscribed recipient', 400)),
    );
    assert.ok(isProviderError(outcome));
    assert.match(outcome.message, /twilio 400: .*unsubscribed.*21610 Attempt to send to unsubscribed recipient/);
    assert.equal(outcome.retryable, false);
  });

  it('reads a Retry-After HTTP date', () => {
    const at = new Date(Date.now() + 60_000).toUTCString();
    const outcome = mapTwilioResponse(answer(429, twilioError(20429, 'Too Many Requests', 429), { 'retry-after': at }));
    assert.ok(isProviderError(outcome));
    assert.ok(
      outcome.retryAfterMs !== undefined && outcome.retryAfterMs > 50_000 && outcome.retryAfterMs <= 60_000,
      String(outcome.retryAfterMs),
    );
  });
});
