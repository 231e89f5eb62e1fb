/**
 * Loading `channels.json`: schema validation (`config/channels.schema.json`), secrets from `env:NAME` references only,
 * `${NAME}` interpolation in URLs, the tile XML each channel names (read with the same parser the Dataverse emulator
 * uses), and the rules across keys a schema cannot state. Every problem names the file, the key path, what was
 * expected and what was found, and all are reported at once as one `ConfigError`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { compiledSchema, describeAjvError, ENV_REF, renderFound } from '../config/index.js';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { TELEGRAM_GROUP_SPACING_MS } from '../providers/index.js';
import { resolveMessaging, type MessagingReading, type RawMessaging } from './messaging.js';
import { interpolate, secretFromEnv, type ProblemOf } from './references.js';
import { readTile } from './tile.js';
import {
  DEFAULT_OPT_IN_CONFIRMATION,
  DEFAULT_OPT_IN_MAX_AGE_MS,
  DEFAULT_OPT_IN_WORDS,
  DEFAULT_OPT_OUT_CONFIRMATION,
  DEFAULT_OPT_OUT_WORDS,
  type Channel,
  type ChannelCallbacks,
  type MessagingRegistry,
  type ProviderSettings,
  type UnreadProviderSettings,
} from './types.js';

/**
 * Which channels' provider settings are read (secrets from the environment, `${NAME}` in URLs), for least privilege:
 * - `all`: every channel's (dispatch calls every provider);
 * - `callbacks`: only the channels with a `callbacks` block are loaded, and of those only Twilio's settings (its auth
 *   token verifies `X-Twilio-Signature`, its account and base URL fetch a reply's message) and the contract's (its
 *   signing secret verifies the webhooks); a Telegram channel's updates are verified with `webhookSecretToken`;
 * - `none`: no channel's (intake routes and renders, it never calls a provider).
 * A Telegram channel without `senderKey` still needs its bot token wherever it is loaded: its session key is the bot id
 * the token starts with.
 */
export type ProviderReading = 'all' | 'callbacks' | 'none';

export interface LoadChannelsOptions {
  /** @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Base for the file name shown in errors. @defaultValue process.cwd() */
  cwd?: string;
  /** Which provider settings to read; see {@link ProviderReading}. @defaultValue 'all' */
  providers?: ProviderReading;
  /**
   * Read the secrets of the `callbacks` blocks (`webhookSecretToken`, `previousAuthToken`, `sharedKeySecret`), which only the callbacks
   * service verifies with. @defaultValue true
   */
  callbackSecrets?: boolean;
  /** Which secrets and URLs of the `messaging` accounts to read; see {@link MessagingReading}. @defaultValue 'all' */
  messaging?: MessagingReading;
}

export type LoadMessagingOptions = Pick<LoadChannelsOptions, 'env' | 'cwd' | 'messaging'>;

/** The channels of one relay process, with the lookups the stages need. */
export interface ChannelRegistry {
  /** The file they came from (absolute). */
  readonly file: string;
  all(): readonly Channel[];
  byName(name: string): Channel | undefined;
  /** The `messaging` section: accounts and the relay channels they bridge (empty when the file has none). */
  readonly messaging: MessagingRegistry;
}

/**
 * `concurrency` is the ceiling of a sender's calls in flight (dispatch sizes them below it from rate × latency). 100
 * is Twilio's concurrent API requests per account as a third party quotes it (unofficial, past it 429 20429:
 * twilio.com/docs/api/errors/20429); Telegram and the contract state none. If a provider allowed fewer, its 429 pauses
 * the sender (nothing lost, only slowed) and the channel sets a lower `rateLimit.concurrency`. A higher ceiling never
 * makes a sender faster than its rate: the arrivals are the rate limiter's, whatever the calls in flight.
 */
