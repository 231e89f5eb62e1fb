/**
 * The solution's own files in SolutionPackager's unpacked layout: `Other/Solution.xml` (manifest, publisher, root
 * components), `Other/Customizations.xml` (what is not extracted to folders: here the real-time channel definitions
 * and message parts) and `Other/Relationships.xml` (the names of the relationships in `Other/Relationships/`).
 */
import { createHash } from 'node:crypto';
import { CUSTOMIZATIONS_SECTIONS, ROOT_COMPONENT_TYPES } from './assumptions.js';
import { el, labels, leaf, xmlDocument, XSI, type XmlElement } from './xml.js';

export interface RootComponent {
  type: keyof typeof ROOT_COMPONENT_TYPES;
  schemaName: string;
}

export interface SolutionManifest {
  uniqueName: string;
  displayName: string;
  description: string;
  version: string;
  prefix: string;
  publisherUniqueName: string;
  publisherDisplayName: string;
  rootComponents: RootComponent[];
}

/**
 * A publisher's option value prefix (10000-99999; Dataverse proposes one from the prefix when a publisher is made):
 * derived from the prefix so that one prefix always gives the same value.
 */
export function optionValuePrefix(prefix: string): number {
  const n = createHash('sha1').update(prefix).digest().readUInt32BE(0);
  return 10000 + (n % 90000);
}

/** `Other/Solution.xml`: an unmanaged solution, its publisher and root components (sorted by type, then name). */
export function solutionXml(m: SolutionManifest): string {
  const roots = m.rootComponents
    .map((r) => ({ type: ROOT_COMPONENT_TYPES[r.type], schemaName: r.schemaName }))
    .sort((a, b) => a.type - b.type || (a.schemaName < b.schemaName ? -1 : a.schemaName > b.schemaName ? 1 : 0));
  return xmlDocument(
    el(
      'ImportExportXml',
      { version: '9.2.0.0', SolutionPackageVersion: '9.2', languagecode: 1033, generatedBy: 'CrmLive', ...XSI },
      el(
        'SolutionManifest',
        {},
        leaf('UniqueName', m.uniqueName),
        labels('LocalizedNames', 'LocalizedName', m.displayName),
        labels('Descriptions', 'Description', m.description),
        leaf('Version', m.version),
        leaf('Managed', 0),
        el(
          'Publisher',
          {},
          leaf('UniqueName', m.publisherUniqueName),
          labels('LocalizedNames', 'LocalizedName', m.publisherDisplayName),
          labels('Descriptions', 'Description', m.publisherDisplayName),
          leaf('CustomizationPrefix', m.prefix),
          leaf('CustomizationOptionValuePrefix', optionValuePrefix(m.prefix)),
        ),
        el(
          'RootComponents',
          {},
          roots.map((r) => el('RootComponent', { type: r.type, schemaName: r.schemaName, behavior: 0 })),
        ),
        el('MissingDependencies'),
      ),
    ),
  );
}

/** `Other/Customizations.xml`: the sections the packer fills from the folders stay empty; `extra` goes before Languages. */
export function customizationsXml(extra: readonly XmlElement[]): string {
  return xmlDocument(
    el(
      'ImportExportXml',
      XSI,
      CUSTOMIZATIONS_SECTIONS.map((name) => el(name)),
      [...extra],
      el('Languages', {}, leaf('Language', 1033)),
    ),
  );
}

/** `Other/Relationships.xml`: one empty `<EntityRelationship Name>` per relationship of the solution. */
export function relationshipsXml(names: readonly string[]): string {
  return xmlDocument(
    el(
      'EntityRelationships',
      XSI,
      [...names].sort().map((name) => el('EntityRelationship', { Name: name })),
    ),
  );
}
