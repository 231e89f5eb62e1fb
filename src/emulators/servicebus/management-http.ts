/**
 * The part of Service Bus's management REST API (ATOM XML over HTTP) that `ServiceBusAdministrationClient` needs for
 * a queue's runtime properties: `GET /<queue>` (one entry) and `GET /$Resources/Queues` (the list feed, `$skip` and
 * `$top`). Queues only; nothing is created, updated or deleted (the entities come from Config.json, as with
 * Microsoft's emulator). See docs/emulators/servicebus.md, "Management API", for the sources of every shape here.
 *
 * - Authentication: a `SharedAccessSignature …` Authorization header (what the SDK signs with the connection
 *   string's key) is required and, like a `$cbs` put-token on the AMQP side, not checked further; without one, 401
 *   with Azure's `<Error>` body.
 * - A queue that does not exist: 200 with the namespace's empty "Publicly Listed Services" feed, as Azure answers
 *   (the SDK turns an empty answer into `MessageEntityNotFoundError`).
 * - Counts are exact, from the message store (`MessageStore.runtimeCounts`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatIsoDuration } from '../../duration.js';
import type { Logger } from '../../log.js';
import type { QueueDefinition } from './config.js';
import type { MessageStore } from './message-store.js';
import type { Namespace } from './namespace.js';

const ATOM = 'http://www.w3.org/2005/Atom';
const CONNECT = 'http://schemas.microsoft.com/netservices/2010/10/servicebus/connect';
const COUNTS = 'http://schemas.microsoft.com/netservices/2011/06/servicebus';
const XSI = 'http://www.w3.org/2001/XMLSchema-instance';
const LIST_QUEUES = '/$Resources/Queues';
/** .NET's TimeSpan.MaxValue, which Azure writes for "never" (DefaultMessageTimeToLive, AutoDeleteOnIdle). */
const NEVER = 'P10675199DT2H48M5.4775807S';
/** Azure's page size for list feeds when `$top` is absent. */
const DEFAULT_TOP = 100;

