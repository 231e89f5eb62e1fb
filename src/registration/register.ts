/**
 * `registerRelay`: creates or updates, idempotently, what Dataverse needs to post to the relay: the `serviceendpoint`
 * for the activities queue and the asynchronous post-operation steps on it (Create of the custom channel activity
 * table; with `realtime`, the real-time journeys outbound Custom API messages). It reads first (the endpoint by name,
 * the sdkmessage and filter ids, the endpoint's steps), compares, and writes only what differs; a second run writes
 * nothing and says so. `dryRun` reads and plans only.
 *
 * Identity: the endpoint is found by its name (unique per run's `endpointName`); a step by its bindings (service
 * endpoint + sdkmessage + sdkmessagefilter), never by its name, so a renamed step is renamed back instead of doubled.
 */
import type { DynamicsWebApi } from 'dynamics-web-api';
import { ACTIVITY_TABLE, clientTimeoutMs, DEFAULT_TIMEOUT_MS, toDataverseError } from '../dataverse/index.js';
import { ConfigError, DataverseError, type CodeOf, type ConfigProblem } from '../errors.js';
import { areaLogger, silentLogger, type Logger } from '../log.js';
import {
  desiredEndpoint,
  desiredStep,
  ENDPOINT_COLUMNS,
  matchingSteps,
  planEndpoint,
  planStep,
  stepBindings,
  type PlannedAction,
  type RowPlan,
} from './plan.js';
import type { ServiceBusSas } from './servicebus.js';
import {
  CUSTOM_API_COLUMNS,
  ENDPOINT_CONSTANTS,
  outboundApiMessage,
  SAS_KEY_SET_COLUMN,
  UNBOUND_FILTER_OBJECT,
} from './assumptions.js';

type Row = Record<string, unknown>;

export const REGISTRATION_DEFAULTS = {
  endpointName: 'channel-relay activities',
  queue: 'activities',
  stepName: 'channel-relay',
} as const;

/** A real-time journeys channel to register on: by its channel definition (looked up) or by its Custom API message name. */
export type RealtimeTarget = { channelDefinitionId: string; channel?: string } | { message: string };

export interface RegistrationSpec {
  /** `serviceendpoint.name`, the endpoint's identity. @defaultValue 'channel-relay activities' */
  endpointName?: string;
  /** The queue Dataverse posts to (`serviceendpoint.path`). @defaultValue 'activities' */
  queue?: string;
  /** The namespace, SAS key name and key Dataverse posts with (see `serviceBusFromEnv`). */
  serviceBus: ServiceBusSas;
  /** Prefix of the step names (`<stepName>: Create of …`, `<stepName>: <Custom API>`). @defaultValue 'channel-relay' */
  stepName?: string;
  /** Real-time journeys channels whose outbound Custom API gets a step too. @defaultValue [] */
  realtime?: readonly RealtimeTarget[];
  /** Write the SAS key even when Dataverse says one is set (a key rotation: the key cannot be read back to compare). @defaultValue false */
  updateKey?: boolean;
}

export interface RegisterOptions {
  /** Read and plan only; write nothing. @defaultValue false */
  dryRun?: boolean;
  log?: Logger;
  /** Aborts the calls in flight. */
  signal?: AbortSignal;
  /** Per-call timeout. @defaultValue the client's `timeoutMs` (createDataverseClient), else 30000 */
  timeoutMs?: number;
}

export interface RegistrationItem {
  kind: 'serviceendpoint' | 'step';
  name: string;
  /** What it is for, for a person: `queue activities at sb://…/`, `Create of msdyncrm_…`, `the outbound Custom API of channel realtime-sms`. */
  target: string;
  /** What was done, or in a dry run what would be done. */
  action: PlannedAction;
  /** Columns created or changed (names only; `saskey` named, never its value). */
  changed: string[];
  /** The row's id; undefined for a row a dry run would create. */
  id?: string;
}

export interface RegistrationReport {
  dryRun: boolean;
  items: RegistrationItem[];
  /** Something was (in a dry run: would be) created or updated. */
  changed: boolean;
  /** Things the operator should know (duplicate steps, a key written because it could not be compared …). */
  warnings: string[];
  /** Web API calls made. */
  requests: { reads: number; writes: number };
}

/** What a step binds to, resolved from the org. */
interface StepTarget {
  name: string;
  target: string;
  messageId: string;
  filterId: string | undefined;
}

type Kind = 'endpoint' | 'message' | 'filter' | 'channel' | 'custom-api' | 'step-type' | 'steps';

