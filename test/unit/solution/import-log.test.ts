import assert from 'node:assert/strict';
import { strToU8, zipSync } from 'fflate';
import { readImportLog, solutionContents, SolutionFileError } from '../../../src/solution/index.js';
import { importJobRowIds } from '../../../src/solution/import-assumptions.js';

/** An import log in the shape public readers of `importjob.data` parse (see import-assumptions.ts). */
const FAILED = `<?xml version="1.0" encoding="utf-16"?>
<importexportxml start="0" stop="1" progress="35" processed="true">
  <solutionManifests>
    <solutionManifest languagecode="1033" id="sample_special" LocalizedName="Special" processed="true">
      <UniqueName>sample_special</UniqueName>
      <result result="failure" errorcode="0x80048033" errortext="The import of solution: sample_special failed &amp; stopped." />
    </solutionManifest>
  </solutionManifests>
  <entities>
    <entity id="{b1}" LocalizedName="Special message" OriginalName="Special message">
      <result result="success" errorcode="0" errortext="" />
    </entity>
    <entity name="sample_other">
      <attribute id="{b2}" result="failure" errorcode="0x80040203" errortext="Label too long" />
      <result result="warning" errorcode="0" errortext="Language 1040 not provisioned" />
    </entity>
  </entities>
  <webResources>
    <webResource id="{c3}" name="sample_SpecialTileCustomerJourneyDesignerTileConfig.xml">
      <result result="failure" errortext="ResponseTypes: two custom types" />
    </webResource>
  </webResources>
</importexportxml>`;

describe('solution import log', () => {
  it('lists every failure and warning with its component, code and message, in order', () => {
    assert.deepEqual(readImportLog(FAILED), [
      {
        level: 'failure',
        component: 'solutionManifest Special',
        code: '0x80048033',
        message: 'The import of solution: sample_special failed & stopped.',
      },
      { level: 'failure', component: 'attribute {b2}', code: '0x80040203', message: 'Label too long' },
      { level: 'warning', component: 'entity sample_other', message: 'Language 1040 not provisioned' },
      {
        level: 'failure',
        component: 'webResource sample_SpecialTileCustomerJourneyDesignerTileConfig.xml',
        message: 'ResponseTypes: two custom types',
      },
    ]);
  });

  it('reads nothing from an empty or successful log, and never throws on text that is not XML', () => {
    assert.deepEqual(readImportLog(undefined), []);
    assert.deepEqual(readImportLog(''), []);
    assert.deepEqual(
      readImportLog(
        '<importexportxml><entities><entity name="a"><result result="success"/></entity></entities></importexportxml>',
      ),
      [],
    );
    assert.deepEqual(readImportLog('Import failed <unterminated'), [
      { level: 'failure', component: 'import log', message: 'not readable as XML: Import failed <unterminated' },
    ]);
  });

  it('reads the import job by the id passed, the answer key only as a fallback', () => {
    const mine = '11111111-2222-4333-8444-555555555555';
    assert.deepEqual(importJobRowIds({ ImportJobKey: 'opaque-key' }, mine), [mine]);
    assert.deepEqual(importJobRowIds({ ImportJobKey: mine.toUpperCase() }, mine), [mine]);
    assert.deepEqual(importJobRowIds({ ImportJobKey: '{AAAAAAAA-2222-4333-8444-555555555555}' }, mine), [
      mine,
      'aaaaaaaa-2222-4333-8444-555555555555',
    ]);
    assert.deepEqual(importJobRowIds(undefined, mine), [mine]);
  });
});

describe('solutionContents', () => {
  const zip = (files: Record<string, string>): Uint8Array =>
    zipSync(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, strToU8(v)])));
  const SOLUTION = `<ImportExportXml version="9.2" SolutionPackageVersion="9.2"><SolutionManifest><UniqueName>sample_realtimesms</UniqueName><Version>1.0.0.0</Version></SolutionManifest></ImportExportXml>`;

  it('reads the unique name, the tables and the channel definitions with their outbound Custom API', () => {
    const contents = solutionContents(
      zip({
        '[Content_Types].xml': '<Types/>',
        'solution.xml': SOLUTION,
        'customizations.xml': `<ImportExportXml xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
          <Entities><Entity><Name LocalizedName="Instance" OriginalName="Instance">sample_RealtimeSmsInstance</Name>
            <EntityInfo><entity Name="sample_realtimesmsinstance"/></EntityInfo></Entity></Entities>
          <msdyn_channeldefinitions><msdyn_channeldefinition msdyn_channeldefinitionid="877d122c-16f8-5806-b029-4a7a103cb3d6">
            <msdyn_outboundendpointurltemplate>/sample_RealtimeSmsOutboundApi</msdyn_outboundendpointurltemplate>
          </msdyn_channeldefinition></msdyn_channeldefinitions></ImportExportXml>`,
      }),
    );
    assert.deepEqual(contents, {
      uniqueName: 'sample_realtimesms',
      version: '1.0.0.0',
      tables: ['sample_realtimesmsinstance'],
      channelDefinitions: [
        { id: '877d122c-16f8-5806-b029-4a7a103cb3d6', outboundApi: 'sample_RealtimeSmsOutboundApi' },
      ],
    });
  });

  it('names the file that is missing or broken', () => {
    assert.throws(
      () => solutionContents(strToU8('not a zip')),
      (e: unknown) => e instanceof SolutionFileError && /not a zip/.test(e.message),
    );
    assert.throws(
      () => solutionContents(zip({ 'customizations.xml': '<ImportExportXml/>' })),
      /solution\.xml: missing from the zip/,
    );
    assert.throws(
      () => solutionContents(zip({ 'solution.xml': SOLUTION, 'customizations.xml': '<ImportExportXml><Entities>' })),
      /customizations\.xml: not well-formed XML/,
    );
    assert.throws(
      () => solutionContents(zip({ 'solution.xml': '<ImportExportXml/>', 'customizations.xml': '<ImportExportXml/>' })),
      /solution\.xml: ImportExportXml\/SolutionManifest\/UniqueName is missing/,
    );
  });
});
