/**
 * The real-time journeys custom channel (MSDocs-CE `ce/marketing/real-time-marketing-*`): the channel definition and
 * its message parts (records in Customizations.xml), the channel instance's extended configuration table with its form
 * and its relationship to `msdyn_channelinstance` on the polymorphic `msdyn_extendedentityId`, for SMS the instance
 * account's likewise, for Custom the message editor table and form, and the custom APIs: outbound (`payload` in,
 * `response` out), and with `--delivery-reports` / `--inbound` the delivery report and inbound APIs.
 */
import { OUTBOUND_API_STEP_TYPE, REPORT_API_PARAMETERS, supportsAttachment } from './assumptions.js';
import { customApiFiles, type CustomApiSpec } from './custom-api.js';
import { componentId } from './ids.js';
import { MESSAGE_PART_TYPES, type ChannelNames, type MessagePart } from './options.js';
import type { RootComponent } from './solution-xml.js';
import { tableFiles, type Column, type TableSpec } from './table.js';
import { el, leaf, xmlDocument, XSI, type XmlElement } from './xml.js';

export interface RealtimeParts {
  files: Array<[string, string]>;
  rootComponents: RootComponent[];
  /** The records Customizations.xml carries: `msdyn_channeldefinitions`, `msdyn_channelmessageparts`. */
  customizations: XmlElement[];
  /** The relationships' names (for Other/Relationships.xml). */
  relationships: string[];
  channelDefinitionId: string;
  outboundApi: string;
  /** Parts of type media or image: the channels entry's `provider.mediaParts`. */
  mediaParts: string[];
}

/** The base tables an extended configuration table hangs off (schema names, as the docs' relationships write them). */
const BASE = { instance: 'msdyn_ChannelInstance', account: 'msdyn_ChannelInstanceAccount' } as const;

function configTable(n: ChannelNames, kind: 'instance' | 'account'): TableSpec {
  const id = (what: string) => componentId(n.prefix, n.name, what);
  const suffix = kind === 'instance' ? 'instance' : 'instanceaccount';
  const what = kind === 'instance' ? 'sender (channel instance)' : 'provider account (channel instance account)';
  const extra: Column =
    kind === 'instance'
      ? {
          schema: `${n.prefix}_relaychannel`,
          display: 'channel-relay channel',
          description: 'The channels.json name of the relay channel that sends for this sender.',
          kind: 'string',
          maxLength: 50,
        }
      : {
          schema: `${n.prefix}_accountid`,
          display: 'Provider account',
          description: 'The provider’s account id, under which this account’s senders are.',
          kind: 'string',
          maxLength: 100,
        };
  return {
    schema: `${n.prefix}_${n.part}${suffix}`,
    display: `${n.title} ${kind === 'instance' ? 'sender' : 'account'}`,
    displayPlural: `${n.title} ${kind === 'instance' ? 'senders' : 'accounts'}`,
    description: `The extended configuration of a ${n.name} ${what}.`,
    entitySetName: `${n.prefix}_${n.part}${suffix}s`,
    primaryName: { schema: `${n.prefix}_name`, display: 'Name', description: 'Name.', kind: 'string', maxLength: 100 },
    columns: [extra],
    formId: id(`form:${kind}`),
    views: [
      {
        id: id(`view:${kind}:active`),
        name: `Active ${n.title} ${kind === 'instance' ? 'senders' : 'accounts'}`,
        querytype: 0,
      },
    ],
  };
}

/** The message editor's table (Custom channels): a column per part, named `<prefix>_<part>`, and `placeholders`. */
function editorTable(n: ChannelNames): TableSpec {
  const id = (what: string) => componentId(n.prefix, n.name, what);
  const columns: Column[] = n.parts.map((p) => ({
    schema: `${n.prefix}_${p.name}`,
    display: displayOf(p.name),
    description: `The message part ${p.name} (${p.type}).`,
    kind: 'string',
    maxLength: p.type === 'plaintext' ? p.maxLength : 100,
  }));
  columns.push({
    schema: `${n.prefix}_placeholders`,
    display: 'Placeholders',
    description: 'The personalization placeholders Marketing fills (required by the message editor).',
    kind: 'memo',
    maxLength: 100000,
    hidden: true,
  });
  return {
    schema: `${n.prefix}_${n.part}message`,
    display: `${n.title} message`,
    displayPlural: `${n.title} messages`,
    description: `Metadata only: the message contract of the ${n.name} channel for the Marketing message editor; stores nothing.`,
    entitySetName: `${n.prefix}_${n.part}messages`,
    primaryName: { schema: `${n.prefix}_name`, display: 'Name', description: 'Name.', kind: 'string', maxLength: 100 },
    columns,
    formId: id('form:editor'),
    views: [{ id: id('view:editor:active'), name: `Active ${n.title} messages`, querytype: 0 }],
  };
}

