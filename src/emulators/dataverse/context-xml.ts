/**
 * The RemoteExecutionContext as the DataContractSerializer writes it, for `messageformat` 3 (Text XML) and, encoded
 * in [MC-NBFX], 1 (.NET Binary XML). Built from the same object as the JSON body (`remote-context.ts`), so the three
 * formats carry the same data: members in data contract order (the JSON order), parameter collections as
 * `KeyValuePairOfstringanyType` with `i:type` on each value, dates as xs:dateTime. JSON cannot tell a GUID or a date
 * from a string, so the value types come from the table metadata (`columnType`). Every choice that no captured
 * message confirms is in `XML_CONTEXT` (assumptions.ts).
 */
import type { ColumnType } from './metadata.js';
import { encodeNbfx } from './nbfx.js';
import { XML_CONTEXT } from './assumptions.js';
import {
  element,
  writeXml,
  type XmlAttribute,
  type XmlElement,
  type XmlNamespaceDeclaration,
  type XmlNode,
} from './xml-infoset.js';

export const XML_NS = {
  contracts: 'http://schemas.microsoft.com/xrm/2011/Contracts',
  instance: 'http://www.w3.org/2001/XMLSchema-instance',
  generic: 'http://schemas.datacontract.org/2004/07/System.Collections.Generic',
  serialization: 'http://schemas.microsoft.com/2003/10/Serialization/',
  schema: 'http://www.w3.org/2001/XMLSchema',
} as const;

/** The column type of `column` on table `table`, when the emulator knows the table. */
export type ColumnTypeOf = (table: string, column: string) => ColumnType | undefined;

/** Top-level members of RemoteExecutionContext whose value is not written as plain text. */
const PARAMETER_COLLECTIONS = new Set(['InputParameters', 'OutputParameters', 'SharedVariables']);
const IMAGE_COLLECTIONS = new Set(['PreEntityImages', 'PostEntityImages']);
const DATE_MEMBERS = new Set(['OperationCreatedOn']);
const WCF_DATE = /^\/Date\((-?\d+)([+-]\d{4})?\)\/$/;

/** Namespaces in scope while the tree is built: a prefix is declared on the first element that needs it. */
type Scope = ReadonlyMap<string, string>;

interface Ctx {
  columnType: ColumnTypeOf;
  messageName: string;
}

const nil = (): XmlAttribute => ({ prefix: 'i', name: 'nil', value: 'true' });

/** xs:dateTime of a `/Date(ms)/` string (or an ISO string), the way `XmlConvert` writes a UTC DateTime. */
export function xmlDateTime(value: string): string {
  const m = WCF_DATE.exec(value);
  const ms = m ? Number(m[1]) : Date.parse(value);
  return XML_CONTEXT.dateTime(new Date(ms));
}

function needs(scope: Scope, prefix: string, uri: string, declared: XmlNamespaceDeclaration[]): Scope {
  if (scope.get(prefix) === uri) return scope;
  declared.push({ prefix, uri });
  return new Map(scope).set(prefix, uri);
}

function textElement(
  prefix: string,
  name: string,
  value: unknown,
  extra: { namespaces?: XmlNamespaceDeclaration[]; attributes?: XmlAttribute[] } = {},
): XmlElement {
  if (value === null || value === undefined)
    return element(prefix, name, [], {
      namespaces: extra.namespaces,
      attributes: [...(extra.attributes ?? []), nil()],
    });
  const text = String(value);
  return element(prefix, name, text === '' ? [] : [text], extra);
}

/** An element holding a collection of `a:`-namespaced key/value pairs (declares `xmlns:a` when not in scope). */
function collection(name: string, scope: Scope, items: (inner: Scope) => XmlElement[]): XmlElement {
  const namespaces: XmlNamespaceDeclaration[] = [];
  const inner = needs(scope, XML_CONTEXT.prefixes.generic, XML_NS.generic, namespaces);
  return element('', name, items(inner), { namespaces });
}

type Pair = { key: string; value: unknown };

