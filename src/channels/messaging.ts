/**
 * The channels file's `messaging` section: Omnichannel custom messaging accounts and the channels they bridge, checked
 * across keys (what the schema cannot state) and resolved into a `MessagingRegistry`, reading only the secrets and
 * URLs the process asks for (`MessagingReading`).
 */
import { ENV_REF, isHttpUrl, renderFound } from '../config/index.js';
import type { ConfigProblem } from '../errors.js';
import { interpolate, secretFromEnv, type ProblemOf } from './references.js';
import {
  DEFAULT_ATTACHMENT_REFUSAL,
  DEFAULT_AUTHORITY_HOST,
  DEFAULT_DIRECT_LINE_URL,
  MULTI_TENANT,
  type MessagingAccount,
  type MessagingChannel,
  type MessagingRegistry,
} from './types.js';

/**
 * Which parts of the messaging accounts a process reads, for least privilege:
 * - `directLine`: the Direct Line secret and URL (the conversations stage opens conversations);
 * - `identity`: the client secret and the authority host (`messaging validate`, the account validator);
 * - `all`: both (the conversations worker, which validates its accounts too; `config check` without `--stage`);
 * - `none`: neither (the other stages: the callbacks service only looks up which relay channels are bridged).
 * A secret not read must still be an `env:NAME` reference, and a URL not read is checked when it holds no `${NAME}`.
 */
export type MessagingReading = 'none' | 'directLine' | 'identity' | 'all';

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** A tenant's domain: `contoso.onmicrosoft.com`, `contoso.com`. */
const DOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export type RawMessagingChannel = {
  name: string;
  channelId: string;
  relayChannel: string;
  workstream: string;
  language: string;
  conversationContext?: Record<string, string>;
  attachments?: { customer?: boolean; agent?: boolean };
  attachmentRefusal?: string;
};

export type RawMessagingAccount = {
  name: string;
  appId: string;
  tenant: string;
  clientSecret: string;
  directLineSecret: string;
  directLineUrl?: string;
  authorityHost?: string;
  channels: RawMessagingChannel[];
};

/** What the schema already checked: the section's shape. */
export type RawMessaging = { accounts: RawMessagingAccount[] };

/** A registry over resolved accounts. */
export function messagingRegistry(accounts: readonly MessagingAccount[]): MessagingRegistry {
  const byName = new Map(accounts.map((a) => [a.name, a]));
  const byRelay = new Map(accounts.flatMap((a) => a.channels.map((c) => [c.relayChannel, c] as const)));
  return { accounts, account: (name) => byName.get(name), byRelayChannel: (relay) => byRelay.get(relay) };
}

/** A relay channel of the same file, as the `messaging` section's checks need it. */
export interface RelayChannelRef {
  name: string;
  /** Whether it has a `callbacks` block: a customer's messages reach the relay only through the callbacks service. */
  hasCallbacks: boolean;
}

/**
 * Resolves the schema-valid `messaging` section (undefined: none) against the relay channels of the same file,
 * pushing every problem; the registry holds what could be resolved.
 */
