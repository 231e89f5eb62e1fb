/**
 * Reading a worker's health endpoints from outside (`channel-relay status --metrics URL`): `GET /readyz` (the
 * readiness checks `server.ts` serves) and `GET /metrics` (the Prometheus text exposition format 0.0.4, parsed here:
 * prom-client only writes it). Only what status needs of the format: samples with their labels; comments, types and
 * timestamps are skipped.
 * Format: https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */
import { errorMessage } from '../errors.js';

/** One sample: a metric name, its labels and its value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The readiness a worker reported. */
export interface ScrapedReadiness {
  /** 200 from /readyz. */
  ready: boolean;
  /** The failing checks (`name: reason`), empty when ready. */
  failing: string[];
}

export interface Scrape {
  /** The worker's base URL as given. */
  url: string;
  /** When the scrape finished (ms since the epoch). */
  at: number;
  readiness: ScrapedReadiness;
  samples: Sample[];
}

/** A scrape that failed: the endpoint could not be reached or answered something else. */
export class ScrapeError extends Error {
  override readonly name = 'ScrapeError';
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(`${url}: ${message}`);
  }
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const SPECIAL_VALUES: ReadonlyMap<string, number> = new Map([
  ['nan', Number.NaN],
  ['inf', Number.POSITIVE_INFINITY],
  ['+inf', Number.POSITIVE_INFINITY],
  ['infinity', Number.POSITIVE_INFINITY],
  ['+infinity', Number.POSITIVE_INFINITY],
  ['-inf', Number.NEGATIVE_INFINITY],
  ['-infinity', Number.NEGATIVE_INFINITY],
]);
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;

function unescapeLabel(value: string): string {
  return value.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

/**
 * A sample's value. NaN and the infinities are read in any case, as Prometheus reads them (its text parser takes Go's
 * strconv.ParseFloat, which accepts "nan", "inf", "+inf", "infinity" case-insensitively): prom-client 15 writes NaN as
 * `Nan` (lib/util.js getValueAsString), e.g. the event-loop lag mean before its first sample.
 */
function parseValue(text: string): number {
  const special = SPECIAL_VALUES.get(text.toLowerCase());
  return special ?? Number(text);
}

/** The samples of a Prometheus text exposition. Throws a `TypeError` naming the first line it cannot read. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    const value = m ? parseValue(m[3]!) : Number.NaN;
    if (!m || (Number.isNaN(value) && m[3]!.toLowerCase() !== 'nan'))
      throw new TypeError(`Prometheus text: line ${i + 1} is not a sample: '${line.slice(0, 120)}'`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < body.length) {
      const l = LABEL.exec(body);
      if (!l) throw new TypeError(`Prometheus text: line ${i + 1} has unreadable labels: '${line.slice(0, 120)}'`);
      labels[l[1]!] = unescapeLabel(l[2]!);
    }
    samples.push({ name: m[1]!, labels, value });
  }
  return samples;
}

/**
 * `base` with `path` appended to its path: a worker's base URL may be given with or without a trailing `/`, or as one
 * of its endpoints (`…/metrics`), which is dropped.
 */
function endpoint(base: URL, path: string): string {
  const u = new URL(base);
  u.pathname = `${u.pathname.replace(/\/+$/, '').replace(/\/(?:metrics|readyz|healthz)$/, '')}${path}`;
  return u.toString();
}

async function get(url: string, signal: AbortSignal): Promise<Response> {
  try {
    return await fetch(url, { signal, headers: { Accept: 'text/plain, application/json' } });
  } catch (err) {
    throw new ScrapeError(url, `unreachable: ${errorMessage((err as { cause?: unknown }).cause ?? err)}`);
  }
}

/**
 * Reads `/readyz` and `/metrics` of the worker at `base` (`http://host:port`). Throws {@link ScrapeError} when either
 * cannot be read, and a `TypeError` for a URL that is not http(s).
 */
export async function scrapeWorker(base: string, options: { signal: AbortSignal }): Promise<Scrape> {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new TypeError(`expected an http:// or https:// URL such as http://127.0.0.1:9464, found '${base}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new TypeError(`expected an http:// or https:// URL such as http://127.0.0.1:9464, found '${base}'`);
  const readyUrl = endpoint(url, '/readyz');
  const ready = await get(readyUrl, options.signal);
  const readyBody = await ready.text();
  if (ready.status !== 200 && ready.status !== 503)
    throw new ScrapeError(readyUrl, `expected 200 or 503, got ${ready.status}`);
  let failing: string[] = [];
  if (ready.status === 503) {
    try {
      const body = JSON.parse(readyBody) as { checks?: Array<{ name?: string; ok?: boolean; detail?: string }> };
      failing = (body.checks ?? [])
        .filter((c) => c.ok === false)
        .map((c) => `${c.name ?? '?'}${c.detail ? `: ${c.detail}` : ''}`);
    } catch {
      failing = ['(the /readyz body is not JSON)'];
    }
  }
  const metricsUrl = endpoint(url, '/metrics');
  const metrics = await get(metricsUrl, options.signal);
  const text = await metrics.text();
  if (metrics.status !== 200) throw new ScrapeError(metricsUrl, `expected 200, got ${metrics.status}`);
  let samples: Sample[];
  try {
    samples = parsePrometheusText(text);
  } catch (err) {
    throw new ScrapeError(metricsUrl, errorMessage(err));
  }
  return { url: base, at: Date.now(), readiness: { ready: ready.status === 200, failing }, samples };
}
