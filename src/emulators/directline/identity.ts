/**
 * The Microsoft identity platform's v2.0 endpoints that a confidential client with a secret uses: OpenID discovery,
 * the signing keys, and the token endpoint with the client-credentials grant, for configured apps and secrets
 * (expired ones too), answering the AADSTS errors the real one gives (see assumptions.ts). Enough for
 * `@azure/identity`'s ClientSecretCredential (MSAL) with `authorityHost` pointed here and instance discovery off.
 */
import { createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import type { Reply } from './conversations.js';

/** An app registration: its client id, home tenant and secrets. */
export interface IdentityApp {
  /** Application (client) id, a GUID. */
  clientId: string;
  /** The tenant it is registered in (a GUID or a domain); multi-tenant bots use `botframework.com`. @defaultValue 'botframework.com' */
  tenant?: string;
  /** Its client secrets; `expiresAt` (ISO 8601 or ms since the epoch) in the past makes one expired. */
  secrets: Array<{ value: string; expiresAt?: string | number }>;
}

export interface IdentityOptions {
  apps?: IdentityApp[];
  /** Tenants that exist besides the apps' own (a request to any other answers AADSTS90002). @defaultValue [] */
  tenants?: string[];
  /** `expires_in` of the access tokens, seconds. @defaultValue 3599 */
  tokenLifetimeSeconds?: number;
}

/** The multi-tenant Bot Framework tenant. */
export const BOT_FRAMEWORK_TENANT = 'botframework.com';

export const IDENTITY_DEFAULTS: Required<IdentityOptions> = {
  apps: [
    {
      clientId: '6e7d5c2a-0b1f-4c8e-9a3d-2f4b6c8d0e1a',
      tenant: BOT_FRAMEWORK_TENANT,
      secrets: [
        { value: 'emulated-client-secret' },
        { value: 'emulated-expired-secret', expiresAt: '2024-01-01T00:00:00Z' },
      ],
    },
  ],
  tenants: [],
  tokenLifetimeSeconds: 3599,
};

/** One token request as the record shows it (never the secret). */
export interface TokenRequestRecord {
  time: number;
  tenant: string;
  clientId?: string;
  scope?: string;
  /** `issued`, or the AADSTS code of the refusal. */
  outcome: 'issued' | `AADSTS${number}`;
}

/** A stable GUID per tenant name (for `tid` and the issuer). */
function tenantId(tenant: string): string {
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tenant)) return tenant.toLowerCase();
  if (tenant === BOT_FRAMEWORK_TENANT) return 'd6d49420-f39b-4df7-a1dc-d59a935871db';
  const hex = Buffer.from(tenant.padEnd(16, '.').slice(0, 16), 'utf8').toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

export class IdentityPlatform {
  readonly #o: Required<IdentityOptions>;
  readonly #clock: () => number;
  readonly #key: KeyObject;
  readonly #kid = randomUUID();
  readonly #requests: TokenRequestRecord[] = [];
  /** The base URL (`https://host:port`), set once listening. */
  url = '';