function displayOf(name: string): string {
  return name
    .split('_')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(' ');
}

/** `msdyn_<Base>_extendedentityid_<table>`, as the docs' example. */
function relationship(base: string, table: string): { name: string; table: string; xml: XmlElement } {
  const name = `${base}_extendedentityid_${table}`;
  return {
    name,
    table,
    xml: el(
      'EntityRelationship',
      { Name: name },
      leaf('EntityRelationshipType', 'OneToMany'),
      leaf('IsCustomizable', 0),
      leaf('IntroducedVersion', '1.0.0.0'),
      leaf('IsHierarchical', 0),
      leaf('ReferencingEntityName', base),
      leaf('ReferencedEntityName', table),
      leaf('CascadeAssign', 'NoCascade'),
      leaf('CascadeDelete', 'RemoveLink'),
      leaf('CascadeReparent', 'NoCascade'),
      leaf('CascadeShare', 'NoCascade'),
      leaf('CascadeUnshare', 'NoCascade'),
      leaf('CascadeRollupView', 'NoCascade'),
      leaf('IsValidForAdvancedFind', 1),
      leaf('ReferencingAttributeName', 'msdyn_extendedentityId'),
      el(
        'RelationshipDescription',
        {},
        el('Descriptions', {}, el('Description', { description: '', languagecode: 1033 })),
      ),
      el(
        'EntityRelationshipRoles',
        {},
        el(
          'EntityRelationshipRole',
          {},
          leaf('NavPaneDisplayOption', 'UseCollectionName'),
          leaf('NavPaneArea', 'Details'),
          leaf('NavPaneOrder', 10000),
          leaf('NavigationPropertyName', `msdyn_extendedentityid_${table}`),
          leaf('RelationshipRoleType', 1),
        ),
        el('EntityRelationshipRole', {}, leaf('NavigationPropertyName', name), leaf('RelationshipRoleType', 0)),
      ),
    ),
  };
}

function channelDefinition(
  n: ChannelNames,
  definitionId: string,
  instance: TableSpec,
  account: TableSpec | undefined,
  editor: TableSpec | undefined,
  outboundApi: string,
): XmlElement {
  const attachments = supportsAttachment(n.parts.map((p) => p.type));
  return el(
    'msdyn_channeldefinitions',
    {},
    el(
      'msdyn_channeldefinition',
      { msdyn_channeldefinitionid: definitionId },
      account ? [leaf('msdyn_channeldefinitionaccountexternalentity', account.schema)] : [],
      account ? [leaf('msdyn_channeldefinitionaccountexternalformid', account.formId)] : [],
      leaf('msdyn_channeldefinitionexternalentity', instance.schema),
      leaf('msdyn_channeldefinitionexternalformid', instance.formId),
      leaf('msdyn_channeltype', n.channelType),
      leaf('msdyn_description', `The ${n.name} channel, sent by channel-relay.`),
      leaf('msdyn_displayname', n.title),
      leaf('msdyn_hasdeliveryreceipt', n.deliveryReports),
      leaf('msdyn_hasinbound', n.inbound),
      editor ? [leaf('msdyn_messageformid', editor.formId)] : [],
      leaf('msdyn_outboundendpointurltemplate', `/${outboundApi}`),
      leaf('msdyn_specialconsentrequired', false),
      leaf('msdyn_supportsaccount', n.channelType === 'SMS'),
      leaf('msdyn_supportsattachment', attachments),
      leaf('msdyn_supportsbinary', false),
      leaf('statecode', 0),
      leaf('statuscode', 1),
    ),
  );
}

