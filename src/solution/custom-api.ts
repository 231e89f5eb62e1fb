/**
 * Custom APIs as solution files (PA-docs create-custom-api-solution.md): `customapis/<uniquename>/customapi.xml`,
 * with `customapirequestparameters/<uniquename>/customapirequestparameter.xml` and
 * `customapiresponseproperties/<uniquename>/customapiresponseproperty.xml`.
 */
import { el, leaf, xmlDocument, type XmlElement } from './xml.js';

/** `type` of request parameters and response properties (PA-docs custom-api-tables.md): String. */
export const CUSTOM_API_STRING = 10;

export interface CustomApiSpec {
  uniqueName: string;
  displayName: string;
  description: string;
  /** allowedcustomprocessingsteptype: 0 none, 1 async only, 2 sync and async. Cannot be changed after creation. */
  allowedCustomProcessingStepType: 0 | 1 | 2;
  /** String request parameters, each required. */
  requestParameters: Array<{ uniqueName: string; description: string }>;
  /** String response properties. */
  responseProperties: Array<{ uniqueName: string; description: string }>;
}

/** `description` and `displayname`, each a default and a 1033 label, as in the docs' example. */
function texts(displayName: string, description: string): XmlElement[] {
  return [
    el('description', { default: description }, el('label', { description, languagecode: 1033 })),
    el('displayname', { default: displayName }, el('label', { description: displayName, languagecode: 1033 })),
  ];
}

/** The files of one custom API, by path relative to the solution folder. */
export function customApiFiles(api: CustomApiSpec): Array<[string, string]> {
  const dir = `customapis/${api.uniqueName}`;
  const files: Array<[string, string]> = [
    [
      `${dir}/customapi.xml`,
      xmlDocument(
        el(
          'customapi',
          { uniquename: api.uniqueName },
          leaf('allowedcustomprocessingsteptype', api.allowedCustomProcessingStepType),
          leaf('bindingtype', 0),
          el('boundentitylogicalname'),
          texts(api.displayName, api.description),
          el('executeprivilegename'),
          leaf('isfunction', 0),
          leaf('isprivate', 0),
          leaf('name', api.uniqueName),
          el('plugintypeid'),
        ),
      ),
    ],
  ];
  for (const p of api.requestParameters) {
    files.push([
      `${dir}/customapirequestparameters/${p.uniqueName}/customapirequestparameter.xml`,
      xmlDocument(
        el(
          'customapirequestparameter',
          { uniquename: p.uniqueName },
          texts(p.uniqueName, p.description),
          leaf('isoptional', 0),
          el('logicalentityname'),
          leaf('name', `${api.uniqueName}.${p.uniqueName}`),
          leaf('type', CUSTOM_API_STRING),
        ),
      ),
    ]);
  }
  for (const p of api.responseProperties) {
    // isoptional is not valid on a response property: the import refuses it (PA-docs create-custom-api-solution.md).
    files.push([
      `${dir}/customapiresponseproperties/${p.uniqueName}/customapiresponseproperty.xml`,
      xmlDocument(
        el(
          'customapiresponseproperty',
          { uniquename: p.uniqueName },
          texts(p.uniqueName, p.description),
          el('logicalentityname'),
          leaf('name', `${api.uniqueName}.${p.uniqueName}`),
          leaf('type', CUSTOM_API_STRING),
        ),
      ),
    ]);
  }
  return files;
}
