/**
 * What the trace context on a Service Bus message rests on. Each says its source and what would change if it were
 * wrong.
 */

/**
 * The application property Azure Service Bus defines for a message's trace context: `Diagnostic-Id`, "unique
 * identifier of an external call from producer to the queue", in the W3C `traceparent` format
 * (learn.microsoft.com/azure/service-bus-messaging/service-bus-end-to-end-tracing). @azure/service-bus 7.9 sets and
 * reads it when tracing is on (node_modules/@azure/service-bus/dist/index.js, `TRACEPARENT_PROPERTY`), and leaves a
 * message that already has one as it is, so the relay's value is the one on the wire. If a consumer read another
 * property only, it would start a new trace for the relay's messages (nothing else breaks).
 */
export const DIAGNOSTIC_ID_PROPERTY = 'Diagnostic-Id';

/**
 * The W3C trace-context properties (`traceparent`, `tracestate`), set next to `Diagnostic-Id` with the same value, and
 * read first: the Azure SDKs' messaging tracing conventions say so ("populate traceparent and tracestate application
 * properties … traceparent must match Diagnostic-Id … when extracting the context, first get W3C trace-context and
 * then (if missing) read Diagnostic-Id": the Azure SDK messaging tracing spec, gist.github.com/lmolkova/
 * e4215c0f44a49ef824983382762e6b92). Dataverse's service endpoint is not documented to set either on the events it
 * posts to `activities`: intake continues one when present and starts the activity's trace otherwise (the worst
 * reading, a trace that begins at intake, is what the tests assume).
 */
export const TRACEPARENT_PROPERTY = 'traceparent';
export const TRACESTATE_PROPERTY = 'tracestate';