const DEFAULTS = { intervalMs: 1000, concurrency: 100, perRecipientMs: 0, timeoutMs: 10_000 } as const;
const SECRETS = [
  'authToken',
  'botToken',
  'signingSecret',
  'webhookSecretToken',
  'previousAuthToken',
  'sharedKeySecret',
] as const;
/** Telegram's secret_token: 1-256 characters of A-Z a-z 0-9 _ - (setWebhook). */
const TELEGRAM_SECRET_TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
const REQUIRED_SETTINGS: Record<ProviderSettings['type'], readonly string[]> = {
  twilio: ['accountSid', 'authToken'],
  telegram: ['botToken'],
  contract: ['url', 'signingSecret'],
};

type RawChannel = {
  name: string;
  tile?: string;
  channelDefinitionId?: string;
  provider: Record<string, string>;
  sender: string;
  senderKey?: string;
  addressField?: string;
  textField?: string;
  channelField?: string;
  rateLimit: {
    messages: number;
    intervalMs?: number;
    concurrency?: number;
    perRecipientMs?: number;
    perGroupMs?: number;
  };
  failureResponseType?: string;
  timeoutMs?: number;
  callbacks?: RawCallbacks;
};

type RawCallbacks = {
  publicBaseUrl: string;
  trackLinks?: boolean;
  keywords?: string[] | Record<string, string>;
  optOutWords?: string[];
  optInWords?: string[];
  optInMaxAgeMs?: number;
  optOutConfirmation?: string;
  optInConfirmation?: string;
  webhookSecretToken?: string;
  previousAuthToken?: string;
  sharedKeySecret?: string;
  organizationId?: string;
  deliveredResponseType?: string;
  openedResponseType?: string;
};

/** A channels file read and checked against the schema, with the problem maker of its file. */
interface ChannelsDocument {
  absolute: string;
  doc: { channels: RawChannel[]; messaging?: RawMessaging };
  problem: ProblemOf;
}

/** Reads `file` and checks it against the schema; throws `ConfigError` (`ConfigUnreadable` or `ConfigInvalid`). */
function readDocument(file: string, cwd: string | undefined): ChannelsDocument {
  const absolute = path.resolve(cwd ?? process.cwd(), file);
  const source = path.relative(cwd ?? process.cwd(), absolute) || absolute;
  const problem = (p: string, expected: string, found: string): ConfigProblem => ({ source, path: p, expected, found });

  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(absolute, 'utf8').replace(/^\uFEFF/, ''));
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new ConfigError('ConfigUnreadable', [problem('', 'a readable JSON file of channels', reason)]);
  }
  const { schema, validate } = compiledSchema('channels.schema.json');
  if (!validate(doc)) {
    throw new ConfigError(
      'ConfigInvalid',
      (validate.errors ?? []).map((e) => {
        const d = describeAjvError(e, schema);
        return problem(
          d.keyPath,
          d.expected,
          d.found ??
            renderFound(
              valueAt(doc, d.keyPath),
              SECRETS.some((s) => d.keyPath.endsWith(`.${s}`)),
            ),
        );
      }),
    );
  }
  return { absolute, doc: doc as ChannelsDocument['doc'], problem };
}

