/**
 * Intake's channel choice. Built once from the configured channels (and checked: channels sharing a tile must name a
 * `channelField`, channels sharing a channel definition need distinct senders), it answers which channel serves an
 * event: a real-time payload by its `ChannelDefinitionId` (case-insensitive) and, of several, its `From`; an
 * activity by its `msdyncrm_entitytype` (the tile's `EntityType`) and, of several, by the name the message record's
 * `channelField` holds. No channel → a description that says exactly what was looked for and what is configured.
 */
import type { Channel } from '../../channels/index.js';
import { ConfigError, type ConfigProblem } from '../../errors.js';
import type { ActivityEvent, RealtimeEvent } from '../events.js';
import type { Row } from '../ports.js';

/** A channel with a tile (the channels an activity can go to). */
export type TiledChannel = Channel & { tile: NonNullable<Channel['tile']> };

/** A channel found, or why none was. */
export type Routed<T> = { ok: true; value: T } | { ok: false; description: string };

/** The configured channels indexed by tile entity type and by channel definition. */
export class IntakeRouting {
  /** Tile entity type → the channels of that tile. */
  readonly #byEntityType = new Map<string, TiledChannel[]>();
  /** `msdyn_channeldefinition` id (lower case) → the channels serving it. */
  readonly #byDefinition = new Map<string, Channel[]>();

  /** Indexes `channels`; throws a `ConfigError` when channels sharing a tile or a channel definition cannot be told apart. */
  constructor(channels: readonly Channel[]) {
    for (const channel of channels) {
      if (channel.tile) push(this.#byEntityType, channel.tile.entityType, channel as TiledChannel);
      if (channel.channelDefinitionId) push(this.#byDefinition, channel.channelDefinitionId.toLowerCase(), channel);
    }
    checkChannels(this.#byEntityType, this.#byDefinition);
  }

  /** The channel of a real-time payload: by `ChannelDefinitionId`; of several, the one whose sender is `From`. */
  realtime(event: RealtimeEvent): Routed<Channel> {
    const candidates = this.#byDefinition.get(event.channelDefinitionId.toLowerCase()) ?? [];
    const channel = candidates.length === 1 ? candidates[0] : candidates.find((c) => c.sender === event.from);
    if (channel) return { ok: true, value: channel };
    const description =
      candidates.length === 0
        ? `no channel is configured for channel definition ${event.channelDefinitionId} (ChannelDefinitionId of request ${event.requestId}); ` +
          `configured channel definitions: ${list([...this.#byDefinition.keys()])}`
        : `channel definition ${event.channelDefinitionId} (request ${event.requestId}) has ${candidates.length} channels and none has the sender ` +
          `'${event.from}' (From); their senders: ${list(candidates.map((c) => `${c.name}: '${c.sender}'`))}`;
    return { ok: false, description };
  }

  /** The channels an activity may go to: those whose tile's `EntityType` is its `msdyncrm_entitytype` (at least one). */
  candidates(event: ActivityEvent): Routed<TiledChannel[]> {
    const candidates = this.#byEntityType.get(event.entityType);
    if (candidates) return { ok: true, value: candidates };
    return {
      ok: false,
      description:
        `no channel is configured for entity type '${event.entityType}' (msdyncrm_entitytype of activity row ${event.activityRowId}); ` +
        `the channels' tiles have: ${list([...this.#byEntityType.keys()])}`,
    };
  }

  /**
   * Of an activity's `candidates`, the one its message record `row` names: a tile with one channel is that channel;
   * of several, the one whose `name` the record's `channelField` holds. `where` names the record in the description.
   */
  byRecord(event: ActivityEvent, candidates: readonly TiledChannel[], row: Row, where: string): Routed<TiledChannel> {
    const channel =
      candidates.length === 1
        ? candidates[0]
        : candidates.find((c) => c.channelField !== undefined && row[c.channelField] === c.name);
    if (channel) return { ok: true, value: channel };
    const fields = [...new Set(candidates.flatMap((c) => (c.channelField === undefined ? [] : [c.channelField])))];
    const found = fields
      .map((f) => `${f} = ${row[f] === undefined || row[f] === null ? 'nothing' : JSON.stringify(row[f])}`)
      .join(', ');
    return {
      ok: false,
      description: `${where} names no configured channel (${found}); the channels for '${event.entityType}' are: ${list(candidates.map((c) => c.name))}`,
    };
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function list(values: readonly string[]): string {
  return values.length === 0 ? '(none)' : values.join(', ');
}

/** Channels that share a tile must say which is which; channels that share a channel definition need distinct senders. */
function checkChannels(
  byEntityType: ReadonlyMap<string, TiledChannel[]>,
  byDefinition: ReadonlyMap<string, Channel[]>,
): void {
  const problems: ConfigProblem[] = [];
  for (const [entityType, channels] of byEntityType) {
    if (channels.length < 2) continue;
    for (const c of channels) {
      if (c.channelField === undefined) {
        problems.push({
          source: 'channels',
          path: `${c.name}.channelField`,
          expected: `the message record's column naming the channel (channels ${channels.map((x) => x.name).join(', ')} share the tile of '${entityType}')`,
          found: 'nothing',
        });
      }
    }
  }
  for (const [definition, channels] of byDefinition) {
    const senders = new Set(channels.map((c) => c.sender));
    if (senders.size < channels.length) {
      problems.push({
        source: 'channels',
        path: channels.map((c) => `${c.name}.sender`).join(', '),
        expected: `distinct senders (channels ${channels.map((c) => c.name).join(', ')} serve channel definition ${definition}, told apart by From)`,
        found: 'the same sender twice',
      });
    }
  }
  if (problems.length > 0) throw new ConfigError('ConfigInvalid', problems);
}
