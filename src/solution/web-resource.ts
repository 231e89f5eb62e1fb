/**
 * Web resources in SolutionPackager's unpacked layout: the content at `WebResources/<name>` and its metadata at
 * `WebResources/<name>.data.xml`, whose `FileName` is where the packed zip holds the content
 * (`/WebResources/<name><id>`), as exports unpack.
 */
import { webResourceFileName } from './assumptions.js';
import { braced } from './ids.js';
import { leaf, el, xmlDocument, XSI } from './xml.js';

/** `WebResourceType` (PA-docs webresource table): the four kinds a channel solution carries. */
export const WEB_RESOURCE_TYPE = { html: 1, css: 2, xml: 4, svg: 11 } as const;

export interface WebResourceSpec {
  id: string;
  /** The web resource's unique name (`sample_SpecialTileCustomerJourneyDesignerTileConfig.xml`). */
  name: string;
  displayName: string;
  type: keyof typeof WEB_RESOURCE_TYPE;
  content: string;
}

/** The two files of a web resource, by path relative to the solution folder. */
export function webResourceFiles(w: WebResourceSpec): Array<[string, string]> {
  const data = xmlDocument(
    el(
      'WebResource',
      XSI,
      leaf('WebResourceId', braced(w.id)),
      leaf('Name', w.name),
      leaf('DisplayName', w.displayName),
      leaf('WebResourceType', WEB_RESOURCE_TYPE[w.type]),
      leaf('IntroducedVersion', '1.0'),
      leaf('IsEnabledForMobileClient', 0),
      leaf('IsAvailableForMobileOffline', 0),
      leaf('IsCustomizable', 1),
      leaf('CanBeDeleted', 1),
      leaf('IsHidden', 0),
      leaf('FileName', webResourceFileName(w.name, w.id)),
    ),
  );
  return [
    [`WebResources/${w.name}`, w.content],
    [`WebResources/${w.name}.data.xml`, data],
  ];
}