function pairs(value: unknown): Pair[] {
  return Array.isArray(value) ? (value as Pair[]) : [];
}

/** `KeyValuePairOfstringanyType` entries; `typeOfKey` gives the declared type of a value JSON cannot tell. */
function anyTypePairs(
  list: Pair[],
  scope: Scope,
  ctx: Ctx,
  typeOfKey: (key: string) => ColumnType | undefined,
): XmlElement[] {
  const g = XML_CONTEXT.prefixes.generic;
  return list.map((p) =>
    element('', 'KeyValuePairOfstringanyType', [
      textElement(g, 'key', p.key),
      anyValue(g, 'value', p.value, scope, ctx, typeOfKey(p.key)),
    ]),
  );
}

function stringPairs(list: Pair[]): XmlElement[] {
  const g = XML_CONTEXT.prefixes.generic;
  return list.map((p) =>
    element('', 'KeyValuePairOfstringstring', [textElement(g, 'key', p.key), textElement(g, 'value', p.value)]),
  );
}

/** A value of declared type `object`: `i:type` names the runtime type. */
function anyValue(
  prefix: string,
  name: string,
  value: unknown,
  scope: Scope,
  ctx: Ctx,
  hint: ColumnType | undefined,
): XmlElement {
  if (value === null || value === undefined) return element(prefix, name, [], { attributes: [nil()] });
  const namespaces: XmlNamespaceDeclaration[] = [];
  const typed = (type: string, children: XmlNode[]): XmlElement =>
    element(prefix, name, children, { namespaces, attributes: [{ prefix: 'i', name: 'type', value: type }] });
  const primitive = (nsPrefix: string, uri: string, type: string, text: string): XmlElement => {
    needs(scope, nsPrefix, uri, namespaces);
    return typed(`${nsPrefix}:${type}`, text === '' ? [] : [text]);
  };
  if (typeof value === 'object' && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const type = String(obj['__type'] ?? '').split(':')[0] ?? '';
    switch (type) {
      case 'Entity':
        return typed(XML_CONTEXT.contractType('Entity'), entityMembers(obj, scope, ctx));
      case 'EntityReference':
        return typed(XML_CONTEXT.contractType('EntityReference'), entityReferenceMembers(obj, scope));
      case 'OptionSetValue':
      case 'Money':
        return typed(XML_CONTEXT.contractType(type), [textElement('', 'Value', obj['Value'])]);
      default:
        throw new Error(`no XML encoding for a value of type '${type || 'object'}'`);
    }
  }
  const s = XML_CONTEXT.prefixes.schema;
  if (typeof value === 'boolean') return primitive(s, XML_NS.schema, 'boolean', String(value));
  if (typeof value === 'number') {
    if (hint === 'bigint') return primitive(s, XML_NS.schema, 'long', String(value));
    if (hint === 'decimal' || hint === 'money') return primitive(s, XML_NS.schema, 'decimal', String(value));
    return primitive(s, XML_NS.schema, Number.isInteger(value) ? 'int' : 'double', String(value));
  }
  const text = String(value);
  if (hint === 'guid') return primitive(XML_CONTEXT.prefixes.serialization, XML_NS.serialization, 'guid', text);
  if (hint === 'datetime') return primitive(s, XML_NS.schema, 'dateTime', xmlDateTime(text));
  return primitive(s, XML_NS.schema, 'string', text);
}

/** Entity members: Attributes, EntityState, FormattedValues, Id, KeyAttributes, LogicalName, RelatedEntities, RowVersion. */
function entityMembers(obj: Record<string, unknown>, scope: Scope, ctx: Ctx): XmlElement[] {
  const logicalName = String(obj['LogicalName'] ?? '');
  return [
    collection('Attributes', scope, (inner) =>
      anyTypePairs(pairs(obj['Attributes']), inner, ctx, (key) => ctx.columnType(logicalName, key)),
    ),
    textElement('', 'EntityState', obj['EntityState']),
    collection('FormattedValues', scope, () => stringPairs(pairs(obj['FormattedValues']))),
    textElement('', 'Id', obj['Id']),
    collection('KeyAttributes', scope, (inner) =>
      anyTypePairs(pairs(obj['KeyAttributes']), inner, ctx, () => undefined),
    ),
    textElement('', 'LogicalName', obj['LogicalName']),
    collection('RelatedEntities', scope, () => []),
    textElement('', 'RowVersion', obj['RowVersion']),
  ];
}

