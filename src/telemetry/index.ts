/**
 * Tracing: `startTelemetry` (off unless the environment asks for OTLP or Azure Monitor) and the spans and trace
 * context the stages and the Service Bus layer use (see `spans.ts`).
 */
export { startTelemetry, type Telemetry, type TelemetryOptions } from './start.js';
export {
  ATTR,
  activeSpan,
  annotate,
  carrierOf,
  createMessageSpan,
  endServerSpan,
  endSpan,
  extractContext,
  inBatchCallSpan,
  inBatchWorkSpan,
  inClientSpan,
  inSendSpan,
  runInSpan,
  setHttpStatus,
  startProcessSpan,
  startServerSpan,
  tracingOn,
  withSpan,
  type TraceCarrier,
} from './spans.js';
