/**
 * The outbound-marketing tile XML (`<LibraryTile>`, `…CustomerJourneyDesignerTileConfig.xml`): the custom message
 * table, the contact compliance field and the response types, with the checks the docs state (ChannelProperties
 * mandatory with `LookupViewId`, at most one `custom="True"` response type, a 1033 label on each). Source: MSDocs-CE
 * `ce/marketing/developer/configure-tile-custom-channel.md`; an older version listed `LookupViewId` as optional, the
 * current one requires it.
 */
import { XMLParser } from 'fast-xml-parser';

export interface TileResponseType {
  id: string;
  custom: boolean;
  /** locId → label. */
  labels: Record<string, string>;
}

export interface ChannelTile {
  entityType: string;
  entitySetName: string;
  titleFieldName?: string;
  complianceField: string;
  /** `<LookupViewId>`: the id of the view the journey designer's lookup of the message records uses (a GUID). */
  lookupViewId: string;
  /** Empty when the tile declares no `<ResponseTypes>`. */
  responseTypes: TileResponseType[];
  /** The response type with `custom="True"`, if any. */
  customResponseType?: string;
  labels: Record<string, string>;
}

export class TileError extends Error {
  override readonly name = 'TileError';
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  textNodeName: '#text',
  isArray: (name) => name === 'ResponseType' || name === 'Label' || name === 'Tooltip',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
});

type Node = Record<string, unknown>;

/** A GUID, braces allowed (as Dataverse ids are often written). */
const GUID = /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/;

function text(node: unknown): string | undefined {
  if (typeof node === 'string') return node.trim() || undefined;
  if (node && typeof node === 'object' && '#text' in node) return String((node as Node)['#text']).trim() || undefined;
  return undefined;
}

function labels(node: unknown, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  const list = (node as Node | undefined)?.['Label'];
  for (const label of (Array.isArray(list) ? list : []) as Node[]) {
    const loc = label['@locId'];
    const value = text(label);
    if (typeof loc === 'string' && value !== undefined) out[loc] = value;
  }
  if (!out['1033']) throw new TileError(`${where}: Labels must include a Label with locId="1033"`);
  return out;
}

/** Reads a tile XML document. `source` names the file in error messages. */
export function readTile(xml: string, source = 'tile XML'): ChannelTile {
  let doc: Node;
  try {
    doc = parser.parse(xml, true) as Node;
  } catch (err) {
    throw new TileError(`${source}: not well-formed XML: ${(err as Error).message}`);
  }
  const rawRoot = doc['LibraryTile'];
  const root = (rawRoot === '' ? {} : rawRoot) as Node | undefined;
  if (!root || typeof root !== 'object') throw new TileError(`${source}: the root element must be <LibraryTile>`);
  const props = root['ChannelProperties'] as Node | undefined;
  if (!props || typeof props !== 'object') throw new TileError(`${source}: <ChannelProperties> is mandatory`);
  const required = (name: string): string => {
    const value = text(props[name]);
    if (value === undefined) throw new TileError(`${source}: <ChannelProperties> needs <${name}>`);
    return value;
  };
  const entityType = required('EntityType');
  const entitySetName = required('EntitySetName');
  const complianceField = required('ComplianceField');
  const lookupViewId = text(props['LookupViewId']);
  if (lookupViewId === undefined) {
    throw new TileError(
      `${source}: <ChannelProperties> needs <LookupViewId> (the current Microsoft docs of the tile XML require it: the id of the view of the message table that the journey designer's lookup shows)`,
    );
  }
  if (!GUID.test(lookupViewId))
    throw new TileError(`${source}: <LookupViewId> must be a view id (a GUID), found '${lookupViewId}'`);
  const tile: ChannelTile = {
    entityType,
    entitySetName,
    complianceField,
    lookupViewId: lookupViewId.replace(/^\{|\}$/g, '').toLowerCase(),
    responseTypes: [],
    labels: root['Labels'] === undefined ? {} : labels(root['Labels'], `${source}: <LibraryTile>`),
  };
  const title = text(props['TitleFieldName']);
  if (title !== undefined) tile.titleFieldName = title;
  const types = (root['ResponseTypes'] as Node | undefined)?.['ResponseType'];
  const seen = new Set<string>();
  for (const node of (Array.isArray(types) ? types : []) as Node[]) {
    const id = node['@id'];
    if (typeof id !== 'string' || id === '')
      throw new TileError(`${source}: every <ResponseType> needs an id attribute`);
    if (seen.has(id)) throw new TileError(`${source}: response type '${id}' is declared twice`);
    seen.add(id);
    const custom = String(node['@custom'] ?? '').toLowerCase() === 'true';
    if (custom) {
      if (tile.customResponseType !== undefined) {
        throw new TileError(
          `${source}: only one response type may have custom="True" (found '${tile.customResponseType}' and '${id}')`,
        );
      }
      tile.customResponseType = id;
    }
    tile.responseTypes.push({ id, custom, labels: labels(node['Labels'], `${source}: <ResponseType id="${id}">`) });
  }
  return tile;
}
