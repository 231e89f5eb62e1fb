/**
 * Microsoft's Service Bus emulator `Config.json`, loaded unchanged: `UserConfig.Namespaces[].Queues / Topics /
 * Subscriptions / Rules`, with Microsoft's emulator's defaults. A bad file is rejected with every problem, each with
 * its JSON path and the reason.
 *
 * Ranges: a file is checked against Azure Service Bus's (`ranges: 'azure'`, the default: what this emulator stands
 * for) or against Microsoft's emulator's, which are narrower (`'microsoft-emulator'`, for a file that Microsoft's
 * emulator is to load, such as docker-compose.yml's); configuration given in code may use smaller durations (down to
 * 1 ms) so that tests can expire locks and messages quickly.
 */
import { readFileSync } from 'node:fs';
import { formatIsoDuration, parseIsoDuration } from '../../duration.js';
import { ServiceBusEmulatorConfigError, type ConfigIssue } from './errors.js';

/** A correlation filter: every field that is set must equal the message's. */
export interface CorrelationFilter {
  contentType?: string;
  correlationId?: string;
  subject?: string;
  messageId?: string;
  replyTo?: string;
  replyToSessionId?: string;
  sessionId?: string;
  to?: string;
  properties?: Record<string, string | number | boolean>;
}

/** A subscription rule: `filter` undefined means "every message" (a true filter). */
export interface RuleDefinition {
  name: string;
  filter?: CorrelationFilter;
}

/** Settings of an entity that holds messages (a queue or a subscription). */
export interface StoreSettings {
  lockDurationMs: number;
  maxDeliveryCount: number;
  defaultTtlMs: number;
  deadLetterOnExpiration: boolean;
  requiresSession: boolean;
}

export interface QueueDefinition extends StoreSettings {
  name: string;
  requiresDuplicateDetection: boolean;
  duplicateWindowMs: number;
}

export interface SubscriptionDefinition extends StoreSettings {
  name: string;
  rules: RuleDefinition[];
}

export interface TopicDefinition {
  name: string;
  defaultTtlMs: number;
  requiresDuplicateDetection: boolean;
  duplicateWindowMs: number;
  subscriptions: SubscriptionDefinition[];
}

/** The entities of the one namespace, ready to use. */
export interface NamespaceDefinition {
  name: string;
  queues: QueueDefinition[];
  topics: TopicDefinition[];
}

/** The namespace name Microsoft's emulator fixes. */
export const EMULATOR_NAMESPACE = 'sbemulatorns';

interface Range {
  min: number;
  max: number;
}

/** The documented ranges a file is checked against: Azure Service Bus's, or Microsoft's emulator's (narrower). */
export type ConfigRanges = 'azure' | 'microsoft-emulator';

/** One set of ranges, and what its messages call it. */
interface RangeSet {
  label: string;
  queueLock: Range;
  subscriptionLock: Range;
  ttl: Range;
  dup: Range;
  maxDelivery: Range;
  /** Microsoft's emulator: the namespace name it fixes, and its entity counts. */
  emulator?: { namespace: string; entities: number; subscriptions: number; rules: number };
}

/** .NET's TimeSpan.MaxValue in ms: Azure's default (and largest) message time to live. */
const TIMESPAN_MAX_MS = 922_337_203_685_477;

/**
 * Azure Service Bus (Standard and Premium), as the SDKs enforce it: Azure.Messaging.ServiceBus
 * `Administration/AdministrationClientConstants.cs` (MinimumLockDuration 5 s, MaximumLockDuration 5 min,
 * MinimumAllowedTimeToLive 1 s, MaximumAllowedTimeToLive TimeSpan.MaxValue, duplicate detection window 20 s to 7 days,
 * MinAllowedMaxDeliveryCount 1; no maximum delivery count is documented: the property is a 32-bit integer).
 */
const AZURE: RangeSet = {
  label: "Azure Service Bus's range",
  queueLock: { min: 5_000, max: 300_000 },
  subscriptionLock: { min: 5_000, max: 300_000 },
  ttl: { min: 1_000, max: TIMESPAN_MAX_MS },
  dup: { min: 20_000, max: 7 * 86_400_000 },
  maxDelivery: { min: 1, max: 2_147_483_647 },
};

