/** Starting and stopping the Dataverse emulator. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { areaLogger, silentLogger, type Logger } from '../../log.js';
import { registerActions } from './actions.js';
import { Governor, loadLimits, resolveLimits, type LimitsConfig } from './limits.js';
import { Poster } from './posting.js';
import { applyRows, applySchema, readSeedFile, seedOrganization, type LoadedSeed, type SeedDocument } from './seed.js';
import { createHandler } from './server.js';
import { OrganizationService, userIdOf, type PartialTargets } from './service.js';
import { SolutionImporter } from './solution-import/index.js';
import { SOLUTION_IMPORT } from './assumptions.js';

export interface DataverseEmulatorOptions {
  /** Address to listen on (`0.0.0.0` in a container). @defaultValue '127.0.0.1' */
  host?: string;
  /** Port; 0 picks a free one. @defaultValue 0 */
  port?: number;
  /** Seed file path, or a seed document (tile paths then resolve from `process.cwd()`). @defaultValue no seed: empty tables */
  seed?: string | SeedDocument;
  /** `realistic`, `off`, a JSON file path, or a configuration. @defaultValue 'realistic' */
  limits?: 'realistic' | 'off' | string | Partial<LimitsConfig>;
  /** Service Bus connection string used for every service endpoint (only `path` is read from the row). @defaultValue undefined: built from each endpoint row */
  servicebus?: string;
  /** Added latency before each Web API response, ms. @defaultValue 0 */
  responseDelayMs?: number;
  /** First retry delay when posting to Service Bus fails, ms. @defaultValue 100 */
  postRetryMinMs?: number;
  /** Longest retry delay when posting fails, ms. @defaultValue 5000 */
  postRetryMaxMs?: number;
  /** Timeout of one Service Bus send attempt, ms. @defaultValue 10_000 */
  postTimeoutMs?: number;
  /**
   * Creates whose posted `Target` leaves these columns out (the row keeps them), for that share of the Creates: the
   * relay must read the row instead. @defaultValue undefined: every Target carries the whole row
   */
  partialTargets?: PartialTargets;
  /** How long an `ImportSolutionAsync` import takes, ms (in progress steps). @defaultValue 1000 */
  importDurationMs?: number;
  /** @defaultValue silentLogger() */
  log?: Logger;
}

export interface DataverseEmulator {
  /** `http://<host>:<port>`: the organization URL (`serverUrl` of dynamics-web-api). */
  url: string;
  port: number;
  /** Resolves when every queued event has been posted to Service Bus. */
  postingIdle(): Promise<void>;
  /** Stops listening, closes connections and the Service Bus clients. Idempotent. */
  close(): Promise<void>;
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new TypeError(`startDataverseEmulator: ${message}`);
}

export async function startDataverseEmulator(options: DataverseEmulatorOptions = {}): Promise<DataverseEmulator> {
  const port = options.port ?? 0;
  check(
    Number.isInteger(port) && port >= 0 && port < 65536,
    `port must be an integer 0-65535, found ${String(options.port)}`,
  );
  const host = options.host ?? '127.0.0.1';
  check(typeof host === 'string' && host !== '', `host must be a host name or address, found ${String(options.host)}`);
  const responseDelayMs = options.responseDelayMs ?? 0;
  check(
    Number.isFinite(responseDelayMs) && responseDelayMs >= 0,
    `responseDelayMs must be >= 0, found ${String(options.responseDelayMs)}`,
  );
  const importDurationMs = options.importDurationMs ?? SOLUTION_IMPORT.importDurationMs;
  check(
    Number.isFinite(importDurationMs) && importDurationMs >= 0,
    `importDurationMs must be >= 0, found ${String(options.importDurationMs)}`,
  );
  const partial = options.partialTargets;
  if (partial !== undefined) {
    check(
      Array.isArray(partial.omit) && partial.omit.every((c) => typeof c === 'string' && c !== ''),
      `partialTargets.omit must be a list of column names, found ${JSON.stringify(partial.omit)}`,
    );
    const share = partial.share ?? 1;
    check(
      typeof share === 'number' && share >= 0 && share <= 1,
      `partialTargets.share must be a number 0-1, found ${String(partial.share)}`,
    );
  }
  const limitsSpec = options.limits ?? 'realistic';
  const limits = typeof limitsSpec === 'string' ? loadLimits(limitsSpec) : resolveLimits(limitsSpec, 'options.limits');
  const log = areaLogger(options.log ?? silentLogger(), 'dataverse-emulator');
  const seed: LoadedSeed | undefined =
    options.seed === undefined
      ? undefined
      : typeof options.seed === 'string'
        ? readSeedFile(options.seed)
        : { document: options.seed, baseDir: process.cwd(), source: 'seed' };

  const poster = new Poster({
    log,
    ...(options.postRetryMinMs === undefined ? {} : { retryMinMs: options.postRetryMinMs }),
    ...(options.postRetryMaxMs === undefined ? {} : { retryMaxMs: options.postRetryMaxMs }),
    ...(options.postTimeoutMs === undefined ? {} : { sendTimeoutMs: options.postTimeoutMs }),
  });
  const service = new OrganizationService(seedOrganization(seed?.document ?? {}), log, poster, options.servicebus);
  service.partialTargets = partial === undefined ? undefined : { omit: [...partial.omit], share: partial.share ?? 1 };
  registerActions(service);
  const importer = new SolutionImporter(service, {
    durationMs: importDurationMs,
    steps: SOLUTION_IMPORT.progressSteps,
  });
  applySchema(service, seed);

  const governor = new Governor(limits);
  const server = createServer(
    { keepAlive: true },
    createHandler({ service, governor, journeys: seed?.document.journeys ?? [], log, responseDelayMs }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}`;
  service.apiRoot = `${url}/api/data/v9.2/`;
  try {
    applyRows(service, seed, userIdOf('seed'));
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  }
  log.info('Dataverse emulator listening', {
    url,
    limits: limits.enabled ? limits : 'off',
    tables: [...service.catalog.tables()].length,
  });

  let closing: Promise<void> | undefined;
  return {
    url,
    port: actualPort,
    postingIdle: () => poster.idle(),
    close() {
      closing ??= (async () => {
        importer.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await poster.close();
        log.info('Dataverse emulator closed', { url });
      })();
      return closing;
    },
  };
}
