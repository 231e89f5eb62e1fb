/**
 * What a packed solution carries that `channel import` registers for: its unique name and version (`solution.xml`),
 * its tables and its real-time channel definitions (`customizations.xml`, under `ImportExportXml` > `Entities` and
 * `msdyn_channeldefinitions`, MSDocs-CE real-time-marketing-define-channel-definition.md). Read from the zip itself,
 * so that the registration follows what was imported.
 */
import { unzipSync } from 'fflate';
import { XMLParser } from 'fast-xml-parser';

export interface SolutionContents {
  uniqueName: string;
  version?: string;
  /** Logical names of the tables the solution defines, lowercase. */
  tables: string[];
  /** The real-time channel definitions: their id (lowercase) and the outbound Custom API they name. */
  channelDefinitions: Array<{ id: string; outboundApi?: string }>;
}

/** A zip that is not a solution: what is wrong and in which file. */
export class SolutionFileError extends Error {
  override readonly name = 'SolutionFileError';
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  removeNSPrefix: true,
  isArray: (name) => ['Entity', 'msdyn_channeldefinition'].includes(name),
});

type Node = Record<string, unknown>;

function text(value: unknown): string | undefined {
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  if (typeof value === 'object' && value !== null) return text((value as Node)['#text']);
  return undefined;
}

function xmlOf(files: Record<string, Uint8Array>, name: string): Node {
  const key = Object.keys(files).find((k) => k.toLowerCase() === name);
  if (key === undefined) throw new SolutionFileError(`${name}: missing from the zip (is it a packed solution?)`);
  try {
    return parser.parse(Buffer.from(files[key] as Uint8Array).toString('utf8'), true) as Node;
  } catch (err) {
    throw new SolutionFileError(`${name}: not well-formed XML (${(err as Error).message.split('\n')[0]})`);
  }
}

/** Reads `solution.xml` and `customizations.xml` of a packed solution; throws a `SolutionFileError` naming the file. */
export function solutionContents(zip: Uint8Array): SolutionContents {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(zip, { filter: (f) => ['solution.xml', 'customizations.xml'].includes(f.name.toLowerCase()) });
  } catch (err) {
    throw new SolutionFileError(`not a zip file (${(err as Error).message})`);
  }
  const manifest = (xmlOf(files, 'solution.xml')['ImportExportXml'] as Node | undefined)?.['SolutionManifest'] as
    Node | undefined;
  const uniqueName = text(manifest?.['UniqueName']);
  if (uniqueName === undefined)
    throw new SolutionFileError('solution.xml: ImportExportXml/SolutionManifest/UniqueName is missing');
  const version = text(manifest?.['Version']);
  const custom = (xmlOf(files, 'customizations.xml')['ImportExportXml'] ?? {}) as Node;
  const entities = ((custom['Entities'] as Node | undefined)?.['Entity'] ?? []) as Node[];
  const tables = entities
    .map(
      (e) =>
        text(
          (e['EntityInfo'] as Node | undefined)?.['entity'] && ((e['EntityInfo'] as Node)['entity'] as Node)['@_Name'],
        ) ?? text(e['Name']),
    )
    .filter((n): n is string => n !== undefined)
    .map((n) => n.toLowerCase());
  const definitions = ((custom['msdyn_channeldefinitions'] as Node | undefined)?.['msdyn_channeldefinition'] ??
    []) as Node[];
  const channelDefinitions = definitions.flatMap((d) => {
    const id = text(d['@_msdyn_channeldefinitionid']);
    if (id === undefined) return [];
    const outboundApi = text(d['msdyn_outboundendpointurltemplate'])?.replace(/^\/+/, '');
    return [{ id: id.replace(/^\{|\}$/g, '').toLowerCase(), ...(outboundApi === undefined ? {} : { outboundApi }) }];
  });
  return { uniqueName, ...(version === undefined ? {} : { version }), tables, channelDefinitions };
}
