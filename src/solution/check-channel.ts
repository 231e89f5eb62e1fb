/**
 * The rules of a custom channel's parts in a solution: the outbound-marketing tile (MSDocs-CE
 * `ce/marketing/developer/configure-tile-custom-channel.md`), the real-time channel definition and its message parts
 * (`real-time-marketing-define-channel-definition.md`, the message parts page), the outbound custom API
 * (`real-time-marketing-custom-channel-custom-api.md`), and the agreement with the relay's channels file.
 */
import type { ChannelRegistry } from '../channels/index.js';
import type { SolutionProblem } from '../errors.js';
import {
  at,
  GUID,
  normalGuid,
  type CustomApi,
  type SolutionModel,
  type Table,
  type WebResource,
} from './check-model.js';
import { child, children, childText, decodeText, isProblem, parseXml, type XmlElement } from './pack-xml.js';

/** The tile's web resource name ends so (`<prefix>_<name>CustomerJourneyDesignerTileConfig.xml`, the docs' format). */
const TILE_SUFFIX = 'CustomerJourneyDesignerTileConfig.xml';

/** A tile as the rules across files need it. */
interface SolutionTile {
  resource: WebResource;
  root: XmlElement;
  entityType?: string;
  entitySetName?: string;
  complianceField?: string;
  lookupViewId?: string;
  responseTypes: string[];
}

/** Message part types (the message parts page): plaintext, media, image, record. */
const PART_TYPES = new Set(['192350000', '192350003', '192350004', '192350005']);
const PLAINTEXT = '192350000';
/** Custom API parameter type 10 is String (PA-docs custom-api.md, CustomAPIRequestParameter Type). */
const STRING_TYPE = '10';

function hasLabel(parent: XmlElement | undefined, name: string): boolean {
  return children(parent, name).some((l) => l.attributes['locId'] === '1033' && l.text !== '');
}

/** Reads and checks one tile web resource. */
function checkTile(model: SolutionModel, resource: WebResource, problems: SolutionProblem[]): SolutionTile | undefined {
  const bytes = model.packed.entries.get(resource.entry);
  if (bytes === undefined) return undefined; // the web resource rules report the missing content
  const root = parseXml(decodeText(bytes), resource.contentFile);
  if (isProblem(root)) {
    problems.push(root);
    return undefined;
  }
  if (root.name !== 'LibraryTile') {
    problems.push(at(root, root.name, 'the root element of a tile must be <LibraryTile>'));
    return undefined;
  }
  const tile: SolutionTile = { resource, root, responseTypes: [] };
  const definition = child(root, 'Definition');
  if (definition === undefined) {
    problems.push(at(root, 'LibraryTile/Definition', 'is required (icon, fontFamily and cssFileName of the tile)'));
  } else {
    for (const attr of ['icon', 'fontFamily', 'cssFileName']) {
      if (!definition.attributes[attr]) {
        problems.push(at(definition, 'LibraryTile/Definition', `needs the ${attr} attribute`));
      }
    }
  }
  const props = child(root, 'ChannelProperties');
  if (props === undefined) {
    problems.push(at(root, 'LibraryTile/ChannelProperties', 'is required'));
  } else {
    const required = (name: string, why: string): string | undefined => {
      const value = childText(props, name);
      if (value === undefined) problems.push(at(props, `LibraryTile/ChannelProperties/${name}`, `is required: ${why}`));
      return value;
    };
    const entityType = required('EntityType', 'the logical name of the custom message table');
    const entitySetName = required('EntitySetName', 'the entity set (plural) name of the message table');
    const complianceField = required('ComplianceField', "the contact's boolean column that means opted out");
    const lookupViewId = required(
      'LookupViewId',
      "the id of the message table's view the journey designer's lookup shows",
    );
    if (entityType !== undefined) tile.entityType = entityType.toLowerCase();
    if (entitySetName !== undefined) tile.entitySetName = entitySetName;
    if (complianceField !== undefined) tile.complianceField = complianceField;
    if (lookupViewId !== undefined) {
      const el = child(props, 'LookupViewId')!;
      if (!GUID.test(lookupViewId)) {
        problems.push(
          at(el, 'LibraryTile/ChannelProperties/LookupViewId', `must be a view id (a GUID), found '${lookupViewId}'`),
        );
      } else tile.lookupViewId = normalGuid(lookupViewId);
    }
  }
  const types = children(child(root, 'ResponseTypes'), 'ResponseType');
  if (types.length === 0) {
    problems.push(
      at(child(root, 'ResponseTypes') ?? root, 'LibraryTile/ResponseTypes', 'needs at least one <ResponseType>'),
    );
  }
  const custom: string[] = [];
  for (const type of types) {
    const id = type.attributes['id'];
    const where = `LibraryTile/ResponseTypes/ResponseType${id ? `[@id='${id}']` : ''}`;
    if (!id) {
      problems.push(at(type, where, 'needs an id attribute'));
      continue;
    }
    if (tile.responseTypes.includes(id)) problems.push(at(type, where, `response type '${id}' is declared twice`));
    tile.responseTypes.push(id);
    if ((type.attributes['custom'] ?? '').toLowerCase() === 'true') custom.push(id);
    if (!hasLabel(child(type, 'Labels'), 'Label'))
      problems.push(at(type, `${where}/Labels`, 'needs a <Label locId="1033">'));
  }
  if (types.length > 0 && custom.length !== 1) {
    problems.push(
      at(
        child(root, 'ResponseTypes')!,
        'LibraryTile/ResponseTypes',
        custom.length === 0
          ? 'needs one response type with custom="True" (the keyword replies are recorded as it)'
          : `only one response type may have custom="True", found ${custom.length}: ${custom.join(', ')}`,
      ),
    );
  }
  if (!hasLabel(child(root, 'Labels'), 'Label')) {
    problems.push(
      at(child(root, 'Labels') ?? root, 'LibraryTile/Labels', 'needs a <Label locId="1033"> (the tile\'s name)'),
    );
  }
  if (!hasLabel(child(root, 'Tooltips'), 'Tooltip')) {
    problems.push(at(child(root, 'Tooltips') ?? root, 'LibraryTile/Tooltips', 'needs a <Tooltip locId="1033">'));
  }
  return tile;
}

