import assert from 'node:assert/strict';
import { readFileSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { unzipSync } from 'fflate';
import { isSolutionPackageError, packSolution, type SolutionProblem } from '../../../src/solution/index.js';
import { copyFixture, fixtureDir, lineOf } from '../../helpers/solutions.js';

const TILE = 'sample_SpecialTileCustomerJourneyDesignerTileConfig';
const TILE_XML_ENTRY = `WebResources/${TILE}xml0b6f1a52-2c1d-4f4e-9d0a-1c2b3d4e5f60`;
const TILE_CSS_ENTRY = `WebResources/${TILE}css5a7c9e1b-3d4f-4a6b-8c9d-0e1f2a3b4c5e`;

/** The test's own reading of customizations.xml (not the packer's). */
const reader = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  isArray: (name) =>
    ['Entity', 'WebResource', 'forms', 'systemform', 'savedquery', 'EntityRelationship'].includes(name),
});
const ordered = new XMLParser({ preserveOrder: true, ignoreAttributes: true });

function text(bytes: Uint8Array | undefined): string {
  assert.ok(bytes, 'the entry exists');
  return new TextDecoder().decode(bytes);
}

async function packProblems(dir: string): Promise<SolutionProblem[]> {
  try {
    await packSolution(dir);
  } catch (err) {
    assert.ok(isSolutionPackageError(err), `expected a SolutionPackageError, got ${String(err)}`);
    return [...err.problems];
  }
  assert.fail('pack accepted the folder');
}

