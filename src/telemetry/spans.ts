/**
 * The spans the stages make, by the OpenTelemetry messaging and HTTP semantic conventions (1.45), and the W3C trace
 * context a message carries in its application properties.
 *
 * - `process <queue>` (CONSUMER): one received message, child of the context its producer put in it.
 * - `create <queue>` (PRODUCER): one message made for a queue, child of the span of the work that made it; its context
 *   is what the message carries (`traceparent`, `tracestate`, `Diagnostic-Id`).
 * - `send <queue>` (PRODUCER): one call that sends many messages, linked to their `create` spans (a batch serves many
 *   traces: a link per message keeps each activity's trace connected through its own `create` span).
 * - client calls (CLIENT): a provider's API, Dataverse.
 *
 * `Diagnostic-Id` is the property the Azure SDK reads and writes (the same `traceparent` format:
 * node_modules/@azure/service-bus/dist/index.js, `TRACEPARENT_PROPERTY`), so that a consumer on the Azure SDK's own
 * tracing (a Functions peer, Application Insights) joins the same trace; `traceparent` wins when both are present.
 *
 * With tracing off every function returns at once: no span, no context, no carrier (`undefined`), nothing allocated
 * but the caller's own arguments. Attributes name the activity's row, channel and journey, never an address, a phone
 * number, a chat id or a text: callers pass only those (docs/operations.md, "Traces").
 */
import {
  context,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { DIAGNOSTIC_ID_PROPERTY, TRACEPARENT_PROPERTY, TRACESTATE_PROPERTY } from './assumptions.js';

/**
 * Attribute names. The messaging ones are "development" in semantic conventions 1.45, so they are copied here as the
 * package advises rather than imported from its `incubating` entry point; the relay's own are `channel_relay.*`.
 */
export const ATTR = {
  messagingSystem: 'messaging.system',
  destination: 'messaging.destination.name',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  messageId: 'messaging.message.id',
  batchCount: 'messaging.batch.message_count',
  httpMethod: 'http.request.method',
  httpStatus: 'http.response.status_code',
  httpRoute: 'http.route',
  serverAddress: 'server.address',
  errorType: 'error.type',
  activityRowId: 'channel_relay.activity.row_id',
  requestId: 'channel_relay.request.id',
  channel: 'channel_relay.channel',
  journeyId: 'channel_relay.journey.id',
  provider: 'channel_relay.provider',
  outcome: 'channel_relay.outcome',
  dataverseOperation: 'channel_relay.dataverse.operation',
  operationCount: 'channel_relay.dataverse.operations',
} as const;

/** `messaging.system` for Azure Service Bus (semantic conventions: `servicebus`). */
const SERVICEBUS = 'servicebus';

/** The application properties of a message that carry its trace context. */
export type TraceCarrier = Readonly<Record<string, string>>;

let on = false;
let tracer: Tracer = trace.getTracer('channel-relay');

/**
 * Set by `startTelemetry` (after registering the provider) and its `close()` only. The tracer is taken anew each time:
 * `trace.disable()` replaces the API's proxy provider, and a tracer of the old one would stay on the closed provider.
 */
export function setTracing(value: boolean): void {
  on = value;
  tracer = trace.getTracer('channel-relay');
}

/** Whether spans are recorded in this process. */
export function tracingOn(): boolean {
  return on;
}

const propagator = new W3CTraceContextPropagator();
/** The span handed out with tracing off: shared, records nothing, carries no context. */
const NO_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

const PROPERTIES: TextMapGetter<Readonly<Record<string, unknown>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key] ?? (key === TRACEPARENT_PROPERTY ? carrier[DIAGNOSTIC_ID_PROPERTY] : undefined);
    return typeof value === 'string' ? value : undefined;
  },
};

/**
 * The context a message's producer put in its application properties (`traceparent`/`tracestate`, or the Azure SDK's
 * `Diagnostic-Id`); the root context when it carries none or none that parses.
 */
export function extractContext(properties: Readonly<Record<string, unknown>> | undefined): Context {
  if (!on || properties === undefined) return ROOT_CONTEXT;
  return propagator.extract(ROOT_CONTEXT, properties, PROPERTIES);
}

/** The application properties that carry `span`'s context into a message; `undefined` with tracing off. */
export function carrierOf(span: Span): TraceCarrier | undefined {
  if (!on) return undefined;
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return undefined;
  const traceparent = `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 1).toString(16)}`;
  const tracestate = sc.traceState?.serialize();
  return {
    [TRACEPARENT_PROPERTY]: traceparent,
    [DIAGNOSTIC_ID_PROPERTY]: traceparent,
    ...(tracestate ? { [TRACESTATE_PROPERTY]: tracestate } : {}),
  };
}