/**
 * Microsoft's Service Bus emulator, from its schema (Azure/azure-service-bus-emulator-installer,
 * `ServiceBus-Emulator/Schema/Config-schema.json`): queue LockDuration PT5S–PT5M, a subscription's PT1M–PT5M,
 * DefaultMessageTimeToLive PT5M–PT1H, DuplicateDetectionHistoryTimeWindow PT5S–PT5M, MaxDeliveryCount 1–10, the
 * namespace named "sbemulatorns", at most 50 queues and topics, 50 subscriptions per topic, 1000 rules.
 */
const MICROSOFT_EMULATOR: RangeSet = {
  label: "Microsoft's Service Bus emulator's range (its Config-schema.json)",
  queueLock: { min: 5_000, max: 300_000 },
  subscriptionLock: { min: 60_000, max: 300_000 },
  ttl: { min: 300_000, max: 3_600_000 },
  dup: { min: 5_000, max: 300_000 },
  maxDelivery: { min: 1, max: 10 },
  emulator: { namespace: 'sbemulatorns', entities: 50, subscriptions: 50, rules: 1000 },
};

/** Configuration given in code: anything positive, for fast tests. */
const RELAXED: RangeSet = {
  label: 'the range for configuration in code',
  queueLock: { min: 1, max: 300_000 },
  subscriptionLock: { min: 1, max: 300_000 },
  ttl: { min: 1, max: TIMESPAN_MAX_MS },
  dup: { min: 1, max: 7 * 86_400_000 },
  maxDelivery: { min: 1, max: 2_147_483_647 },
};

const RANGE_SETS: Record<ConfigRanges, RangeSet> = { azure: AZURE, 'microsoft-emulator': MICROSOFT_EMULATOR };

const DEFAULTS = {
  lockMs: 60_000,
  ttlMs: 3_600_000,
  dupMs: 20_000,
  maxDelivery: 3,
} as const;

const ENTITY_NAME = /^[A-Za-z0-9][A-Za-z0-9._\-/]{0,259}$/;

type Json = Record<string, unknown>;

class Checker {
  readonly issues: ConfigIssue[] = [];
  constructor(readonly ranges: RangeSet) {}

  problem(path: string, reason: string): void {
    this.issues.push({ path, reason });
  }

  object(value: unknown, path: string): Json | undefined {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Json;
    this.problem(path, `expected an object, found ${describe(value)}`);
    return undefined;
  }

  array(value: unknown, path: string, optional = true): unknown[] {
    if (value === undefined && optional) return [];
    if (Array.isArray(value)) return value;
    this.problem(path, `expected an array, found ${describe(value)}`);
    return [];
  }

