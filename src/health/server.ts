/**
 * The operator's endpoints of a worker process:
 * - `GET /healthz`: liveness: 200 while the process serves requests.
 * - `GET /readyz`: readiness: 200 when every check passes, 503 with the failing checks otherwise (a receiver that
 *   lost its connection, a shutdown in progress).
 * - `GET /metrics`: Prometheus text from the process's registry, with the readiness as gauges read when scraped:
 *   `channel_relay_ready` (1 when every check passes) and `channel_relay_readiness_check{check}` (1 or 0 per check).
 * Anything else gets a JSON 404 or 405 that says what exists.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, type Registry } from 'prom-client';
import { errorMessage } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { METRIC_PREFIX, registered } from './metrics.js';

/** One readiness check: its name, whether it passes, and a word for the operator when it does not. */
export interface ReadinessCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface HealthServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** @defaultValue '0.0.0.0' (probes come from outside the container) */
  host?: string;
  /** The process's metrics. */
  registry: Registry;
  /** Current readiness checks. @defaultValue always ready */
  readiness?: () => ReadinessCheck[] | Promise<ReadinessCheck[]>;
  log?: Logger;
}

export interface HealthServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** `http://host:port`, with 127.0.0.1 for a wildcard host. */
  url: string;
  close(): Promise<void>;
}

const ROUTES = ['/healthz', '/readyz', '/metrics'];

function send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': contentType,
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const log = options.log ?? silentLogger();
  const readiness = options.readiness ?? (() => []);
  registerReadinessMetrics(options.registry, readiness);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (!ROUTES.includes(path)) {
      send(res, 404, { error: `no endpoint ${path}; there are ${ROUTES.join(', ')}` });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, { error: `${path} answers GET only, not ${req.method ?? '?'}` });
      return;
    }
    if (path === '/healthz') {
      send(res, 200, { status: 'ok', uptimeSeconds: Math.round(process.uptime()) });
    } else if (path === '/readyz') {
      const checks = await readiness();
      const failing = checks.filter((c) => !c.ok);
      send(res, failing.length === 0 ? 200 : 503, { status: failing.length === 0 ? 'ready' : 'not ready', checks });
    } else {
      send(res, 200, await options.registry.metrics(), options.registry.contentType);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('health endpoint failed', { url: req.url, err });
      if (!res.headersSent) send(res, 500, { error: errorMessage(err) });
      else res.destroy();
    });
  });
  const host = options.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  log.info('health endpoints listening', { url: `http://${shownHost}:${port}`, routes: ROUTES });
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://${shownHost}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** The readiness gauges on `registry`, once per registry: the first health server's checks are the ones read. */
function registerReadinessMetrics(
  registry: Registry,
  readiness: () => ReadinessCheck[] | Promise<ReadinessCheck[]>,
): void {
  const gauge = (name: string, help: string, labelNames: string[], set: (g: Gauge, checks: ReadinessCheck[]) => void) =>
    registered(
      registry,
      name,
      () =>
        new Gauge({
          name,
          help,
          labelNames,
          registers: [registry],
          async collect() {
            set(this, await readiness());
          },
        }),
    );
  gauge(
    `${METRIC_PREFIX}ready`,
    'Whether the process is ready (1: every readiness check passes, /readyz answers 200) or not (0)',
    [],
    (g, checks) => g.set(checks.every((c) => c.ok) ? 1 : 0),
  );
  gauge(
    `${METRIC_PREFIX}readiness_check`,
    'Whether the readiness check passes (1) or not (0), as /readyz reports it',
    ['check'],
    (g, checks) => {
      g.reset();
      for (const c of checks) g.set({ check: c.name }, c.ok ? 1 : 0);
    },
  );
}
