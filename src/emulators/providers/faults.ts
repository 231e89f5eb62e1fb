/**
 * Fault knobs: latency, injected 5xx errors, bursts of 429s and held requests (timeouts), scoped per provider or
 * for all of them, counted (`…Next`) or random (`…Rate`, from a seedable generator so runs can repeat).
 */

/** The simulated providers. */
export const PROVIDERS = ['twilio', 'telegram', 'contract'] as const;
export type SimulatedProvider = (typeof PROVIDERS)[number];

export interface FaultSettings {
  /** Latency added before the answer, ms: fixed, or uniform in `[min, max]`. @defaultValue 0 */
  latencyMs?: number | { min: number; max: number };
  /** Fraction (0–1) of calls answered with `errorStatus` in the provider's error shape. @defaultValue 0 */
  errorRate?: number;
  /** The next N calls are answered with `errorStatus` (counts down). @defaultValue 0 */
  errorNext?: number;
  /** Status of injected errors. @defaultValue 503 */
  errorStatus?: 500 | 502 | 503;
  /** The next `count` calls get a 429 saying "retry after `retryAfterSeconds`" (counts down). @defaultValue none */
  rateLimitBurst?: { count: number; retryAfterSeconds: number };
  /** Fraction (0–1) of calls held without an answer until the client gives up. @defaultValue 0 */
  timeoutRate?: number;
  /** The next N calls are held without an answer (counts down). @defaultValue 0 */
  timeoutNext?: number;
  /**
   * Whether a held call is first processed (the message is accepted and logged, only the answer is lost: the case
   * that makes a retry a duplicate) or held before anything happens. @defaultValue false
   */
  timeoutAfterAccept?: boolean;
  /**
   * Whether an injected error (`errorNext`, `errorRate`) is answered after the call was processed (the message is
   * accepted and logged, only a 5xx comes back: a provider that fails after its write, a gateway's 502/504 in front
   * of a back end that went on) or before anything happens. No provider documents that its 5xx come only before it
   * created anything: this is the worst reading, for the client that retries. @defaultValue false
   */
  errorAfterAccept?: boolean;
}

/** Fault settings by scope; `all` applies to every provider, a provider's own fields take precedence. */
export interface FaultsSpec {
  all?: FaultSettings;
  twilio?: FaultSettings;
  telegram?: FaultSettings;
  contract?: FaultSettings;
  /** Reseeds the generator behind `errorRate`, `timeoutRate` and latency ranges. */
  seed?: number;
}

export type FaultAction =
  | { kind: 'none' }
  | { kind: 'timeout'; afterAccept: boolean }
  | { kind: 'rateLimit'; retryAfterSeconds: number }
  | { kind: 'error'; status: 500 | 502 | 503; afterAccept: boolean };

export interface FaultDecision {
  delayMs: number;
  action: FaultAction;
}

/** mulberry32: a small seedable generator of numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SCOPES = ['all', ...PROVIDERS] as const;
type Scope = (typeof SCOPES)[number];
const SETTING_KEYS = new Set([
  'latencyMs',
  'errorRate',
  'errorNext',
  'errorStatus',
  'rateLimitBurst',
  'timeoutRate',
  'timeoutNext',
  'timeoutAfterAccept',
  'errorAfterAccept',
]);

function fraction(v: unknown): boolean {
  return typeof v === 'number' && v >= 0 && v <= 1;
}
function count(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** Checks one scope's settings; returns the problems, each naming its key. */
function faultSettingsProblems(value: unknown, where: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [`${where}: expected an object, found ${JSON.stringify(value)}`];
  const s = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(s))
    if (!SETTING_KEYS.has(key))
      problems.push(`${where}.${key}: unknown fault setting (known: ${[...SETTING_KEYS].join(', ')})`);
  const lat = s['latencyMs'];
  if (lat !== undefined) {
    const ok =
      (typeof lat === 'number' && lat >= 0 && Number.isFinite(lat)) ||
      (typeof lat === 'object' &&
        lat !== null &&
        typeof (lat as { min?: unknown }).min === 'number' &&
        typeof (lat as { max?: unknown }).max === 'number' &&
        (lat as { min: number }).min >= 0 &&
        (lat as { max: number }).max >= (lat as { min: number }).min &&
        Number.isFinite((lat as { max: number }).max));
    if (!ok)
      problems.push(
        `${where}.latencyMs: expected ms >= 0 or {min, max} with 0 <= min <= max, found ${JSON.stringify(lat)}`,
      );
  }
  for (const key of ['errorRate', 'timeoutRate'])
    if (s[key] !== undefined && !fraction(s[key]))
      problems.push(`${where}.${key}: expected a fraction from 0 to 1, found ${JSON.stringify(s[key])}`);
  for (const key of ['errorNext', 'timeoutNext'])
    if (s[key] !== undefined && !count(s[key]))
      problems.push(`${where}.${key}: expected an integer >= 0, found ${JSON.stringify(s[key])}`);
  if (s['errorStatus'] !== undefined && ![500, 502, 503].includes(s['errorStatus'] as number))
    problems.push(`${where}.errorStatus: expected 500, 502 or 503, found ${JSON.stringify(s['errorStatus'])}`);
  for (const key of ['timeoutAfterAccept', 'errorAfterAccept'])
    if (s[key] !== undefined && typeof s[key] !== 'boolean')
      problems.push(`${where}.${key}: expected a boolean, found ${JSON.stringify(s[key])}`);
  const burst = s['rateLimitBurst'] as { count?: unknown; retryAfterSeconds?: unknown } | undefined;
  if (
    burst !== undefined &&
    (typeof burst !== 'object' ||
      burst === null ||
      !count(burst.count) ||
      !(count(burst.retryAfterSeconds) && (burst.retryAfterSeconds as number) >= 1))
  ) {
    problems.push(
      `${where}.rateLimitBurst: expected {count: integer >= 0, retryAfterSeconds: integer >= 1}, found ${JSON.stringify(burst)}`,
    );
  }
  return problems;
}