/** The tile against the tables of the solution: its message table, entity set and lookup view are there. */
function checkTileTable(model: SolutionModel, tile: SolutionTile, problems: SolutionProblem[]): void {
  if (tile.entityType === undefined) return;
  const props = child(tile.root, 'ChannelProperties')!;
  const table = model.tables.get(tile.entityType);
  if (table === undefined) {
    problems.push(
      at(
        child(props, 'EntityType')!,
        'LibraryTile/ChannelProperties/EntityType',
        `names table '${tile.entityType}', which is not in the solution`,
      ),
    );
    return;
  }
  if (
    tile.entitySetName !== undefined &&
    table.entitySetName !== undefined &&
    tile.entitySetName !== table.entitySetName
  ) {
    problems.push(
      at(
        child(props, 'EntitySetName')!,
        'LibraryTile/ChannelProperties/EntitySetName',
        `is '${tile.entitySetName}' but table ${table.logicalName}'s EntitySetName is '${table.entitySetName}'`,
      ),
    );
  }
  if (tile.lookupViewId !== undefined && !table.views.has(tile.lookupViewId)) {
    problems.push(
      at(
        child(props, 'LookupViewId')!,
        'LibraryTile/ChannelProperties/LookupViewId',
        `${tile.lookupViewId} is not a view of table ${table.logicalName} in the solution`,
      ),
    );
  }
  const title = childText(props, 'TitleFieldName');
  if (title !== undefined && !table.columns.has(title.toLowerCase())) {
    problems.push(
      at(
        child(props, 'TitleFieldName')!,
        'LibraryTile/ChannelProperties/TitleFieldName',
        `${title} is not a column of table ${table.logicalName}`,
      ),
    );
  }
}

const DEFINITION = 'ImportExportXml/msdyn_channeldefinitions/msdyn_channeldefinition';
const PART = 'ImportExportXml/msdyn_channelmessageparts/msdyn_channelmessagepart';