/** Loads and validates a channels file. Throws `ConfigError` (code `ConfigUnreadable` or `ConfigInvalid`). */
export function loadChannels(file: string, options: LoadChannelsOptions = {}): ChannelRegistry {
  const env = options.env ?? process.env;
  const providers = options.providers ?? 'all';
  const callbackSecrets = options.callbackSecrets ?? true;
  const { absolute, doc, problem } = readDocument(file, options.cwd);

  const problems: ConfigProblem[] = [];
  const channels: Channel[] = [];
  const raw = doc.channels;
  raw.forEach((c, i) => {
    if (providers === 'callbacks' && c.callbacks === undefined) return;
    const at = (key: string): string => `channels.${i}.${key}`;
    const type = c.provider['type'] as ProviderSettings['type'];
    const read = providers === 'all' || (providers === 'callbacks' && type !== 'telegram');
    const settings = read
      ? resolveProvider(c.provider, at('provider'), env, problems, problem)
      : unreadProvider(c, at, env, problems, problem);
    let tile: Channel['tile'];
    if (c.tile !== undefined) {
      const tileFile = path.resolve(path.dirname(absolute), c.tile);
      try {
        tile = { ...readTile(readFileSync(tileFile, 'utf8'), c.tile), file: tileFile };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        problems.push(
          problem(
            at('tile'),
            'a readable tile XML file (relative to the channels file)',
            code === 'ENOENT' ? `no file at ${tileFile}` : (err as Error).message,
          ),
        );
      }
    }
    if (c.tile === undefined && c.channelDefinitionId === undefined) {
      problems.push(
        problem(at('tile'), 'a tile (outbound marketing) or a channelDefinitionId (real-time journeys)', 'neither'),
      );
    }
    if (c.tile !== undefined) {
      for (const key of ['addressField', 'textField'] as const) {
        if (c[key] === undefined)
          problems.push(problem(at(key), 'a column name (required for an outbound-marketing channel)', 'nothing'));
      }
    }
    if (
      tile &&
      c.failureResponseType !== undefined &&
      !tile.responseTypes.some((r) => r.id === c.failureResponseType)
    ) {
      problems.push(
        problem(
          at('failureResponseType'),
          `a response type of the tile (${tile.responseTypes.map((r) => r.id).join(', ')})`,
          renderFound(c.failureResponseType),
        ),
      );
    }
    if (c.rateLimit.perGroupMs !== undefined && type !== 'telegram') {
      problems.push(
        problem(
          at('rateLimit.perGroupMs'),
          'no perGroupMs: it spaces messages to Telegram group chats, and this is not a Telegram channel',
          renderFound(c.rateLimit.perGroupMs),
        ),
      );
    }
    const callbacks =
      c.callbacks === undefined
        ? undefined
        : resolveCallbacks(
            c.callbacks,
            type,
            tile,
            c.channelDefinitionId !== undefined,
            callbackSecrets,
            at('callbacks'),
            env,
            problems,
            problem,
          );
    if (!settings) return;
    const channel: Channel = {
      name: c.name,
      provider: settings.provider,
      sender: c.sender,
      senderKey: c.senderKey ?? defaultSenderKey(type, c.sender, settings.botToken),
      addressField: c.addressField ?? '',
      textField: c.textField ?? '',
      rateLimit: {
        messages: c.rateLimit.messages,
        intervalMs: c.rateLimit.intervalMs ?? DEFAULTS.intervalMs,
        concurrency: c.rateLimit.concurrency ?? DEFAULTS.concurrency,
        perRecipientMs: c.rateLimit.perRecipientMs ?? DEFAULTS.perRecipientMs,
        perGroupMs: c.rateLimit.perGroupMs ?? (type === 'telegram' ? TELEGRAM_GROUP_SPACING_MS : 0),
      },
      timeoutMs: c.timeoutMs ?? DEFAULTS.timeoutMs,
    };
    if (tile) channel.tile = tile;
    if (c.channelDefinitionId !== undefined) channel.channelDefinitionId = c.channelDefinitionId.toLowerCase();
    if (c.channelField !== undefined) channel.channelField = c.channelField;
    if (c.failureResponseType !== undefined) channel.failureResponseType = c.failureResponseType;
    if (callbacks !== undefined) {
      channel.callbacks = callbacks;
      channel.publicBaseUrl = callbacks.publicBaseUrl;
    }
    channels.push(channel);
  });

  crossChannelChecks(raw, channels, problems, problem);
  const messaging = resolveMessaging(
    doc.messaging,
    raw.map((c) => ({ name: c.name, hasCallbacks: c.callbacks !== undefined })),
    options.messaging ?? 'all',
    env,
    problems,
    problem,
  );
  if (problems.length > 0) throw new ConfigError('ConfigInvalid', problems);
  const byName = new Map(channels.map((c) => [c.name, c]));
  return { file: absolute, all: () => channels, byName: (name) => byName.get(name), messaging };
}

/**
 * The `messaging` section of a channels file alone (for `channel-relay messaging validate`): the whole file checked
 * against the schema and the section against the relay channels' names, without reading any channel's tile or
 * provider. Throws `ConfigError` like `loadChannels`.
 */