/** The hint for an operator, by what was being done and how Dataverse answered. */
function hintFor(kind: Kind, error: DataverseError, subject: string): string {
  const status = error.upstream?.status;
  if (error.code === 'DataverseUnauthorized' && status !== 403) {
    return 'check the credential: with DATAVERSE_AUTH=default, that DefaultAzureCredential finds one (az login, a managed identity, or AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET) for this org, and that the org has an application user for it (Power Platform admin center > Environment > Settings > Application users); --dataverse-url must be the org URL (https://<org>.crm.dynamics.com)';
  }
  if (status === 403) {
    return "the identity's application user lacks a privilege: give it a security role with Create, Read and Write on Service Endpoint and Sdk Message Processing Step and Read on Sdk Message, Sdk Message Filter and, with --realtime, Channel Definition and Custom API (System Customizer or System Administrator have them)";
  }
  if (error.code === 'DataverseThrottled')
    return `Dataverse's service protection limits refused the call: run again after ${Math.ceil((error.retryAfterMs ?? 1000) / 1000)} s`;
  if (error.code === 'DataverseTimeout' || error.code === 'DataverseUnavailable')
    return "Dataverse was not reached or did not answer in time: check --dataverse-url, the network (proxy, DNS) and the org's state in the Power Platform admin center";
  if (kind === 'step-type' && error.code === 'DataverseBadRequest') {
    return `${subject}: create a new Custom API with allowedcustomprocessingsteptype 1 (Async Only) or 2 (Sync and Async), with the same request parameter 'payload' and response property 'response', and point the channel definition's msdyn_outboundendpointurltemplate at it (PA-docs customapi-tables: the column cannot be changed after creation)`;
  }
  if (error.code === 'DataverseNotFound') {
    if (kind === 'filter')
      return `is Customer Insights - Journeys (outbound marketing) installed in the org? Without it there is no ${ACTIVITY_TABLE} table, so no sdkmessagefilter for its Create`;
    if (kind === 'channel')
      return `${subject}: check channelDefinitionId in the channels file against the org's msdyn_channeldefinition rows (Customer Insights - Journeys > Settings > Custom channels)`;
    if (kind === 'custom-api')
      return `${subject}: create the outbound Custom API the channel definition names (msdyn_outboundendpointurltemplate) before registering; in Dataverse, creating the Custom API creates its sdkmessage`;
    if (kind === 'message')
      return `${subject}: every org has the Create sdkmessage: check that --dataverse-url is a Dataverse org URL`;
    return 'check that --dataverse-url is the org URL (https://<org>.crm.dynamics.com), not the Power Apps maker or admin URL';
  }
  return `Dataverse refused the request while ${subject}: its message names the column or value; the columns the relay writes are listed in src/registration/assumptions.ts (UNVERIFIED against a real org)`;
}

/** The hint attached to an error `registerRelay` threw; undefined for any other error. */
export function registrationHint(error: unknown): string | undefined {
  const hint = (error as { context?: { hint?: unknown } } | undefined)?.context?.hint;
  return typeof hint === 'string' ? hint : undefined;
}

function problem(code: CodeOf<'dataverse'>, kind: Kind, subject: string, message: string): DataverseError {
  const bare = new DataverseError(code, message);
  return new DataverseError(code, message, { context: { operation: subject, hint: hintFor(kind, bare, subject) } });
}

function quote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The spec with its defaults; a `ConfigError` (source `registerRelay`) naming every key that is not usable. */
function validate(
  spec: RegistrationSpec,
): Required<Omit<RegistrationSpec, 'serviceBus'>> & { serviceBus: ServiceBusSas } {
  const s = { ...REGISTRATION_DEFAULTS, realtime: [], updateKey: false, ...spec };
  const problems: ConfigProblem[] = [];
  const problem = (path: string, expected: string, found: string): void =>
    void problems.push({ source: 'registerRelay', path, expected, found });
  /** A non-empty string of at most `max` characters (the column it is written to). */
  const text = (path: string, value: unknown, max?: { length: number; column: string }): void => {
    if (typeof value !== 'string' || value.trim() === '')
      problem(path, 'a non-empty string', JSON.stringify(value) ?? 'nothing');
    else if (max !== undefined && value.length > max.length)
      problem(path, `at most ${max.length} characters (${max.column})`, `${value.length} characters`);
  };
  text('endpointName', s.endpointName, { length: 256, column: 'serviceendpoint.name' });
  text('queue', s.queue, { length: 160, column: 'serviceendpoint.path' });
  text('stepName', s.stepName);
  const bus = s.serviceBus as ServiceBusSas | undefined;
  if (bus === undefined || ![bus.host, bus.keyName, bus.key].every((v) => typeof v === 'string' && v !== ''))
    problem('serviceBus', 'host, keyName and key', 'not all of them');
  s.realtime.forEach((t, i) => {
    if (!('channelDefinitionId' in t)) text(`realtime.${i}.message`, t.message);
    else if (!GUID.test(t.channelDefinitionId))
      problem(`realtime.${i}.channelDefinitionId`, 'a GUID', JSON.stringify(t.channelDefinitionId));
  });
  if (problems.length > 0) throw new ConfigError('ConfigInvalid', problems);
  return s;
}