/** The outbound custom API: `payload` in, `response` out, both strings, and it takes asynchronous steps. */
function checkOutboundApi(definition: XmlElement, api: CustomApi, problems: SolutionProblem[]): void {
  const steps = childText(api.element, 'allowedcustomprocessingsteptype');
  if (steps !== '1' && steps !== '2') {
    problems.push(
      at(
        child(api.element, 'allowedcustomprocessingsteptype') ?? api.element,
        'customapi/allowedcustomprocessingsteptype',
        `custom API ${api.uniqueName} is the outbound API of channel definition ${definition.attributes['msdyn_channeldefinitionid'] ?? ''}: it must allow asynchronous custom processing steps (1 async only, or 2 sync and async; found ${steps ?? 'nothing'}): the relay's step on it is asynchronous, and the value cannot be changed after the API is created`,
      ),
    );
  }
  const need = (parts: CustomApi['requestParameters'], name: string, kind: string, root: string): void => {
    const part = parts.find((p) => p.uniqueName === name);
    if (part === undefined) {
      problems.push(
        at(
          api.element,
          'customapi',
          `the outbound custom API ${api.uniqueName} needs the ${kind} '${name}' (the journey's contract: payload in, response out)`,
        ),
      );
    } else if (childText(part.element, 'type') !== STRING_TYPE) {
      problems.push(
        at(
          part.element,
          `${root}/type`,
          `'${name}' must be of type 10 (String: serialized JSON), found ${childText(part.element, 'type') ?? 'nothing'}`,
        ),
      );
    }
  };
  need(api.requestParameters, 'payload', 'request parameter', 'customapirequestparameter');
  need(api.responseProperties, 'response', 'response property', 'customapiresponseproperty');
}

function isBit(value: string | undefined): boolean {
  return value === '0' || value === '1';
}

