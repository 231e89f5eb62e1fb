/**
 * The callbacks service as a fastify app (not listening: `CallbacksStage` listens; tests use `inject`).
 *
 * Routes: `POST /callbacks/:channel/twilio/status?t=<token>`, `POST /callbacks/:channel/twilio/inbound`,
 * `POST /callbacks/:channel/telegram`, `POST /callbacks/:channel/contract/reports`,
 * `POST /callbacks/:channel/contract/inbound`, `GET /l/:code`, and `GET /healthz`, `GET /readyz`.
 * Bodies are read raw (signatures are over the bytes received) up to `bodyLimitBytes` (413 above), within
 * `requestTimeoutMs` from the first byte (then 408 and the connection closed: fastify's own default is no limit, and
 * Node's check runs every 30 s, so both are set here); another method
 * → 405; an unknown path or channel (or one without `callbacks`, or of another provider) → 404. A URL fastify cannot
 * route (an invalid percent-escape, a path segment above {@link MAX_PARAM_LENGTH} characters) → 400 with the same
 * fixed body as every other bad request (fastify's own answers would echo the path). Refusals have fixed bodies;
 * nothing about a contact, a token or a secret is echoed or logged.
 */
import { STATUS_CODES } from 'node:http';
import type { Span } from '@opentelemetry/api';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { endServerSpan, runInSpan, startServerSpan, tracingOn } from '../../telemetry/index.js';
import { registerContract } from './contract.js';
import { registerOpens } from './opens.js';
import { send } from './routes.js';
import { CallbackService, REFUSALS, type CallbacksDeps } from './service.js';
import { registerTelegram } from './telegram.js';
import { registerTwilio } from './twilio.js';

/**
 * The longest path segment routed (a channel name, a link code). A link code for a GUID activity id is about 60
 * characters; one for a text activity id grows with the id (4/3 of its UTF-8 bytes), so fastify's default (100) is
 * too short. Longer → 400.
 */
export const MAX_PARAM_LENGTH = 512;

export interface CallbacksServer {
  readonly app: FastifyInstance;
  readonly service: CallbackService;
  /** Readiness: false once told to stop (the load balancer takes it out). */
  setReady(ready: boolean): void;
}

/** Builds the app; throws `TypeError` for missing or bad dependencies. */
export function createCallbacksServer(deps: CallbacksDeps): CallbacksServer {
  const service = new CallbackService(deps);
  let ready = true;
  const app = Fastify({
    logger: false,
    bodyLimit: service.bodyLimitBytes,
    requestTimeout: service.requestTimeoutMs,
    http: {
      requestTimeout: service.requestTimeoutMs,
      headersTimeout: service.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(1, Math.min(1000, Math.floor(service.requestTimeoutMs / 4))),
    },
    return503OnClosing: true,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // A URL the router refuses (FST_ERR_BAD_URL, FST_ERR_MAX_PARAM_LENGTH …): the fixed refusal, counted; the error's
    // message holds the path (which may hold a token), so only its code is logged.
    frameworkErrors: (err, _request, reply) => {
      service.count('other', 'bad-request');
      service.log.warn('request URL refused by the router', { code: err.code });
      void send(reply, { outcome: 'bad-request' });
    },
    // What Node refuses before fastify sees a request: a request not in within requestTimeoutMs (408, counted
    // `timeout` and logged), malformed HTTP or headers too large (400). The fixed body, then the socket is closed.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const outcome = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'timeout' : 'bad-request';
      service.count('other', outcome);
      if (outcome === 'timeout')
        service.log.warn('request not received in full within requestTimeoutMs: 408, connection closed', {
          limit: service.requestTimeoutMs,
        });
      const { status, error } = REFUSALS[outcome];
      const body = JSON.stringify({ error });
      const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n`;
      if (socket.writable) socket.write(head + body);
      socket.destroy(err);
    },
  });
  // Each request is a trace of its own (a SERVER span), carried into the interactions message it emits: the handler runs
  // in it. Set again before the handler, because body parsing runs in the socket's stream events, outside it.
  if (tracingOn()) {
    const spans = new WeakMap<FastifyRequest, Span>();
    app.addHook('onRequest', (request, _reply, done) => {
      const span = startServerSpan(request.method, request.routeOptions.url);
      if (span !== undefined) spans.set(request, span);
      runInSpan(span, done);
    });
    app.addHook('preHandler', (request, _reply, done) => runInSpan(spans.get(request), done));
    app.addHook('onResponse', (request, reply, done) => {
      endServerSpan(spans.get(request), reply.statusCode);
      done();
    });
  }
  // One parser for every content type: the raw text, for the signature checks; each route parses its own format.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const route = 'other' as const;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || err.statusCode === 413) {
      service.count(route, 'too-large');
      service.log.warn('request body above the limit', {
        limit: service.bodyLimitBytes,
        path: request.routeOptions.url,
      });
      return send(reply, { outcome: 'too-large' });
    }
    const status = err.statusCode ?? 500;
    service.count(route, status >= 500 ? 'error' : 'bad-request');
    if (status >= 500) service.failed(service.log, 'request', err);
    return send(reply, { outcome: status >= 500 ? 'error' : 'bad-request' });
  });
  app.setNotFoundHandler((_request, reply) => {
    service.count('other', 'not-found');
    return send(reply, { outcome: 'not-found' });
  });

  app.get('/healthz', async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const checks = [
      { name: 'callbacks accepting', ok: ready, ...(ready ? {} : { detail: 'shutting down' }) },
      ...service.readiness(),
    ];
    const ok = checks.every((c) => c.ok);
    return reply
      .code(ok ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({ status: ok ? 'ready' : 'not ready', checks });
  });
  registerTwilio(app, service);
  registerTelegram(app, service);
  registerContract(app, service);
  registerOpens(app, service);
  return { app, service, setReady: (r) => void (ready = r) };
}