/** EntityReference members: Id, KeyAttributes, LogicalName, Name, RowVersion. */
function entityReferenceMembers(obj: Record<string, unknown>, scope: Scope): XmlElement[] {
  return [
    textElement('', 'Id', obj['Id']),
    collection('KeyAttributes', scope, () => []),
    textElement('', 'LogicalName', obj['LogicalName']),
    textElement('', 'Name', obj['Name']),
    textElement('', 'RowVersion', obj['RowVersion']),
  ];
}

/** The members of a RemoteExecutionContext, in the order of the JSON object (the data contract order). */
function members(context: Record<string, unknown>, scope: Scope, ctx: Ctx): XmlElement[] {
  const out: XmlElement[] = [];
  for (const [name, value] of Object.entries(context)) {
    if (PARAMETER_COLLECTIONS.has(name)) {
      const typeOfKey = (key: string): ColumnType | undefined =>
        name === 'OutputParameters' && key === 'id' && ctx.messageName === 'Create' ? 'guid' : undefined;
      out.push(collection(name, scope, (inner) => anyTypePairs(pairs(value), inner, ctx, typeOfKey)));
    } else if (IMAGE_COLLECTIONS.has(name)) {
      const g = XML_CONTEXT.prefixes.generic;
      out.push(
        collection(name, scope, (inner) =>
          pairs(value).map((p) =>
            element('', 'KeyValuePairOfstringEntity', [
              textElement(g, 'key', p.key),
              element(g, 'value', entityMembers(p.value as Record<string, unknown>, inner, ctx)),
            ]),
          ),
        ),
      );
    } else if (name === 'OwningExtension') {
      out.push(
        value === null || value === undefined
          ? textElement('', name, null)
          : element('', name, entityReferenceMembers(value as Record<string, unknown>, scope)),
      );
    } else if (name === 'ParentContext') {
      out.push(
        value === null || value === undefined
          ? textElement('', name, null)
          : element(
              '',
              name,
              members(value as Record<string, unknown>, scope, {
                ...ctx,
                messageName: String((value as Record<string, unknown>)['MessageName'] ?? ''),
              }),
            ),
      );
    } else if (DATE_MEMBERS.has(name)) {
      out.push(textElement('', name, typeof value === 'string' ? xmlDateTime(value) : value));
    } else {
      out.push(textElement('', name, value));
    }
  }
  return out;
}

/** The RemoteExecutionContext document: `<RemoteExecutionContext xmlns="…/xrm/2011/Contracts" xmlns:i="…">`. */
export function contextInfoset(context: Record<string, unknown>, columnType: ColumnTypeOf): XmlElement {
  const scope: Scope = new Map([
    ['', XML_NS.contracts],
    ['i', XML_NS.instance],
  ]);
  const ctx: Ctx = { columnType, messageName: String(context['MessageName'] ?? '') };
  return element('', 'RemoteExecutionContext', members(context, scope, ctx), {
    namespaces: [
      { prefix: '', uri: XML_NS.contracts },
      { prefix: 'i', uri: XML_NS.instance },
    ],
  });
}

/** `messageformat` 3: Text XML. */
export function serializeContextXml(context: Record<string, unknown>, columnType: ColumnTypeOf): string {
  return writeXml(contextInfoset(context, columnType));
}

/** `messageformat` 1: the same infoset in .NET Binary XML. */
export function serializeContextBinary(context: Record<string, unknown>, columnType: ColumnTypeOf): Buffer {
  return encodeNbfx(contextInfoset(context, columnType));
}
