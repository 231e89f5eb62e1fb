/**
 * Real-time journeys outbound, for `/_emulator/realtime/{channelDefinitionId}/send`: what the journey engine does
 * when it sends a message through a custom channel, which is to call the channel definition's outbound Custom API
 * once per recipient with the `payload` JSON. The emulator runs no Custom API plug-in; it posts the call to the
 * Service Bus steps registered (async, post-operation) on the API's message, as Dataverse would. No plug-in sets
 * the API's `response`, so each call is counted as one without a response (`/_emulator/stats` `realtime`, `problems`).
 */
import { randomUUID } from 'node:crypto';
import { DataverseFault, isGuid } from './faults.js';
import type { OrganizationService } from './service.js';
import type { LookupValue } from './store.js';
import { OUTBOUND_RESPONSE, outboundApiName, REALTIME_OUTBOUND } from './assumptions.js';

export interface RealtimeSendRequest {
  /** Recipients (phone numbers, chat ids …): one Custom API call each. */
  to: string[];
  /** Message parts by `msdyn_channelmessagepart.msdyn_name` (e.g. `{"text": "…"}` for SMS). */
  message: Record<string, string>;
  /** The sender. @defaultValue the contact point of the definition's first channel instance */
  from?: string;
  /** `MarketingAppContext.CustomerJourneyId`. @defaultValue the empty GUID */
  journeyId?: string;
  /** `MarketingAppContext.IsTestSend`. @defaultValue false */
  isTestSend?: boolean;
}

export interface RealtimeSendResult {
  channelDefinitionId: string;
  /** The Custom API (message) called. */
  customApi: string;
  requests: Array<{ RequestId: string; To: string }>;
  /** Service Bus posts queued (calls × registered steps). */
  posted: number;
  /** Calls that returned no `response` output (every one: the emulator runs no plug-in; see OUTBOUND_RESPONSE). */
  responsesMissing: number;
}

export const MAX_REALTIME_RECIPIENTS = 100_000;
const EMPTY_GUID = '00000000-0000-0000-0000-000000000000';

function bad(message: string): DataverseFault {
  return new DataverseFault('InvalidArgument', message);
}

