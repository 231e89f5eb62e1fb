/**
 * The HTTP front: `node:http`, bearer identity, service protection limits, the Web API under `/api/data/v9.2/`,
 * `$batch`, and the emulator-only endpoints under `/_emulator/`. Every request gets a request id (`REQ_ID`
 * header, `reqId` in the logs).
 */
import { lowerHeaders, readBody as readLimited } from '../../http/index.js';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../../log.js';
import { executeBatch } from './batch.js';
import { DataverseFault, isFault } from './faults.js';
import type { Governor, LimitsConfig } from './limits.js';
import { runJourney } from './journeys.js';
import { realtimeProblems, realtimeStats, sendRealtime } from './realtime.js';
import type { InteractionFilter, InteractionKind } from './interactions.js';
import type { SeedJourney } from './seed.js';
import { userIdOf, type OrganizationService } from './service.js';
import { UNAUTHORIZED } from './assumptions.js';

const API_PREFIX = '/api/data/v9.2/';
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface HandlerDeps {
  service: OrganizationService;
  governor: Governor;
  journeys: readonly SeedJourney[];
  log: Logger;
  /** Added latency before each Web API response is written, ms (lets tests hold requests in flight). */
  responseDelayMs: number;
}

function readBody(req: IncomingMessage): Promise<string> {
  return readLimited(
    req,
    MAX_BODY_BYTES,
    () => new DataverseFault('PayloadTooLarge', `The request body exceeds ${MAX_BODY_BYTES} bytes.`),
  );
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body?: string): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(
    status,
    body === undefined ? headers : { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
  );
  res.end(body);
}

function sendFault(res: ServerResponse, fault: DataverseFault, headers: Record<string, string>): void {
  send(
    res,
    fault.status,
    {
      ...headers,
      ...fault.headers,
      'Content-Type': 'application/json; odata.metadata=minimal',
      'OData-Version': '4.0',
    },
    fault.body(),
  );
}

