/**
 * Tracked links: `GET /l/:code` → 302 to the original address, and `opened` recorded for the activity.
 *
 * The code (links.ts `sealLink`) names an activity (`msdyncrm_activityid`) and a link index, signed; nothing is
 * stored. A click reads the activity row (its contact, journey, iteration and message record), finds the channel
 * by the row's message table (and `channelField` when a tile is shared), reads the message record's text (cached)
 * and takes its link number `index` (`linkAt`, the same walk the send path rewrote). `opened` goes to
 * `interactions` with the MessageId `<activityId>:<opened>`: every further click within the bus's
 * duplicate-detection window is dropped by the bus, so an activity gets one `opened` however often it is clicked.
 * A malformed code → 400, a forged or rotated-out one → 403, an activity or link that no longer exists → 404; none
 * says anything about the contact. Only http(s) targets are redirected to, as `new URL(link).href` (an IRI's
 * non-ASCII characters percent-encoded, its host in punycode); a link that is not one answers 404 and records nothing.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Channel } from '../../channels/index.js';
import { contextFromActivityRow } from './activity.js';
import { redirectTarget } from './links.js';
import { addRoute, refusal, type RouteResult } from './routes.js';
import type { CallbackService } from './service.js';
import { openLink } from './token.js';

/**
 * The channel whose message table the activity's record is in (by `channelField` when several share the tile); when
 * several share the tile with no `channelField` to tell them apart, `preferred` if it is one of them, else the first.
 * Undefined when no channel with `callbacks` uses the table or the record does not exist.
 */
export async function channelOf(service: CallbackService, entityType: string, entityId: string, preferred?: string): Promise<{ channel: Channel; text: unknown } | undefined> {
  const candidates = service.channels.all().filter((c) => c.tile?.entityType === entityType && c.callbacks !== undefined);
  const first = candidates[0];
  if (first?.tile === undefined) return undefined;
  const columns = [...new Set(candidates.flatMap((c) => [c.textField, ...(c.channelField === undefined ? [] : [c.channelField])]))];
  const record = await service.directory.messageRecord(first.tile.entitySetName, entityId, columns, service.signal());
  if (record === undefined) return undefined;
  // Several channels on one tile are told apart by the record's channel column; without one, the first is taken.
  const channel =
    candidates.length === 1 || candidates.every((c) => c.channelField === undefined)
      ? (candidates.find((c) => c.name === preferred) ?? first)
      : candidates.find((c) => c.channelField !== undefined && record[c.channelField] === c.name);
  return channel === undefined ? undefined : { channel, text: record[channel.textField] };
}

async function click(request: FastifyRequest, service: CallbackService): Promise<RouteResult> {
  const code = (request.params as { code?: string }).code ?? '';
  const opened = openLink(code, service.keys);
  if (!opened.ok) {
    service.log.warn('tracked link refused', { reason: opened.reason });
    return refusal(opened.reason === 'malformed' ? 'bad-token' : 'forbidden');
  }
  const row = await service.directory.activityByActivityId(opened.activityId, service.signal());
  const context = row === undefined ? undefined : contextFromActivityRow(row);
  if (context === undefined) return refusal('not-found');
  const found = await channelOf(service, context.entityType, context.entityId);
  const link = found !== undefined && typeof found.text === 'string' ? service.linkAt(found.text, opened.linkIndex) : undefined;
  // Checked before anything is recorded: a link that cannot be redirected to records no open.
  const target = link === undefined ? undefined : redirectTarget(link);
  if (found === undefined || target === undefined) return refusal('not-found');
  const log = service.log.child({ channel: found.channel.name, activityId: context.activityId, link: opened.linkIndex });
  const responseType = found.channel.callbacks?.openedResponseType;
  if (responseType === undefined) {
    log.info('click on a channel with no opened response type: not recorded');
  } else {
    try {
      await service.record({ context, responseType, channel: found.channel.name });
    } catch (err) {
      // The person clicking still gets where they were going; the open is lost (logged).
      service.failed(log, 'recording an open', err);
    }
  }
  return { outcome: 'redirected', status: 302, headers: { location: target, 'referrer-policy': 'no-referrer' } };
}

export function registerOpens(app: FastifyInstance, service: CallbackService): void {
  addRoute(app, service, 'GET', '/l/:code', 'link', click);
}
