import assert from 'node:assert/strict';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createCallbacksServer, sealContext } from '../../../src/pipeline/callbacks/index.js';
import type { InteractionMessage } from '../../../src/pipeline/index.js';
import { twilioSignature } from '../../../src/providers/index.js';
import { createQueueSender } from '../../../src/servicebus/index.js';
import { ATTR, startTelemetry, type Telemetry } from '../../../src/telemetry/index.js';
import { capturingClient } from '../../helpers/capturing-bus.js';
import { AUTH_TOKEN, context, harness, KEYS, PHONE, PUBLIC_BASE, SMS } from '../pipeline/callbacks/fakes.js';

describe('telemetry: a feedback callback is a trace of its own', () => {
  let telemetry: Telemetry;
  let exporter: InMemorySpanExporter;
  beforeEach(() => {
    exporter = new InMemorySpanExporter();
    telemetry = startTelemetry({ service: 'callbacks', spanProcessors: [new SimpleSpanProcessor(exporter)] });
  });
  afterEach(() => telemetry.close());

  it('a SERVER span named by the route template, parent of the interactions message it sends; no phone number in it', async () => {
    const { client, sent } = capturingClient();
    const h = harness({ interactions: createQueueSender<InteractionMessage>(client, 'interactions') });
    const app = createCallbacksServer(h.deps).app;
    try {
      const url = `/callbacks/sms/twilio/status?t=${sealContext(context(1), 'sms', KEYS)}`;
      const form = new URLSearchParams({
        MessageSid: 'SM0001',
        MessageStatus: 'delivered',
        To: PHONE,
        From: SMS.sender,
      });
      const res = await app.inject({
        method: 'POST',
        url,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': twilioSignature(AUTH_TOKEN, `${PUBLIC_BASE}${url}`, form),
        },
        payload: form.toString(),
      });
      assert.equal(res.statusCode, 204);
    } finally {
      await app.close();
    }
    const spans = exporter.getFinishedSpans();
    const server = spans.find((s) => s.kind === SpanKind.SERVER);
    assert.ok(server, `no SERVER span in ${spans.map((s) => s.name).join(', ')}`);
    assert.equal(server.name, 'POST /callbacks/:channel/twilio/status');
    assert.equal(server.parentSpanContext, undefined);
    assert.equal(server.attributes[ATTR.httpStatus], 204);
    const create = spans.find((s) => s.name === 'create interactions');
    assert.equal(create?.parentSpanContext?.spanId, server.spanContext().spanId);
    assert.equal(sent.length, 1);
    assert.match(
      String(sent[0]?.applicationProperties?.['traceparent']),
      new RegExp(`^00-${server.spanContext().traceId}-`),
    );
    for (const span of spans)
      for (const value of [span.name, ...Object.values(span.attributes).map(String)])
        assert.ok(!value.includes(PHONE) && !value.includes(PHONE.slice(1)), `${span.name} holds the phone number`);
  });
});