export interface ManagementServerOptions {
  host: string;
  port: number;
  namespace: Namespace;
  log: Logger;
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function duration(ms: number): string {
  return Number.isFinite(ms) ? formatIsoDuration(ms) : NEVER;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function send(res: ServerResponse, status: number, body: string, contentType: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Azure's error body: `<Error><Code>…</Code><Detail>…</Detail></Error>` (the SDK reads `Error.Detail`). */
function sendError(res: ServerResponse, status: number, detail: string): void {
  send(
    res,
    status,
    `<Error><Code>${status}</Code><Detail>${xml(detail)}</Detail></Error>`,
    'application/xml; charset=utf-8',
  );
}

/** The `QueueDescription` element, its children in the order Azure writes them. */
function queueDescription(definition: QueueDefinition, store: MessageStore, namespace: Namespace): string {
  const dlq = store.deadLetter?.runtimeCounts();
  const c = store.runtimeCounts();
  const fields: Array<[string, string]> = [
    ['LockDuration', duration(definition.lockDurationMs)],
    ['MaxSizeInMegabytes', '1024'],
    ['RequiresDuplicateDetection', String(definition.requiresDuplicateDetection)],
    ['RequiresSession', String(definition.requiresSession)],
    ['DefaultMessageTimeToLive', duration(definition.defaultTtlMs)],
    ['DeadLetteringOnMessageExpiration', String(definition.deadLetterOnExpiration)],
    ['DuplicateDetectionHistoryTimeWindow', duration(definition.duplicateWindowMs)],
    ['MaxDeliveryCount', String(definition.maxDeliveryCount)],
    ['EnableBatchedOperations', 'true'],
    ['SizeInBytes', String(c.sizeInBytes + (dlq?.sizeInBytes ?? 0))],
    ['MessageCount', String(c.total + (dlq?.total ?? 0))],
    ['IsAnonymousAccessible', 'false'],
    ['Status', 'Active'],
    ['CreatedAt', iso(namespace.createdAt)],
    ['UpdatedAt', iso(namespace.createdAt)],
    ['AccessedAt', iso(Math.max(store.accessedAt, store.deadLetter?.accessedAt ?? 0))],
    ['SupportOrdering', 'true'],
  ];
  const countDetails =
    `<CountDetails xmlns:d2p1="${COUNTS}">` +
    `<d2p1:ActiveMessageCount>${c.active}</d2p1:ActiveMessageCount>` +
    `<d2p1:DeadLetterMessageCount>${dlq?.total ?? 0}</d2p1:DeadLetterMessageCount>` +
    `<d2p1:ScheduledMessageCount>${c.scheduled}</d2p1:ScheduledMessageCount>` +
    '<d2p1:TransferMessageCount>0</d2p1:TransferMessageCount>' +
    '<d2p1:TransferDeadLetterMessageCount>0</d2p1:TransferDeadLetterMessageCount>' +
    '</CountDetails>';
  const tail: Array<[string, string]> = [
    ['AutoDeleteOnIdle', NEVER],
    ['EnablePartitioning', 'false'],
    ['EntityAvailabilityStatus', 'Available'],
    ['EnableExpress', 'false'],
  ];
  const render = (pairs: Array<[string, string]>): string => pairs.map(([k, v]) => `<${k}>${xml(v)}</${k}>`).join('');
  return (
    `<QueueDescription xmlns="${CONNECT}" xmlns:i="${XSI}">` +
    `${render(fields)}${countDetails}${render(tail)}</QueueDescription>`
  );
}

/** One queue's `<entry>` (without the XML declaration), its `id` the queue's URL as Azure writes it. */
function queueEntry(
  base: string,
  apiVersion: string,
  q: { definition: QueueDefinition; store: MessageStore },
  ns: Namespace,
): string {
  const name = q.definition.name;
  const updated = iso(ns.createdAt);
  return (
    `<entry xmlns="${ATOM}">` +
    `<id>${xml(`${base}/${name}?api-version=${apiVersion}`)}</id>` +
    `<title type="text">${xml(name)}</title>` +
    `<published>${updated}</published><updated>${updated}</updated>` +
    `<author><name>${xml(ns.name)}</name></author>` +
    `<link rel="self" href="${xml(`${name}?api-version=${apiVersion}`)}"/>` +
    `<content type="application/xml">${queueDescription(q.definition, q.store, ns)}</content>` +
    '</entry>'
  );
}

/** A feed of entries (empty: Azure's answer for an entity that does not exist). */
function feed(base: string, self: string, entries: string[], next?: string): string {
  const title = entries.length === 0 ? 'Publicly Listed Services' : 'Queues';
  return (
    `<?xml version="1.0" encoding="utf-8"?><feed xmlns="${ATOM}">` +
    `<title type="text">${title}</title>` +
    (entries.length === 0
      ? '<subtitle type="text">This is the list of publicly-listed services currently available.</subtitle>'
      : '') +
    `<id>${xml(`${base}${LIST_QUEUES}`)}</id><updated>${iso(Date.now())}</updated>` +
    '<generator>Service Bus emulator (channel-relay)</generator>' +
    // Azure writes a self link and, when there are more, a next link; the SDK reads the next page's $skip only from
    // a list of links.
    `<link rel="self" href="${xml(self)}"/>` +
    (next === undefined ? '' : `<link rel="next" href="${xml(next)}"/>`) +
    entries.join('') +
    '</feed>'
  );
}

function nonNegativeInt(text: string | null, fallback: number): number | undefined {
  if (text === null) return fallback;
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

/** The management API's HTTP listener; see the module comment. */
export class ManagementServer {
  readonly #server: Server;
  readonly #options: ManagementServerOptions;

  private constructor(options: ManagementServerOptions) {
    this.#options = options;
    this.#server = createServer({ keepAlive: true }, (req, res) => {
      try {
        this.#handle(req, res);
      } catch (err) {
        options.log.error('management request failed', { err, path: req.url });
        if (!res.headersSent) sendError(res, 500, 'The emulator failed to answer this request.');
      }
    });
  }

  static async start(options: ManagementServerOptions): Promise<ManagementServer> {
    const server = new ManagementServer(options);
    await new Promise<void>((resolve, reject) => {
      server.#server.once('error', reject);
      server.#server.listen(options.port, options.host, () => {
        server.#server.off('error', reject);
        resolve();
      });
    });
    server.#server.on('error', (err) => options.log.error('management listener error', { err }));
    return server;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? 0;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const auth = req.headers.authorization ?? '';
    if (!/^SharedAccessSignature .*\bsig=/.test(auth)) {
      sendError(res, 401, 'InvalidSignature: the request has no SharedAccessSignature Authorization header.');
      return;
    }
    if (req.method !== 'GET') {
      res.setHeader('Allow', 'GET');
      sendError(
        res,
        405,
        `The emulator's management API only reads queues (GET); ${req.method ?? '?'} is not supported: entities come from Config.json.`,
      );
      return;
    }
    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion) {
      sendError(res, 400, 'The api-version query parameter is required (the SDK sends 2021-05).');
      return;
    }
    const base = `https://${req.headers.host ?? `${this.#options.host}:${this.port}`}`;
    const ns = this.#options.namespace;
    const path = decodeURIComponent(url.pathname);
    const atom = 'application/atom+xml;type=entry;charset=utf-8';
    if (path.toLowerCase() === LIST_QUEUES.toLowerCase()) {
      const skip = nonNegativeInt(url.searchParams.get('$skip'), 0);
      const top = nonNegativeInt(url.searchParams.get('$top'), DEFAULT_TOP);
      if (skip === undefined || top === undefined) {
        sendError(res, 400, `$skip and $top must be non-negative integers, found '${url.search}'.`);
        return;
      }
      const all = ns.queues();
      const page = all.slice(skip, skip + top);
      const next =
        skip + page.length < all.length
          ? `${base}${LIST_QUEUES}?$skip=${skip + page.length}&$top=${top}&api-version=${apiVersion}`
          : undefined;
      const entries = page.map((q) => queueEntry(base, apiVersion, q, ns));
      send(
        res,
        200,
        feed(base, `${base}${url.pathname}${url.search}`, entries, next),
        'application/atom+xml;type=feed;charset=utf-8',
      );
      return;
    }
    const queue = ns.queue(path.replace(/^\/+/, ''));
    if (!queue) {
      send(
        res,
        200,
        feed(base, `${base}${url.pathname}${url.search}`, []),
        'application/atom+xml;type=feed;charset=utf-8',
      );
      return;
    }
    send(res, 200, `<?xml version="1.0" encoding="utf-8"?>${queueEntry(base, apiVersion, queue, ns)}`, atom);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