/**
 * Registers (or checks, with `dryRun`) the relay in the org `api` talks to. Throws a `ConfigError` for a spec it cannot
 * use (before any call) and a `DataverseError` with `context.hint` for what Dataverse refused.
 */
export async function registerRelay(
  api: DynamicsWebApi,
  spec: RegistrationSpec,
  options: RegisterOptions = {},
): Promise<RegistrationReport> {
  const s = validate(spec);
  const dryRun = options.dryRun ?? false;
  const log = areaLogger(options.log ?? silentLogger(), 'registration');
  const timeoutMs = options.timeoutMs ?? clientTimeoutMs(api) ?? DEFAULT_TIMEOUT_MS;
  const requests = { reads: 0, writes: 0 };
  const warnings: string[] = [];

  /** One Web API call with its timeout, counted, its failure mapped to a DataverseError with the operator's hint. */
  async function call<T>(
    kind: Kind,
    subject: string,
    write: boolean,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
    if (write) requests.writes += 1;
    else requests.reads += 1;
    try {
      return await run(signal);
    } catch (err) {
      const e = toDataverseError(err, { operation: subject, timedOut: timeout.aborted, timeoutMs });
      throw new DataverseError(e.code, e.message, {
        cause: e.cause ?? err,
        ...(e.upstream === undefined ? {} : { upstream: e.upstream }),
        ...(e.retryAfterMs === undefined ? {} : { retryAfterMs: e.retryAfterMs }),
        context: { operation: subject, hint: hintFor(kind, e, subject) },
      });
    }
  }
  const list = async (
    kind: Kind,
    subject: string,
    collection: string,
    select: readonly string[],
    filter: string,
    orderBy?: string[],
  ): Promise<Row[]> => {
    const res = await call(kind, subject, false, (signal) =>
      api.retrieveMultiple({
        collection,
        select: [...select],
        filter,
        signal,
        ...(orderBy === undefined ? {} : { orderBy }),
      }),
    );
    return ((res as { value?: Row[] } | undefined)?.value ?? []) as Row[];
  };

  // 1. Read: the endpoint, the ids the steps bind to, the endpoint's steps.
  const endpointSelect = ['serviceendpointid', ...ENDPOINT_COLUMNS, SAS_KEY_SET_COLUMN];
  const endpoints = await list(
    'endpoint',
    `finding the serviceendpoint named ${quote(s.endpointName)}`,
    'serviceendpoints',
    [...endpointSelect, 'createdon'],
    `name eq ${quote(s.endpointName)}`,
    ['createdon asc'],
  );
  if (endpoints.length > 1)
    warnings.push(
      `${endpoints.length} service endpoints are named '${s.endpointName}': the oldest one found is used; delete the others (each posts its own copy of every event its steps match)`,
    );
  const existingEndpoint = endpoints[0];

  const messageId = async (name: string, kind: Kind, subject: string): Promise<string> => {
    const rows = await list(kind, subject, 'sdkmessages', ['sdkmessageid', 'name'], `name eq ${quote(name)}`);
    const id = rows[0]?.['sdkmessageid'];
    if (typeof id !== 'string')
      throw problem('DataverseNotFound', kind, subject, `Dataverse has no sdkmessage named '${name}'`);
    return id;
  };

  /**
   * The Custom API must take the relay's asynchronous step: `allowedcustomprocessingsteptype` 0 (None) takes none and
   * cannot be changed after creation (CUSTOM_API_COLUMNS). An API without a plug-in answers its `response` with null.
   */
  const checkCustomApi = async (apiName: string): Promise<void> => {
    const subject = `reading the Custom API ${apiName}`;
    const rows = await list(
      'custom-api',
      subject,
      'customapis',
      [...CUSTOM_API_COLUMNS.select],
      `uniquename eq ${quote(apiName)}`,
    );
    const api = rows[0];
    if (api === undefined)
      throw problem(
        'DataverseNotFound',
        'custom-api',
        subject,
        `Dataverse has no Custom API (customapi) with the unique name '${apiName}'`,
      );
    const stepType = api[CUSTOM_API_COLUMNS.stepType];
    if (stepType === CUSTOM_API_COLUMNS.noSteps) {
      throw problem(
        'DataverseBadRequest',
        'step-type',
        `the Custom API ${apiName}`,
        `the Custom API '${apiName}' has allowedcustomprocessingsteptype 0 (None): it takes no processing step, so the relay's asynchronous Service Bus step cannot be registered on it; the API must allow asynchronous steps (1 Async Only or 2 Sync and Async), and the setting cannot be changed after the API is created`,
      );
    }
    if (api[CUSTOM_API_COLUMNS.pluginType] === null || api[CUSTOM_API_COLUMNS.pluginType] === undefined) {
      warnings.push(
        `the Custom API '${apiName}' has no plug-in: its 'response' output is null for every call (the relay's step is asynchronous and cannot set it), so the journey gets no Sent/NotSent status; the relay reports outcomes through msdyn_D365ChannelsNotification only (see README, Real-time journeys)`,
      );
    }
  };

  const createSubject = `looking up the Create sdkmessage`;
  const createId = await messageId('Create', 'message', createSubject);
  const filterSubject = `looking up the sdkmessagefilter for Create of ${ACTIVITY_TABLE}`;
  const filters = await list(
    'filter',
    filterSubject,
    'sdkmessagefilters',
    ['sdkmessagefilterid'],
    `primaryobjecttypecode eq ${quote(ACTIVITY_TABLE)} and _sdkmessageid_value eq ${createId}`,
  );
  const activityFilter = filters[0]?.['sdkmessagefilterid'];
  if (typeof activityFilter !== 'string')
    throw problem(
      'DataverseNotFound',
      'filter',
      filterSubject,
      `Dataverse has no sdkmessagefilter for Create of ${ACTIVITY_TABLE}`,
    );

  const targets: StepTarget[] = [
    {
      name: `${s.stepName}: Create of ${ACTIVITY_TABLE}`,
      target: `Create of ${ACTIVITY_TABLE}`,
      messageId: createId,
      filterId: activityFilter,
    },
  ];
  const seenMessages = new Set<string>();
  for (const t of s.realtime) {
    let apiName: string;
    let label: string;
    if ('channelDefinitionId' in t) {
      const which = `channel definition ${t.channelDefinitionId}${t.channel === undefined ? '' : ` (channel ${t.channel})`}`;
      const subject = `reading the ${which}`;
      const row = (await call('channel', subject, false, (signal) =>
        api.retrieve({
          collection: 'msdyn_channeldefinitions',
          key: t.channelDefinitionId,
          select: ['msdyn_outboundendpointurltemplate', 'msdyn_displayname'],
          signal,
        }),
      )) as Row | undefined;
      const template = row?.['msdyn_outboundendpointurltemplate'];
      if (typeof template !== 'string' || outboundApiMessage(template) === '') {
        throw problem(
          'DataverseNotFound',
          'custom-api',
          `the ${which}`,
          `the ${which} has no msdyn_outboundendpointurltemplate: it names no outbound Custom API`,
        );
      }
      apiName = outboundApiMessage(template);
      label = `the outbound Custom API of ${t.channel === undefined ? which : `channel ${t.channel}`}`;
    } else {
      apiName = t.message.trim();
      label = `the Custom API ${apiName}`;
    }
    if (seenMessages.has(apiName.toLowerCase())) continue;
    seenMessages.add(apiName.toLowerCase());
    await checkCustomApi(apiName);
    const subject = `looking up the sdkmessage of the Custom API ${apiName}`;
    const id = await messageId(apiName, 'custom-api', subject);
    const apiFilters = await list(
      'custom-api',
      `looking up the sdkmessagefilters of ${apiName}`,
      'sdkmessagefilters',
      ['sdkmessagefilterid', 'primaryobjecttypecode'],
      `_sdkmessageid_value eq ${id}`,
    );
    const none = apiFilters.find(
      (f) => String(f['primaryobjecttypecode'] ?? '').toLowerCase() === UNBOUND_FILTER_OBJECT,
    )?.['sdkmessagefilterid'];
    targets.push({
      name: `${s.stepName}: ${apiName}`,
      target: label,
      messageId: id,
      filterId: typeof none === 'string' ? none : undefined,
    });
  }

  const endpointId = existingEndpoint?.['serviceendpointid'] as string | undefined;
  const steps =
    endpointId === undefined
      ? []
      : await list(
          'steps',
          `reading the steps of the serviceendpoint ${endpointId}`,
          'sdkmessageprocessingsteps',
          [
            'sdkmessageprocessingstepid',
            'name',
            'mode',
            'stage',
            'rank',
            'supporteddeployment',
            'asyncautodelete',
            'statecode',
            'statuscode',
            '_sdkmessageid_value',
            '_sdkmessagefilterid_value',
            'createdon',
          ],
          `_eventhandler_value eq ${endpointId}`,
        );

  // 2. Plan.
  const desired = desiredEndpoint(s.endpointName, s.queue, s.serviceBus);
  const endpointPlan = planEndpoint(existingEndpoint, desired, s.serviceBus.key, s.updateKey);
  if (existingEndpoint !== undefined && existingEndpoint[SAS_KEY_SET_COLUMN] !== true && !s.updateKey) {
    warnings.push(
      `the org does not say that the endpoint's SAS key is set (${SAS_KEY_SET_COLUMN}), so the key is written on every run; the key itself is never read back or printed`,
    );
  }
  const format = existingEndpoint?.['messageformat'];
  if (existingEndpoint !== undefined && format !== ENDPOINT_CONSTANTS.messageformat) {
    const posts =
      format === 3
        ? 'Text XML (messageformat 3)'
        : `.NET Binary XML (${format === 1 ? 'messageformat 1' : 'no messageformat: the default'})`;
    warnings.push(
      `the endpoint posts ${posts}, which intake dead-letters (EventUnsupportedFormat); ${dryRun ? 'a run without --dry-run sets' : 'now set to'} messageformat 2 (Json)`,
    );
  }
  const endpointItem: RegistrationItem = {
    kind: 'serviceendpoint',
    name: s.endpointName,
    target: `queue ${s.queue} at ${String(desired['namespaceaddress'])}`,
    action: endpointPlan.action,
    changed: endpointPlan.changed,
    ...(endpointId === undefined ? {} : { id: endpointId }),
  };
  const stepPlans = targets.map((t) => {
    const found = matchingSteps(steps, t.messageId, t.filterId);
    if (found.length > 1)
      warnings.push(
        `${found.length} steps bind '${s.endpointName}' to ${t.target}: Dataverse posts each event once per step; the oldest is kept, delete the others`,
      );
    const existing = found[0];
    return {
      t,
      existing,
      plan: planStep(
        existing,
        desiredStep(t.name),
        endpointId === undefined ? {} : stepBindings(endpointId, t.messageId, t.filterId),
      ),
    };
  });

  // 3. Write what differs.
  const items: RegistrationItem[] = [endpointItem];
  if (!dryRun) {
    const id = await apply(
      'endpoint',
      'serviceendpoints',
      endpointItem,
      endpointPlan,
      `the serviceendpoint '${s.endpointName}'`,
    );
    endpointItem.id = id;
  }
  for (const { t, existing, plan } of stepPlans) {
    const item: RegistrationItem = {
      kind: 'step',
      name: t.name,
      target: t.target,
      action: plan.action,
      changed: plan.changed,
    };
    const existingId = existing?.['sdkmessageprocessingstepid'];
    if (typeof existingId === 'string') item.id = existingId;
    items.push(item);
    if (dryRun) continue;
    // The endpoint was created just now: bind the step to it.
    const body =
      plan.action === 'create'
        ? { ...plan.body, ...stepBindings(endpointItem.id as string, t.messageId, t.filterId) }
        : plan.body;
    item.id = await apply('steps', 'sdkmessageprocessingsteps', item, { ...plan, body }, `the step '${t.name}'`);
  }

  async function apply(
    kind: Kind,
    collection: string,
    item: RegistrationItem,
    plan: RowPlan,
    what: string,
  ): Promise<string> {
    if (plan.action === 'unchanged') return item.id as string;
    if (plan.action === 'create') {
      const id = (await call(kind, `creating ${what}`, true, (signal) =>
        api.create({ collection, data: plan.body, signal }),
      )) as string;
      log.info(`created ${item.kind}`, { name: item.name, id, columns: plan.changed });
      return id;
    }
    const key = item.id as string;
    await call(kind, `updating ${what}`, true, (signal) => api.update({ collection, key, data: plan.body, signal }));
    log.info(`updated ${item.kind}`, { name: item.name, id: key, columns: plan.changed });
    return key;
  }

  const changed = items.some((i) => i.action !== 'unchanged');
  return { dryRun, items, changed, warnings, requests };
}