function messageParts(n: ChannelNames, definitionId: string): XmlElement {
  return el(
    'msdyn_channelmessageparts',
    {},
    n.parts.map((p: MessagePart, i) =>
      el(
        'msdyn_channelmessagepart',
        { msdyn_channelmessagepartid: componentId(n.prefix, n.name, `part:${p.name}`) },
        el('msdyn_channeldefinitionid', {}, leaf('msdyn_channeldefinitionid', definitionId)),
        leaf('msdyn_description', `${displayOf(p.name)} (${p.type})`),
        leaf('msdyn_displayname', displayOf(p.name)),
        leaf('msdyn_isrequired', p.required),
        leaf('msdyn_maxlength', p.maxLength),
        leaf('msdyn_name', p.name),
        // The larger the number, the higher the position in the editor: the first part listed comes first.
        leaf('msdyn_order', n.parts.length - i),
        leaf('msdyn_type', MESSAGE_PART_TYPES[p.type]),
        leaf('statecode', 0),
        leaf('statuscode', 1),
      ),
    ),
  );
}

function apis(n: ChannelNames): CustomApiSpec[] {
  const api = (suffix: string, displayName: string, description: string, request: string, response: string) => ({
    uniqueName: `${n.prefix}_${n.pascal}${suffix}`,
    displayName,
    description,
    allowedCustomProcessingStepType: OUTBOUND_API_STEP_TYPE,
    requestParameters: [{ uniqueName: REPORT_API_PARAMETERS.request, description: request }],
    responseProperties: [{ uniqueName: REPORT_API_PARAMETERS.response, description: response }],
  });
  const list: CustomApiSpec[] = [
    api(
      'OutboundApi',
      `${n.title} outbound`,
      `Called by real-time journeys for each ${n.name} message; channel-relay sends it.`,
      'The message as JSON: ChannelDefinitionId, RequestId, From, To, Message (parts by name), MarketingAppContext.',
      'The result as JSON: ChannelDefinitionId, RequestId, MessageId, Status.',
    ),
  ];
  if (n.deliveryReports) {
    list.push(
      api(
        'DeliveryReportApi',
        `${n.title} delivery report`,
        `Called with a provider's delivery report of a ${n.name} message; it calls msdyn_D365ChannelsNotification.`,
        'The delivery report as JSON.',
        'The result as JSON.',
      ),
    );
  }
  if (n.inbound) {
    list.push(
      api(
        'InboundApi',
        `${n.title} inbound`,
        `Called with a customer's ${n.name} message; it calls msdyn_D365ChannelsInbound.`,
        'The inbound message as JSON.',
        'The result as JSON.',
      ),
    );
  }
  return list;
}

export function realtime(n: ChannelNames): RealtimeParts {
  const id = (what: string) => componentId(n.prefix, n.name, what);
  const definitionId = id('channeldefinition');
  const instance = configTable(n, 'instance');
  const account = n.channelType === 'SMS' ? configTable(n, 'account') : undefined;
  const editor = n.channelType === 'Custom' ? editorTable(n) : undefined;
  const tables = [instance, ...(account ? [account] : []), ...(editor ? [editor] : [])];
  const relations = [
    relationship(BASE.instance, instance.schema),
    ...(account ? [relationship(BASE.account, account.schema)] : []),
  ];
  const customApis = apis(n);
  const outboundApi = customApis[0]!.uniqueName;
  const files: Array<[string, string]> = [
    ...tables.flatMap((t) => tableFiles(t, id)),
    // SolutionPackager files a relationship under its referenced (one) side: here the configuration table.
    ...relations.map((r): [string, string] => [
      `Other/Relationships/${r.table}.xml`,
      xmlDocument(el('EntityRelationships', XSI, r.xml)),
    ]),
    ...customApis.flatMap(customApiFiles),
  ];
  return {
    files,
    rootComponents: [
      ...tables.map((t): RootComponent => ({ type: 'entity', schemaName: t.schema })),
      ...relations.map((r): RootComponent => ({ type: 'relationship', schemaName: r.name })),
    ],
    customizations: [
      channelDefinition(n, definitionId, instance, account, editor, outboundApi),
      messageParts(n, definitionId),
    ],
    relationships: relations.map((r) => r.name),
    channelDefinitionId: definitionId,
    outboundApi,
    mediaParts: n.parts.filter((p) => p.type === 'media' || p.type === 'image').map((p) => p.name),
  };
}