export function loadMessaging(file: string, options: LoadMessagingOptions = {}): MessagingRegistry & { file: string } {
  const { absolute, doc, problem } = readDocument(file, options.cwd);
  const problems: ConfigProblem[] = [];
  const registry = resolveMessaging(
    doc.messaging,
    doc.channels.map((c) => ({ name: c.name, hasCallbacks: c.callbacks !== undefined })),
    options.messaging ?? 'all',
    options.env ?? process.env,
    problems,
    problem,
  );
  if (problems.length > 0) throw new ConfigError('ConfigInvalid', problems);
  return { ...registry, file: absolute };
}

/**
 * The unit a provider rate-limits, as the session id of the channel's messages: a Twilio sender (number or
 * Messaging Service), a Telegram bot (its token names it, whatever `sender` says: the token's public bot id, never the
 * secret part), a contract sender.
 */
function defaultSenderKey(type: ProviderSettings['type'], sender: string, botToken: string | undefined): string {
  if (type === 'telegram') return `telegram:${botToken?.split(':')[0] ?? ''}`;
  return `${type}:${sender}`;
}

/** A channel's provider as loaded, and the Telegram bot token its default session key comes from. */
interface LoadedProvider {
  provider: ProviderSettings | UnreadProviderSettings;
  botToken?: string;
}

/**
 * A provider whose settings are not read: its type only; a Telegram channel without `senderKey` still reads its bot
 * token, for the session key. A secret written literally in the file is refused all the same. Undefined (with a
 * problem) when that token is not set.
 */
function unreadProvider(
  c: RawChannel,
  at: (key: string) => string,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  problem: ProblemOf,
): LoadedProvider | undefined {
  const type = c.provider['type'] as ProviderSettings['type'];
  const provider: UnreadProviderSettings = { type, unread: true };
  if (!referencesOnly(c.provider, at('provider'), problems, problem)) return undefined;
  if (type !== 'contract' && c.provider['mediaParts'] !== undefined) {
    problems.push(
      problem(at('provider.mediaParts'), `only the keys of a ${type} provider (mediaParts is a contract's)`, 'it set'),
    );
    return undefined;
  }
  const reference = c.provider['botToken'];
  if (type !== 'telegram' || c.senderKey !== undefined || reference === undefined) return { provider };
  const name = ENV_REF.exec(reference)?.[1] as string;
  const botToken = env[name];
  if (botToken !== undefined && botToken !== '') return { provider, botToken };
  const expected = `environment variable ${name} to be set (the value is "${reference}"): the channel's session key is the bot id the token starts with; set ${at('senderKey')} to "telegram:<bot id>" to run without the token`;
  problems.push(problem(at('provider.botToken'), expected, 'it unset'));
  return undefined;
}

/** Whether every secret of `block` is an `env:NAME` reference (not read here); a problem for each that is not. */
function referencesOnly(
  block: Record<string, unknown>,
  at: string,
  problems: ConfigProblem[],
  problem: ProblemOf,
): boolean {
  let ok = true;
  for (const key of SECRETS) {
    const value = block[key];
    if (typeof value === 'string' && !ENV_REF.test(value)) {
      problems.push(
        problem(
          `${at}.${key}`,
          'an env:NAME reference (secrets are read only from the environment)',
          renderFound(value, true),
        ),
      );
      ok = false;
    }
  }
  return ok;
}