  /** Reports keys that are not among `known` (a typo would otherwise be silently ignored). */
  known(obj: Json, path: string, known: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!known.includes(key)) this.problem(`${path}.${key}`, `unknown property; expected one of ${known.join(', ')}`);
    }
  }

  name(value: unknown, path: string): string {
    if (typeof value === 'string' && ENTITY_NAME.test(value)) return value;
    this.problem(path, `expected an entity name (1-260 letters, digits, '.', '-', '_', '/'), found ${describe(value)}`);
    return '';
  }

  bool(obj: Json, key: string, path: string, fallback: boolean): boolean {
    const value = obj[key];
    if (value === undefined) return fallback;
    if (typeof value === 'boolean') return value;
    this.problem(`${path}.${key}`, `expected true or false, found ${describe(value)}`);
    return fallback;
  }

  duration(obj: Json, key: string, path: string, fallback: number, range: Range): number {
    const value = obj[key];
    if (value === undefined) return fallback;
    const ms = typeof value === 'string' ? parseIsoDuration(value) : undefined;
    if (ms === undefined) {
      this.problem(`${path}.${key}`, `expected an ISO 8601 duration such as PT1M, found ${describe(value)}`);
      return fallback;
    }
    if (ms < range.min || ms > range.max) {
      this.problem(
        `${path}.${key}`,
        `expected a duration from ${formatIsoDuration(range.min)} to ${formatIsoDuration(range.max)} (${this.ranges.label}), found ${String(value)}`,
      );
      return fallback;
    }
    return ms;
  }

  integer(obj: Json, key: string, path: string, fallback: number, range: Range): number {
    const value = obj[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range.min || value > range.max) {
      this.problem(
        `${path}.${key}`,
        `expected an integer from ${range.min} to ${range.max} (${this.ranges.label}), found ${describe(value)}`,
      );
      return fallback;
    }
    return value;
  }

  /** ForwardTo and ForwardDeadLetteredMessagesTo: accepted empty (Microsoft's template writes ""), refused otherwise. */
  noForwarding(obj: Json, path: string): void {
    for (const key of ['ForwardTo', 'ForwardDeadLetteredMessagesTo']) {
      const value = obj[key];
      if (value !== undefined && value !== '' && value !== null) {
        this.problem(
          `${path}.${key}`,
          `auto-forwarding is not supported by this emulator; expected "" or nothing, found ${describe(value)}`,
        );
      }
    }
  }

  /** A queue's or subscription's settings (`lock`: which LockDuration range applies). */
  storeSettings(props: Json, path: string, lock: Range): StoreSettings {
    const r = this.ranges;
    return {
      lockDurationMs: this.duration(props, 'LockDuration', path, DEFAULTS.lockMs, lock),
      maxDeliveryCount: this.integer(props, 'MaxDeliveryCount', path, DEFAULTS.maxDelivery, r.maxDelivery),
      defaultTtlMs: this.duration(props, 'DefaultMessageTimeToLive', path, DEFAULTS.ttlMs, r.ttl),
      deadLetterOnExpiration: this.bool(props, 'DeadLetteringOnMessageExpiration', path, false),
      requiresSession: this.bool(props, 'RequiresSession', path, false),
    };
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const QUEUE_PROPS = [
  'DeadLetteringOnMessageExpiration',
  'DefaultMessageTimeToLive',
  'DuplicateDetectionHistoryTimeWindow',
  'ForwardDeadLetteredMessagesTo',
  'ForwardTo',
  'LockDuration',
  'MaxDeliveryCount',
  'RequiresDuplicateDetection',
  'RequiresSession',
] as const;
const TOPIC_PROPS = [
  'DefaultMessageTimeToLive',
  'DuplicateDetectionHistoryTimeWindow',
  'RequiresDuplicateDetection',
] as const;
const SUBSCRIPTION_PROPS = [
  'DeadLetteringOnMessageExpiration',
  'DefaultMessageTimeToLive',
  'ForwardDeadLetteredMessagesTo',
  'ForwardTo',
  'LockDuration',
  'MaxDeliveryCount',
  'RequiresSession',
] as const;
const CORRELATION_FIELDS: ReadonlyArray<readonly [string, keyof Omit<CorrelationFilter, 'properties'>]> = [
  ['ContentType', 'contentType'],
  ['CorrelationId', 'correlationId'],
  ['Label', 'subject'],
  ['MessageId', 'messageId'],
  ['ReplyTo', 'replyTo'],
  ['ReplyToSessionId', 'replyToSessionId'],
  ['SessionId', 'sessionId'],
  ['To', 'to'],
];
/** SQL expressions that mean "every message"; other SQL filters are not supported. */
const TRUE_SQL = /^\s*(1\s*=\s*1|true)\s*$/i;

function parseRule(c: Checker, raw: unknown, path: string): RuleDefinition | undefined {
  const rule = c.object(raw, path);
  if (!rule) return undefined;
  c.known(rule, path, ['Name', 'Properties']);
  const name = c.name(rule['Name'], `${path}.Name`);
  const props = c.object(rule['Properties'], `${path}.Properties`);
  if (!props) return undefined;
  const pp = `${path}.Properties`;
  c.known(props, pp, ['FilterType', 'CorrelationFilter', 'SqlFilter', 'Action']);
  if (props['Action'] !== undefined && props['Action'] !== null) {
    const action = c.object(props['Action'], `${pp}.Action`);
    if (action && typeof action['SqlExpression'] === 'string' && action['SqlExpression'].trim() !== '') {
      c.problem(`${pp}.Action.SqlExpression`, 'rule actions are not supported by this emulator; expected none');
    }
  }
  if (props['FilterType'] === 'Sql') {
    const sql = c.object(props['SqlFilter'], `${pp}.SqlFilter`);
    const expr = sql?.['SqlExpression'];
    if (sql && (typeof expr !== 'string' || !TRUE_SQL.test(expr))) {
      c.problem(
        `${pp}.SqlFilter.SqlExpression`,
        `only the true filter "1=1" is supported among SQL filters, found ${describe(expr)}`,
      );
    }
    return { name };
  }
  if (props['FilterType'] !== 'Correlation') {
    c.problem(`${pp}.FilterType`, `expected "Correlation" or "Sql", found ${describe(props['FilterType'])}`);
    return undefined;
  }
  const cf = c.object(props['CorrelationFilter'], `${pp}.CorrelationFilter`);
  if (!cf) return undefined;
  const cfp = `${pp}.CorrelationFilter`;
  c.known(cf, cfp, [...CORRELATION_FIELDS.map(([k]) => k), 'Properties']);
  const filter: CorrelationFilter = {};
  for (const [key, field] of CORRELATION_FIELDS) {
    const value = cf[key];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string') c.problem(`${cfp}.${key}`, `expected a string, found ${describe(value)}`);
    else filter[field] = value;
  }
  if (cf['Properties'] !== undefined) {
    const userProps = c.object(cf['Properties'], `${cfp}.Properties`) ?? {};
    const properties: Record<string, string | number | boolean> = {};
    for (const [key, value] of Object.entries(userProps)) {
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') properties[key] = value;
      else c.problem(`${cfp}.Properties.${key}`, `expected a string, number or boolean, found ${describe(value)}`);
    }
    if (Object.keys(properties).length > 0) filter.properties = properties;
  }
  if (Object.keys(filter).length === 0) c.problem(cfp, 'expected at least one field to match on');
  return { name, filter };
}

function parseQueue(c: Checker, raw: unknown, path: string): QueueDefinition | undefined {
  const q = c.object(raw, path);
  if (!q) return undefined;
  c.known(q, path, ['Name', 'Properties']);
  const name = c.name(q['Name'], `${path}.Name`);
  const props = q['Properties'] === undefined ? {} : (c.object(q['Properties'], `${path}.Properties`) ?? {});
  const pp = `${path}.Properties`;
  c.known(props, pp, QUEUE_PROPS);
  c.noForwarding(props, pp);
  return {
    name,
    ...c.storeSettings(props, pp, c.ranges.queueLock),
    requiresDuplicateDetection: c.bool(props, 'RequiresDuplicateDetection', pp, false),
    duplicateWindowMs: c.duration(props, 'DuplicateDetectionHistoryTimeWindow', pp, DEFAULTS.dupMs, c.ranges.dup),
  };
}

function parseSubscription(
  c: Checker,
  raw: unknown,
  path: string,
  topicTtlMs: number,
): SubscriptionDefinition | undefined {
  const s = c.object(raw, path);
  if (!s) return undefined;
  c.known(s, path, ['Name', 'Properties', 'Rules']);
  const name = c.name(s['Name'], `${path}.Name`);
  const props = s['Properties'] === undefined ? {} : (c.object(s['Properties'], `${path}.Properties`) ?? {});
  const pp = `${path}.Properties`;
  c.known(props, pp, SUBSCRIPTION_PROPS);
  c.noForwarding(props, pp);
  const settings = c.storeSettings(props, pp, c.ranges.subscriptionLock);
  if (props['DefaultMessageTimeToLive'] === undefined) settings.defaultTtlMs = topicTtlMs;
  const rules = c
    .array(s['Rules'], `${path}.Rules`)
    .map((r, i) => parseRule(c, r, `${path}.Rules[${i}]`))
    .filter((r): r is RuleDefinition => r !== undefined);
  uniqueNames(c, rules, `${path}.Rules`);
  return { name, ...settings, rules };
}

function parseTopic(c: Checker, raw: unknown, path: string): TopicDefinition | undefined {
  const t = c.object(raw, path);
  if (!t) return undefined;
  c.known(t, path, ['Name', 'Properties', 'Subscriptions']);
  const name = c.name(t['Name'], `${path}.Name`);
  const props = t['Properties'] === undefined ? {} : (c.object(t['Properties'], `${path}.Properties`) ?? {});
  const pp = `${path}.Properties`;
  c.known(props, pp, TOPIC_PROPS);
  const defaultTtlMs = c.duration(props, 'DefaultMessageTimeToLive', pp, DEFAULTS.ttlMs, c.ranges.ttl);
  const rawSubs = c.array(t['Subscriptions'], `${path}.Subscriptions`, false);
  if (Array.isArray(t['Subscriptions']) && rawSubs.length === 0)
    c.problem(`${path}.Subscriptions`, 'expected at least one subscription');
  const subscriptions = rawSubs
    .map((s, i) => parseSubscription(c, s, `${path}.Subscriptions[${i}]`, defaultTtlMs))
    .filter((s): s is SubscriptionDefinition => s !== undefined);
  uniqueNames(c, subscriptions, `${path}.Subscriptions`);
  return {
    name,
    defaultTtlMs,
    requiresDuplicateDetection: c.bool(props, 'RequiresDuplicateDetection', pp, false),
    duplicateWindowMs: c.duration(props, 'DuplicateDetectionHistoryTimeWindow', pp, DEFAULTS.dupMs, c.ranges.dup),
    subscriptions,
  };
}

function uniqueNames(c: Checker, items: ReadonlyArray<{ name: string }>, path: string): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const key = item.name.toLowerCase();
    if (key && seen.has(key))
      c.problem(`${path}[${i}].Name`, `duplicate name "${item.name}" (names are case-insensitive)`);
    seen.add(key);
  });
}

