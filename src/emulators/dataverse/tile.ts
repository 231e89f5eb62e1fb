/**
 * The Dataverse emulator's own reading of an outbound-marketing tile XML (`<LibraryTile>`): what Dataverse takes
 * from it when a journey creates activities and when CreateInteraction is called (the custom table, the contact's
 * compliance field, the response types). Written from MSDocs-CE `ce/marketing/developer/configure-tile-custom-channel.md`
 * on its own, not with the relay's parser (`src/channels/tile.ts`): a misreading on either side then fails the tests
 * instead of agreeing with itself. Where the docs leave room, it takes the strict reading (see assumptions.ts
 * `TILE_READING`).
 */
import { XMLParser } from 'fast-xml-parser';
import { TILE_READING } from './assumptions.js';

/** A response type the tile declares. */
export interface SeedTileResponseType {
  id: string;
  /** `custom="True"`: CreateInteraction needs a `TriggerKeyword` for it. */
  custom: boolean;
}

/** What the emulator keeps of a tile. */
export interface SeedTile {
  entityType: string;
  entitySetName: string;
  /** A boolean column of `contact`: a journey creates no activity for a contact where it is true. */
  complianceField: string;
  /** Empty: the tile declares none, and CreateInteraction takes any ResponseType. */
  responseTypes: SeedTileResponseType[];
}

/** A tile the emulator refuses, with the reason. */
export class SeedTileError extends Error {
  override readonly name = 'SeedTileError';
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  attributesGroupName: '$',
  textNodeName: '_',
  parseTagValue: false,
  parseAttributeValue: false,
  isArray: (tag) => ['ResponseType', 'Label'].includes(tag),
});

type Element = { $?: Record<string, string>; _?: string; [child: string]: unknown };

const asElement = (v: unknown): Element | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Element) : v === '' ? {} : undefined;
const content = (v: unknown): string => (typeof v === 'string' ? v : (asElement(v)?._ ?? '')).trim();

/** Refuses a `<Labels>` block without the English label the docs require on every label set. */
function checkLabels(labels: unknown, where: string, source: string): void {
  const list = asElement(labels)?.['Label'];
  const locales = (Array.isArray(list) ? list : []).map((l) => asElement(l)?.$?.['locId']);
  if (!locales.includes(TILE_READING.requiredLabelLocale)) {
    throw new SeedTileError(`${source}: ${where} has no <Label locId="${TILE_READING.requiredLabelLocale}">`);
  }
}

/** Reads a tile XML document as the emulated org does; `source` names it in errors. */
export function readSeedTile(text: string, source: string): SeedTile {
  let doc: Record<string, unknown>;
  try {
    doc = xml.parse(text, true) as Record<string, unknown>;
  } catch (err) {
    throw new SeedTileError(`${source}: the tile is not well-formed XML (${(err as Error).message})`);
  }
  const tile = asElement(doc['LibraryTile']);
  if (tile === undefined) throw new SeedTileError(`${source}: the document element must be <LibraryTile>`);
  const properties = asElement(tile['ChannelProperties']);
  if (properties === undefined) throw new SeedTileError(`${source}: <LibraryTile> has no <ChannelProperties>`);
  const property = (name: string): string => {
    const value = content(properties[name]);
    if (value === '') throw new SeedTileError(`${source}: <ChannelProperties> has no <${name}>`);
    return value;
  };
  const read: SeedTile = {
    entityType: property('EntityType'),
    entitySetName: property('EntitySetName'),
    complianceField: property('ComplianceField'),
    responseTypes: [],
  };
  for (const name of TILE_READING.alsoRequired) property(name);
  const types = asElement(tile['ResponseTypes'])?.['ResponseType'];
  for (const node of Array.isArray(types) ? types : []) {
    const element = asElement(node) ?? {};
    const id = element.$?.['id'] ?? '';
    if (id === '') throw new SeedTileError(`${source}: a <ResponseType> has no id`);
    if (read.responseTypes.some((t) => t.id === id))
      throw new SeedTileError(`${source}: two <ResponseType> elements have the id '${id}'`);
    const custom = /^true$/i.test(element.$?.['custom'] ?? '');
    const other = read.responseTypes.find((t) => t.custom);
    if (custom && other !== undefined)
      throw new SeedTileError(
        `${source}: only one response type may have custom="True" ('${other.id}' and '${id}' do)`,
      );
    checkLabels(element['Labels'], `<ResponseType id="${id}">`, source);
    read.responseTypes.push({ id, custom });
  }
  return read;
}