function resolveProvider(
  p: Record<string, string>,
  at: string,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  problem: ProblemOf,
): LoadedProvider | undefined {
  const type = p['type'] as ProviderSettings['type'];
  const values: Record<string, string> = {};
  let ok = true;
  for (const key of REQUIRED_SETTINGS[type]) {
    if (p[key] === undefined) {
      problems.push(problem(`${at}.${key}`, `a value (required for a ${type} provider)`, 'nothing'));
      ok = false;
    }
  }
  // The schema checked its shape (1-10 distinct part names, not text); it belongs to a contract provider only.
  const mediaParts = (p as Record<string, unknown>)['mediaParts'] as string[] | undefined;
  for (const [key, value] of Object.entries(p)) {
    if (key === 'type' || (key === 'mediaParts' && type === 'contract')) continue;
    if (!REQUIRED_SETTINGS[type].includes(key) && key !== 'baseUrl') {
      problems.push(
        problem(
          `${at}.${key}`,
          `only the keys of a ${type} provider (${[...REQUIRED_SETTINGS[type], ...(type === 'contract' ? ['mediaParts'] : ['baseUrl'])].join(', ')})`,
          'an unknown key',
        ),
      );
      ok = false;
      continue;
    }
    if ((SECRETS as readonly string[]).includes(key)) {
      const m = ENV_REF.exec(value);
      if (!m) {
        problems.push(
          problem(
            `${at}.${key}`,
            'an env:NAME reference (secrets are read only from the environment)',
            renderFound(value, true),
          ),
        );
        ok = false;
        continue;
      }
      const resolved = env[m[1] as string];
      if (resolved === undefined || resolved === '') {
        problems.push(
          problem(`${at}.${key}`, `environment variable ${m[1]} to be set (the value is "${value}")`, 'it unset'),
        );
        ok = false;
        continue;
      }
      values[key] = resolved;
    } else {
      const url = key === 'url' || key === 'baseUrl';
      const resolved = interpolate(value, `${at}.${key}`, env, problems, problem, url);
      if (resolved === undefined) ok = false;
      else values[key] = url ? resolved.replace(/\/+$/, '') : resolved;
    }
  }
  if (type === 'contract' && p['baseUrl'] !== undefined) {
    problems.push(
      problem(
        `${at}.baseUrl`,
        'no baseUrl for a contract provider (its url is the whole endpoint)',
        renderFound(p['baseUrl']),
      ),
    );
    ok = false;
  }
  if (!ok) return undefined;
  switch (type) {
    case 'twilio':
      return {
        provider: {
          type,
          accountSid: values['accountSid'] as string,
          authToken: values['authToken'] as string,
          ...(values['baseUrl'] ? { baseUrl: values['baseUrl'] } : {}),
        },
      };
    case 'telegram':
      return {
        provider: {
          type,
          botToken: values['botToken'] as string,
          ...(values['baseUrl'] ? { baseUrl: values['baseUrl'] } : {}),
        },
        botToken: values['botToken'] as string,
      };
    case 'contract':
      return {
        provider: {
          type,
          url: values['url'] as string,
          signingSecret: values['signingSecret'] as string,
          ...(mediaParts === undefined ? {} : { mediaParts: [...mediaParts] }),
        },
      };
  }
}

/**
 * A channel's `callbacks` block with its defaults: the URL interpolated, secrets from the environment (with
 * `readSecrets`; else left out), the response
 * types checked against the tile, and words that cannot mean two things. Undefined when anything is wrong (the
 * problems say what).
 */