function messaging(queue: string, type: 'process' | 'create' | 'send', name: string): Attributes {
  return {
    [ATTR.messagingSystem]: SERVICEBUS,
    [ATTR.destination]: queue,
    [ATTR.operationType]: type,
    [ATTR.operationName]: name,
  };
}

/** `process <queue>`: the CONSUMER span of one received message, child of the context it carries. End it. */
export function startProcessSpan(
  queue: string,
  message: {
    readonly messageId: string | undefined;
    readonly applicationProperties?: Readonly<Record<string, unknown>>;
  },
  attributes?: Attributes,
): Span {
  if (!on) return NO_SPAN;
  return tracer.startSpan(
    `process ${queue}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        ...messaging(queue, 'process', 'process'),
        ...(message.messageId === undefined ? {} : { [ATTR.messageId]: message.messageId }),
        ...attributes,
      },
    },
    extractContext(message.applicationProperties),
  );
}

/**
 * `create <queue>`: the PRODUCER span of one message made for `queue`, child of `parent` (the active span when not
 * given), ended at once; returns what the message carries. `undefined` with tracing off.
 */
export function createMessageSpan(
  queue: string,
  messageId: string,
  parent?: Span,
  attributes?: Attributes,
): TraceCarrier | undefined {
  if (!on) return undefined;
  const parentContext = parent === undefined ? context.active() : trace.setSpan(context.active(), parent);
  const span = tracer.startSpan(
    `create ${queue}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: { ...messaging(queue, 'create', 'create'), [ATTR.messageId]: messageId, ...attributes },
    },
    parentContext,
  );
  span.end();
  return carrierOf(span);
}

/**
 * Runs `send` (one call that sends the messages whose contexts are `messages` to `queue`) in a `send <queue>` PRODUCER
 * span linked to each message's context (its `create` span); the Azure SDK's own spans of the call are its children.
 * The span is a root: one call may carry the messages of many activities (an intake batch, the dispatch outbox's
 * group), and each activity's trace reaches it through its `create` span's link rather than holding it as a child.
 */
export function inSendSpan<T>(
  queue: string,
  messages: ReadonlyArray<TraceCarrier | undefined>,
  send: () => Promise<T>,
): Promise<T> {
  if (!on) return send();
  const links = [];
  for (const traceContext of messages) {
    const linked = traceContext === undefined ? undefined : trace.getSpanContext(extractContext(traceContext));
    if (linked !== undefined) links.push({ context: linked });
  }
  return inSpan(
    `send ${queue}`,
    {
      kind: SpanKind.PRODUCER,
      links,
      root: true,
      attributes: { ...messaging(queue, 'send', 'send'), [ATTR.batchCount]: messages.length },
    },
    send,
    ROOT_CONTEXT,
  );
}

/**
 * Runs `call`, one call that serves the messages whose spans are `spans` (a `$batch` write of many interactions), in
 * a CLIENT span named `name` linked to each of them: a span has one parent, so the shared call is a root of its own
 * and each activity's trace reaches it through its link.
 */
export function inBatchCallSpan<T>(
  name: string,
  spans: ReadonlyArray<Span | undefined>,
  attributes: Attributes,
  call: () => Promise<T>,
): Promise<T> {
  return inLinkedSpan(name, SpanKind.CLIENT, spans, attributes, call);
}

/**
 * Runs `work` done for many messages at once (intake's reads of a batch) in an INTERNAL span named `name`, a root
 * linked to each message's span; the calls it makes (Dataverse) are its children.
 */
export function inBatchWorkSpan<T>(
  name: string,
  spans: ReadonlyArray<Span | undefined>,
  work: () => Promise<T>,
): Promise<T> {
  return inLinkedSpan(name, SpanKind.INTERNAL, spans, {}, work);
}

function inLinkedSpan<T>(
  name: string,
  kind: SpanKind,
  spans: ReadonlyArray<Span | undefined>,
  attributes: Attributes,
  work: () => Promise<T>,
): Promise<T> {
  if (!on) return work();
  const links = [];
  for (const span of spans) if (span !== undefined) links.push({ context: span.spanContext() });
  return inSpan(
    name,
    { kind, links, root: true, attributes: { ...attributes, [ATTR.batchCount]: spans.length } },
    work,
    ROOT_CONTEXT,
  );
}

