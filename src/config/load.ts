/**
 * Loading the configuration: embedded defaults (`config/default.json`), then an optional file, then environment
 * variables, then `env:NAME` references resolved, then one validation against `config/schema.json` and the rules
 * a schema cannot say. Every problem is collected (not just the first) and names where the value came from, the
 * key path, what was expected and what was found; secrets are never printed.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { ConfigError, isConfigError, type ConfigProblem } from '../errors.js';
import { configPath } from '../paths.js';
import { parseCallbackKeys, type CallbackKeys } from '../correlation/index.js';
import type { LoadedConfig, RelayConfig } from './types.js';

/** Environment variables that override configuration keys. */
export const ENV_OVERRIDES: Readonly<Record<string, string>> = {
  SERVICEBUS_CONNECTION_STRING: 'serviceBus.connectionString',
  SERVICEBUS_NAMESPACE: 'serviceBus.namespace',
  DATAVERSE_URL: 'dataverse.url',
  DATAVERSE_AUTH: 'dataverse.auth',
  DATAVERSE_TENANT_ID: 'dataverse.tenantId',
  DATAVERSE_CLIENT_ID: 'dataverse.clientId',
  DATAVERSE_CLIENT_SECRET: 'dataverse.clientSecret',
  DATAVERSE_LIMITS_WINDOW_MS: 'dataverse.limitsWindowMs',
  DATAVERSE_REQUEST_BUDGET: 'dataverse.requestBudget',
  DATAVERSE_EXECUTION_BUDGET_MS: 'dataverse.executionBudgetMs',
  DATAVERSE_MAX_CONCURRENCY: 'dataverse.maxConcurrency',
  CHANNELS_FILE: 'channelsFile',
  LOG_LEVEL: 'log.level',
  HEALTH_HOST: 'health.host',
  HEALTH_PORT: 'health.port',
  SHUTDOWN_BUDGET_MS: 'shutdown.budgetMs',
  INTAKE_BATCH_SIZE: 'intake.batchSize',
  INTAKE_MAX_BYTES_IN_FLIGHT: 'intake.maxBytesInFlight',
  DISPATCH_MAX_SESSIONS: 'dispatch.maxSessions',
  RECORDER_BATCH_SIZE: 'recorder.batchSize',
  CALLBACKS_PORT: 'callbacks.port',
  CALLBACK_SIGNING_KEYS: 'callbacks.signingKeys',
  CALLBACKS_REPLY_CACHE_MAX_AGE_MS: 'callbacks.replyCacheMaxAgeMs',
};

/**
 * Keys renamed, old name → new name. A file that still uses an old name keeps working: its value is read under the new
 * name (unless the same file sets that too) and `LoadedConfig.warnings` names the file and the key.
 */
export const RENAMED_KEYS: Readonly<Record<string, string>> = {
  'dispatch.maxAttempts': 'dispatch.retry.attempts',
};

/** The environment variable naming an extra configuration file. */
export const CONFIG_FILE_ENV = 'CHANNEL_RELAY_CONFIG';

export interface LoadConfigOptions {
  /** A configuration file merged over the defaults. @defaultValue env CHANNEL_RELAY_CONFIG, else none */
  file?: string;
  /** @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Base for relative paths from the environment and for display. @defaultValue process.cwd() */
  cwd?: string;
  /**
   * Also require what the workers need to run: a Service Bus connection (string or namespace), a Dataverse URL
   * and a readable channels file. @defaultValue true
   */
  forWorkers?: boolean;
  /**
   * With `forWorkers`: also require a Dataverse URL. Dispatch never calls Dataverse; intake, the recorder and the
   * callbacks service do. @defaultValue true
   */
  needsDataverse?: boolean;
  /** With `forWorkers`: also require a readable channels file. The recorder uses no channel. @defaultValue true */
  needsChannels?: boolean;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };
/** The subset of JSON Schema the configuration schemas use. */
export interface Schema {
  type?: string;
  enum?: string[];
  secret?: boolean;
  properties?: Record<string, Schema>;
  [k: string]: unknown;
}

