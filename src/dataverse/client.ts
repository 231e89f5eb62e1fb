/**
 * The dynamics-web-api client of the relay: one per Dataverse identity, authenticated with @azure/identity
 * (DefaultAzureCredential or ClientSecretCredential for `${url}/.default`) or, against the emulator, a fixed bearer
 * text that the emulator takes as the caller identity.
 *
 * dynamics-web-api 2.5.0 has no hook for responses: a successful call resolves with the data only, so the
 * `x-ms-ratelimit-*` headers the governor paces from would be lost. Its Node transport uses `http`/`https`, which
 * publish every response on the `http.client.response.finish` diagnostics channel (public Node API, ≥ 16.18). The
 * client subscribes once and hands the responses of its own requests (same host and port, a bearer token it
 * issued, a path under `/api/`) to `onResponse`. Call {@link closeDataverseClient} to stop observing.
 */
import diagnostics from 'node:diagnostics_channel';
import type { ClientRequest, IncomingMessage } from 'node:http';
import {
  ClientSecretCredential,
  DefaultAzureCredential,
  type AccessToken,
  type TokenCredential,
} from '@azure/identity';
import { DynamicsWebApi } from 'dynamics-web-api';
import type { DataverseAuth, RelayConfig } from '../config/index.js';

/** A Web API response as observed on the wire (successful or not). */
export interface ObservedResponse {
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
}

export interface DataverseClientOptions {
  /** The organization URL, e.g. `https://contoso.crm.dynamics.com` or the emulator's `DATAVERSE_URL`. */
  url: string;
  /** `default`: DefaultAzureCredential; `client-secret`: ClientSecretCredential; `emulator`: a fixed bearer text. */
  auth: DataverseAuth;
  /** For `client-secret`. */
  tenantId?: string;
  clientId?: string;
  /** For `client-secret`. Secret: never logged. */
  clientSecret?: string;
  /** Every call through the relay's reads and writer is aborted after this long. @defaultValue 30000 */
  timeoutMs?: number;
  /** Replaces the credential built from `auth` (`default` / `client-secret`), e.g. a fake in tests. */
  credential?: TokenCredential;
  /** For `emulator`: the bearer text, which the emulator takes as the caller identity. @defaultValue 'channel-relay' */
  tokenIdentity?: string;
  /** A cached token is refreshed this long before it expires. @defaultValue 300000 (5 minutes) */
  refreshMarginMs?: number;
  /** Called with the status and headers of every response to this client's requests (e.g. `governor.observe`). */
  onResponse?: (response: ObservedResponse) => void;
}

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_TOKEN_IDENTITY = 'channel-relay';
export const DEFAULT_REFRESH_MARGIN_MS = 5 * 60_000;

interface ClientState {
  timeoutMs: number;
  host: string;
  port: number;
  /** Bearer texts this client sent recently (tokens rotate). */
  tokens: Set<string>;
  onResponse: ((response: ObservedResponse) => void) | undefined;
}

const states = new WeakMap<DynamicsWebApi, ClientState>();
const observers = new Set<ClientState>();
const CHANNEL = 'http.client.response.finish';
let subscribed = false;

