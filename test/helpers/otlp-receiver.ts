/**
 * A small OTLP/HTTP trace receiver for tests: `POST /v1/traces` with a JSON body (`OTEL_EXPORTER_OTLP_PROTOCOL=
 * http/json`, what @opentelemetry/exporter-trace-otlp-http sends: the protobuf JSON mapping with hex trace and span
 * ids, opentelemetry-proto's `ExportTraceServiceRequest`), kept as flat spans. Anything else is refused with 415, so a
 * worker that exported protobuf would show as missing spans, not as garbage.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  /** The resource's `service.name`. */
  service: string;
  traceId: string;
  spanId: string;
  /** Absent on a root span. */
  parentSpanId: string | undefined;
  name: string;
  /** OTLP's SpanKind number: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
  statusMessage: string | undefined;
  /** Every string value the span and its resource hold (attributes, link and event attributes), for PII scans. */
  allValues: string[];
}

export interface OtlpReceiver {
  /** The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter appends `/v1/traces`). */
  url: string;
  spans(): ReceivedSpan[];
  close(): Promise<void>;
}

interface KeyValue {
  key: string;
  value: AnyValue;
}
interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
}

function valueOf(v: AnyValue | undefined): unknown {
  if (v === undefined) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(valueOf);
  if (v.kvlistValue !== undefined) return attributesOf(v.kvlistValue.values);
  return undefined;
}

function attributesOf(list: KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) out[kv.key] = valueOf(kv.value);
  return out;
}

function stringsIn(value: unknown, out: string[]): void {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, out);
  else if (typeof value === 'object' && value !== null) for (const v of Object.values(value)) stringsIn(v, out);
}

/** Hex as the JSON exporter writes ids; base64 (the plain protobuf JSON mapping) turned into hex. */
function id(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  return /^[0-9a-f]+$/i.test(value) ? value.toLowerCase() : Buffer.from(value, 'base64').toString('hex');
}

interface ExportRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: Array<{
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind?: number;
        attributes?: KeyValue[];
        links?: Array<{ traceId: string; spanId: string; attributes?: KeyValue[] }>;
        events?: Array<{ name: string; attributes?: KeyValue[] }>;
        status?: { message?: string };
      }>;
    }>;
  }>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const received: ReceivedSpan[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) {
        res.writeHead(415).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest;
      for (const rs of body.resourceSpans ?? []) {
        const resource = attributesOf(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const sp of ss.spans ?? []) {
            const attributes = attributesOf(sp.attributes);
            const allValues: string[] = [];
            stringsIn(resource, allValues);
            stringsIn(attributes, allValues);
            for (const l of sp.links ?? []) stringsIn(attributesOf(l.attributes), allValues);
            for (const e of sp.events ?? []) {
              allValues.push(e.name);
              stringsIn(attributesOf(e.attributes), allValues);
            }
            received.push({
              service: String(resource['service.name']),
              traceId: id(sp.traceId) ?? '',
              spanId: id(sp.spanId) ?? '',
              parentSpanId: id(sp.parentSpanId),
              name: sp.name,
              kind: sp.kind ?? 0,
              attributes,
              links: (sp.links ?? []).map((l) => ({ traceId: id(l.traceId) ?? '', spanId: id(l.spanId) ?? '' })),
              statusMessage: sp.status?.message,
              allValues,
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans: () => [...received],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
