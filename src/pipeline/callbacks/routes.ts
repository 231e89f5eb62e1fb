/**
 * How a route is declared: one method, a handler that returns what to answer and how the request ended, and one
 * wrapper that counts the outcome, turns a refusal into its fixed body, answers 405 for another method and 503 when
 * the work behind an accepted request failed (Telegram and Standard Webhooks senders then try again, and nothing is
 * recorded twice because every record is keyed, see `CallbackService.record`; Twilio retries only a failed
 * connection, so there the 503 and the error log line are all that is left).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Channel } from '../../channels/index.js';
import { REFUSALS, type CallbackOutcome, type CallbackRoute, type CallbackService, type Refusal } from './service.js';

/** What a handler answers. */
export type RouteResult =
  | { outcome: Refusal }
  | { outcome: CallbackOutcome; status: number; body?: string; contentType?: string; headers?: Record<string, string> };

export type RouteHandler = (request: FastifyRequest, service: CallbackService) => Promise<RouteResult>;

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export function refusal(outcome: Refusal): RouteResult {
  return { outcome };
}

export function send(reply: FastifyReply, result: RouteResult): FastifyReply {
  if (!('status' in result)) {
    const r = REFUSALS[result.outcome];
    return reply
      .code(r.status)
      .header('cache-control', 'no-store')
      .type('application/json; charset=utf-8')
      .send(JSON.stringify({ error: r.error }));
  }
  void reply.code(result.status).header('cache-control', 'no-store');
  for (const [k, v] of Object.entries(result.headers ?? {})) void reply.header(k, v);
  if (result.body === undefined) return reply.send();
  return reply.type(result.contentType ?? 'text/plain; charset=utf-8').send(result.body);
}

/** Registers `url` for `method`; any other method gets 405 (with `Allow`). */
export function addRoute(
  app: FastifyInstance,
  service: CallbackService,
  method: 'GET' | 'POST',
  url: string,
  route: CallbackRoute,
  handler: RouteHandler,
): void {
  app.route({
    method: [...METHODS],
    url,
    handler: async (request, reply) => {
      if (request.method !== method && !(method === 'GET' && request.method === 'HEAD')) {
        service.count(route, 'method-not-allowed');
        void reply.header('allow', method);
        return send(reply, { outcome: 'method-not-allowed' });
      }
      let result: RouteResult;
      try {
        result = await handler(request, service);
      } catch (err) {
        service.failed(service.log.child({ route }), `${route} request`, err);
        result = { outcome: 'unavailable' };
      }
      service.count(route, result.outcome);
      if (result.outcome === 'method-not-allowed') void reply.header('allow', method);
      return send(reply, result);
    },
  });
}

/** The channel named by the route, when it exists, has a `callbacks` block and uses `provider`. */
export function routeChannel(
  request: FastifyRequest,
  service: CallbackService,
  provider: Channel['provider']['type'],
): Channel | undefined {
  const name = (request.params as { channel?: string }).channel;
  const channel = name === undefined ? undefined : service.channels.byName(name);
  if (channel === undefined || channel.callbacks === undefined || channel.provider.type !== provider) return undefined;
  return channel;
}

/** The raw body as received (the catch-all parser keeps it as a string). */
export function rawBody(request: FastifyRequest): string {
  return typeof request.body === 'string' ? request.body : '';
}