/** Checks a whole `FaultsSpec`; returns the problems. */
export function faultsSpecProblems(value: unknown, where = 'faults'): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [`${where}: expected an object, found ${JSON.stringify(value)}`];
  const problems: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (key === 'seed') {
      if (!(typeof v === 'number' && Number.isInteger(v)))
        problems.push(`${where}.seed: expected an integer, found ${JSON.stringify(v)}`);
    } else if ((SCOPES as readonly string[]).includes(key)) {
      problems.push(...faultSettingsProblems(v, `${where}.${key}`));
    } else {
      problems.push(`${where}.${key}: unknown scope (expected one of ${SCOPES.join(', ')}, or seed)`);
    }
  }
  return problems;
}

/** The current fault settings and the decisions they give, one per provider call. */
export class FaultPlan {
  #scopes = new Map<Scope, FaultSettings>();
  #random: () => number;

  constructor(seed: number = Math.floor(Math.random() * 2 ** 31)) {
    this.#random = seededRandom(seed);
  }

  /** Replaces the settings of each scope named in `spec` (other scopes keep theirs); `seed` reseeds. Throws a TypeError for bad settings. */
  set(spec: FaultsSpec): void {
    const problems = faultsSpecProblems(spec);
    if (problems.length > 0) throw new TypeError(problems.join('; '));
    for (const scope of SCOPES) {
      const s = spec[scope];
      if (s !== undefined) this.#scopes.set(scope, structuredClone(s));
    }
    if (spec.seed !== undefined) this.#random = seededRandom(spec.seed);
  }

  clear(): void {
    this.#scopes.clear();
  }

  /** The settings as they stand (counters show what is left). */
  current(): FaultsSpec {
    const out: FaultsSpec = {};
    for (const [scope, s] of this.#scopes) out[scope] = structuredClone(s);
    return out;
  }

  /** The scope whose setting `key` applies to `provider`: its own when set, else `all`. */
  #holder<K extends keyof FaultSettings>(provider: SimulatedProvider, key: K): FaultSettings | undefined {
    const own = this.#scopes.get(provider);
    if (own?.[key] !== undefined) return own;
    const all = this.#scopes.get('all');
    return all?.[key] !== undefined ? all : undefined;
  }

  #take(provider: SimulatedProvider, key: 'errorNext' | 'timeoutNext'): boolean {
    const holder = this.#holder(provider, key);
    const left = holder?.[key] ?? 0;
    if (left <= 0) return false;
    holder![key] = left - 1;
    return true;
  }

  #chance(provider: SimulatedProvider, key: 'errorRate' | 'timeoutRate'): boolean {
    const rate = this.#holder(provider, key)?.[key] ?? 0;
    return rate > 0 && this.#random() < rate;
  }

  /**
   * The fault for one call to `provider`: its latency, then the first that applies of timeoutNext, rateLimitBurst,
   * errorNext, timeoutRate, errorRate.
   */
  decide(provider: SimulatedProvider): FaultDecision {
    const latency = this.#holder(provider, 'latencyMs')?.latencyMs ?? 0;
    const delayMs =
      typeof latency === 'number' ? latency : Math.round(latency.min + this.#random() * (latency.max - latency.min));
    const afterAccept = this.#holder(provider, 'timeoutAfterAccept')?.timeoutAfterAccept ?? false;
    const status = this.#holder(provider, 'errorStatus')?.errorStatus ?? 503;
    const errorAfterAccept = this.#holder(provider, 'errorAfterAccept')?.errorAfterAccept ?? false;
    if (this.#take(provider, 'timeoutNext')) return { delayMs, action: { kind: 'timeout', afterAccept } };
    const burstHolder = this.#holder(provider, 'rateLimitBurst');
    const burst = burstHolder?.rateLimitBurst;
    if (burst && burst.count > 0) {
      burst.count -= 1;
      return { delayMs, action: { kind: 'rateLimit', retryAfterSeconds: burst.retryAfterSeconds } };
    }
    if (this.#take(provider, 'errorNext'))
      return { delayMs, action: { kind: 'error', status, afterAccept: errorAfterAccept } };
    if (this.#chance(provider, 'timeoutRate')) return { delayMs, action: { kind: 'timeout', afterAccept } };
    if (this.#chance(provider, 'errorRate'))
      return { delayMs, action: { kind: 'error', status, afterAccept: errorAfterAccept } };
    return { delayMs, action: { kind: 'none' } };
  }
}
