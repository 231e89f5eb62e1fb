/**
 * The Dataverse emulator's solution import: the actions' parameters, the import job and async operation a client
 * polls (progress in steps), what the components become, re-import as an update, and the table of broken solutions
 * each refused with the file and element named.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { strToU8 } from 'fflate';
import { startDataverseEmulator, type DataverseEmulator } from '../../../../src/emulators/dataverse/index.js';
import { closedAfterEach } from '../../../helpers/fixtures.js';
import { waitFor } from '../../../helpers/wait.js';
import {
  importBody,
  outboundMarketingZip,
  REALTIME,
  realtimeZip,
  TILE_NAME,
  TILE_XML,
  type Edits,
  webApiCaller,
} from './solution-fixtures.js';

const call = webApiCaller('importer');

function errorMessage(json: Record<string, unknown>): string {
  return (json['error'] as { message: string } | undefined)?.message ?? JSON.stringify(json);
}

function edit(file: string, from: string | RegExp, to: string): Edits {
  return {
    files: (files) => {
      const before = files[file]!;
      files[file] = before.replace(from, to);
      assert.notEqual(files[file], before, `the edit of ${file} changed nothing`);
    },
  };
}

describe('Dataverse emulator: ImportSolution and ImportSolutionAsync', function () {
  this.timeout(20_000);
  const track = closedAfterEach();
  const start = async (importDurationMs = 50): Promise<DataverseEmulator> =>
    track(await startDataverseEmulator({ port: 0, limits: 'off', importDurationMs }));

  it('imports asynchronously: the async operation and the import job progress in steps, then succeed', async () => {
    const emulator = await start(1_500);
    const jobId = randomUUID();
    const answer = await call(
      emulator,
      'POST',
      'ImportSolutionAsync',
      importBody(outboundMarketingZip(), { ImportJobId: jobId }),
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    const operation = answer.json['AsyncOperationId'] as string;
    assert.match(String(answer.json['ImportJobKey']), /^\S+$/);
    assert.notEqual(answer.json['ImportJobKey'], jobId, 'ImportJobKey is opaque, not the import job id');
    const first = await call(emulator, 'GET', `asyncoperations(${operation})?$select=statecode,statuscode`);
    assert.deepEqual([first.json['statecode'], first.json['statuscode']], [0, 0]);

    const progress = new Set<number>();
    const done = await waitFor(
      'the async operation to complete',
      async () => {
        const job = await call(emulator, 'GET', `importjobs(${jobId})?$select=progress,solutionname,completedon`);
        progress.add(job.json['progress'] as number);
        const op = await call(emulator, 'GET', `asyncoperations(${operation})?$select=statecode,statuscode,message`);
        return op.json['statecode'] === 3 ? op.json : undefined;
      },
      10_000,
    );
    assert.equal(done['statuscode'], 30, JSON.stringify(done));
    const inBetween = [...progress].filter((p) => p > 0 && p < 100);
    assert.ok(inBetween.length >= 2, `progress seen between 0 and 100: ${[...progress].join(', ')}`);
    const job = await call(emulator, 'GET', `importjobs(${jobId})`);
    assert.equal(job.json['progress'], 100);
    assert.equal(job.json['solutionname'], 'SpecialChannel');
    assert.ok(job.json['completedon']);
    assert.match(String(job.json['data']), /<result result="success"/);
    assert.match(String(job.json['data']), /<entity id="sample_specialmessage" processed="true" action="create">/);

    // The table exists with its columns, the web resource holds the tile, publisher and solution rows exist.
    const created = await call(emulator, 'POST', 'sample_specialmessages', {
      sample_name: 'Offer',
      sample_text: 'Hello {firstname}',
      sample_channel: 'sms',
    });
    assert.equal(created.status, 204, JSON.stringify(created.json));
    const tooLong = await call(emulator, 'POST', 'sample_specialmessages', { sample_channel: 'x'.repeat(51) });
    assert.equal(tooLong.status, 400);
    const resources = await call(
      emulator,
      'GET',
      `webresourceset?$select=name,content,webresourcetype&$filter=name eq '${TILE_NAME}'`,
    );
    const [resource] = resources.json['value'] as Array<Record<string, unknown>>;
    assert.equal(Buffer.from(String(resource!['content']), 'base64').toString('utf8'), TILE_XML);
    assert.equal(resource!['webresourcetype'], 4);
    const solutions = await call(emulator, 'GET', 'solutions?$select=uniquename,version,_publisherid_value');
    assert.deepEqual(
      (solutions.json['value'] as Array<Record<string, unknown>>).map((s) => [s['uniquename'], s['version']]),
      [['SpecialChannel', '1.0.0.0']],
    );
    const publishers = await call(emulator, 'GET', 'publishers?$select=customizationprefix');
    assert.deepEqual(
      (publishers.json['value'] as Array<Record<string, unknown>>).map((p) => p['customizationprefix']),
      ['sample'],
    );
  });

  it('imports a real-time solution: channel definition, its part, custom API with parameter and property, the base table lookup', async () => {
    const emulator = await start();
    const answer = await call(emulator, 'POST', 'ImportSolution', importBody(realtimeZip()));
    assert.equal(answer.status, 204, JSON.stringify(answer.json));
    const definition = await call(emulator, 'GET', `msdyn_channeldefinitions(${REALTIME.definition})`);
    assert.equal(definition.json['msdyn_channeltype'], 'SMS');
    assert.equal(definition.json['msdyn_outboundendpointurltemplate'], `/${REALTIME.outboundApi}`);
    assert.equal(definition.json['msdyn_supportsaccount'], true);
    assert.equal(definition.json['msdyn_channeldefinitionexternalformid'], REALTIME.instanceForm);
    const part = await call(emulator, 'GET', `msdyn_channelmessageparts(${REALTIME.part})`);
    assert.deepEqual(
      [
        part.json['msdyn_name'],
        part.json['msdyn_type'],
        part.json['msdyn_isrequired'],
        part.json['_msdyn_channeldefinitionid_value'],
      ],
      ['text', 192350000, true, REALTIME.definition],
    );
    const apis = await call(
      emulator,
      'GET',
      `customapis?$select=customapiid,uniquename,allowedcustomprocessingsteptype,_sdkmessageid_value`,
    );
    const [api] = apis.json['value'] as Array<Record<string, unknown>>;
    assert.equal(api!['uniquename'], REALTIME.outboundApi);
    assert.equal(api!['allowedcustomprocessingsteptype'], 1);
    const message = await call(emulator, 'GET', `sdkmessages(${String(api!['_sdkmessageid_value'])})?$select=name`);
    assert.equal(message.json['name'], REALTIME.outboundApi);
    const params = await call(
      emulator,
      'GET',
      'customapirequestparameters?$select=uniquename,type,isoptional,_customapiid_value',
    );
    assert.deepEqual(
      (params.json['value'] as Array<Record<string, unknown>>).map((p) => [
        p['uniquename'],
        p['type'],
        p['isoptional'],
        p['_customapiid_value'],
      ]),
      [['payload', 10, false, api!['customapiid']]],
    );
    const props = await call(emulator, 'GET', 'customapiresponseproperties?$select=uniquename,type');
    assert.deepEqual(
      (props.json['value'] as Array<Record<string, unknown>>).map((p) => [p['uniquename'], p['type']]),
      [['response', 10]],
    );
    // The relationship gave msdyn_channelinstance its polymorphic lookup to the extended instance table.
    const instanceId = randomUUID();
    const instance = await call(emulator, 'POST', 'cr65f_samplechannelinstances', {
      cr65f_samplechannelinstanceid: instanceId,
      cr65f_name: 'Sender',
      cr65f_sendernumber: '+4915100000009',
    });
    assert.equal(instance.status, 204, JSON.stringify(instance.json));
    const linked = await call(emulator, 'POST', 'msdyn_channelinstances', {
      msdyn_name: 'Sender',
      msdyn_contactpointid: '+4915100000009',
      'msdyn_ChannelDefinitionId@odata.bind': `/msdyn_channeldefinitions(${REALTIME.definition})`,
      'msdyn_extendedentityid_cr65f_samplechannelinstance@odata.bind': `/cr65f_samplechannelinstances(${instanceId})`,
    });
    assert.equal(linked.status, 204, JSON.stringify(linked.json));
  });

  it('a lookup column of an imported table takes @odata.bind through its relationship navigation property', async () => {
    const emulator = await start();
    const withLookup: Edits = {
      files: (files) => {
        files['customizations.xml'] = files['customizations.xml']!.replace(
          '</attributes>',
          `<attribute PhysicalName="sample_ContactId"><Type>lookup</Type><Name>sample_contactid</Name>
             <LogicalName>sample_contactid</LogicalName><RequiredLevel>none</RequiredLevel></attribute></attributes>`,
        ).replace(
          '<EntityRelationships />',
          `<EntityRelationships><EntityRelationship Name="sample_contact_sample_specialmessage">
             <EntityRelationshipType>OneToMany</EntityRelationshipType>
             <ReferencingEntityName>sample_SpecialMessage</ReferencingEntityName>
             <ReferencedEntityName>Contact</ReferencedEntityName>
             <ReferencingAttributeName>sample_ContactId</ReferencingAttributeName>
             <EntityRelationshipRoles>
               <EntityRelationshipRole><NavigationPropertyName>sample_ContactId</NavigationPropertyName><RelationshipRoleType>1</RelationshipRoleType></EntityRelationshipRole>
               <EntityRelationshipRole><NavigationPropertyName>sample_contact_sample_specialmessage</NavigationPropertyName><RelationshipRoleType>0</RelationshipRoleType></EntityRelationshipRole>
             </EntityRelationshipRoles>
           </EntityRelationship></EntityRelationships>`,
        );
      },
    };
    assert.equal(
      (await call(emulator, 'POST', 'ImportSolution', importBody(outboundMarketingZip(withLookup)))).status,
      204,
    );
    const contactId = randomUUID();
    assert.equal((await call(emulator, 'POST', 'contacts', { contactid: contactId, firstname: 'Ada' })).status, 204);
    const created = await call(emulator, 'POST', 'sample_specialmessages', {
      sample_name: 'Offer',
      'sample_ContactId@odata.bind': `/contacts(${contactId})`,
    });
    assert.equal(created.status, 204, JSON.stringify(created.json));
    const rows = await call(emulator, 'GET', 'sample_specialmessages?$select=_sample_contactid_value');
    assert.deepEqual(
      (rows.json['value'] as Array<Record<string, unknown>>).map((r) => r['_sample_contactid_value']),
      [contactId],
    );
    const wrongNav = await call(emulator, 'POST', 'sample_specialmessages', {
      'sample_contact_sample_specialmessage@odata.bind': `/contacts(${contactId})`,
    });
    assert.equal(wrongNav.status, 400);
  });

  it('importing the same solution again updates rather than duplicates', async () => {
    const emulator = await start();
    assert.equal((await call(emulator, 'POST', 'ImportSolution', importBody(realtimeZip()))).status, 204);
    assert.equal((await call(emulator, 'POST', 'ImportSolution', importBody(outboundMarketingZip()))).status, 204);
    const renamed = edit(
      'customizations.xml',
      '<msdyn_displayname>Sample SMS</msdyn_displayname>',
      '<msdyn_displayname>Renamed SMS</msdyn_displayname>',
    );
    const again = await call(emulator, 'POST', 'ImportSolution', importBody(realtimeZip(renamed)));
    assert.equal(again.status, 204, JSON.stringify(again.json));
    assert.equal((await call(emulator, 'POST', 'ImportSolution', importBody(outboundMarketingZip()))).status, 204);
    const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as { rows: Record<string, number> };
    for (const [set, count] of Object.entries({
      msdyn_channeldefinitions: 1,
      msdyn_channelmessageparts: 1,
      customapis: 1,
      customapirequestparameters: 1,
      customapiresponseproperties: 1,
      sdkmessages: 1,
      webresourceset: 1,
      solutions: 2,
      publishers: 2,
      importjobs: 4,
    }))
      assert.equal(stats.rows[set], count, `${set}: ${stats.rows[set]} rows`);
    const definition = await call(
      emulator,
      'GET',
      `msdyn_channeldefinitions(${REALTIME.definition})?$select=msdyn_displayname`,
    );
    assert.equal(definition.json['msdyn_displayname'], 'Renamed SMS');
    // An immutable custom API column may not change on re-import.
    const changed = await call(
      emulator,
      'POST',
      'ImportSolution',
      importBody(
        realtimeZip(
          edit(
            `customapis/${REALTIME.outboundApi}/customapi.xml`,
            '<allowedcustomprocessingsteptype>1<',
            '<allowedcustomprocessingsteptype>2<',
          ),
        ),
      ),
    );
    assert.equal(changed.status, 400);
    assert.match(
      errorMessage(changed.json),
      /customapi\.xml: <customapi uniquename="cr65f_OutboundCustomApi">\/<allowedcustomprocessingsteptype>: cannot change/,
    );
  });

  it('checks the parameters by their documented names and types', async () => {
    const emulator = await start();
    const zip = outboundMarketingZip();
    const cases: Array<[string, Record<string, unknown>, number, RegExp]> = [
      ['ImportSolution', { ...importBody(zip), ImportJobId: undefined }, 400, /required parameter 'ImportJobId'/],
      [
        'ImportSolution',
        { ...importBody(zip), PublishWorkflows: undefined },
        400,
        /required parameter 'PublishWorkflows'/,
      ],
      [
        'ImportSolution',
        importBody(zip, { OverwriteUnmanagedCustomizations: 'yes' }),
        400,
        /Edm\.Boolean.*OverwriteUnmanagedCustomizations/,
      ],
      ['ImportSolution', importBody(zip, { CustomizationFile: 'not base64!' }), 400, /Edm\.Binary.*CustomizationFile/],
      ['ImportSolution', importBody(zip, { ImportJobId: 'job-1' }), 400, /Edm\.Guid.*ImportJobId/],
      ['ImportSolution', importBody(zip, { Overwrite: true }), 400, /has no parameter 'Overwrite'/],
      [
        'ImportSolutionAsync',
        { ...importBody(zip), CustomizationFile: undefined },
        400,
        /required parameter 'CustomizationFile'/,
      ],
    ];
    for (const [action, body, status, message] of cases) {
      const answer = await call(emulator, 'POST', action, body);
      assert.equal(
        answer.status,
        status,
        `${action} ${JSON.stringify(Object.keys(body))}: ${JSON.stringify(answer.json)}`,
      );
      assert.match(errorMessage(answer.json), message);
    }
    const jobId = randomUUID();
    assert.equal((await call(emulator, 'POST', 'ImportSolution', importBody(zip, { ImportJobId: jobId }))).status, 204);
    const reused = await call(emulator, 'POST', 'ImportSolution', importBody(zip, { ImportJobId: jobId }));
    assert.match(errorMessage(reused.json), /import job with the id .* already exists/);
  });

  it('runs one import at a time: a second async import while one runs fails', async () => {
    const emulator = await start(800);
    const first = await call(emulator, 'POST', 'ImportSolutionAsync', importBody(outboundMarketingZip()));
    const second = await call(emulator, 'POST', 'ImportSolutionAsync', importBody(realtimeZip()));
    const outcome = async (id: unknown): Promise<Record<string, unknown>> =>
      waitFor(
        'completion',
        async () => {
          const op = await call(emulator, 'GET', `asyncoperations(${String(id)})`);
          return op.json['statecode'] === 3 ? op.json : undefined;
        },
        10_000,
      );
    const [a, b] = await Promise.all([
      outcome(first.json['AsyncOperationId']),
      outcome(second.json['AsyncOperationId']),
    ]);
    assert.equal(a['statuscode'], 30);
    assert.equal(b['statuscode'], 31);
    assert.match(String(b['message']), /another \[Import\] running/);
  });

  describe('refuses broken solutions, naming the file and element', () => {
    const om = (e: Edits): Uint8Array => outboundMarketingZip(e);
    const rt = (e: Edits): Uint8Array => realtimeZip(e);
    const without = (make: (e: Edits) => Uint8Array, file: string): Uint8Array =>
      make({ files: (f) => void delete f[file] });
    const cases: Array<[string, Uint8Array, RegExp]> = [
      [
        'a tile without a required field',
        om(edit(`WebResources/${TILE_NAME}`, /<ComplianceField>donotphone<\/ComplianceField>/, '')),
        /^Solution import failed: WebResources\/sample_SpecialTileCustomerJourneyDesignerTileConfig\.xml: <LibraryTile>: <ChannelProperties> has no <ComplianceField>/,
      ],
      [
        'an uppercase GUID',
        rt(
          edit(
            'customizations.xml',
            `msdyn_channelmessagepartid="${REALTIME.part}"`,
            `msdyn_channelmessagepartid="${REALTIME.part.toUpperCase()}"`,
          ),
        ),
        /customizations\.xml: <msdyn_channelmessagepart msdyn_channelmessagepartid="15D57B1A-DDCD-4BB1-9AF6-C691567AB9EF">: the GUID .* has uppercase letters/,
      ],
      [
        'two custom response types',
        om(edit(`WebResources/${TILE_NAME}`, '<ResponseType id="opened">', '<ResponseType id="opened" custom="True">')),
        /sample_SpecialTileCustomerJourneyDesignerTileConfig\.xml: <LibraryTile>: only one response type may have custom="True" \('opened' and 'keyword' do\)/,
      ],
      [
        'an SMS channel with a second part',
        rt(
          edit(
            'customizations.xml',
            '</msdyn_channelmessageparts>',
            `<msdyn_channelmessagepart msdyn_channelmessagepartid="25d57b1a-ddcd-4bb1-9af6-c691567ab9ef">
              <msdyn_channeldefinitionid><msdyn_channeldefinitionid>${REALTIME.definition}</msdyn_channeldefinitionid></msdyn_channeldefinitionid>
              <msdyn_name>title</msdyn_name><msdyn_type>192350000</msdyn_type>
            </msdyn_channelmessagepart></msdyn_channelmessageparts>`,
          ),
        ),
        /customizations\.xml: <msdyn_channelmessageparts> for <msdyn_channeldefinition msdyn_channeldefinitionid="b1b25a46-[^"]+">: an SMS channel has exactly one message part, named 'text' \(found: text, title\)/,
      ],
      [
        'a channel definition naming an outbound API not in the solution',
        rt(edit('customizations.xml', `/${REALTIME.outboundApi}<`, '/cr65f_MissingApi<')),
        /customizations\.xml: <msdyn_channeldefinition msdyn_channeldefinitionid="[^"]+">\/<msdyn_outboundendpointurltemplate>: names the custom API 'cr65f_MissingApi', which is neither in the solution/,
      ],
      [
        'malformed XML',
        rt(edit('customizations.xml', '</msdyn_channeltype>', '</msdyn_channeltyp>')),
        /customizations\.xml: line \d+, column \d+: the file is not well-formed XML/,
      ],
      [
        'a zip without solution.xml',
        without(om, 'solution.xml'),
        /solution\.xml: \(file\): the zip has no solution\.xml/,
      ],
      [
        'a zip without customizations.xml',
        without(rt, 'customizations.xml'),
        /customizations\.xml: \(file\): the zip has no customizations\.xml/,
      ],
      [
        'a web resource whose file is missing',
        without(om, `WebResources/${TILE_NAME}`),
        /customizations\.xml: <WebResource> 'sample_SpecialTileCustomerJourneyDesignerTileConfig\.xml'\/<FileName>: names 'WebResources\/sample_Special.*', which is not in the zip/,
      ],
      [
        'a response property with isoptional',
        rt(
          edit(
            `customapis/${REALTIME.outboundApi}/customapiresponseproperties/response/customapiresponseproperty.xml`,
            '<logicalentityname />',
            '<isoptional>0</isoptional><logicalentityname />',
          ),
        ),
        /customapiresponseproperty\.xml: <customapiresponseproperty uniquename="response">\/<isoptional>: is not an element of this file/,
      ],
      [
        'a tile whose EntityType is no table',
        om(edit(`WebResources/${TILE_NAME}`, '<EntityType>sample_specialmessage<', '<EntityType>sample_othermessage<')),
        /<ChannelProperties>\/<EntityType>: 'sample_othermessage' is neither a table of the solution nor of the organization/,
      ],
      ['not a zip', strToU8('hello'), /\(zip\): \(archive\): the customization file is not a readable zip/],
      [
        'a DTD (entity expansion)',
        rt(edit('customizations.xml', '<ImportExportXml', '<!DOCTYPE x [<!ENTITY a "aaaa">]><ImportExportXml')),
        /customizations\.xml: <!DOCTYPE>: a DTD is prohibited in solution files/,
      ],
      [
        'an unclosed processing instruction (the XML validator lets it through, the parser does not)',
        om(edit('[Content_Types].xml', '</Types>', '</Types><?pi')),
        /\[Content_Types\]\.xml: \(document\): the file is not well-formed XML/,
      ],
    ];
    for (const [title, zip, message] of cases) {
      it(title, async () => {
        const emulator = await start();
        const jobId = randomUUID();
        const answer = await call(emulator, 'POST', 'ImportSolution', importBody(zip, { ImportJobId: jobId }));
        assert.equal(answer.status, 400, JSON.stringify(answer.json));
        assert.match(errorMessage(answer.json), message);
        const job = await call(emulator, 'GET', `importjobs(${jobId})?$select=data,progress,completedon`);
        assert.match(String(job.json['data']), /<result result="failure" errorcode="0x80048060" errortext="[^"]+"/);
        // Nothing of the solution was written.
        const stats = (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as {
          rows: Record<string, number>;
        };
        for (const set of ['msdyn_channeldefinitions', 'customapis', 'webresourceset', 'solutions'])
          assert.equal(stats.rows[set], 0, `${set} after a refused import`);
      });
    }

    it('an async import of a broken solution fails its async operation with the message', async () => {
      const emulator = await start();
      const answer = await call(emulator, 'POST', 'ImportSolutionAsync', importBody(cases[4]![1]));
      assert.equal(answer.status, 200);
      const op = await waitFor(
        'failure',
        async () => {
          const r = await call(emulator, 'GET', `asyncoperations(${String(answer.json['AsyncOperationId'])})`);
          return r.json['statecode'] === 3 ? r.json : undefined;
        },
        10_000,
      );
      assert.equal(op['statuscode'], 31);
      assert.match(
        String(op['message']),
        /<msdyn_outboundendpointurltemplate>: names the custom API 'cr65f_MissingApi'/,
      );
      assert.match(String(op['friendlymessage']), /^customizations\.xml: /);
    });
  });
});
