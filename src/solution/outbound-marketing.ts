/**
 * The outbound-marketing custom channel (MSDocs-CE `ce/marketing/developer/`: create-custom-channel.md,
 * create-entities-forms.md, configure-tile-custom-channel.md): the custom message table the journey's Custom Channel
 * Activity names (`msdyncrm_entitytype`), with the columns the relay renders; its main form and the lookup view the
 * tile's `LookupViewId` names; the tile XML (`<prefix>_<Name>TileCustomerJourneyDesignerTileConfig.xml`) and its CSS;
 * a configuration page (HTML) and the icon (SVG).
 */
import { COMPLIANCE_FIELD, tileIconUrl } from './assumptions.js';
import { componentId } from './ids.js';
import type { ChannelNames } from './options.js';
import type { RootComponent } from './solution-xml.js';
import { logical, tableFiles, type TableSpec } from './table.js';
import { webResourceFiles, type WebResourceSpec } from './web-resource.js';
import { el, escapeText, leaf, xmlDocument } from './xml.js';

/** The response types of a generated tile: the relay records each; `keyword` is the one custom type (TriggerKeyword). */
export const TILE_RESPONSE_TYPES = [
  { id: 'sent', label: 'Sent' },
  { id: 'delivered', label: 'Delivered' },
  { id: 'failed', label: 'Failed' },
  { id: 'opened', label: 'Opened' },
  { id: 'keyword', label: 'Keyword match', custom: true },
] as const;

/** What the outbound-marketing part of the solution is, for the manifest and the channels entry. */
export interface OutboundMarketingParts {
  files: Array<[string, string]>;
  rootComponents: RootComponent[];
  /** The tile web resource's path in the solution folder. */
  tilePath: string;
  /** Logical names: the message table and its text and channel columns. */
  table: string;
  textField: string;
  channelField: string;
  lookupViewId: string;
}

/** The message table: primary name, the text (memo) and the relay channel's name. */
export function messageTable(n: ChannelNames): TableSpec {
  const id = (what: string) => componentId(n.prefix, n.name, what);
  return {
    schema: `${n.prefix}_${n.part}message`,
    display: `${n.title} message`,
    displayPlural: `${n.title} messages`,
    description: `The messages a customer journey sends through the ${n.name} channel (channel-relay).`,
    entitySetName: `${n.prefix}_${n.part}messages`,
    primaryName: {
      schema: `${n.prefix}_name`,
      display: 'Name',
      description: 'The message’s name, shown in the journey designer.',
      kind: 'string',
      maxLength: 100,
    },
    columns: [
      {
        schema: `${n.prefix}_text`,
        display: 'Text',
        description: 'The text sent; {column} is replaced by the contact’s column.',
        kind: 'memo',
        maxLength: 4000,
      },
      {
        schema: `${n.prefix}_channel`,
        display: 'Channel',
        description: 'The channel-relay channel that sends this message (channels.json name).',
        kind: 'string',
        maxLength: 50,
      },
    ],
    formId: id('form:message'),
    views: [
      { id: id('view:message:active'), name: `Active ${n.title} messages`, querytype: 0 },
      { id: id('view:message:lookup'), name: `${n.title} message lookup`, querytype: 64 },
    ],
  };
}

function tileXml(n: ChannelNames, table: TableSpec, lookupViewId: string): string {
  const tile = `${n.prefix}_${n.pascal}Tile`;
  return xmlDocument(
    el(
      'LibraryTile',
      {},
      el('Definition', {
        icon: tile,
        fontFamily: `${tile}SymbolFont`,
        cssFileName: `${tile}CustomerJourneyDesignerTileConfig.css`,
      }),
      el(
        'ChannelProperties',
        {},
        leaf('EntityType', logical(table.schema)),
        leaf('EntitySetName', table.entitySetName),
        leaf('TitleFieldName', logical(table.primaryName.schema)),
        leaf('ComplianceField', COMPLIANCE_FIELD),
        leaf('LookupViewId', lookupViewId),
      ),
      el(
        'ResponseTypes',
        {},
        TILE_RESPONSE_TYPES.map((r) =>
          el('ResponseType', { id: r.id, custom: 'custom' in r ? 'True' : undefined }, label(r.label)),
        ),
      ),
      label(`${n.title} message`),
      el('Tooltips', {}, el('Tooltip', { locId: 1033 }, 'Sends a text message through channel-relay')),
    ),
  );
}

