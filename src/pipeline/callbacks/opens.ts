/**
 * Tracked links: `GET /l/:code` → 302 to the original address, and `opened` recorded for the activity.
 *
 * Invariants: the code (src/correlation's `sealLink`) names an activity row
 * (`msdyncrm_customerjourneycustomchannelactivityid`), its contact, its tile (a digest) and a link index, signed;
 * nothing is stored but the tiles met (content-addressed, never stale: tiles.ts); an activity
 * gets one `opened` however often it is clicked within the bus's duplicate-detection window (MessageId
 * `<row id>:<opened>`: the bus drops every further click); only http(s) targets are redirected to; no answer says
 * anything about the contact (a malformed code → 400, a forged or rotated-out one → 403, an activity read or a link
 * that no longer exists → 404; an activity whose tile is known is not read, so its deletion is not seen).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Channel } from '../../channels/index.js';
import type { MarketingContext } from '../messages.js';
import { activityContext } from './activity.js';
import { redirectTarget } from '../../correlation/index.js';
import { addRoute, refusal, type RouteResult } from './routes.js';
import type { CallbackService } from './service.js';
import { openLink, type OpenedLink } from '../../correlation/index.js';

/**
 * The channel whose message table the activity's record is in (by `channelField` when several share the tile); when
 * several share the tile with no `channelField` to tell them apart, `preferred` if it is one of them, else the first.
 * Undefined when no channel with `callbacks` uses the table or the record does not exist.
 */
export async function channelOf(
  service: CallbackService,
  entityType: string,
  entityId: string,
  preferred?: string,
): Promise<{ channel: Channel; text: unknown } | undefined> {
  const candidates = service.channels
    .all()
    .filter((c) => c.tile?.entityType === entityType && c.callbacks !== undefined);
  const first = candidates[0];
  if (first?.tile === undefined) return undefined;
  const columns = [
    ...new Set(candidates.flatMap((c) => [c.textField, ...(c.channelField === undefined ? [] : [c.channelField])])),
  ];
  const record = await service.directory.messageRecord(first.tile.entitySetName, entityId, columns, service.signal());
  if (record === undefined) return undefined;
  // Several channels on one tile are told apart by the record's channel column; without one, the first is taken.
  const channel =
    candidates.length === 1 || candidates.every((c) => c.channelField === undefined)
      ? (candidates.find((c) => c.name === preferred) ?? first)
      : candidates.find((c) => c.channelField !== undefined && record[c.channelField] === c.name);
  return channel === undefined ? undefined : { channel, text: record[channel.textField] };
}

/**
 * The contexts a code names: a code of version 3 whose tile this process knows needs no read (its row and contact are
 * in the code); otherwise the row is read (and its tile kept), and for a code written before the relay keyed on the
 * row, the rows of its activity id (at most two).
 */
async function linkedContexts(
  service: CallbackService,
  opened: OpenedLink & { ok: true },
): Promise<Array<MarketingContext | undefined>> {
  if (opened.activityRowId === undefined)
    return (await service.directory.activitiesByActivityId(opened.activityId, service.signal())).map(activityContext);
  if (opened.tile !== undefined) {
    const known = service.tiles.context(opened.tile, opened.activityRowId, opened.contactId);
    if (known !== undefined) return [known];
  }
  const row = await service.directory.activityByRowId(opened.activityRowId, service.signal());
  const context = row === undefined ? undefined : activityContext(row);
  if (context !== undefined) service.tiles.remember(context);
  return row === undefined ? [] : [context];
}

/**
 * A click opens the code; the activity row's context comes from the code and the tile it names when the tile is known
 * here (met in a token or a row before), else from the row read (its contact, journey, iteration and message record).
 * It finds the channel by the message table (and `channelField` when a tile is shared), reads the message record's
 * text (cached) and takes its link number `index` (`linkAt`, the same walk the send path rewrote). A code written
 * before the relay keyed on the row names `msdyncrm_activityid`: it is recorded when one row has that id; when several
 * have it (a tile's rows) the click is still redirected, and nothing is recorded (logged). The target is
 * `new URL(link).href` (an IRI's non-ASCII characters percent-encoded, its host in punycode); a link that is not
 * http(s) answers 404 and records nothing.
 */
async function click(request: FastifyRequest, service: CallbackService): Promise<RouteResult> {
  const code = (request.params as { code?: string }).code ?? '';
  const opened = openLink(code, service.keys);
  if (!opened.ok) {
    service.log.warn('tracked link refused', { reason: opened.reason });
    return refusal(opened.reason === 'malformed' ? 'bad-token' : 'forbidden');
  }
  const contexts = await linkedContexts(service, opened);
  const context = contexts[0];
  if (
    context === undefined ||
    contexts.some((c) => c?.entityType !== context.entityType || c.entityId !== context.entityId)
  )
    return refusal('not-found');
  // Only a legacy code (msdyncrm_activityid) can find several rows: one message record, but not one contact.
  const shared = contexts.length > 1;
  const found = await channelOf(service, context.entityType, context.entityId);
  const link =
    found !== undefined && typeof found.text === 'string' ? service.linkAt(found.text, opened.linkIndex) : undefined;
  // Checked before anything is recorded: a link that cannot be redirected to records no open.
  const target = link === undefined ? undefined : redirectTarget(link);
  if (found === undefined || target === undefined) return refusal('not-found');
  const log = service.log.child({
    channel: found.channel.name,
    ...(shared ? { activityId: context.activityId } : { activityRowId: context.activityRowId }),
    link: opened.linkIndex,
  });
  const responseType = found.channel.callbacks?.openedResponseType;
  if (shared) {
    log.warn(
      'click on a link written before the relay keyed on the activity row, whose msdyncrm_activityid several activities share: redirected, not recorded',
    );
  } else if (responseType === undefined) {
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