export interface ParseConfigOptions {
  /** Apply documented ranges (files: `ranges`) or allow small durations (code). @defaultValue true */
  strict?: boolean;
  /** With `strict`: whose ranges. @defaultValue 'azure' */
  ranges?: ConfigRanges;
  /** Names the source in error messages. @defaultValue 'config' */
  source?: string;
}

/** Validates a Config.json object and returns the namespace's entities, or throws every problem at once. */
export function parseEmulatorConfig(raw: unknown, options: ParseConfigOptions = {}): NamespaceDefinition {
  const c = new Checker(options.strict === false ? RELAXED : RANGE_SETS[options.ranges ?? 'azure']);
  const limits = c.ranges.emulator;
  const root = c.object(raw, '$');
  const user = root ? c.object(root['UserConfig'], '$.UserConfig') : undefined;
  const definition: NamespaceDefinition = { name: EMULATOR_NAMESPACE, queues: [], topics: [] };
  if (root) c.known(root, '$', ['UserConfig']);
  if (user) {
    c.known(user, '$.UserConfig', ['Namespaces', 'Logging']);
    const namespaces = c.array(user['Namespaces'], '$.UserConfig.Namespaces', false);
    if (Array.isArray(user['Namespaces']) && namespaces.length !== 1) {
      c.problem('$.UserConfig.Namespaces', `expected exactly one namespace, found ${namespaces.length}`);
    }
    const ns = namespaces[0] === undefined ? undefined : c.object(namespaces[0], '$.UserConfig.Namespaces[0]');
    if (ns) {
      const np = '$.UserConfig.Namespaces[0]';
      c.known(ns, np, ['Name', 'Queues', 'Topics']);
      if (typeof ns['Name'] !== 'string' || ns['Name'] === '')
        c.problem(`${np}.Name`, `expected a namespace name, found ${describe(ns['Name'])}`);
      else if (limits && ns['Name'] !== limits.namespace)
        c.problem(`${np}.Name`, `expected "${limits.namespace}" (${c.ranges.label}), found ${describe(ns['Name'])}`);
      else definition.name = ns['Name'];
      definition.queues = c
        .array(ns['Queues'], `${np}.Queues`)
        .map((q, i) => parseQueue(c, q, `${np}.Queues[${i}]`))
        .filter((q): q is QueueDefinition => q !== undefined);
      definition.topics = c
        .array(ns['Topics'], `${np}.Topics`)
        .map((t, i) => parseTopic(c, t, `${np}.Topics[${i}]`))
        .filter((t): t is TopicDefinition => t !== undefined);
      if (limits) entityCounts(c, ns, np, limits);
      const all = [
        ...definition.queues.map((q, i) => ({ name: q.name, path: `${np}.Queues[${i}].Name` })),
        ...definition.topics.map((t, i) => ({ name: t.name, path: `${np}.Topics[${i}].Name` })),
      ];
      const seen = new Set<string>();
      for (const e of all) {
        const key = e.name.toLowerCase();
        if (key && seen.has(key))
          c.problem(
            e.path,
            `duplicate entity name "${e.name}" (queues and topics share one case-insensitive name space)`,
          );
        seen.add(key);
      }
    }
    if (user['Logging'] !== undefined) {
      const logging = c.object(user['Logging'], '$.UserConfig.Logging');
      const type = logging?.['Type'];
      if (logging && (typeof type !== 'string' || !/^(File|Console|File,\s*Console|Console,\s*File)$/.test(type))) {
        c.problem('$.UserConfig.Logging.Type', `expected "File", "Console" or "File,Console", found ${describe(type)}`);
      }
    }
  }
  if (c.issues.length > 0) throw new ServiceBusEmulatorConfigError(options.source ?? 'config', c.issues);
  return definition;
}