function resolveCallbacks(
  c: RawCallbacks,
  type: ProviderSettings['type'],
  tile: Channel['tile'],
  realtime: boolean,
  readSecrets: boolean,
  at: string,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  problem: ProblemOf,
): ChannelCallbacks | undefined {
  const before = problems.length;
  const key = (k: string): string => `${at}.${k}`;
  // Secrets not read here must still be references: a literal one in the file is refused whatever the stage.
  if (!readSecrets) referencesOnly(c, at, problems, problem);
  const publicBaseUrl = interpolate(c.publicBaseUrl, key('publicBaseUrl'), env, problems, problem, true)?.replace(
    /\/+$/,
    '',
  );
  const upper = (words: readonly string[]): string[] => words.map((w) => w.toLocaleUpperCase('en-US'));
  const optOutWords = upper(c.optOutWords ?? DEFAULT_OPT_OUT_WORDS);
  // A list: each word is its own TriggerKeyword; a map: word → TriggerKeyword.
  const keywordEntries: Array<[string, string]> = Array.isArray(c.keywords)
    ? c.keywords.map((w) => [w, w])
    : Object.entries(c.keywords ?? {});
  const keywordWords = keywordEntries.map(([w]) => w);
  // A keyword wins over a *default* opt-in word (YES is both a usual keyword and a default opt-in word); a word the
  // file lists twice, and any keyword that is an opt-out word, is refused below: opting out never becomes a keyword.
  const optInWords = upper(c.optInWords ?? DEFAULT_OPT_IN_WORDS.filter((w) => !upper(keywordWords).includes(w)));
  // A word may mean one thing only: an opt-out word that is also a keyword would record a keyword for a STOP.
  const seen = new Map<string, string>();
  for (const [list, words] of [
    ['optOutWords', optOutWords],
    ['optInWords', optInWords],
    ['keywords', upper(keywordWords)],
  ] as const) {
    words.forEach((w, i) => {
      const other = seen.get(w);
      const where =
        list === 'keywords' && !Array.isArray(c.keywords)
          ? `${key(list)}.${keywordWords[i] ?? ''}`
          : `${key(list)}.${i}`;
      if (other !== undefined && other !== list)
        problems.push(problem(where, `a word not already in ${at}.${other} (case-insensitive)`, renderFound(w)));
      else if (other === list) problems.push(problem(where, 'a word listed once (case-insensitive)', renderFound(w)));
      else seen.set(w, list);
    });
  }
  if (keywordEntries.length > 0) {
    if (tile === undefined)
      problems.push(
        problem(
          key('keywords'),
          'no keywords on a real-time journeys channel (its inbound messages go to msdyn_D365ChannelsInbound)',
          renderFound(c.keywords),
        ),
      );
    else if (tile.customResponseType === undefined)
      problems.push(
        problem(
          key('keywords'),
          'a tile with a custom="True" response type (keyword replies are recorded as it)',
          `${path.basename(tile.file)} has none`,
        ),
      );
  }
  const responseType = (name: 'deliveredResponseType' | 'openedResponseType', fallback: string): string => {
    const value = c[name] ?? fallback;
    if (tile !== undefined && !tile.responseTypes.some((r) => r.id === value)) {
      const ids = tile.responseTypes.map((r) => r.id).join(', ');
      problems.push(
        problem(
          key(name),
          `a response type of the tile (${ids || 'it declares none'})${c[name] === undefined ? `; the default '${fallback}' is not one, so set it` : ''}`,
          renderFound(c[name]),
        ),
      );
    }
    return value;
  };
  const deliveredResponseType = responseType('deliveredResponseType', 'delivered');
  const openedResponseType = responseType('openedResponseType', 'opened');

  let webhookSecretToken: string | undefined;
  if (c.webhookSecretToken !== undefined) {
    if (type !== 'telegram')
      problems.push(
        problem(key('webhookSecretToken'), 'no webhookSecretToken (only a telegram channel has one)', 'one'),
      );
    else if (readSecrets) {
      webhookSecretToken = secretFromEnv(c.webhookSecretToken, key('webhookSecretToken'), env, problems, problem);
      const tokens = webhookSecretToken?.trim().split(/\s+/) ?? [];
      if (
        webhookSecretToken !== undefined &&
        (tokens.length > 2 || !tokens.every((t) => TELEGRAM_SECRET_TOKEN.test(t)))
      ) {
        problems.push(
          problem(
            key('webhookSecretToken'),
            'one or two (space-separated, while rotating) tokens of 1-256 A-Z a-z 0-9 _ - (Telegram secret_token)',
            renderFound(webhookSecretToken, true),
          ),
        );
      }
    }
  } else if (type === 'telegram') {
    problems.push(
      problem(
        key('webhookSecretToken'),
        'an env:NAME reference to the setWebhook secret_token (a telegram channel with callbacks verifies every update with it)',
        'nothing',
      ),
    );
  }
  let previousAuthToken: string | undefined;
  if (c.previousAuthToken !== undefined) {
    if (type !== 'twilio')
      problems.push(problem(key('previousAuthToken'), 'no previousAuthToken (only a twilio channel has one)', 'one'));
    else if (readSecrets)
      previousAuthToken = secretFromEnv(c.previousAuthToken, key('previousAuthToken'), env, problems, problem);
  }
  let sharedKeySecret: string | undefined;
  if (c.sharedKeySecret !== undefined) {
    if (type !== 'twilio')
      problems.push(problem(key('sharedKeySecret'), 'no sharedKeySecret (only a twilio channel has one)', 'one'));
    else if (readSecrets)
      sharedKeySecret = secretFromEnv(c.sharedKeySecret, key('sharedKeySecret'), env, problems, problem)?.trim();
  }
  if (c.trackLinks === true && tile === undefined) {
    problems.push(
      problem(
        key('trackLinks'),
        'no trackLinks on a real-time journeys channel (links are tracked in outbound-marketing messages only)',
        'true',
      ),
    );
  }
  if (c.organizationId !== undefined && !realtime) {
    problems.push(
      problem(
        key('organizationId'),
        'no organizationId on an outbound-marketing channel (only real-time journeys use it)',
        renderFound(c.organizationId),
      ),
    );
  }
  if (problems.length > before || publicBaseUrl === undefined) return undefined;
  return {
    publicBaseUrl,
    trackLinks: c.trackLinks ?? false,
    keywords: Object.fromEntries(keywordEntries.map(([w, k]) => [w.toLocaleUpperCase('en-US'), k])),
    optOutWords,
    optInWords,
    optInMaxAgeMs: c.optInMaxAgeMs ?? DEFAULT_OPT_IN_MAX_AGE_MS,
    optOutConfirmation: c.optOutConfirmation ?? DEFAULT_OPT_OUT_CONFIRMATION,
    optInConfirmation: c.optInConfirmation ?? DEFAULT_OPT_IN_CONFIRMATION,
    deliveredResponseType,
    openedResponseType,
    ...(webhookSecretToken === undefined ? {} : { webhookSecretToken: webhookSecretToken.trim() }),
    ...(previousAuthToken === undefined ? {} : { previousAuthToken }),
    ...(sharedKeySecret === undefined || sharedKeySecret === '' ? {} : { sharedKeySecret }),
    ...(c.organizationId === undefined ? {} : { organizationId: c.organizationId.toLowerCase() }),
  };
}

