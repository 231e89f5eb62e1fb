import { getLogLevel } from '@azure/logger';
import assert from 'node:assert/strict';
import { createTracingClient } from '@azure/core-tracing';
import type { ServiceBusReceivedMessage } from '@azure/service-bus';
import type { ProxyTracerProvider } from '@opentelemetry/api';
import { SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { createLogger } from '../../../src/log.js';
import { createQueueSender, toDelivery, type Settler } from '../../../src/servicebus/index.js';
import {
  ATTR,
  runInSpan,
  startProcessSpan,
  startTelemetry,
  tracingOn,
  type Telemetry,
} from '../../../src/telemetry/index.js';
import { CaptureStream } from '../../helpers/capture.js';
import { configProblems } from '../../helpers/fixtures.js';
import { capturingClient } from '../../helpers/capturing-bus.js';
import { startOtlpReceiver } from '../../helpers/otlp-receiver.js';
import { waitFor } from '../../helpers/wait.js';

const settler: Settler = {
  completeMessage: async () => undefined,
  abandonMessage: async () => undefined,
  deadLetterMessage: async () => undefined,
};

function received(id: string, applicationProperties?: Record<string, string>): ServiceBusReceivedMessage {
  return { body: {}, messageId: id, deliveryCount: 0, applicationProperties } as unknown as ServiceBusReceivedMessage;
}

const UPSTREAM = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' };
const UPSTREAM_TRACEPARENT = `00-${UPSTREAM.traceId}-${UPSTREAM.spanId}-01`;

describe('telemetry', () => {
  let telemetry: Telemetry | undefined;
  afterEach(async () => {
    await telemetry?.close();
    telemetry = undefined;
  });

  describe('off by default', () => {
    it('registers no provider, makes no span, puts no trace context in messages and no ids in logs', async () => {
      telemetry = startTelemetry({ service: 'intake', env: {} });
      assert.equal(telemetry.enabled, false);
      assert.deepEqual(telemetry.exporters, []);
      assert.equal(tracingOn(), false);
      const delegate = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate();
      assert.ok(!(delegate instanceof NodeTracerProvider), 'the API stays on its no-op provider');

      const delivery = toDelivery(received('m-1', { traceparent: UPSTREAM_TRACEPARENT }), settler, { queue: 'q' });
      assert.equal(delivery.span, undefined);
      const { client, sent } = capturingClient();
      await createQueueSender(client, 'outbound').send([{ body: { a: 1 }, messageId: 'x' }]);
      assert.equal(sent[0]?.applicationProperties, undefined);
      const stream = new CaptureStream();
      createLogger({ stream }).info('line');
      assert.equal(stream.lines()[0]?.['trace_id'], undefined);
    });

    it('an OTLP endpoint that is no http(s) URL is a ConfigError naming the variable', () => {
      const problems = configProblems(() =>
        startTelemetry({ service: 'intake', env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' } }),
      );
      assert.equal(problems[0]?.source, 'environment variable OTEL_EXPORTER_OTLP_ENDPOINT');
      assert.equal(tracingOn(), false);
    });

    it('stays off with OTEL_SDK_DISABLED=true whatever else is set', () => {
      telemetry = startTelemetry({
        service: 'dispatch',
        env: { OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' },
      });
      assert.equal(telemetry.enabled, false);
      assert.equal(tracingOn(), false);
    });
  });

  describe('on', () => {
    let exporter: InMemorySpanExporter;
    beforeEach(() => {
      exporter = new InMemorySpanExporter();
      telemetry = startTelemetry({ service: 'dispatch', spanProcessors: [new SimpleSpanProcessor(exporter)] });
    });
    const named = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === name);

    it('a message sent continues the span of the delivery it comes from; the receiver continues the message', async () => {
      const incoming = toDelivery(received('in-1', { traceparent: UPSTREAM_TRACEPARENT }), settler, {
        queue: 'outbound',
      });
      assert.ok(incoming.span);
      const { client, sent } = capturingClient();
      await createQueueSender(client, 'interactions').send([
        { body: { a: 1 }, messageId: 'out-1', parentSpan: incoming.span },
        { body: { a: 2 }, messageId: 'out-2', parentSpan: incoming.span },
      ]);
      await incoming.complete();

      const [process] = named('process outbound');
      assert.ok(process, 'the delivery span ends when it is settled');
      assert.equal(process.kind, SpanKind.CONSUMER);
      assert.equal(process.spanContext().traceId, UPSTREAM.traceId, 'continues the trace the message carried');
      assert.equal(process.parentSpanContext?.spanId, UPSTREAM.spanId);
      assert.equal(process.attributes[ATTR.messagingSystem], 'servicebus');
      assert.equal(process.attributes[ATTR.destination], 'outbound');
      assert.equal(process.attributes[ATTR.messageId], 'in-1');
      assert.equal(process.attributes[ATTR.outcome], 'completed');

      const creates = named('create interactions');
      assert.equal(creates.length, 2);
      for (const [i, create] of creates.entries()) {
        assert.equal(create.kind, SpanKind.PRODUCER);
        assert.equal(create.parentSpanContext?.spanId, process.spanContext().spanId);
        const props = sent[i]?.applicationProperties ?? {};
        const traceparent = `00-${UPSTREAM.traceId}-${create.spanContext().spanId}-01`;
        assert.equal(props['traceparent'], traceparent);
        assert.equal(props['Diagnostic-Id'], traceparent, 'the Azure SDK reads Diagnostic-Id');
      }
      const [send] = named('send interactions');
      assert.ok(send);
      assert.equal(send.parentSpanContext, undefined, 'one send serves many traces: a root');
      assert.deepEqual(
        send.links.map((l) => l.context.spanId),
        creates.map((c) => c.spanContext().spanId),
      );
      assert.equal(send.attributes[ATTR.batchCount], 2);

      // The consumer side: the received message's span is a child of its create span.
      const next = toDelivery(received('out-1', sent[0]?.applicationProperties as Record<string, string>), settler, {
        queue: 'interactions',
      });
      await next.deadLetter('Reason', 'description');
      const [consumed] = named('process interactions');
      assert.equal(consumed?.parentSpanContext?.spanId, creates[0]?.spanContext().spanId);
      assert.equal(consumed?.attributes[ATTR.outcome], 'deadLettered');
    });

    it('reads the Azure SDK’s Diagnostic-Id when there is no traceparent; a malformed one starts a new trace', () => {
      const fromDiagnostic = startProcessSpan('q', {
        messageId: 'a',
        applicationProperties: { 'Diagnostic-Id': UPSTREAM_TRACEPARENT },
      });
      assert.equal(fromDiagnostic.spanContext().traceId, UPSTREAM.traceId);
      const malformed = startProcessSpan('q', { messageId: 'b', applicationProperties: { traceparent: 'nonsense' } });
      assert.notEqual(malformed.spanContext().traceId, UPSTREAM.traceId);
      fromDiagnostic.end();
      malformed.end();
      assert.equal(named('process q')[1]?.parentSpanContext, undefined);
    });

    it('log lines written in a span carry its trace_id and span_id; outside any span none', async () => {
      const stream = new CaptureStream();
      const log = createLogger({ stream });
      const delivery = toDelivery(received('m-1'), settler, { queue: 'q' });
      runInSpan(delivery.span, () => log.info('inside'));
      log.info('outside');
      const [inside, outside] = stream.lines();
      assert.equal(inside?.['trace_id'], delivery.span?.spanContext().traceId);
      assert.equal(inside?.['span_id'], delivery.span?.spanContext().spanId);
      assert.equal(outside?.['trace_id'], undefined);
      assert.equal(outside?.['span_id'], undefined);
      await delivery.complete();
    });

    it('the Azure SDK’s own spans join: core-tracing (as @azure/service-bus uses it) makes them children of the active span', async () => {
      const tracing = createTracingClient({ namespace: 'Microsoft.ServiceBus', packageName: '@azure/service-bus' });
      const delivery = toDelivery(received('m-1'), settler, { queue: 'outbound' });
      runInSpan(delivery.span, () => tracing.startSpan('ServiceBusReceiver.complete', {}).span.end());
      await delivery.complete();
      const [sdk] = named('ServiceBusReceiver.complete');
      assert.ok(sdk, 'the SDK span was recorded: the instrumenter is set');
      assert.equal(sdk.parentSpanContext?.spanId, delivery.span?.spanContext().spanId);
    });

    it('close() unregisters the provider: tracing is off again', async () => {
      await telemetry?.close();
      assert.equal(tracingOn(), false);
      const delegate = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate();
      assert.ok(!(delegate instanceof NodeTracerProvider));
      assert.equal(toDelivery(received('m'), settler, { queue: 'q' }).span, undefined);
    });
  });

  it('with APPLICATIONINSIGHTS_CONNECTION_STRING too, Azure Monitor is on and OTLP still gets every span; a failed flush does not fail close()', async () => {
    const receiver = await startOtlpReceiver();
    // No statsbeat (the distro's own usage reports to Microsoft) from a test.
    process.env['APPLICATION_INSIGHTS_NO_STATSBEAT'] = 'true';
    try {
      telemetry = startTelemetry({
        service: 'recorder',
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          // Nothing listens there: Azure Monitor's export fails at the flush.
          APPLICATIONINSIGHTS_CONNECTION_STRING:
            'InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://127.0.0.1:1/',
        },
      });
      assert.deepEqual(telemetry.exporters, ['otlp', 'azure-monitor']);
      // The distro turns the Azure SDK's logger on (plain text on stderr); the relay turns it off again.
      assert.equal(getLogLevel(), undefined, "the Azure SDK's own logger stays off");
      const delivery = toDelivery(received('m-both'), settler, { queue: 'interactions' });
      await delivery.complete();
      await telemetry.close();
      telemetry = undefined;
      const span = await waitFor('the span over OTLP', () =>
        receiver.spans().find((s) => s.attributes[ATTR.messageId] === 'm-both'),
      );
      assert.equal(span.service, 'channel-relay-recorder');
    } finally {
      delete process.env['APPLICATION_INSIGHTS_NO_STATSBEAT'];
      await receiver.close();
    }
  });

  it('OTEL_EXPORTER_OTLP_ENDPOINT exports over OTLP/HTTP as channel-relay-<service> (OTEL_SERVICE_NAME wins); close() flushes', async () => {
    const receiver = await startOtlpReceiver();
    try {
      for (const [env, service] of [
        [{ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, 'channel-relay-recorder'],
        [{ OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`, OTEL_SERVICE_NAME: 'relay-eu' }, 'relay-eu'],
      ] as const) {
        telemetry = startTelemetry({ service: 'recorder', env });
        assert.deepEqual(telemetry.exporters, ['otlp']);
        const delivery = toDelivery(received(`m-${service}`), settler, { queue: 'interactions' });
        await delivery.complete();
        // Buffered by the BatchSpanProcessor (5 s by default): only the close sends it now.
        await telemetry.close();
        telemetry = undefined;
        const span = await waitFor(
          `the span of ${service}`,
          () => receiver.spans().find((s) => s.service === service),
          5_000,
        );
        assert.equal(span.name, 'process interactions');
        assert.equal(span.attributes[ATTR.messageId], `m-${service}`);
      }
    } finally {
      await receiver.close();
    }
  });
});