export function sendRealtime(
  service: OrganizationService,
  channelDefinitionId: string,
  body: unknown,
  userId: string,
): RealtimeSendResult {
  if (!isGuid(channelDefinitionId)) throw bad(`'${channelDefinitionId}' is not a channel definition id (a GUID).`);
  const definitions = service.table('msdyn_channeldefinition');
  const definitionId = channelDefinitionId.toLowerCase();
  const definition = service.store.get(definitions, definitionId);
  if (!definition)
    throw new DataverseFault('RowNotFound', `msdyn_channeldefinition With Id = ${channelDefinitionId} Does Not Exist`);
  const template = definition['msdyn_outboundendpointurltemplate'];
  if (typeof template !== 'string' || outboundApiName(template) === '') {
    throw bad(
      `The channel definition ${definitionId} has no msdyn_outboundendpointurltemplate: there is no outbound Custom API to call.`,
    );
  }
  const customApi = outboundApiName(template);
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw bad('The body must be {"to": ["…"], "message": {"<part>": "…"}, "from"?, "journeyId"?, "isTestSend"?}.');
  const request = body as Partial<RealtimeSendRequest>;
  if (
    !Array.isArray(request.to) ||
    request.to.length === 0 ||
    !request.to.every((t) => typeof t === 'string' && t !== '')
  ) {
    throw bad("'to' must be a non-empty array of non-empty strings.");
  }
  if (request.to.length > MAX_REALTIME_RECIPIENTS)
    throw bad(`${request.to.length} recipients is over the emulator's limit of ${MAX_REALTIME_RECIPIENTS} per call.`);
  const message = request.message;
  if (
    typeof message !== 'object' ||
    message === null ||
    Array.isArray(message) ||
    !Object.values(message).every((v) => typeof v === 'string')
  ) {
    throw bad("'message' must be an object of strings keyed by message part name.");
  }
  const partsTable = service.table('msdyn_channelmessagepart');
  const parts = [...service.store.rows(partsTable)].filter(
    (p) => (p['msdyn_channeldefinitionid'] as LookupValue | null | undefined)?.id === definitionId,
  );
  if (parts.length > 0) {
    const names = parts.map((p) => String(p['msdyn_name']));
    for (const key of Object.keys(message)) {
      if (!names.includes(key))
        throw bad(
          `'message' has a part '${key}' the channel definition does not declare (parts: ${names.join(', ')}).`,
        );
    }
    for (const p of parts) {
      const name = String(p['msdyn_name']);
      const value = message[name];
      if (p['msdyn_isrequired'] === true && (value === undefined || value === ''))
        throw bad(`the message part '${name}' is required.`);
      const max = p['msdyn_maxlength'];
      if (typeof max === 'number' && value !== undefined && value.length > max)
        throw bad(`the message part '${name}' is ${value.length} characters long, over its msdyn_maxlength ${max}.`);
    }
  }
  if (request.journeyId !== undefined && !isGuid(request.journeyId))
    throw bad(`'journeyId' must be a GUID, found ${JSON.stringify(request.journeyId)}.`);
  if (request.isTestSend !== undefined && typeof request.isTestSend !== 'boolean')
    throw bad("'isTestSend' must be true or false.");
  let from = request.from;
  if (from !== undefined && (typeof from !== 'string' || from === '')) throw bad("'from' must be a non-empty string.");
  if (from === undefined) {
    const instance = [...service.store.rows(service.table('msdyn_channelinstance'))].find(
      (i) => (i['msdyn_channeldefinitionid'] as LookupValue | null | undefined)?.id === definitionId,
    );
    if (!instance)
      throw bad(
        `no 'from' given and the channel definition ${definitionId} has no msdyn_channelinstance to send from.`,
      );
    from = String(instance['msdyn_contactpointid'] ?? instance['msdyn_channelinstanceid']);
  }
  const result: RealtimeSendResult = {
    channelDefinitionId: definitionId,
    customApi,
    requests: [],
    posted: 0,
    responsesMissing: 0,
  };
  const counts = service.realtimeOutbound.get(customApi) ?? { calls: 0, responsesMissing: 0 };
  service.realtimeOutbound.set(customApi, counts);
  for (const to of request.to) {
    const requestId = randomUUID();
    const payload = {
      ChannelDefinitionId: definitionId,
      RequestId: requestId,
      From: from,
      To: to,
      Message: message,
      MarketingAppContext: {
        CustomerJourneyId: request.journeyId ?? EMPTY_GUID,
        UserId: userId,
        UserEntityType: REALTIME_OUTBOUND.userEntityType,
        IsTestSend: request.isTestSend ?? false,
      },
    };
    result.posted += service.postCustomApi(
      customApi,
      [{ key: REALTIME_OUTBOUND.inputParameter, value: JSON.stringify(payload) }],
      userId,
    );
    result.requests.push({ RequestId: requestId, To: to });
    // No plug-in sets the API's `response` (OUTBOUND_RESPONSE): the journey gets no Status for this call.
    counts.calls += 1;
    counts.responsesMissing += 1;
    result.responsesMissing += 1;
  }
  return result;
}

/** `/_emulator/stats` `realtime`: outbound Custom API calls and those without a `response`, in all and by API. */
export function realtimeStats(service: OrganizationService): {
  outboundCalls: number;
  responsesMissing: number;
  byCustomApi: Record<string, { calls: number; responsesMissing: number }>;
} {
  const byCustomApi = Object.fromEntries([...service.realtimeOutbound].map(([api, c]) => [api, { ...c }]));
  const totals = Object.values(byCustomApi).reduce(
    (t, c) => ({ outboundCalls: t.outboundCalls + c.calls, responsesMissing: t.responsesMissing + c.responsesMissing }),
    { outboundCalls: 0, responsesMissing: 0 },
  );
  return { ...totals, byCustomApi };
}

/** `/_emulator/stats` `problems`: one line per Custom API whose calls returned no `response`. */
export function realtimeProblems(service: OrganizationService): string[] {
  return [...service.realtimeOutbound]
    .filter(([, c]) => c.responsesMissing > 0)
    .map(([api, c]) => OUTBOUND_RESPONSE.problem(api, c.responsesMissing));
}