/** Microsoft's emulator's entity counts: queues and topics together, subscriptions per topic, rules per subscription. */
function entityCounts(c: Checker, ns: Json, np: string, limits: NonNullable<RangeSet['emulator']>): void {
  const count = (v: unknown): number => (Array.isArray(v) ? v.length : 0);
  const entities = count(ns['Queues']) + count(ns['Topics']);
  if (entities > limits.entities)
    c.problem(
      `${np}`,
      `expected at most ${limits.entities} queues and topics together (${c.ranges.label}), found ${entities}`,
    );
  const topics = Array.isArray(ns['Topics']) ? (ns['Topics'] as unknown[]) : [];
  topics.forEach((t, i) => {
    const subs =
      typeof t === 'object' && t !== null && Array.isArray((t as Json)['Subscriptions'])
        ? ((t as Json)['Subscriptions'] as unknown[])
        : [];
    if (subs.length > limits.subscriptions)
      c.problem(
        `${np}.Topics[${i}].Subscriptions`,
        `expected at most ${limits.subscriptions} subscriptions (${c.ranges.label}), found ${subs.length}`,
      );
    subs.forEach((s, j) => {
      const rules = typeof s === 'object' && s !== null ? count((s as Json)['Rules']) : 0;
      if (rules > limits.rules)
        c.problem(
          `${np}.Topics[${i}].Subscriptions[${j}].Rules`,
          `expected at most ${limits.rules} rules (${c.ranges.label}), found ${rules}`,
        );
    });
  });
}

/** Reads and validates a Config.json file with Azure's ranges, or Microsoft's emulator's (`ranges`). */
export function loadEmulatorConfigFile(file: string, ranges: ConfigRanges = 'azure'): NamespaceDefinition {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ServiceBusEmulatorConfigError(
      file,
      [{ path: '$', reason: `cannot read the file: ${(err as Error).message}` }],
      { cause: err },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ServiceBusEmulatorConfigError(
      file,
      [{ path: '$', reason: `not valid JSON: ${(err as Error).message}` }],
      { cause: err },
    );
  }
  return parseEmulatorConfig(raw, { strict: true, ranges, source: file });
}