describe('channel pack (packSolution)', () => {
  it("writes [Content_Types].xml, solution.xml and customizations.xml first, then the web resources' content by path", async () => {
    const entries = unzipSync(await packSolution(fixtureDir('outbound')));
    assert.deepEqual(Object.keys(entries), [
      '[Content_Types].xml',
      'solution.xml',
      'customizations.xml',
      TILE_CSS_ENTRY,
      TILE_XML_ENTRY,
    ]);
    assert.equal(
      text(entries['[Content_Types].xml']),
      '<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
        '<Default Extension="xml" ContentType="application/octet-stream" />' +
        `<Override PartName="/${TILE_CSS_ENTRY}" ContentType="application/octet-stream" />` +
        `<Override PartName="/${TILE_XML_ENTRY}" ContentType="application/octet-stream" /></Types>`,
    );
    const dir = fixtureDir('outbound');
    assert.deepEqual(entries[TILE_XML_ENTRY], new Uint8Array(readFileSync(path.join(dir, `WebResources/${TILE}.xml`))));
    assert.deepEqual(entries[TILE_CSS_ENTRY], new Uint8Array(readFileSync(path.join(dir, `WebResources/${TILE}.css`))));
    const manifest = reader.parse(text(entries['solution.xml'])) as {
      ImportExportXml: { SolutionManifest: { UniqueName: string; Publisher: { CustomizationPrefix: string } } };
    };
    assert.equal(manifest.ImportExportXml.SolutionManifest.UniqueName, 'SampleSpecialChannel');
    assert.equal(manifest.ImportExportXml.SolutionManifest.Publisher.CustomizationPrefix, 'sample');
  });

  it('merges the table with its form and view, and the web resources, into customizations.xml in the order of exports', async () => {
    const xml = text(unzipSync(await packSolution(fixtureDir('outbound')))['customizations.xml']);
    assert.ok(!xml.startsWith('<?xml'), 'no XML declaration, as Dataverse exports it');
    assert.match(xml, /\r\n/);
    const root = (ordered.parse(xml) as Array<Record<string, unknown>>)[0]!['ImportExportXml'] as Array<
      Record<string, unknown>
    >;
    assert.deepEqual(
      root.map((c) => Object.keys(c)[0]),
      [
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
        'Languages',
      ],
    );
    type Entity = {
      '@xmlns:xsi'?: string;
      Name: { '#text': string };
      EntityInfo: unknown;
      FormXml: { forms: Array<{ '@type': string; systemform: Array<{ formid: string }> }> };
      SavedQueries: { savedqueries: { savedquery: Array<{ savedqueryid: string }> } };
    };
    const doc = reader.parse(xml) as {
      ImportExportXml: {
        Entities: { Entity: Entity[] };
        WebResources: { WebResource: Array<{ Name: string; FileName: string }> };
      };
    };
    const [entity] = doc.ImportExportXml.Entities.Entity;
    assert.equal(entity!.Name['#text'], 'sample_specialmessage');
    assert.equal(entity!['@xmlns:xsi'], undefined, 'the namespace is declared once, on ImportExportXml');
    assert.deepEqual(
      entity!.FormXml.forms.map((f) => [f['@type'], f.systemform.map((s) => s.formid)]),
      [['main', ['{3c0a5d0e-6f7d-4d7e-8a43-0e1f2a3b4c5d}']]],
    );
    assert.deepEqual(
      entity!.SavedQueries.savedqueries.savedquery.map((q) => q.savedqueryid),
      ['{18e2baab-5b6c-5f28-b5fb-e730783fef4f}'],
    );
    const entityChildren = (
      (root[0]!['Entities'] as Array<Record<string, unknown>>)[0]!['Entity'] as Array<Record<string, unknown>>
    ).map((c) => Object.keys(c)[0]);
    assert.deepEqual(entityChildren, ['Name', 'EntityInfo', 'FormXml', 'SavedQueries']);
    assert.deepEqual(
      doc.ImportExportXml.WebResources.WebResource.map((w) => [w.Name, w.FileName]),
      [
        [`${TILE}.css`, `/${TILE_CSS_ENTRY}`],
        [`${TILE}.xml`, `/${TILE_XML_ENTRY}`],
      ],
    );
  });

  it('merges the relationships and copies the custom APIs and channel records as they are', async () => {
    const dir = fixtureDir('realtime');
    const entries = unzipSync(await packSolution(dir));
    const api = 'customapis/sample_RealtimeSmsOutbound';
    assert.deepEqual(Object.keys(entries), [
      '[Content_Types].xml',
      'solution.xml',
      'customizations.xml',
      `${api}/customapi.xml`,
      `${api}/customapirequestparameters/payload/customapirequestparameter.xml`,
      `${api}/customapiresponseproperties/response/customapiresponseproperty.xml`,
    ]);
    for (const name of Object.keys(entries).filter((n) => n.startsWith('customapis/'))) {
      assert.deepEqual(entries[name], new Uint8Array(readFileSync(path.join(dir, name))), name);
    }
    const doc = reader.parse(text(entries['customizations.xml'])) as {
      ImportExportXml: {
        EntityRelationships: { EntityRelationship: Array<{ '@Name': string; ReferencedEntityName: string }> };
        msdyn_channeldefinitions: { msdyn_channeldefinition: { '@msdyn_channeldefinitionid': string } };
        msdyn_channelmessageparts: { msdyn_channelmessagepart: { msdyn_name: string } };
      };
    };
    assert.deepEqual(
      doc.ImportExportXml.EntityRelationships.EntityRelationship.map((r) => [r['@Name'], r.ReferencedEntityName]),
      [['sample_msdyn_channelinstance_sample_realtimesmsinstance', 'sample_realtimesmsinstance']],
    );
    assert.equal(
      doc.ImportExportXml.msdyn_channeldefinitions.msdyn_channeldefinition['@msdyn_channeldefinitionid'],
      '9d3e6b1c-2a4f-5c8d-9e0a-1b2c3d4e5f6a',
    );
    assert.equal(doc.ImportExportXml.msdyn_channelmessageparts.msdyn_channelmessagepart.msdyn_name, 'text');
  });

  it('keeps what the XML escapes escaped', async () => {
    const copy = copyFixture('outbound');
    try {
      copy.edit(
        'Entities/sample_specialmessage/Entity.xml',
        'OriginalName="Special message"',
        'OriginalName="Q &amp; &quot;A&quot;"',
      );
      copy.edit(
        'Other/Customizations.xml',
        '<Language>1033</Language>',
        '<Language>1033</Language><Note>a &lt; b &amp; c</Note>',
      );
      const xml = text(unzipSync(await packSolution(copy.dir))['customizations.xml']);
      assert.match(xml, /OriginalName="Q &amp; &quot;A&quot;"/);
      assert.match(xml, /<Note>a &lt; b &amp; c<\/Note>/);
    } finally {
      copy.remove();
    }
  });

  it('is deterministic: the same folder gives the same bytes, whatever its files’ times or the time zone', async () => {
    const first = await packSolution(fixtureDir('outbound'));
    const copy = copyFixture('outbound');
    const tz = process.env['TZ'];
    try {
      utimesSync(
        path.join(copy.dir, 'Other/Solution.xml'),
        new Date('2031-05-06T07:08:09Z'),
        new Date('2031-05-06T07:08:09Z'),
      );
      process.env['TZ'] = 'Pacific/Kiritimati';
      const second = await packSolution(copy.dir);
      assert.deepEqual(second, first);
    } finally {
      if (tz === undefined) delete process.env['TZ'];
      else process.env['TZ'] = tz;
      copy.remove();
    }
    // Every local file header: modified 00:00 on 1980-01-01 (DOS time 0, date (0 << 9) | (1 << 5) | 1).
    const view = new DataView(first.buffer, first.byteOffset, first.byteLength);
    let headers = 0;
    for (let i = 0; i + 30 <= first.byteLength; i++) {
      if (view.getUint32(i, true) !== 0x04034b50) continue;
      headers++;
      assert.equal(view.getUint16(i + 10, true), 0, 'time');
      assert.equal(view.getUint16(i + 12, true), 0x21, 'date');
    }
    assert.equal(headers, 5);
  });

  it('refuses a folder with a file that is not well-formed, naming the file and the line', async () => {
    const copy = copyFixture('outbound');
    try {
      copy.edit('Entities/sample_specialmessage/Entity.xml', '<EntitySetName>', '<EntitySetName><broken>');
      const problems = await packProblems(copy.dir);
      assert.equal(problems.length, 1);
      const entityXml = readFileSync(path.join(copy.dir, 'Entities/sample_specialmessage/Entity.xml'), 'utf8');
      assert.equal(problems[0]!.file, 'Entities/sample_specialmessage/Entity.xml');
      assert.equal(problems[0]!.line, lineOf(entityXml, '</EntitySetName>'));
      assert.match(problems[0]!.message, /not well-formed XML \(line \d+, column \d+\)/);
    } finally {
      copy.remove();
    }
  });

  it('refuses a missing Solution.xml, content missing beside its .data.xml, and a file it does not handle, all at once', async () => {
    const copy = copyFixture('outbound');
    try {
      const { rmSync, writeFileSync } = await import('node:fs');
      rmSync(path.join(copy.dir, 'Other/Solution.xml'));
      rmSync(path.join(copy.dir, `WebResources/${TILE}.css`));
      writeFileSync(path.join(copy.dir, 'notes.txt'), 'hello');
      const problems = await packProblems(copy.dir);
      assert.deepEqual(
        problems.map((p) => [p.file, p.message.split(':')[0]]).sort(),
        [
          ['Other/Solution.xml', 'is missing'],
          [`WebResources/${TILE}.css.data.xml`, `its content file WebResources/${TILE}.css is missing`],
          [
            'notes.txt',
            'is not a part of a solution that channel pack handles (Other/, Entities/<table>/, WebResources/, customapis/)',
          ],
        ].sort(),
      );
    } finally {
      copy.remove();
    }
  });

  it('refuses a folder that does not exist', async () => {
    const problems = await packProblems(path.join(fixtureDir('outbound'), 'nothing-here'));
    assert.deepEqual(
      problems.map((p) => p.message),
      ['no such folder'],
    );
  });
});