  constructor(options: Required<IdentityOptions>, clock: () => number) {
    this.#o = options;
    this.#clock = clock;
    this.#key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  }

  #tenants(): Set<string> {
    return new Set(
      [...this.#o.tenants, ...this.#o.apps.map((a) => a.tenant ?? BOT_FRAMEWORK_TENANT)].map((t) => t.toLowerCase()),
    );
  }

  #error(status: number, error: string, code: number, message: string): Reply {
    const now = new Date(this.#clock());
    const stamp = now.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
    const traceId = randomUUID();
    const correlationId = randomUUID();
    return {
      status,
      body: {
        error,
        error_description: `AADSTS${code}: ${message}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${stamp}`,
        error_codes: [code],
        timestamp: stamp,
        trace_id: traceId,
        correlation_id: correlationId,
        error_uri: `${this.url}/error?code=${code}`,
      },
    };
  }

  #unknownTenant(tenant: string): Reply {
    return this.#error(
      400,
      'invalid_tenant',
      90002,
      `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
    );
  }

  /** The routes under the identity listener; undefined for a path that is not one of them. */
  handle(method: string, path: string, form: URLSearchParams): Reply | undefined {
    const m =
      /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|discovery\/v2\.0\/keys|oauth2\/v2\.0\/token)$/.exec(path);
    if (!m) return undefined;
    let tenant: string;
    try {
      tenant = decodeURIComponent(m[1]!);
    } catch {
      return this.#unknownTenant(m[1]!);
    }
    const known = this.#tenants().has(tenant.toLowerCase());
    if (m[2] === 'discovery/v2.0/keys') {
      const jwk = createPublicKey(this.#key).export({ format: 'jwk' });
      return { status: 200, body: { keys: [{ ...jwk, kid: this.#kid, use: 'sig', alg: 'ES256' }] } };
    }
    if (m[2]!.startsWith('v2.0')) {
      if (!known) return this.#unknownTenant(tenant);
      const base = `${this.url}/${encodeURIComponent(tenant)}`;
      return {
        status: 200,
        body: {
          token_endpoint: `${base}/oauth2/v2.0/token`,
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
          jwks_uri: `${base}/discovery/v2.0/keys`,
          response_modes_supported: ['query', 'fragment', 'form_post'],
          subject_types_supported: ['pairwise'],
          id_token_signing_alg_values_supported: ['ES256'],
          response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
          scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
          issuer: `${this.url}/${tenantId(tenant)}/v2.0`,
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          end_session_endpoint: `${base}/oauth2/v2.0/logout`,
          tenant_region_scope: 'WW',
        },
      };
    }
    if (method !== 'POST')
      return {
        status: 405,
        body: { error: 'invalid_request', error_description: 'the token endpoint accepts POST' },
        headers: { Allow: 'POST' },
      };
    const reply = this.#token(tenant, known, form);
    const codes = (reply.body as { error_codes?: number[] }).error_codes;
    const clientId = form.get('client_id') ?? undefined;
    const scope = form.get('scope') ?? undefined;
    this.#requests.push({
      time: this.#clock(),
      tenant,
      ...(clientId ? { clientId } : {}),
      ...(scope ? { scope } : {}),
      outcome: codes ? `AADSTS${codes[0]!}` : 'issued',
    });
    return reply;
  }

  #token(tenant: string, known: boolean, form: URLSearchParams): Reply {
    if (!known) return this.#unknownTenant(tenant);
    const grant = form.get('grant_type');
    if (!grant)
      return this.#error(
        400,
        'invalid_request',
        900144,
        "The request body must contain the following parameter: 'grant_type'.",
      );
    if (grant !== 'client_credentials')
      return this.#error(
        400,
        'unsupported_grant_type',
        70003,
        `The app requested an unsupported grant type '${grant}'.`,
      );
    const clientId = form.get('client_id');
    if (!clientId)
      return this.#error(
        400,
        'invalid_request',
        900144,
        "The request body must contain the following parameter: 'client_id'.",
      );
    const scope = form.get('scope');
    if (!scope)
      return this.#error(
        400,
        'invalid_request',
        900144,
        "The request body must contain the following parameter: 'scope'.",
      );
    const resource = scope.split(' ').find((s) => s.endsWith('/.default'));
    if (!resource)
      return this.#error(
        400,
        'invalid_scope',
        1002012,
        `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      );
    const app = this.#o.apps.find(
      (a) =>
        a.clientId.toLowerCase() === clientId.toLowerCase() &&
        (a.tenant ?? BOT_FRAMEWORK_TENANT).toLowerCase() === tenant.toLowerCase(),
    );
    if (!app) {
      return this.#error(
        400,
        'unauthorized_client',
        700016,
        `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      );
    }
    const secret = form.get('client_secret');
    if (!secret)
      return this.#error(
        401,
        'invalid_client',
        7000216,
        "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
      );
    const match = app.secrets.find((s) => s.value === secret);
    if (!match)
      return this.#error(
        401,
        'invalid_client',
        7000215,
        `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`,
      );
    const expiresAt =
      match.expiresAt === undefined
        ? undefined
        : typeof match.expiresAt === 'number'
          ? match.expiresAt
          : Date.parse(match.expiresAt);
    if (expiresAt !== undefined && this.#clock() >= expiresAt) {
      return this.#error(
        401,
        'invalid_client',
        7000222,
        `The provided client secret keys for app '${app.clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
      );
    }
    const now = Math.floor(this.#clock() / 1000);
    const lifetime = this.#o.tokenLifetimeSeconds;
    const claims = {
      aud: resource.slice(0, -'/.default'.length),
      iss: `${this.url}/${tenantId(tenant)}/v2.0`,
      iat: now,
      nbf: now,
      exp: now + lifetime,
      appid: app.clientId,
      azp: app.clientId,
      tid: tenantId(tenant),
      ver: '2.0',
      jti: randomUUID(),
    };
    const head = b64url({ alg: 'ES256', typ: 'JWT', kid: this.#kid });
    const payload = b64url(claims);
    const signature = sign('sha256', Buffer.from(`${head}.${payload}`), {
      key: this.#key,
      dsaEncoding: 'ieee-p1363',
    }).toString('base64url');
    return {
      status: 200,
      body: {
        token_type: 'Bearer',
        expires_in: lifetime,
        ext_expires_in: lifetime,
        access_token: `${head}.${payload}.${signature}`,
      },
    };
  }

  /** Every token request, oldest first. */
  requests(): TokenRequestRecord[] {
    return structuredClone(this.#requests);
  }

  reset(): void {
    this.#requests.length = 0;
  }
}
