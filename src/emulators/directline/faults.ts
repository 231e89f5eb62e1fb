/**
 * Fault knobs of the Direct Line emulator, per scope (`directline`: every Direct Line call; `identity`: the token
 * endpoint): latency, a burst of 429s, counted or random 5xx answers, answered before or after the call took effect.
 */

/** mulberry32: a small seedable generator of numbers in [0, 1) (the emulators do not import each other). */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const FAULT_SCOPES = ['directline', 'identity'] as const;
export type FaultScope = (typeof FAULT_SCOPES)[number];

export interface FaultSettings {
  /** Latency added before the answer, ms. @defaultValue 0 */
  latencyMs?: number;
  /** The next `count` calls get a 429 with `Retry-After: retryAfterSeconds` (counts down). @defaultValue none */
  rateLimitBurst?: { count: number; retryAfterSeconds: number };
  /** The next N calls get `errorStatus` (counts down). @defaultValue 0 */
  errorNext?: number;
  /** Fraction (0–1) of calls answered with `errorStatus`, from a seedable generator. @defaultValue 0 */
  errorRate?: number;
  /** Status of injected errors: 502 is Direct Line's "the bot failed". @defaultValue 502 */
  errorStatus?: 500 | 502 | 503;
  /**
   * Whether an injected error comes after the call took effect (a posted activity is in the conversation, only the
   * answer is a 5xx: the duplicate case for a client that retries) or before anything happened. @defaultValue false
   */
  errorAfterAccept?: boolean;
}

export interface FaultsSpec {
  directline?: FaultSettings;
  identity?: FaultSettings;
  /** Reseeds the generator behind `errorRate`. */
  seed?: number;
}

export type FaultAction =
  | { kind: 'none' }
  | { kind: 'rateLimit'; retryAfterSeconds: number }
  | { kind: 'error'; status: 500 | 502 | 503; afterAccept: boolean };

const KEYS = new Set(['latencyMs', 'rateLimitBurst', 'errorNext', 'errorRate', 'errorStatus', 'errorAfterAccept']);
const shown = (v: unknown): string => (v === undefined ? 'undefined' : JSON.stringify(v));
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

function settingsProblems(value: unknown, where: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [`${where}: expected an object, found ${shown(value)}`];
  const s = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(s))
    if (!KEYS.has(key)) problems.push(`${where}.${key}: unknown fault setting (known: ${[...KEYS].join(', ')})`);
  if (
    s['latencyMs'] !== undefined &&
    !(typeof s['latencyMs'] === 'number' && Number.isFinite(s['latencyMs']) && s['latencyMs'] >= 0)
  ) {
    problems.push(`${where}.latencyMs: expected ms >= 0, found ${shown(s['latencyMs'])}`);
  }
  if (s['errorNext'] !== undefined && !isCount(s['errorNext']))
    problems.push(`${where}.errorNext: expected an integer >= 0, found ${shown(s['errorNext'])}`);
  const rate = s['errorRate'];
  if (rate !== undefined && !(typeof rate === 'number' && rate >= 0 && rate <= 1))
    problems.push(`${where}.errorRate: expected a fraction from 0 to 1, found ${shown(rate)}`);
  if (s['errorStatus'] !== undefined && ![500, 502, 503].includes(s['errorStatus'] as number))
    problems.push(`${where}.errorStatus: expected 500, 502 or 503, found ${shown(s['errorStatus'])}`);
  if (s['errorAfterAccept'] !== undefined && typeof s['errorAfterAccept'] !== 'boolean')
    problems.push(`${where}.errorAfterAccept: expected a boolean, found ${shown(s['errorAfterAccept'])}`);
  const burst = s['rateLimitBurst'] as { count?: unknown; retryAfterSeconds?: unknown } | undefined;
  if (
    burst !== undefined &&
    (typeof burst !== 'object' ||
      burst === null ||
      !isCount(burst.count) ||
      !(isCount(burst.retryAfterSeconds) && burst.retryAfterSeconds >= 1))
  ) {
    problems.push(
      `${where}.rateLimitBurst: expected {count: integer >= 0, retryAfterSeconds: integer >= 1}, found ${shown(burst)}`,
    );
  }
  return problems;
}

/** The problems of a whole `FaultsSpec`, each naming its key. */
export function faultsSpecProblems(value: unknown, where = 'faults'): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [`${where}: expected an object, found ${shown(value)}`];
  const problems: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (key === 'seed') {
      if (!(typeof v === 'number' && Number.isInteger(v)))
        problems.push(`${where}.seed: expected an integer, found ${shown(v)}`);
    } else if ((FAULT_SCOPES as readonly string[]).includes(key))
      problems.push(...settingsProblems(v, `${where}.${key}`));
    else problems.push(`${where}.${key}: unknown scope (expected ${FAULT_SCOPES.join(' or ')}, or seed)`);
  }
  return problems;
}

/** The fault settings as they stand and the decision they give for each call. */
export class FaultPlan {
  #scopes = new Map<FaultScope, FaultSettings>();
  #random: () => number;

  constructor(seed: number) {
    this.#random = seededRandom(seed);
  }

  /** Replaces the settings of each scope named; throws a TypeError naming every problem. */
  set(spec: FaultsSpec): void {
    const problems = faultsSpecProblems(spec);
    if (problems.length > 0) throw new TypeError(problems.join('; '));
    for (const scope of FAULT_SCOPES)
      if (spec[scope] !== undefined) this.#scopes.set(scope, structuredClone(spec[scope]));
    if (spec.seed !== undefined) this.#random = seededRandom(spec.seed);
  }

  clear(): void {
    this.#scopes.clear();
  }

  current(): FaultsSpec {
    return Object.fromEntries([...this.#scopes].map(([k, v]) => [k, structuredClone(v)]));
  }

  /** The latency and fault of one call in `scope`: a 429 of the burst first, then `errorNext`, then `errorRate`. */
  decide(scope: FaultScope): { delayMs: number; action: FaultAction } {
    const s = this.#scopes.get(scope);
    const delayMs = s?.latencyMs ?? 0;
    if (!s) return { delayMs, action: { kind: 'none' } };
    const error = (): FaultAction => ({
      kind: 'error',
      status: s.errorStatus ?? 502,
      afterAccept: s.errorAfterAccept ?? false,
    });
    if (s.rateLimitBurst && s.rateLimitBurst.count > 0) {
      s.rateLimitBurst.count -= 1;
      return { delayMs, action: { kind: 'rateLimit', retryAfterSeconds: s.rateLimitBurst.retryAfterSeconds } };
    }
    if ((s.errorNext ?? 0) > 0) {
      s.errorNext! -= 1;
      return { delayMs, action: error() };
    }
    if ((s.errorRate ?? 0) > 0 && this.#random() < s.errorRate!) return { delayMs, action: error() };
    return { delayMs, action: { kind: 'none' } };
  }
}