export function resolveMessaging(
  raw: RawMessaging | undefined,
  relayChannels: readonly RelayChannelRef[],
  reading: MessagingReading,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  problem: ProblemOf,
): MessagingRegistry {
  if (raw === undefined) return messagingRegistry([]);
  const readDirectLine = reading === 'directLine' || reading === 'all';
  const readIdentity = reading === 'identity' || reading === 'all';
  const accountNames = new Map<string, number>();
  const channelNames = new Map<string, string>();
  const bridged = new Map<string, string>();
  const accounts: MessagingAccount[] = [];

  raw.accounts.forEach((a, i) => {
    const at = (key: string): string => `messaging.accounts.${i}.${key}`;
    const before = problems.length;
    const first = accountNames.get(a.name);
    if (first !== undefined)
      problems.push(
        problem(
          at('name'),
          `an account name no other account has (messaging.accounts.${first} is also "${a.name}")`,
          renderFound(a.name),
        ),
      );
    else accountNames.set(a.name, i);
    if (!GUID.test(a.appId))
      problems.push(
        problem(
          at('appId'),
          "a Microsoft app ID: a GUID such as 0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0 (the Azure Bot's Configuration page)",
          renderFound(a.appId),
        ),
      );
    if (a.tenant !== MULTI_TENANT && !GUID.test(a.tenant) && !DOMAIN.test(a.tenant))
      problems.push(
        problem(
          at('tenant'),
          `"${MULTI_TENANT}" (a multi-tenant app) or the app's tenant: its GUID or a domain such as contoso.onmicrosoft.com`,
          renderFound(a.tenant),
        ),
      );
    const secret = (key: 'clientSecret' | 'directLineSecret', read: boolean): string | undefined => {
      if (read) return secretFromEnv(a[key], at(key), env, problems, problem);
      if (!ENV_REF.test(a[key]))
        problems.push(
          problem(
            at(key),
            'an env:NAME reference (secrets are read only from the environment)',
            renderFound(a[key], true),
          ),
        );
      return undefined;
    };
    const clientSecret = secret('clientSecret', readIdentity);
    const directLineSecret = secret('directLineSecret', readDirectLine);
    const url = (key: 'directLineUrl' | 'authorityHost', fallback: string, read: boolean): string => {
      const value = a[key] ?? fallback;
      if (!read && value.includes('${')) return value;
      const resolved = read ? interpolate(value, at(key), env, problems, problem, true) : value;
      if (!read && !isHttpUrl(value)) problems.push(problem(at(key), 'an http(s) URL', renderFound(value)));
      // MSAL (behind @azure/identity) accepts an https authority only (msal-common `authorityUriInsecure`).
      else if (key === 'authorityHost' && resolved !== undefined && !resolved.startsWith('https:'))
        problems.push(
          problem(at(key), 'an https URL (the identity platform is reached over https only)', renderFound(resolved)),
        );
      return resolved?.replace(/\/+$/, '') ?? value;
    };
    const directLineUrl = url('directLineUrl', DEFAULT_DIRECT_LINE_URL, readDirectLine);
    const authorityHost = url('authorityHost', DEFAULT_AUTHORITY_HOST, readIdentity);

    const channelIds = new Map<string, number>();
    const channels: MessagingChannel[] = a.channels.map((c, j) => {
      const cat = (key: string): string => at(`channels.${j}.${key}`);
      const entry = `messaging.accounts.${i}.channels.${j}`;
      const otherName = channelNames.get(c.name);
      if (otherName !== undefined)
        problems.push(
          problem(
            cat('name'),
            `a messaging channel name no other messaging channel has (${otherName} is also "${c.name}")`,
            renderFound(c.name),
          ),
        );
      else channelNames.set(c.name, entry);
      // Channel IDs are compared without case: `Telegram` and `telegram` are one channel to the Bot Framework.
      const id = c.channelId.toLowerCase();
      const twin = channelIds.get(id);
      if (twin !== undefined)
        problems.push(
          problem(
            cat('channelId'),
            `a channel ID used once in account "${a.name}": messaging.accounts.${i}.channels.${twin} ("${a.channels[twin]?.name ?? ''}") has channel ID "${a.channels[twin]?.channelId ?? ''}" too, and the Bot Framework allows one channel per app ID`,
            renderFound(c.channelId),
          ),
        );
      else channelIds.set(id, j);
      const relay = relayChannels.find((r) => r.name === c.relayChannel);
      if (relay === undefined)
        problems.push(
          problem(
            cat('relayChannel'),
            `the name of a relay channel of this file (${relayChannels.map((r) => r.name).join(', ')})`,
            renderFound(c.relayChannel),
          ),
        );
      else if (!relay.hasCallbacks)
        problems.push(
          problem(
            cat('relayChannel'),
            `a relay channel with a callbacks block: a customer's messages reach the relay only through the callbacks service, and channel "${c.relayChannel}" has none (add its callbacks block: docs/callbacks.md)`,
            renderFound(c.relayChannel),
          ),
        );
      else {
        const other = bridged.get(c.relayChannel);
        if (other !== undefined)
          problems.push(
            problem(
              cat('relayChannel'),
              `a relay channel no other messaging channel bridges (${other} bridges "${c.relayChannel}" already: a customer's messages on it can go to one conversation only)`,
              renderFound(c.relayChannel),
            ),
          );
        else bridged.set(c.relayChannel, `${entry} ("${c.name}")`);
      }
      return {
        name: c.name,
        account: a.name,
        channelId: c.channelId,
        relayChannel: c.relayChannel,
        workstream: c.workstream,
        language: c.language,
        conversationContext: { ...c.conversationContext },
        attachments: { customer: c.attachments?.customer ?? false, agent: c.attachments?.agent ?? false },
        attachmentRefusal: c.attachmentRefusal ?? DEFAULT_ATTACHMENT_REFUSAL,
      };
    });
    if (problems.length > before) return;
    accounts.push({
      name: a.name,
      appId: a.appId.toLowerCase(),
      tenant: a.tenant === MULTI_TENANT ? MULTI_TENANT : a.tenant.toLowerCase(),
      ...(clientSecret === undefined ? {} : { clientSecret }),
      ...(directLineSecret === undefined ? {} : { directLineSecret }),
      directLineUrl,
      authorityHost,
      channels,
    });
  });
  return messagingRegistry(accounts);
}