/** A secret's reference in a file: `env:NAME`. */
export const ENV_REF = /^env:([A-Za-z_][A-Za-z0-9_]*)$/;

export interface CompiledSchema {
  schema: Schema;
  validate: ReturnType<Ajv['compile']>;
}

const compiled = new Map<string, CompiledSchema>();
/** A schema file of `config/` with its validator (ajv, every error, the `secret` keyword), compiled once. */
export function compiledSchema(file: string): CompiledSchema {
  let c = compiled.get(file);
  if (!c) {
    const schema = JSON.parse(readFileSync(configPath(file), 'utf8')) as Schema;
    const ajv = new Ajv({ allErrors: true, strict: true });
    ajv.addKeyword({ keyword: 'secret', schemaType: 'boolean' });
    c = { schema, validate: ajv.compile(schema) };
    compiled.set(file, c);
  }
  return c;
}

function schemaAndValidator(): CompiledSchema {
  return compiledSchema('schema.json');
}

function schemaAt(schema: Schema, keyPath: string): Schema | undefined {
  let node: Schema | undefined = schema;
  for (const part of keyPath.split('.').filter(Boolean))
    node = /^\d+$/.test(part) ? (node?.['items'] as Schema | undefined) : node?.properties?.[part];
  return node;
}

/** Dotted paths of every key the schema marks `secret`. */
export function secretPaths(): string[] {
  const out: string[] = [];
  const walk = (node: Schema, prefix: string): void => {
    for (const [k, child] of Object.entries(node.properties ?? {})) {
      const p = prefix ? `${prefix}.${k}` : k;
      if (child.secret) out.push(p);
      walk(child, p);
    }
  };
  walk(schemaAndValidator().schema, '');
  return out;
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getPath(obj: JsonObject, keyPath: string): Json | undefined {
  let node: Json | undefined = obj;
  for (const part of keyPath.split('.').filter(Boolean)) node = isObject(node) ? node[part] : undefined;
  return node;
}

function setPath(obj: JsonObject, keyPath: string, value: Json): void {
  const parts = keyPath.split('.');
  let node = obj;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (!isObject(next)) node[part] = {};
    node = node[part] as JsonObject;
  }
  node[parts[parts.length - 1] as string] = value;
}

function deletePath(obj: JsonObject, keyPath: string): void {
  const parent = getPath(obj, keyPath.split('.').slice(0, -1).join('.'));
  if (isObject(parent)) delete parent[keyPath.split('.').pop() as string];
}

/** Deep-merges `layer` into `target`, recording the origin of each leaf. */
function mergeLayer(
  target: JsonObject,
  layer: JsonObject,
  source: string,
  origins: Record<string, string>,
  prefix = '',
): void {
  for (const [k, v] of Object.entries(layer)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (isObject(v) && isObject(target[k])) {
      mergeLayer(target[k] as JsonObject, v, source, origins, p);
    } else {
      target[k] = structuredClone(v);
      origins[p] = source;
      if (isObject(v)) recordLeaves(v, source, origins, p);
    }
  }
}

function recordLeaves(obj: JsonObject, source: string, origins: Record<string, string>, prefix: string): void {
  for (const [k, v] of Object.entries(obj)) {
    const p = `${prefix}.${k}`;
    origins[p] = source;
    if (isObject(v)) recordLeaves(v, source, origins, p);
  }
}

/** The origin of a key path: its own, or its nearest ancestor's. */
function originOf(origins: Record<string, string>, keyPath: string, fallback: string): string {
  for (let p = keyPath; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const o = origins[p];
    if (o) return o;
  }
  return fallback;
}

/** How a found value is shown: JSON, shortened; secrets only by length. */
export function renderFound(value: unknown, secret = false): string {
  if (value === undefined) return 'nothing';
  if (secret && typeof value === 'string') return `a ${value.length}-character value (hidden)`;
  const text = JSON.stringify(value) ?? String(value);
  const short = text.length > 60 ? `${text.slice(0, 57)}...` : text;
  const type = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
  return `${short} (${type})`;
}