function onFinish(message: unknown): void {
  const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
  if (!request.path.startsWith('/api/')) return;
  const auth = request.getHeader('authorization');
  if (typeof auth !== 'string' || !auth.startsWith('Bearer ')) return;
  const token = auth.slice('Bearer '.length);
  const port = request.socket?.remotePort;
  let headers: Record<string, string> | undefined;
  for (const state of observers) {
    if (state.host !== request.host || !state.tokens.has(token) || (port !== undefined && port !== state.port))
      continue;
    if (headers === undefined) {
      headers = {};
      for (const [k, v] of Object.entries(response.headers))
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    try {
      state.onResponse?.({ status: response.statusCode ?? 0, headers });
    } catch {
      // An observer must never break the transport.
    }
  }
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new TypeError(`createDataverseClient: ${message}`);
}

/** Caches a token until `refreshMarginMs` before it expires; concurrent callers share one acquisition. */
export function cachedTokenSource(
  credential: TokenCredential,
  scope: string,
  refreshMarginMs = DEFAULT_REFRESH_MARGIN_MS,
  now: () => number = Date.now,
): () => Promise<string> {
  let cached: AccessToken | undefined;
  let pending: Promise<string> | undefined;
  return async () => {
    if (cached !== undefined && now() < cached.expiresOnTimestamp - refreshMarginMs) return cached.token;
    pending ??= (async () => {
      try {
        const token = await credential.getToken(scope);
        if (token === null || token.token === '')
          throw Object.assign(new Error(`the credential returned no token for ${scope}`), {
            name: 'CredentialUnavailableError',
          });
        cached = token;
        return token.token;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };
}

function credentialFor(options: DataverseClientOptions): TokenCredential {
  if (options.credential !== undefined) return options.credential;
  if (options.auth === 'client-secret') {
    check(
      Boolean(options.tenantId && options.clientId && options.clientSecret),
      'auth client-secret needs tenantId, clientId and clientSecret',
    );
    return new ClientSecretCredential(options.tenantId!, options.clientId!, options.clientSecret!);
  }
  return new DefaultAzureCredential(
    options.clientId === undefined ? {} : { managedIdentityClientId: options.clientId },
  );
}

/** A dynamics-web-api client for one Dataverse identity (see the module comment for `onResponse`). */
export function createDataverseClient(options: DataverseClientOptions): DynamicsWebApi {
  check(
    typeof options.url === 'string' && /^https?:\/\//.test(options.url),
    `url must be an http(s) URL, found ${JSON.stringify(options.url)}`,
  );
  check(
    ['default', 'client-secret', 'emulator'].includes(options.auth),
    `auth must be default, client-secret or emulator, found ${JSON.stringify(options.auth)}`,
  );
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  check(Number.isFinite(timeoutMs) && timeoutMs > 0, `timeoutMs must be > 0, found ${String(options.timeoutMs)}`);
  const refreshMarginMs = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  check(
    Number.isFinite(refreshMarginMs) && refreshMarginMs >= 0,
    `refreshMarginMs must be >= 0, found ${String(options.refreshMarginMs)}`,
  );
  const url = new URL(options.url);
  const serverUrl = url.origin;
  const state: ClientState = {
    timeoutMs,
    host: url.hostname,
    port: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port),
    tokens: new Set(),
    onResponse: options.onResponse,
  };
  let source: () => Promise<string>;
  if (options.auth === 'emulator' && options.credential === undefined) {
    const identity = options.tokenIdentity ?? DEFAULT_TOKEN_IDENTITY;
    check(identity !== '', 'tokenIdentity must not be empty');
    source = async () => identity;
  } else {
    source = cachedTokenSource(credentialFor(options), `${serverUrl}/.default`, refreshMarginMs);
  }
  const remember = (token: string): string => {
    if (!state.tokens.has(token)) {
      state.tokens.add(token);
      // Keep the last few: a response may arrive after its token was replaced.
      if (state.tokens.size > 4) state.tokens.delete(state.tokens.values().next().value as string);
    }
    return token;
  };
  // No `timeout` in the client config: its transport turns it into "socket hang up"; the relay's calls are timed
  // out with an AbortSignal instead (see governor.ts), which maps to DataverseTimeout.
  const client = new DynamicsWebApi({
    serverUrl,
    dataApi: { version: '9.2' },
    onTokenRefresh: async () => remember(await source()),
  });
  states.set(client, state);
  if (options.onResponse !== undefined) {
    observers.add(state);
    if (!subscribed) {
      diagnostics.subscribe(CHANNEL, onFinish);
      subscribed = true;
    }
  }
  return client;
}

/** The options of {@link dataverseClientFromConfig} that do not come from the configuration. */
export type DataverseClientExtras = Pick<
  DataverseClientOptions,
  'credential' | 'tokenIdentity' | 'onResponse' | 'refreshMarginMs'
>;

/** {@link createDataverseClient} from the relay configuration (`dataverse.{url, auth, tenantId, clientId, clientSecret, timeoutMs}`). */
export function dataverseClientFromConfig(
  config: Pick<RelayConfig, 'dataverse'>,
  extras: DataverseClientExtras = {},
): DynamicsWebApi {
  const dv = config.dataverse;
  if (dv.url === undefined || dv.url === '')
    throw new TypeError('dataverseClientFromConfig: dataverse.url is not set (DATAVERSE_URL)');
  return createDataverseClient({
    url: dv.url,
    auth: dv.auth,
    timeoutMs: dv.timeoutMs,
    ...(dv.tenantId === undefined ? {} : { tenantId: dv.tenantId }),
    ...(dv.clientId === undefined ? {} : { clientId: dv.clientId }),
    ...(dv.clientSecret === undefined ? {} : { clientSecret: dv.clientSecret }),
    // Against the emulator, the client id names the identity (one per stage, told apart in /_emulator/stats).
    ...(dv.auth === 'emulator' && dv.clientId !== undefined ? { tokenIdentity: dv.clientId } : {}),
    ...extras,
  });
}

/** The per-call timeout a client was created with (`timeoutMs`); undefined for a client made elsewhere. */
export function clientTimeoutMs(client: DynamicsWebApi): number | undefined {
  return states.get(client)?.timeoutMs;
}

/** Stops handing this client's responses to `onResponse`. Idempotent. */
export function closeDataverseClient(client: DynamicsWebApi): void {
  const state = states.get(client);
  if (state === undefined) return;
  observers.delete(state);
  if (observers.size === 0 && subscribed) {
    diagnostics.unsubscribe(CHANNEL, onFinish);
    subscribed = false;
  }
}