function crossChannelChecks(
  raw: RawChannel[],
  channels: Channel[],
  problems: ConfigProblem[],
  problem: ProblemOf,
): void {
  const seen = new Map<string, number>();
  raw.forEach((c, i) => {
    const first = seen.get(c.name);
    if (first !== undefined)
      problems.push(
        problem(
          `channels.${i}.name`,
          `a name no other channel has (channels.${first} is also "${c.name}")`,
          renderFound(c.name),
        ),
      );
    else seen.set(c.name, i);
  });
  // Channels sharing a sender share one session, so one limiter: their limits must agree.
  const bySender = new Map<string, Channel>();
  for (const c of channels) {
    const other = bySender.get(c.senderKey);
    if (!other) {
      bySender.set(c.senderKey, c);
      continue;
    }
    if (JSON.stringify(other.rateLimit) !== JSON.stringify(c.rateLimit)) {
      const i = raw.findIndex((r) => r.name === c.name);
      problems.push(
        problem(
          `channels.${i}.rateLimit`,
          `the same rate limit as "${other.name}", which has the same sender key "${c.senderKey}"`,
          renderFound(c.rateLimit),
        ),
      );
    }
  }
  // Several channels on one tile: the message record must say which, so each needs the same channelField.
  const byEntity = new Map<string, Channel[]>();
  for (const c of channels)
    if (c.tile) byEntity.set(c.tile.entityType, [...(byEntity.get(c.tile.entityType) ?? []), c]);
  for (const [entityType, group] of byEntity) {
    if (group.length < 2) continue;
    for (const c of group) {
      if (c.channelField === undefined) {
        const i = raw.findIndex((r) => r.name === c.name);
        problems.push(
          problem(
            `channels.${i}.channelField`,
            `a column of ${entityType} naming the channel (${group.map((g) => g.name).join(', ')} share its tile)`,
            'nothing',
          ),
        );
      }
    }
  }
}

function valueAt(doc: unknown, keyPath: string): unknown {
  let node = doc;
  for (const part of keyPath.split('.').filter(Boolean)) node = (node as Record<string, unknown> | undefined)?.[part];
  return node;
}