/** The channel definitions and message parts of a real-time channel. */
function checkDefinitions(model: SolutionModel, problems: SolutionProblem[]): Map<string, XmlElement> {
  const byId = new Map<string, XmlElement>();
  const allForms = new Set([...model.tables.values()].flatMap((t) => [...t.forms]));
  for (const def of model.channelDefinitions) {
    const rawId = def.attributes['msdyn_channeldefinitionid'];
    if (rawId === undefined || !GUID.test(rawId)) {
      problems.push(
        at(
          def,
          DEFINITION,
          `needs its id as the msdyn_channeldefinitionid attribute (a GUID), found '${rawId ?? 'nothing'}'`,
        ),
      );
      continue;
    }
    const id = normalGuid(rawId);
    const where = `${DEFINITION}[@msdyn_channeldefinitionid='${id}']`;
    if (byId.has(id)) problems.push(at(def, where, 'is defined twice'));
    byId.set(id, def);
    const field = (name: string): string | undefined => childText(def, name);
    const fieldAt = (name: string): XmlElement => child(def, name) ?? def;
    const type = field('msdyn_channeltype');
    if (type !== 'Custom' && type !== 'SMS') {
      problems.push(
        at(
          fieldAt('msdyn_channeltype'),
          `${where}/msdyn_channeltype`,
          `must be Custom or SMS, found ${type ?? 'nothing'}`,
        ),
      );
    }
    for (const bit of ['msdyn_hasinbound', 'msdyn_hasdeliveryreceipt', 'msdyn_supportsaccount']) {
      if (!isBit(field(bit)))
        problems.push(at(fieldAt(bit), `${where}/${bit}`, `is required: 0 or 1, found ${field(bit) ?? 'nothing'}`));
    }
    const account = field('msdyn_supportsaccount');
    if ((type === 'SMS' || type === 'Custom') && isBit(account) && (type === 'SMS') !== (account === '1')) {
      problems.push(
        at(
          fieldAt('msdyn_supportsaccount'),
          `${where}/msdyn_supportsaccount`,
          `must be ${type === 'SMS' ? 1 : 0} for a ${type} channel (the docs: true for SMS, otherwise false)`,
        ),
      );
    }
    const outbound = field('msdyn_outboundendpointurltemplate');
    if (outbound === undefined) {
      problems.push(
        at(def, `${where}/msdyn_outboundendpointurltemplate`, 'is required: the name of the outbound custom API'),
      );
    } else {
      const name = outbound.replace(/^\//, '');
      const api = model.customApis.get(name);
      if (api === undefined) {
        problems.push(
          at(
            fieldAt('msdyn_outboundendpointurltemplate'),
            `${where}/msdyn_outboundendpointurltemplate`,
            `names custom API '${name}', which is not in the solution (customapis/${name}/customapi.xml)`,
          ),
        );
      } else checkOutboundApi(def, api, problems);
    }
    const tableAndForm = (entityField: string, formField: string, required: boolean): void => {
      const entity = field(entityField)?.toLowerCase();
      const form = field(formField);
      if (entity === undefined) {
        if (required)
          problems.push(
            at(def, `${where}/${entityField}`, 'is required: the configuration table of the channel instance'),
          );
        return;
      }
      const table = model.tables.get(entity);
      if (table === undefined) {
        problems.push(
          at(fieldAt(entityField), `${where}/${entityField}`, `names table '${entity}', which is not in the solution`),
        );
      }
      if (form === undefined || !GUID.test(form)) {
        problems.push(
          at(
            fieldAt(formField),
            `${where}/${formField}`,
            `must be the id (a GUID) of a form of ${entity}, found '${form ?? 'nothing'}'`,
          ),
        );
      } else if (table !== undefined && !table.forms.has(normalGuid(form))) {
        problems.push(
          at(
            fieldAt(formField),
            `${where}/${formField}`,
            `${normalGuid(form)} is not a form of table ${entity} in the solution`,
          ),
        );
      }
    };
    tableAndForm('msdyn_channeldefinitionexternalentity', 'msdyn_channeldefinitionexternalformid', true);
    tableAndForm('msdyn_channeldefinitionaccountexternalentity', 'msdyn_channeldefinitionaccountexternalformid', false);
    const messageForm = field('msdyn_messageformid');
    if (messageForm !== undefined && (!GUID.test(messageForm) || !allForms.has(normalGuid(messageForm)))) {
      problems.push(
        at(
          fieldAt('msdyn_messageformid'),
          `${where}/msdyn_messageformid`,
          `${messageForm} is not the id of a form in the solution (the message editor)`,
        ),
      );
    }
  }

  const parts = new Map<string, XmlElement[]>();
  for (const part of model.messageParts) {
    const rawId = part.attributes['msdyn_channelmessagepartid'];
    const name = childText(part, 'msdyn_name');
    const where = `${PART}${name === undefined ? '' : `[msdyn_name='${name}']`}`;
    if (rawId === undefined || !GUID.test(rawId)) {
      problems.push(
        at(
          part,
          where,
          `needs its id as the msdyn_channelmessagepartid attribute (a GUID), found '${rawId ?? 'nothing'}'`,
        ),
      );
    }
    if (name === undefined)
      problems.push(at(part, `${where}/msdyn_name`, 'is required: the key of the part in the message'));
    const type = childText(part, 'msdyn_type');
    if (type === undefined || !PART_TYPES.has(type)) {
      problems.push(
        at(
          child(part, 'msdyn_type') ?? part,
          `${where}/msdyn_type`,
          `must be 192350000 (plaintext), 192350003 (media), 192350004 (image) or 192350005 (record), found ${type ?? 'nothing'}`,
        ),
      );
    }
    for (const bit of ['msdyn_isrequired']) {
      const value = childText(part, bit);
      if (value !== undefined && !isBit(value))
        problems.push(at(child(part, bit)!, `${where}/${bit}`, `must be 0 or 1, found ${value}`));
    }
    for (const int of ['msdyn_maxlength', 'msdyn_order']) {
      const value = childText(part, int);
      if (value !== undefined && !/^\d+$/.test(value))
        problems.push(at(child(part, int)!, `${where}/${int}`, `must be a whole number, found ${value}`));
    }
    const ref = childText(child(part, 'msdyn_channeldefinitionid'), 'msdyn_channeldefinitionid');
    if (ref === undefined || !GUID.test(ref)) {
      problems.push(
        at(
          child(part, 'msdyn_channeldefinitionid') ?? part,
          `${where}/msdyn_channeldefinitionid/msdyn_channeldefinitionid`,
          `is required: the id of its channel definition, found '${ref ?? 'nothing'}'`,
        ),
      );
      continue;
    }
    if (!byId.has(normalGuid(ref))) {
      problems.push(
        at(
          child(part, 'msdyn_channeldefinitionid')!,
          `${where}/msdyn_channeldefinitionid`,
          `${normalGuid(ref)} is not a channel definition in the solution`,
        ),
      );
      continue;
    }
    const list = parts.get(normalGuid(ref)) ?? [];
    list.push(part);
    parts.set(normalGuid(ref), list);
  }
  for (const [id, def] of byId) {
    const list = parts.get(id) ?? [];
    const where = `${DEFINITION}[@msdyn_channeldefinitionid='${id}']`;
    if (list.length === 0)
      problems.push(at(def, where, 'has no message part (a channel needs at least one: msdyn_channelmessageparts)'));
    const names = list.map((p) => childText(p, 'msdyn_name')).filter((n): n is string => n !== undefined);
    for (const dup of new Set(names.filter((n, i) => names.indexOf(n) !== i))) {
      problems.push(at(def, where, `has two message parts named '${dup}'`));
    }
    if (childText(def, 'msdyn_channeltype') === 'SMS') {
      const text = list.length === 1 && names[0] === 'text' && childText(list[0], 'msdyn_type') === PLAINTEXT;
      if (!text) {
        problems.push(
          at(
            list[1] ?? list[0] ?? def,
            list.length > 1 ? PART : where,
            `an SMS channel definition has exactly one message part, named 'text', of type 192350000 (plaintext); ${id} has ${list.length}${names.length > 0 ? `: ${names.join(', ')}` : ''}`,
          ),
        );
      }
    }
  }
  return byId;
}

/** The channels file agrees with the solution: a channel per tile and per channel definition, with matching names. */
function checkChannelsFile(
  model: SolutionModel,
  channels: ChannelRegistry,
  tiles: readonly SolutionTile[],
  definitions: ReadonlyMap<string, XmlElement>,
  problems: SolutionProblem[],
): void {
  const file = channels.file;
  for (const tile of tiles) {
    if (tile.entityType === undefined) continue;
    const users = channels.all().filter((c) => c.tile?.entityType.toLowerCase() === tile.entityType);
    const props = child(tile.root, 'ChannelProperties')!;
    if (users.length === 0) {
      problems.push(
        at(
          child(props, 'EntityType')!,
          'LibraryTile/ChannelProperties/EntityType',
          `no channel of ${file} has a tile of table ${tile.entityType}`,
        ),
      );
      continue;
    }
    const table: Table | undefined = model.tables.get(tile.entityType);
    for (const channel of users) {
      const theirs = channel.tile!;
      const differ = (name: string, ours: string | undefined, their: string): void => {
        if (ours !== undefined && ours !== their) {
          problems.push(
            at(
              child(props, name) ?? props,
              `LibraryTile/ChannelProperties/${name}`,
              `is '${ours}' here but '${their}' in channel ${channel.name}'s tile (${theirs.file})`,
            ),
          );
        }
      };
      differ('EntitySetName', tile.entitySetName, theirs.entitySetName);
      differ('ComplianceField', tile.complianceField, theirs.complianceField);
      differ('LookupViewId', tile.lookupViewId, theirs.lookupViewId);
      const missing = theirs.responseTypes.map((t) => t.id).filter((id) => !tile.responseTypes.includes(id));
      if (missing.length > 0) {
        problems.push(
          at(
            child(tile.root, 'ResponseTypes') ?? tile.root,
            'LibraryTile/ResponseTypes',
            `lacks ${missing.join(', ')}, which channel ${channel.name}'s tile (${theirs.file}) declares`,
          ),
        );
      }
      if (channel.failureResponseType !== undefined && !tile.responseTypes.includes(channel.failureResponseType)) {
        problems.push(
          at(
            child(tile.root, 'ResponseTypes') ?? tile.root,
            'LibraryTile/ResponseTypes',
            `has no '${channel.failureResponseType}', channel ${channel.name}'s failureResponseType in ${file}`,
          ),
        );
      }
      if (table === undefined) continue;
      for (const [key, column] of [
        ['textField', channel.textField],
        ['channelField', channel.channelField],
      ] as const) {
        if (column !== undefined && !table.columns.has(column.toLowerCase())) {
          problems.push(
            at(
              table.element,
              `Entity[${table.logicalName}]/EntityInfo/entity/attributes`,
              `has no column ${column}, channel ${channel.name}'s ${key} in ${file}`,
            ),
          );
        }
      }
    }
  }
  for (const [id, def] of definitions) {
    if (!channels.all().some((c) => c.channelDefinitionId?.toLowerCase() === id)) {
      problems.push(
        at(
          def,
          `${DEFINITION}[@msdyn_channeldefinitionid='${id}']`,
          `no channel of ${file} has channelDefinitionId ${id}`,
        ),
      );
    }
  }
}

/** Every rule of the channel parts; `channels` adds the agreement with the relay's channels file. */
export function checkChannelParts(model: SolutionModel, problems: SolutionProblem[], channels?: ChannelRegistry): void {
  const tiles: SolutionTile[] = [];
  for (const resource of model.webResources) {
    if (!resource.name.endsWith(TILE_SUFFIX)) continue;
    const tile = checkTile(model, resource, problems);
    if (tile === undefined) continue;
    checkTileTable(model, tile, problems);
    tiles.push(tile);
  }
  const definitions = checkDefinitions(model, problems);
  if (channels !== undefined) checkChannelsFile(model, channels, tiles, definitions, problems);
}
