/**
 * Packed solutions for the emulator's import tests, written from the documented shapes (PA-docs
 * custom-api-solution.md, MSDocs-CE real-time-marketing-define-channel-definition.md and the message parts page,
 * configure-tile-custom-channel.md) and zipped with fflate. Each builder takes `edit` hooks so that a test can break
 * one thing at a time.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { strToU8, zipSync } from 'fflate';
import type { DataverseEmulator } from '../../../../src/emulators/dataverse/index.js';
import { configPath } from '../../../../src/paths.js';

export const TILE_NAME = 'sample_SpecialTileCustomerJourneyDesignerTileConfig.xml';
export const TILE_XML = readFileSync(configPath(`tiles/${TILE_NAME}`), 'utf8');
export const REALTIME = {
  definition: 'b1b25a46-6da0-4c08-9cf3-505e613c8e30',
  part: '15d57b1a-ddcd-4bb1-9af6-c691567ab9ef',
  instanceForm: '7d2b885a-80eb-479d-b0c3-600bc41e9789',
  accountForm: '3071133f-1208-4dc1-8eba-4d4724961029',
  outboundApi: 'cr65f_OutboundCustomApi',
};

const API = '/api/data/v9.2/';

/** One Web API call to the emulator: its answer's status and JSON body ({} when empty). */
export type WebApiCall = (
  emulator: DataverseEmulator,
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ status: number; json: Record<string, unknown> }>;

/**
 * Web API calls to the emulator as `token`'s user: `path` under /api/data/v9.2/, or from the root when it starts with
 * '/' (the emulator's own /_emulator routes).
 */
