/** The bodies on `interactions`: the real-time inbound kind (responseType Inbound) and its checks. */
import assert from 'node:assert/strict';
import { isEventError } from '../../../src/errors.js';
import {
  INBOUND_RESPONSE_TYPE,
  interactionMessageId,
  parseInteractionMessage,
  type InteractionMessage,
} from '../../../src/pipeline/messages.js';

const realtime = {
  kind: 'realtime',
  channelDefinitionId: 'def-1',
  requestId: 'SMin-1',
  from: '+4917600000001',
  organizationId: 'org-1',
} as const;
const inbound: InteractionMessage = {
  v: 1,
  context: realtime,
  responseType: INBOUND_RESPONSE_TYPE,
  channel: 'realtime-sms',
  occurredAt: 5,
  inbound: { to: '+4915100000001', text: 'Hi' },
};

function refused(body: unknown, field: RegExp): void {
  assert.throws(
    () => parseInteractionMessage(body),
    (err: unknown) => isEventError(err) && field.test(err.message),
  );
}

describe('messages: inbound interactions', () => {
  it('an Inbound interaction round-trips through JSON, an empty text included', () => {
    assert.deepEqual(parseInteractionMessage(JSON.stringify(inbound)), inbound);
    const empty = { ...inbound, inbound: { to: '+4915100000001', text: '' } };
    assert.deepEqual(parseInteractionMessage(JSON.stringify(empty)), empty);
    const withParts = {
      ...inbound,
      inbound: { to: '+4915100000001', text: 'Hi', parts: { text: 'Hi', image: 'https://cdn.example.test/1.jpg' } },
    };
    assert.deepEqual(parseInteractionMessage(JSON.stringify(withParts)), withParts);
  });

  it('its Service Bus MessageId is the inbound message id + Inbound: a repeated webhook is dropped by the bus', () => {
    assert.equal(interactionMessageId(inbound), 'SMin-1:Inbound');
  });

  it('refuses an Inbound without its message, with a marketing context, or an inbound part on another type', () => {
    const { inbound: _dropped, ...bare } = inbound;
    refused(bare, /'inbound' must be \{ to, text \}/);
    refused({ ...inbound, inbound: { text: 'x' } }, /'inbound\.to' must be a non-empty string/);
    refused({ ...inbound, inbound: { to: 'x', text: 7 } }, /'inbound\.text' must be a string/);
    refused(
      { ...inbound, inbound: { to: 'x', text: 'Hi', parts: 'Hi' } },
      /'inbound\.parts' must be an object of strings/,
    );
    refused(
      { ...inbound, inbound: { to: 'x', text: 'Hi', parts: { text: 'Hi', n: 1 } } },
      /'inbound\.parts' must be an object of strings/,
    );
    const marketing = {
      kind: 'marketing',
      activityId: 'a',
      activityRowId: 'r',
      contactId: 'c',
      journeyId: 'j',
      iterationId: 'i',
      entityType: 'e',
      entityId: 'x',
    };
    refused({ ...inbound, context: marketing }, /'context\.kind' must be 'realtime'/);
    refused({ ...inbound, responseType: 'Delivered' }, /'inbound' must be nothing unless responseType is 'Inbound'/);
  });

  it('other interactions are unchanged (no inbound part)', () => {
    const delivered = { v: 1, context: realtime, responseType: 'Delivered', channel: 'realtime-sms', occurredAt: 5 };
    assert.deepEqual(parseInteractionMessage(delivered), delivered);
  });
});