/**
 * Runs `call` in a CLIENT span named `name` (child of the active span): a provider's API, Dataverse. `describe` adds
 * what the outcome tells (a status code) to the span. An error ends it with status ERROR and `error.type` (the relay's
 * error code or the error's name; never its message, which may quote a provider's answer).
 */
export function inClientSpan<T>(
  name: string,
  attributes: Attributes,
  call: () => Promise<T>,
  describe?: (span: Span, result: { ok: true; value: T } | { ok: false; error: unknown }) => void,
): Promise<T> {
  if (!on) return call();
  return inSpan(name, { kind: SpanKind.CLIENT, attributes }, call, context.active(), describe);
}

/**
 * Runs `work` in a span of the caller's choosing (`startProcessSpan`), with it active (the logs get its ids, the Azure
 * SDK's spans and `createMessageSpan` its children); ends it when `work` settles, with status ERROR when it throws.
 */
export function withSpan<T>(span: Span, work: () => Promise<T>): Promise<T> {
  if (!on) return work();
  return context.with(trace.setSpan(context.active(), span), work).then(
    (value) => {
      span.end();
      return value;
    },
    (err: unknown) => {
      endSpan(span, err);
      throw err;
    },
  );
}

/**
 * A SERVER span for one HTTP request (a feedback callback: a trace of its own), named `<method> <route>` by the HTTP
 * semantic conventions; `route` is the route's template (never the path: it may hold a token). End it with
 * `endServerSpan`. `undefined` with tracing off.
 */
export function startServerSpan(method: string, route: string | undefined): Span | undefined {
  if (!on) return undefined;
  return tracer.startSpan(
    route === undefined ? method : `${method} ${route}`,
    {
      kind: SpanKind.SERVER,
      root: true,
      attributes: { [ATTR.httpMethod]: method, ...(route === undefined ? {} : { [ATTR.httpRoute]: route }) },
    },
    ROOT_CONTEXT,
  );
}

/** Ends a SERVER span with the response's status (5xx is an error; 4xx is the client's, not the server's). */
export function endServerSpan(span: Span | undefined, status: number): void {
  if (!on || span === undefined) return;
  span.setAttribute(ATTR.httpStatus, status);
  if (status >= 500) {
    span.setAttribute(ATTR.errorType, String(status));
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(status) });
  }
  span.end();
}

/**
 * Runs `work` with `span` active (a delivery's span: the logs get its ids, spans started in it are its children);
 * does not end it. Just `work()` with tracing off or no span.
 */
export function runInSpan<T>(span: Span | undefined, work: () => T): T {
  if (!on || span === undefined) return work();
  return context.with(trace.setSpan(context.active(), span), work);
}

/** Ends `span`; with an error, with status ERROR and `error.type`. */
export function endSpan(span: Span, error?: unknown): void {
  if (!on) return;
  if (error !== undefined) {
    const type = errorType(error);
    span.setAttribute(ATTR.errorType, type);
    span.setStatus({ code: SpanStatusCode.ERROR, message: type });
  }
  span.end();
}

/**
 * Sets `http.response.status_code` on a CLIENT span; a status of 400 or more also sets status ERROR with the status as
 * `error.type` (HTTP semantic conventions).
 */
export function setHttpStatus(span: Span, status: number): void {
  if (!on) return;
  span.setAttribute(ATTR.httpStatus, status);
  if (status >= 400) {
    span.setAttribute(ATTR.errorType, String(status));
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(status) });
  }
}

/** Sets attributes on a span (nothing with tracing off). */
export function annotate(span: Span, attributes: Attributes): void {
  if (on) span.setAttributes(attributes);
}

/** The active span (the parent of what the work in it makes); `undefined` with tracing off or outside any span. */
export function activeSpan(): Span | undefined {
  return on ? trace.getActiveSpan() : undefined;
}

function inSpan<T>(
  name: string,
  options: Parameters<typeof tracer.startSpan>[1],
  work: () => Promise<T>,
  parent: Context,
  describe?: (span: Span, result: { ok: true; value: T } | { ok: false; error: unknown }) => void,
): Promise<T> {
  const span = tracer.startSpan(name, options, parent);
  return context.with(trace.setSpan(parent, span), work).then(
    (value) => {
      describe?.(span, { ok: true, value });
      span.end();
      return value;
    },
    (err: unknown) => {
      describe?.(span, { ok: false, error: err });
      endSpan(span, err);
      throw err;
    },
  );
}

/** The relay's error code (`code`), else the error's class name. */
function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code) return code;
    if (error instanceof Error) return error.name;
  }
  return 'Error';
}