export function webApiCaller(token: string): WebApiCall {
  return async (emulator, method, path, body) => {
    const res = await fetch(`${emulator.url}${path.startsWith('/') ? path : `${API}${path}`}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  };
}

/** The parameters of ImportSolution / ImportSolutionAsync for `zip` (a new ImportJobId), `extra` merged over them. */
export function importBody(zip: Uint8Array, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    OverwriteUnmanagedCustomizations: true,
    PublishWorkflows: true,
    CustomizationFile: Buffer.from(zip).toString('base64'),
    ImportJobId: randomUUID(),
    ...extra,
  };
}

const CONTENT_TYPES = `<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/octet-stream" /></Types>`;

export function solutionXml(uniqueName: string, prefix: string, version = '1.0.0.0'): string {
  return `<?xml version="1.0" encoding="utf-8"?>
<ImportExportXml version="9.2.24012.196" SolutionPackageVersion="9.2" languagecode="1033" generatedBy="CrmLive">
  <SolutionManifest>
    <UniqueName>${uniqueName}</UniqueName>
    <LocalizedNames><LocalizedName description="${uniqueName}" languagecode="1033" /></LocalizedNames>
    <Descriptions />
    <Version>${version}</Version>
    <Managed>0</Managed>
    <Publisher>
      <UniqueName>${prefix}publisher</UniqueName>
      <LocalizedNames><LocalizedName description="Sample publisher" languagecode="1033" /></LocalizedNames>
      <CustomizationPrefix>${prefix}</CustomizationPrefix>
      <CustomizationOptionValuePrefix>10000</CustomizationOptionValuePrefix>
    </Publisher>
    <RootComponents />
    <MissingDependencies />
  </SolutionManifest>
</ImportExportXml>`;
}

interface Attribute {
  name: string;
  type: string;
  maxLength?: number;
  primaryName?: boolean;
}

export function entityXml(name: string, set: string, attributes: Attribute[], forms: string[] = []): string {
  const attrs = attributes
    .map(
      (a) => `<attribute PhysicalName="${a.name}">
            <Type>${a.type}</Type><Name>${a.name}</Name><LogicalName>${a.name}</LogicalName>
            <RequiredLevel>${a.type === 'primarykey' ? 'systemrequired' : 'none'}</RequiredLevel>
            <DisplayMask>${a.primaryName ? 'PrimaryName|ValidForAdvancedFind|ValidForForm|ValidForGrid' : 'ValidForAdvancedFind|ValidForForm|ValidForGrid'}</DisplayMask>
            ${a.maxLength === undefined ? '' : `<MaxLength>${a.maxLength}</MaxLength>`}
          </attribute>`,
    )
    .join('\n');
  const formXml = forms
    .map((f) => `<systemform><formid>{${f}}</formid><IntroducedVersion>1.0</IntroducedVersion><form /></systemform>`)
    .join('');
  return `<Entity>
      <Name LocalizedName="${name}" OriginalName="${name}">${name}</Name>
      <EntityInfo>
        <entity Name="${name}">
          <LocalizedNames><LocalizedName description="${name}" languagecode="1033" /></LocalizedNames>
          <attributes>
          ${attrs}
          </attributes>
          <EntitySetName>${set}</EntitySetName>
          <OwnershipTypeMask>OrgOwned</OwnershipTypeMask>
        </entity>
      </EntityInfo>
      <FormXml>${formXml === '' ? '' : `<forms type="main">${formXml}</forms>`}</FormXml>
      <SavedQueries />
    </Entity>`;
}

export interface Edits {
  /** Changes the text of a file before it is zipped. */
  files?: (files: Record<string, string>) => void;
}

function zip(files: Record<string, string>, edits: Edits): Uint8Array {
  edits.files?.(files);
  return zipSync(Object.fromEntries(Object.entries(files).map(([name, text]) => [name, strToU8(text)])));
}

/** The outbound-marketing sample: message table `sample_specialmessage` and its tile web resource. */
export function outboundMarketingFiles(): Record<string, string> {
  const customizations = `<?xml version="1.0" encoding="utf-8"?>
<ImportExportXml xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Entities>
    ${entityXml('sample_specialmessage', 'sample_specialmessages', [
      { name: 'sample_specialmessageid', type: 'primarykey' },
      { name: 'sample_name', type: 'nvarchar', maxLength: 100, primaryName: true },
      { name: 'sample_text', type: 'ntext' },
      { name: 'sample_channel', type: 'nvarchar', maxLength: 50 },
    ])}
  </Entities>
  <Roles /><Workflows /><FieldSecurityProfiles /><Templates /><EntityMaps /><EntityRelationships />
  <OrganizationSettings /><optionsets /><CustomControls /><EntityDataProviders />
  <WebResources>
    <WebResource>
      <WebResourceId>{0c7a3f52-8d41-4b6e-9e1f-2a5b7c9d0e13}</WebResourceId>
      <Name>${TILE_NAME}</Name>
      <DisplayName>Special tile configuration</DisplayName>
      <WebResourceType>4</WebResourceType>
      <IsCustomizable>1</IsCustomizable>
      <FileName>/WebResources/${TILE_NAME}</FileName>
    </WebResource>
  </WebResources>
  <Languages><Language>1033</Language></Languages>
</ImportExportXml>`;
  return {
    '[Content_Types].xml': CONTENT_TYPES,
    'solution.xml': solutionXml('SpecialChannel', 'sample'),
    'customizations.xml': customizations,
    [`WebResources/${TILE_NAME}`]: TILE_XML,
  };
}

export function outboundMarketingZip(edits: Edits = {}): Uint8Array {
  return zip(outboundMarketingFiles(), edits);
}

function customApiFile(root: string, unique: string, body: string): string {
  return `<${root} uniquename="${unique}">
  <description default="${unique}"><label description="${unique}" languagecode="1033" /></description>
  <displayname default="${unique}"><label description="${unique}" languagecode="1033" /></displayname>
  <iscustomizable>1</iscustomizable>
  ${body}
</${root}>`;
}

/** The real-time SMS sample: channel definition, its `text` part, instance tables, the outbound custom API. */
export function realtimeFiles(): Record<string, string> {
  const r = REALTIME;
  const customizations = `<?xml version="1.0" encoding="utf-8"?>
<ImportExportXml xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Entities>
    ${entityXml(
      'cr65f_samplechannelinstance',
      'cr65f_samplechannelinstances',
      [
        { name: 'cr65f_samplechannelinstanceid', type: 'primarykey' },
        { name: 'cr65f_name', type: 'nvarchar', maxLength: 100, primaryName: true },
        { name: 'cr65f_sendernumber', type: 'nvarchar', maxLength: 50 },
      ],
      [r.instanceForm],
    )}
    ${entityXml(
      'cr65f_samplechannelinstanceaccount',
      'cr65f_samplechannelinstanceaccounts',
      [
        { name: 'cr65f_samplechannelinstanceaccountid', type: 'primarykey' },
        { name: 'cr65f_name', type: 'nvarchar', maxLength: 100, primaryName: true },
        { name: 'cr65f_accountsid', type: 'nvarchar', maxLength: 100 },
      ],
      [r.accountForm],
    )}
  </Entities>
  <EntityRelationships>
    <EntityRelationship Name="msdyn_ChannelInstance_extendedentityid_cr65f_samplechannelinstance">
      <EntityRelationshipType>OneToMany</EntityRelationshipType>
      <IsCustomizable>0</IsCustomizable>
      <ReferencingEntityName>msdyn_ChannelInstance</ReferencingEntityName>
      <ReferencedEntityName>cr65f_samplechannelinstance</ReferencedEntityName>
      <ReferencingAttributeName>msdyn_extendedentityId</ReferencingAttributeName>
      <EntityRelationshipRoles>
        <EntityRelationshipRole>
          <NavPaneDisplayOption>UseCollectionName</NavPaneDisplayOption>
          <NavigationPropertyName>msdyn_extendedentityid_cr65f_samplechannelinstance</NavigationPropertyName>
          <RelationshipRoleType>1</RelationshipRoleType>
        </EntityRelationshipRole>
        <EntityRelationshipRole>
          <NavigationPropertyName>msdyn_ChannelInstance_extendedentityid_cr65f_samplechannelinstance</NavigationPropertyName>
          <RelationshipRoleType>0</RelationshipRoleType>
        </EntityRelationshipRole>
      </EntityRelationshipRoles>
    </EntityRelationship>
  </EntityRelationships>
  <msdyn_channeldefinitions>
    <msdyn_channeldefinition msdyn_channeldefinitionid="${r.definition}">
      <msdyn_channeldefinitionaccountexternalentity>cr65f_samplechannelinstanceaccount</msdyn_channeldefinitionaccountexternalentity>
      <msdyn_channeldefinitionaccountexternalformid>${r.accountForm}</msdyn_channeldefinitionaccountexternalformid>
      <msdyn_channeldefinitionexternalentity>cr65f_samplechannelinstance</msdyn_channeldefinitionexternalentity>
      <msdyn_channeldefinitionexternalformid>${r.instanceForm}</msdyn_channeldefinitionexternalformid>
      <msdyn_channeltype>SMS</msdyn_channeltype>
      <msdyn_description>Sample SMS channel</msdyn_description>
      <msdyn_displayname>Sample SMS</msdyn_displayname>
      <msdyn_hasdeliveryreceipt>1</msdyn_hasdeliveryreceipt>
      <msdyn_hasinbound>1</msdyn_hasinbound>
      <msdyn_outboundendpointurltemplate>/${r.outboundApi}</msdyn_outboundendpointurltemplate>
      <msdyn_specialconsentrequired>0</msdyn_specialconsentrequired>
      <msdyn_supportsaccount>1</msdyn_supportsaccount>
      <msdyn_supportsattachment>0</msdyn_supportsattachment>
      <msdyn_supportsbinary>0</msdyn_supportsbinary>
      <statecode>0</statecode>
      <statuscode>1</statuscode>
    </msdyn_channeldefinition>
  </msdyn_channeldefinitions>
  <msdyn_channelmessageparts>
    <msdyn_channelmessagepart msdyn_channelmessagepartid="${r.part}">
      <msdyn_channeldefinitionid>
        <msdyn_channeldefinitionid>${r.definition}</msdyn_channeldefinitionid>
      </msdyn_channeldefinitionid>
      <msdyn_description>Text</msdyn_description>
      <msdyn_displayname>Text</msdyn_displayname>
      <msdyn_isrequired>1</msdyn_isrequired>
      <msdyn_maxlength>1000</msdyn_maxlength>
      <msdyn_name>text</msdyn_name>
      <msdyn_type>192350000</msdyn_type>
      <statecode>0</statecode>
      <statuscode>1</statuscode>
    </msdyn_channelmessagepart>
  </msdyn_channelmessageparts>
  <Languages><Language>1033</Language></Languages>
</ImportExportXml>`;
  const api = `customapis/${r.outboundApi}`;
  return {
    '[Content_Types].xml': CONTENT_TYPES,
    'solution.xml': solutionXml('SampleSmsChannel', 'cr65f'),
    'customizations.xml': customizations,
    [`${api}/customapi.xml`]: customApiFile(
      'customapi',
      r.outboundApi,
      `<allowedcustomprocessingsteptype>1</allowedcustomprocessingsteptype>
  <bindingtype>0</bindingtype>
  <boundentitylogicalname />
  <executeprivilegename />
  <isfunction>0</isfunction>
  <isprivate>0</isprivate>
  <name>${r.outboundApi}</name>
  <plugintypeid />
  <workflowsdkstepenabled>0</workflowsdkstepenabled>`,
    ),
    [`${api}/customapirequestparameters/payload/customapirequestparameter.xml`]: customApiFile(
      'customapirequestparameter',
      'payload',
      `<isoptional>0</isoptional><logicalentityname /><name>${r.outboundApi}.payload</name><type>10</type>`,
    ),
    [`${api}/customapiresponseproperties/response/customapiresponseproperty.xml`]: customApiFile(
      'customapiresponseproperty',
      'response',
      `<logicalentityname /><name>${r.outboundApi}.response</name><type>10</type>`,
    ),
  };
}

export function realtimeZip(edits: Edits = {}): Uint8Array {
  return zip(realtimeFiles(), edits);
}