function envHint(keyPath: string): string {
  const name = Object.keys(ENV_OVERRIDES).find((n) => ENV_OVERRIDES[n] === keyPath);
  return name ? ` (or set ${name})` : '';
}

function readLayer(file: string, display: string, problems: ConfigProblem[]): JsonObject | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    problems.push({ source: display, path: '', expected: 'a readable JSON file', found: reason });
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    problems.push({
      source: display,
      path: '',
      expected: 'valid JSON',
      found: `a syntax error: ${(err as Error).message}`,
    });
    return undefined;
  }
  if (!isObject(parsed)) {
    problems.push({ source: display, path: '', expected: 'a JSON object', found: renderFound(parsed) });
    return undefined;
  }
  return parsed;
}

/** Coerces an environment string to the type the schema wants at that key, when it cleanly can. */
function coerceEnv(schema: Schema, keyPath: string, raw: string): Json {
  const type = schemaAt(schema, keyPath)?.type;
  if ((type === 'integer' || type === 'number') && /^-?\d+(\.\d+)?$/.test(raw.trim())) return Number(raw);
  if (type === 'boolean' && /^(true|false)$/i.test(raw.trim())) return raw.trim().toLowerCase() === 'true';
  return raw;
}

/** What an ajv error means, as a key path, an expectation and (when known) a finding. Shared with the channels file. */
export function describeAjvError(
  e: ErrorObject,
  schema: Schema,
): { keyPath: string; expected: string; found?: string } {
  const base = e.instancePath.split('/').filter(Boolean).join('.');
  const join = (k: string): string => (base ? `${base}.${k}` : k);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const key = join(String(p['missingProperty']));
      return { keyPath: key, expected: `a value${envHint(key)}`, found: 'nothing' };
    }
    case 'additionalProperties': {
      const known = Object.keys(schemaAt(schema, base)?.properties ?? {});
      return {
        keyPath: join(String(p['additionalProperty'])),
        expected: `only known keys (${known.join(', ')})`,
        found: 'an unknown key',
      };
    }
    case 'enum':
      return {
        keyPath: base,
        expected: `one of ${(p['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      };
    case 'type':
      return { keyPath: base, expected: `a value of type ${String(p['type'])}` };
    case 'minimum':
    case 'maximum':
      return { keyPath: base, expected: `a number ${String(p['comparison'])} ${String(p['limit'])}` };
    case 'minLength':
      return { keyPath: base, expected: `a string of at least ${String(p['limit'])} character(s)` };
    case 'pattern':
      return { keyPath: base, expected: `a string matching ${String(p['pattern'])}` };
    default:
      return { keyPath: base, expected: `a value that ${e.message ?? 'is valid'}` };
  }
}

/**
 * Loads, merges, resolves and validates the configuration. Throws a `ConfigError` listing every problem.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const forWorkers = options.forWorkers ?? true;
  const { schema, validate } = schemaAndValidator();
  const display = (file: string): string => path.relative(cwd, file) || file;

  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  const origins: Record<string, string> = {};
  const merged: JsonObject = {};
  const files: string[] = [];
  /** Files whose relative paths resolve against their own folder; env values against cwd. */
  const baseDirOf: Record<string, string> = {};

  const defaultsFile = configPath('default.json');
  const userFile =
    options.file ?? (env[CONFIG_FILE_ENV] ? path.resolve(cwd, env[CONFIG_FILE_ENV] as string) : undefined);
  for (const file of [defaultsFile, ...(userFile ? [path.resolve(cwd, userFile)] : [])]) {
    const layer = readLayer(file, display(file), problems);
    if (!layer) continue;
    files.push(file);
    baseDirOf[display(file)] = path.dirname(file);
    warnings.push(...renameKeys(layer, display(file)));
    // A secret written literally into a file is refused before anything else sees it.
    for (const secret of secretPaths()) {
      const v = getPath(layer, secret);
      if (typeof v === 'string' && !ENV_REF.test(v)) {
        problems.push({
          source: display(file),
          path: secret,
          expected: 'an env:NAME reference (secrets are read only from the environment)',
          found: renderFound(v, true),
        });
        deletePath(layer, secret);
      }
    }
    mergeLayer(merged, layer, display(file), origins);
  }

  for (const [name, keyPath] of Object.entries(ENV_OVERRIDES)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    setPath(merged, keyPath, coerceEnv(schema, keyPath, raw));
    origins[keyPath] = `environment variable ${name}`;
  }

  resolveEnvRefs(merged, '', env, origins, problems);

  if (!validate(merged)) {
    for (const e of validate.errors ?? []) {
      const { keyPath, expected, found } = describeAjvError(e, schema);
      const secret = secretPaths().includes(keyPath);
      problems.push({
        source: originOf(origins, keyPath, display(userFile ? path.resolve(cwd, userFile) : defaultsFile)),
        path: keyPath,
        expected,
        found: found ?? renderFound(getPath(merged, keyPath), secret),
      });
    }
  }

  const config = merged as unknown as RelayConfig;
  if (typeof config.channelsFile === 'string') {
    const source = originOf(origins, 'channelsFile', display(defaultsFile));
    config.channelsFile = path.resolve(baseDirOf[source] ?? cwd, config.channelsFile);
  }
  const needs = { dataverse: options.needsDataverse ?? true, channels: options.needsChannels ?? true };
  const checked = crossChecks(
    config,
    origins,
    forWorkers,
    needs,
    display(userFile ? path.resolve(cwd, userFile) : defaultsFile),
  );
  problems.push(...checked.problems);

  if (problems.length > 0) throw new ConfigError('ConfigInvalid', dedupe(problems));
  return {
    config,
    files,
    origins,
    warnings,
    ...(checked.callbackKeys === undefined ? {} : { callbackKeys: checked.callbackKeys }),
  };
}

/** Moves the values of `RENAMED_KEYS`' old names in one file's layer to their new names; one warning per old name found. */
function renameKeys(layer: JsonObject, file: string): string[] {
  const warnings: string[] = [];
  for (const [old, current] of Object.entries(RENAMED_KEYS)) {
    const value = getPath(layer, old);
    if (value === undefined) continue;
    deletePath(layer, old);
    if (getPath(layer, current) === undefined) {
      setPath(layer, current, value);
      warnings.push(`${file}: ${old} is deprecated: read as ${current}; rename it`);
    } else {
      warnings.push(`${file}: ${old} is deprecated and ignored: the file also sets ${current}; remove it`);
    }
  }
  return warnings;
}

function resolveEnvRefs(
  node: JsonObject,
  prefix: string,
  env: NodeJS.ProcessEnv,
  origins: Record<string, string>,
  problems: ConfigProblem[],
): void {
  for (const [k, v] of Object.entries(node)) {
    const p = prefix ? `${prefix}.${k}` : k;
    if (isObject(v)) {
      resolveEnvRefs(v, p, env, origins, problems);
      continue;
    }
    const m = typeof v === 'string' ? ENV_REF.exec(v) : null;
    if (!m) continue;
    const name = m[1] as string;
    const value = env[name];
    if (value === undefined || value === '') {
      problems.push({
        source: origins[p] ?? 'configuration',
        path: p,
        expected: `environment variable ${name} to be set (the value is "env:${name}")`,
        found: 'it unset',
      });
      delete node[k];
    } else {
      node[k] = value;
      origins[p] = `environment variable ${name} (via ${origins[p] ?? 'configuration'})`;
    }
  }
}

/**
 * Rules across keys that the schema cannot state, and `callbacks.signingKeys` parsed: the one place the callback keys
 * are read (the relay and the stages take them as given, from `LoadedConfig.callbackKeys`).
 */
function crossChecks(
  config: RelayConfig,
  origins: Record<string, string>,
  forWorkers: boolean,
  needs: { dataverse: boolean; channels: boolean },
  fallback: string,
): { problems: ConfigProblem[]; callbackKeys?: CallbackKeys } {
  const out: ConfigProblem[] = [];
  let callbackKeys: CallbackKeys | undefined;
  const sb = config.serviceBus;
  const dv = config.dataverse;
  if (sb?.connectionString !== undefined && typeof sb.connectionString === 'string') {
    const endpoint = /(?:^|;)\s*Endpoint\s*=\s*sb:\/\/[^;]+/i.test(sb.connectionString);
    if (!endpoint) {
      out.push({
        source: originOf(origins, 'serviceBus.connectionString', fallback),
        path: 'serviceBus.connectionString',
        expected: 'a Service Bus connection string with Endpoint=sb://…',
        found: renderFound(sb.connectionString, true),
      });
    }
  }
  if (dv?.url !== undefined && typeof dv.url === 'string') {
    if (!isHttpUrl(dv.url)) {
      out.push({
        source: originOf(origins, 'dataverse.url', fallback),
        path: 'dataverse.url',
        expected: 'an http(s) URL such as https://contoso.crm.dynamics.com',
        found: renderFound(dv.url),
      });
    }
  }
  // A process that never calls Dataverse (dispatch) needs no Dataverse identity either.
  if (dv?.auth === 'client-secret' && (!forWorkers || needs.dataverse)) {
    for (const key of ['tenantId', 'clientId', 'clientSecret'] as const) {
      if (!dv[key]) {
        out.push({
          source: originOf(origins, 'dataverse.auth', fallback),
          path: `dataverse.${key}`,
          expected: `a value, because dataverse.auth is "client-secret"${envHint(`dataverse.${key}`)}`,
          found: 'nothing',
        });
      }
    }
  }
  const conv = config.conversations;
  const atLeast = (key: string, value: unknown, minKey: string, min: unknown): void => {
    if (typeof value === 'number' && typeof min === 'number' && value < min)
      out.push({
        source: originOf(origins, key, fallback),
        path: key,
        expected: `at least ${minKey} (${min})`,
        found: renderFound(value),
      });
  };
  atLeast(
    'conversations.maxPollIntervalMs',
    conv?.maxPollIntervalMs,
    'conversations.pollIntervalMs',
    conv?.pollIntervalMs,
  );
  atLeast(
    'conversations.retry.maxDelayMs',
    conv?.retry?.maxDelayMs,
    'conversations.retry.initialDelayMs',
    conv?.retry?.initialDelayMs,
  );
  const keys = config.callbacks?.signingKeys;
  if (typeof keys === 'string') {
    try {
      callbackKeys = parseCallbackKeys(keys, originOf(origins, 'callbacks.signingKeys', fallback));
    } catch (err) {
      if (!isConfigError(err)) throw err;
      out.push(...err.problems);
    }
  }
  if (forWorkers) {
    if (sb && !sb.connectionString && !sb.namespace) {
      out.push({
        source: fallback,
        path: 'serviceBus.connectionString',
        expected:
          'a connection string (set SERVICEBUS_CONNECTION_STRING) or serviceBus.namespace for identity-based access (set SERVICEBUS_NAMESPACE)',
        found: 'neither',
      });
    }
    if (needs.dataverse && dv && !dv.url) {
      out.push({
        source: fallback,
        path: 'dataverse.url',
        expected: `the org URL${envHint('dataverse.url')}`,
        found: 'nothing',
      });
    }
    if (needs.channels && typeof config.channelsFile === 'string') {
      const readable = existsSync(config.channelsFile) && statSync(config.channelsFile).isFile();
      if (!readable) {
        out.push({
          source: originOf(origins, 'channelsFile', fallback),
          path: 'channelsFile',
          expected: 'a readable channels file',
          found: `no file at ${config.channelsFile}`,
        });
      }
    }
  }
  return { problems: out, ...(callbackKeys === undefined ? {} : { callbackKeys }) };
}

/** Whether `text` is an http: or https: URL. */
export function isHttpUrl(text: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

/** One problem per key: the first found is the most specific (a later one is usually its consequence). */
function dedupe(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = p.path ? p.path : `${p.source}|${p.expected}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