/** `<Labels><Label locId="1033">text</Label></Labels>`: the tile's label list (1033 is mandatory). */
function label(text: string) {
  return el('Labels', {}, el('Label', { locId: 1033 }, text));
}

/** The tile's CSS, in the docs' format, with the icon from the SVG web resource. */
function tileCss(n: ChannelNames, iconName: string): string {
  const tile = `${n.prefix}_${n.pascal}Tile`;
  const color = '#0072c6';
  return [
    `/* The ${n.name} channel's tile in the customer journey designer (configure-tile-custom-channel.md). */`,
    `.${tile}SymbolFont {`,
    `  font-family: '${tile}CustomerJourneyDesignerTileConfig';`,
    '}',
    `.${tile}::before {`,
    `  content: url('${tileIconUrl(iconName)}');`,
    '}',
    `#libraryElementCustom_${tile} > span.lib-iconContainer {`,
    `  background-color: ${color};`,
    '}',
    `.Custom_${tile} span.tileImageWrapper {`,
    `  background-color: ${color};`,
    '}',
    `.Custom_${tile}.tileOutline.selected {`,
    `  border-color: ${color};`,
    '}',
    `.Custom_${tile}.tileLeftBorder {`,
    `  border-left-color: ${color};`,
    '}',
    '',
  ].join('\n');
}

/** The configuration page: what the channel is and where its settings live (the relay's channels.json). */
function configPage(n: ChannelNames, table: TableSpec): string {
  const t = escapeText;
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<title>${t(n.title)} channel</title>`,
    '</head>',
    '<body>',
    `<h1>${t(n.title)} channel</h1>`,
    `<p>Messages of this channel are ${t(`${n.title} message`)} records (table <code>${t(logical(table.schema))}</code>): `,
    `the text is <code>${t(logical(table.columns[0]!.schema))}</code>, the sending channel <code>${t(logical(table.columns[1]!.schema))}</code>.</p>`,
    `<p>channel-relay sends them: its <code>channels.json</code> entry <code>${t(n.name)}</code> names the provider, the sender and the rate limit.</p>`,
    `<p>A contact with <code>${t(COMPLIANCE_FIELD)}</code> set gets no message.</p>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** A speech-bubble icon, 32 × 32. */
function iconSvg(): string {
  return [
    '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">',
    '  <path fill="#ffffff" d="M6 6h20a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H13l-6 5v-5H6a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2z"/>',
    '</svg>',
    '',
  ].join('\n');
}

export function outboundMarketing(n: ChannelNames): OutboundMarketingParts {
  const id = (what: string) => componentId(n.prefix, n.name, what);
  const table = messageTable(n);
  const lookupViewId = table.views.find((v) => v.querytype === 64)!.id;
  const tile = `${n.prefix}_${n.pascal}Tile`;
  const resources: WebResourceSpec[] = [
    {
      id: id('webresource:tile'),
      name: `${tile}CustomerJourneyDesignerTileConfig.xml`,
      displayName: `${n.title} tile`,
      type: 'xml',
      content: tileXml(n, table, lookupViewId),
    },
    {
      id: id('webresource:tile-css'),
      name: `${tile}CustomerJourneyDesignerTileConfig.css`,
      displayName: `${n.title} tile style`,
      type: 'css',
      content: tileCss(n, `${tile}Icon.svg`),
    },
    {
      id: id('webresource:config-page'),
      name: `${tile}Configuration.html`,
      displayName: `${n.title} channel configuration`,
      type: 'html',
      content: configPage(n, table),
    },
    {
      id: id('webresource:icon'),
      name: `${tile}Icon.svg`,
      displayName: `${n.title} icon`,
      type: 'svg',
      content: iconSvg(),
    },
  ];
  return {
    files: [...tableFiles(table, id), ...resources.flatMap(webResourceFiles)],
    rootComponents: [
      { type: 'entity', schemaName: logical(table.schema) },
      ...resources.map((r): RootComponent => ({ type: 'webResource', schemaName: r.name })),
    ],
    tilePath: `WebResources/${resources[0]!.name}`,
    table: logical(table.schema),
    textField: logical(table.columns[0]!.schema),
    channelField: logical(table.columns[1]!.schema),
    lookupViewId,
  };
}
