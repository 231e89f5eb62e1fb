import assert from 'node:assert/strict';
import { isProviderError } from '../../../src/errors.js';
import { decide, type SendDecision } from '../../../src/pipeline/dispatch/send-policy.js';
import type { HttpResponse } from '../../../src/providers/http.js';
import { CONTRACT_DEFAULT_RETRY_AFTER_MS, mapContractResponse } from '../../../src/providers/contract/map-response.js';

const REQUEST_ID = '6f1c2b0e-8d1c-4c9e-9a57-3b0f4f5d2a11';
const DEFINITION = 'b7c0e3a2-1111-4f00-8000-000000000001';
function answer(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body };
}
function reply(Status: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ChannelDefinitionId: DEFINITION, RequestId: REQUEST_ID, Status, ...extra };
}

describe('mapContractResponse', () => {
  const accepted: Array<[string, HttpResponse, string, string]> = [
    ['Sent with MessageId', answer(200, reply('Sent', { MessageId: 'msg-77' })), 'msg-77', 'Sent'],
    ['Sent without MessageId → RequestId', answer(200, reply('Sent')), REQUEST_ID, 'Sent'],
    ['Delivered', answer(200, reply('Delivered', { MessageId: 'msg-78' })), 'msg-78', 'Delivered'],
    ['202 Sent', answer(202, reply('Sent')), REQUEST_ID, 'Sent'],
  ];
  for (const [name, response, id, status] of accepted) {
    it(`${name} → accepted`, () => {
      assert.deepEqual(mapContractResponse(response, REQUEST_ID), { providerMessageId: id, status });
    });
  }

  const failures: Array<[string, HttpResponse, string, number | undefined, string | undefined, SendDecision]> = [
    // [name, answer, code, retryAfterMs, upstream code, decision]
    ['200 NotSent', answer(200, reply('NotSent')), 'ProviderRejected', undefined, 'NotSent', 'rejected'],
    ['200 NotDelivered', answer(200, reply('NotDelivered')), 'ProviderRejected', undefined, 'NotDelivered', 'rejected'],
    ['400 NotSent', answer(400, reply('NotSent')), 'ProviderRejected', undefined, 'NotSent', 'rejected'],
    [
      '422 without the contract',
      answer(422, { error: 'invalid To' }),
      'ProviderRejected',
      undefined,
      undefined,
      'rejected',
    ],
    [
      '429 Retry-After 4',
      answer(429, '', { 'retry-after': '4' }),
      'ProviderRateLimited',
      4000,
      undefined,
      'rateLimited',
    ],
    [
      '429 without Retry-After',
      answer(429, ''),
      'ProviderRateLimited',
      CONTRACT_DEFAULT_RETRY_AFTER_MS,
      undefined,
      'rateLimited',
    ],
    ['500', answer(500, 'boom'), 'ProviderUnavailable', undefined, undefined, 'transient'],
    ['503', answer(503, ''), 'ProviderUnavailable', undefined, undefined, 'transient'],
    [
      '401 signature refused',
      answer(401, { error: 'bad signature' }),
      'ProviderUnauthorized',
      undefined,
      undefined,
      'unauthorized',
    ],
    ['404 no endpoint', answer(404, 'Not Found'), 'ProviderUnauthorized', undefined, undefined, 'unauthorized'],
    [
      '200 another RequestId',
      answer(200, { ...reply('Sent'), RequestId: 'someone-else' }),
      'ProviderAnswerUnreadable',
      undefined,
      'Sent',
      'unconfirmed',
    ],
    ['200 unknown Status', answer(200, reply('Maybe')), 'ProviderAnswerUnreadable', undefined, 'Maybe', 'unconfirmed'],
    [
      '200 without Status',
      answer(200, { RequestId: REQUEST_ID }),
      'ProviderAnswerUnreadable',
      undefined,
      undefined,
      'unconfirmed',
    ],
    ['200 text', answer(200, 'OK'), 'ProviderAnswerUnreadable', undefined, undefined, 'unconfirmed'],
    ['301', answer(301, ''), 'ProviderBadResponse', undefined, undefined, 'transient'],
  ];
  for (const [name, response, code, retryAfterMs, upstreamCode, decision] of failures) {
    it(`${name} → ${code} (${decision})`, () => {
      const outcome = mapContractResponse(response, REQUEST_ID);
      assert.ok(isProviderError(outcome), 'an error');
      assert.equal(outcome.code, code);
      assert.equal(decide(outcome), decision, 'what dispatch does with it (a 2xx it cannot read is never sent again)');
      assert.equal(outcome.retryAfterMs, retryAfterMs);
      assert.equal(outcome.upstream?.code, upstreamCode);
      assert.equal(outcome.upstream?.status, response.status);
    });
  }

  it('names both RequestIds when the answer is for another request', () => {
    const outcome = mapContractResponse(answer(200, { ...reply('Sent'), RequestId: 'someone-else' }), REQUEST_ID);
    assert.ok(isProviderError(outcome));
    assert.match(outcome.message, /"someone-else", not "6f1c2b0e/);
  });
});