function delay(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** A Web API request's kind as `traffic` counts it: `$batch`, or the method and the entity set or action it names. */
function requestKind(method: string, path: string): string {
  if (path.startsWith('$batch')) return '$batch';
  return `${method} ${/^[^(?/]*/.exec(path)?.[0] ?? ''}`;
}

export function createHandler(deps: HandlerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { service, governor, log } = deps;
  const debug = log.isDebugEnabled();
  /** How long a response waits for the execution time it is charged (limits on, `holdResponses`). */
  const held = (count: { reads: number; writes: number }): number =>
    governor.config.enabled && governor.config.holdResponses ? governor.cost(count) : 0;
  /**
   * Web API requests admitted, `$batch` requests among them, and the operations those batches ran; per identity,
   * requests as the service protection limits count them (a `$batch` once), split into reads (a GET, or a `$batch`
   * of GETs only) and writes (the rest), and by kind: method and entity set or action (`GET contacts`, `PATCH
   * contacts`), `$batch` for a batch.
   */
  const traffic = {
    requests: 0,
    batches: 0,
    batchOperations: 0,
    identities: {} as Record<
      string,
      { requests: number; reads: number; writes: number; kinds: Record<string, number> }
    >,
  };

  async function webApi(req: IncomingMessage, res: ServerResponse, url: string, reqId: string): Promise<void> {
    const base: Record<string, string> = { REQ_ID: reqId, 'x-ms-service-request-id': reqId };
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
    if (!token) {
      const fault = new DataverseFault('InvalidArgument', UNAUTHORIZED.message);
      send(
        res,
        401,
        {
          ...base,
          'WWW-Authenticate': 'Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize',
          'Content-Type': 'application/json; odata.metadata=minimal',
        },
        JSON.stringify({ error: { code: UNAUTHORIZED.code, message: fault.message } }),
      );
      return;
    }
    let admission;
    try {
      admission = governor.admit(token);
    } catch (err) {
      if (isFault(err)) {
        if (debug) log.debug('throttled', { reqId, code: err.code });
        sendFault(res, err, base);
        return;
      }
      throw err;
    }
    let count = req.method === 'GET' ? { reads: 1, writes: 0 } : { reads: 0, writes: 1 };
    let read = req.method === 'GET';
    traffic.requests += 1;
    // Counted per identity once the request has run, before a response is held for its execution time: whoever saw
    // its effect (an interaction stored) also sees it counted.
    let counted = false;
    const kind = requestKind(req.method ?? '', url.slice(API_PREFIX.length));
    const countIdentity = (): void => {
      if (counted) return;
      counted = true;
      const counts = (traffic.identities[token] ??= { requests: 0, reads: 0, writes: 0, kinds: {} });
      counts.requests += 1;
      counts.kinds[kind] = (counts.kinds[kind] ?? 0) + 1;
      if (read) counts.reads += 1;
      else counts.writes += 1;
    };
    try {
      const body = await readBody(req);
      const headers = lowerHeaders(req);
      const userId = userIdOf(token);
      const path = url.slice(API_PREFIX.length);
      let status: number;
      let outHeaders: Record<string, string>;
      let outBody: string | undefined;
      if (path === '$batch') {
        if (req.method !== 'POST')
          throw new DataverseFault('MethodNotAllowed', `$batch accepts POST, not ${req.method}.`);
        traffic.batches += 1;
        const outcome = executeBatch(service, headers['content-type'], body, headers, userId, reqId);
        // An empty $batch still costs one operation.
        count =
          outcome.operations === 0
            ? { reads: 1, writes: 0 }
            : { reads: outcome.reads, writes: outcome.operations - outcome.reads };
        read = outcome.operations > 0 && outcome.reads === outcome.operations;
        traffic.batchOperations += outcome.operations;
        ({ status, headers: outHeaders, body: outBody } = outcome);
      } else {
        const r = service.execute({ method: req.method ?? 'GET', path, headers, body, userId });
        ({ status, headers: outHeaders, body: outBody } = r);
      }
      countIdentity();
      await delay(deps.responseDelayMs + held(count));
      send(res, status, { ...base, ...admission.headers, ...outHeaders }, outBody);
      if (debug)
        log.debug('request', { reqId, method: req.method, path: url, status, operations: count.reads + count.writes });
    } catch (err) {
      countIdentity();
      await delay(deps.responseDelayMs + held(count));
      if (isFault(err)) {
        if (debug)
          log.debug('refused', {
            reqId,
            method: req.method,
            path: url,
            status: err.status,
            code: err.code,
            message: err.message,
          });
        sendFault(res, err, { ...base, ...admission.headers });
      } else {
        log.error('request failed inside the emulator', { reqId, method: req.method, path: url, err });
        sendFault(
          res,
          new DataverseFault('Internal', `Unexpected error in the emulator: ${(err as Error).message}`),
          base,
        );
      }
    } finally {
      governor.finish(admission, count);
    }
  }

  async function emulatorApi(req: IncomingMessage, res: ServerResponse, url: URL, reqId: string): Promise<void> {
    const headers = { REQ_ID: reqId, 'Content-Type': 'application/json' };
    try {
      const run = /^\/_emulator\/journeys\/([^/]+)\/run$/.exec(url.pathname);
      if (run && req.method === 'POST') {
        const text = await readBody(req);
        let request: unknown;
        try {
          request = text.trim() === '' ? {} : JSON.parse(text);
        } catch {
          throw new DataverseFault('Payload', 'The body must be JSON: {"contactIds": [...]} or {"count": n}.');
        }
        const token = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim() ?? 'journey-engine';
        const result = runJourney(
          service,
          deps.journeys,
          decodeURIComponent(run[1]!),
          request as object,
          userIdOf(token),
        );
        log.info('journey run', {
          reqId,
          journeyId: result.journeyId,
          created: result.created.length,
          skipped: result.skipped.length,
        });
        send(res, 200, headers, JSON.stringify(result));
        return;
      }
      const realtime = /^\/_emulator\/realtime\/([^/]+)\/send$/.exec(url.pathname);
      if (realtime && req.method === 'POST') {
        const text = await readBody(req);
        let request: unknown;
        try {
          request = JSON.parse(text);
        } catch {
          throw new DataverseFault('Payload', 'The body must be JSON: {"to": ["…"], "message": {"<part>": "…"}}.');
        }
        const token = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim() ?? 'journey-engine';
        const result = sendRealtime(service, realtime[1]!, request, userIdOf(token));
        log.info('real-time send', {
          reqId,
          channelDefinitionId: result.channelDefinitionId,
          customApi: result.customApi,
          calls: result.requests.length,
          posted: result.posted,
        });
        send(res, 200, headers, JSON.stringify(result));
        return;
      }
      if (url.pathname === '/_emulator/interactions' && req.method === 'GET') {
        const filter: InteractionFilter = {};
        const p = url.searchParams;
        for (const key of ['activityId', 'activityRowId', 'journeyId', 'responseType', 'contactId'] as const) {
          const v = p.get(key);
          if (v !== null) filter[key] = v;
        }
        const kind = p.get('kind');
        if (kind !== null) {
          if (!['interaction', 'notification', 'inbound'].includes(kind))
            throw new DataverseFault(
              'InvalidArgument',
              `kind must be interaction, notification or inbound, found '${kind}'.`,
            );
          filter.kind = kind as InteractionKind;
        }
        const duplicates = p.get('duplicates');
        if (duplicates !== null) {
          if (duplicates !== 'true' && duplicates !== 'false')
            throw new DataverseFault('InvalidArgument', `duplicates must be true or false, found '${duplicates}'.`);
          filter.duplicates = duplicates === 'true';
        }
        const value = service.interactions.query(filter);
        const duplicateCount = value.reduce((n, i) => n + (i.duplicateOf === undefined ? 0 : 1), 0);
        send(res, 200, headers, JSON.stringify({ count: value.length, duplicates: duplicateCount, value }));
        return;
      }
      if (url.pathname === '/_emulator/limits' && (req.method === 'PATCH' || req.method === 'GET')) {
        // The fault knob: change the limits (header mode, costs, budgets) while running; what was counted stays.
        if (req.method === 'PATCH') {
          const text = await readBody(req);
          let patch: unknown;
          try {
            patch = JSON.parse(text);
          } catch {
            throw new DataverseFault('Payload', 'The body must be JSON: some of the limits, e.g. {"headers": "omit"}.');
          }
          if (typeof patch !== 'object' || patch === null || Array.isArray(patch))
            throw new DataverseFault(
              'Payload',
              'The body must be a JSON object of limits, e.g. {"headers": "scramble"}.',
            );
          try {
            governor.configure(patch as Partial<LimitsConfig>, 'PATCH /_emulator/limits');
          } catch (err) {
            throw new DataverseFault('InvalidArgument', (err as Error).message);
          }
          log.info('limits changed', { reqId, limits: governor.config });
        }
        send(res, 200, headers, JSON.stringify(governor.config));
        return;
      }
      if (url.pathname === '/_emulator/stats' && req.method === 'GET') {
        const rows: Record<string, number> = {};
        for (const def of service.catalog.tables()) rows[def.entitySetName] = service.store.count(def);
        const posting = service.poster.stats();
        send(
          res,
          200,
          headers,
          JSON.stringify({
            identities: governor.stats(),
            traffic,
            limits: governor.config,
            partialTargets: service.partialTargets ?? null,
            posting: { ...posting, eventsQueued: service.eventsQueued, partialTargets: service.partialTargetsPosted },
            interactions: service.interactions.size,
            interactionDuplicates: service.interactions.duplicates,
            realtime: realtimeStats(service),
            problems: realtimeProblems(service),
            rows,
          }),
        );
        return;
      }
      throw new DataverseFault(
        'ResourceNotFound',
        `No emulator endpoint ${req.method} ${url.pathname} (see docs/emulators/dataverse.md).`,
      );
    } catch (err) {
      if (isFault(err)) sendFault(res, err, headers);
      else {
        log.error('emulator endpoint failed', { reqId, path: url.pathname, err });
        sendFault(res, new DataverseFault('Internal', (err as Error).message), headers);
      }
    }
  }

  return (req, res) => {
    const reqId = randomUUID();
    const url = req.url ?? '/';
    const task = url.startsWith(API_PREFIX)
      ? webApi(req, res, url, reqId)
      : url.startsWith('/_emulator/')
        ? emulatorApi(req, res, new URL(url, 'http://emulator'), reqId)
        : Promise.resolve(
            sendFault(
              res,
              new DataverseFault(
                'ResourceNotFound',
                `Resource not found: ${url} (the Web API is under ${API_PREFIX}).`,
              ),
              { REQ_ID: reqId },
            ),
          );
    task.catch((err: unknown) => {
      log.error('request handling failed', { reqId, err });
      if (!res.headersSent) send(res, 500, {}, '');
    });
  };
}
