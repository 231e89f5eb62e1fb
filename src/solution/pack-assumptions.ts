/**
 * What `channel pack` does where no Microsoft page states what `pac solution pack` (SolutionPackager) writes: each
 * choice with its evidence and what would change if it were wrong. SolutionPackager is closed source and no public
 * repository holds a pac-packed zip as text; the evidence is Microsoft's pages on the unpacked layout and the import,
 * and public generators and exports of solution zips. docs/solutions.md lists the same for operators.
 */

/**
 * The zip's entry order: `[Content_Types].xml`, `solution.xml`, `customizations.xml`, then every other entry (web
 * resource content, `customapis/…`) by path, ordinal. Evidence: Dataverse's import names only these three as required
 * at the root ("The compressed file must contain the following files at its root: solution.xml, customizations.xml,
 * and [Content_Types].xml", its refusal quoted in public issues); public generators write them first in this order.
 * pac's own order is UNVERIFIED (a .NET packager may write `[Content_Types].xml` last, when the package closes). Zip
 * readers, Dataverse's included, find entries through the central directory, so the order changes no import; if pac's
 * order were shown to differ, only `assembleSolution`'s last lines change.
 */
export const ROOT_ENTRY_ORDER = ['[Content_Types].xml', 'solution.xml', 'customizations.xml'] as const;

/**
 * Where pack puts the blocks it builds (`Entities`, `EntityRelationships`, `WebResources`) when the unpacked
 * `Other/Customizations.xml` lacks them: the order of `<ImportExportXml>`'s children in Dataverse's exports, with
 * `WebResources` after `optionsets` and before `CustomControls` (public exported customizations.xml files agree on
 * this). Blocks present in the file stay where they are and get the folder's content. Channel definitions and message
 * parts (MSDocs-CE real-time-marketing-define-channel-definition.md) are passed through where the file has them.
 */
export const CUSTOMIZATIONS_ORDER = [
  'Entities',
  'Roles',
  'Workflows',
  'FieldSecurityProfiles',
  'Templates',
  'EntityMaps',
  'EntityRelationships',
  'OrganizationSettings',
  'optionsets',
  'WebResources',
  'CustomControls',
  'EntityDataProviders',
] as const;

/**
 * Inside a packed `<Entity>`, after `<EntityInfo>`: `<FormXml>` (a `<forms type="…">` per `FormXml/<type>/` folder),
 * `<SavedQueries><savedqueries>`, then `<RibbonDiffXml>`, as exports order them; the folder's form type names are
 * lower-cased (`main`, `quick`, `card`; the file reference page writes `Main`). UNVERIFIED against a pac-packed file;
 * an import reads these by name.
 */
export const ENTITY_PARTS_AFTER_INFO = ['FormXml', 'SavedQueries', 'RibbonDiffXml'] as const;

/**
 * `[Content_Types].xml`: `application/octet-stream` for everything, a `Default` per extension (`xml` first) and an
 * `Override` per entry without one (web resource content is stored under its `<FileName>`, which exports write
 * without dots). Evidence: exported and generated solutions' `[Content_Types].xml`; a public report says an entry
 * without a content type makes the import fail with an unexplained error, so `channel check` requires one per entry.
 */
export const CONTENT_TYPE = 'application/octet-stream';

/**
 * solution.xml and customizations.xml as pack writes them: no XML declaration, two-space indentation, CRLF (Dataverse's
 * exports start with `<ImportExportXml`, are written by .NET on Windows with CRLF). UNVERIFIED for pac on Linux; an XML
 * reader sees no difference.
 */
export const XML_EOL = '\r\n';

/**
 * Entries are deflated at level 6 (zlib's default, as .NET's Optimal) and dated 1980-01-01 00:00, the zip format's
 * earliest date, so that the same folder gives the same bytes. pac dates entries with the time of packing; no import
 * reads the dates.
 */
export const ZIP_LEVEL = 6;
