import assert from 'node:assert/strict';
import {
  boundaryOf,
  MultipartError,
  parseBatch,
  splitParts,
  writeBatch,
} from '../../../../src/emulators/dataverse/multipart.js';

const CRLF = '\r\n';

describe('$batch multipart parser and writer', () => {
  const boundaries: Array<[string, string | undefined]> = [
    ['multipart/mixed;boundary=batch_1', 'batch_1'],
    ['multipart/mixed; boundary="batch_AAA123"', 'batch_AAA123'],
    ['Multipart/Mixed; charset=utf-8; boundary=dwa_batch_x', 'dwa_batch_x'],
    ['application/json', undefined],
    [undefined as unknown as string, undefined],
  ];
  for (const [ct, expected] of boundaries)
    it(`boundary of ${String(ct)} → ${String(expected)}`, () => assert.equal(boundaryOf(ct), expected));

  it('parses the documented example: a change set with Content-IDs, then a GET', () => {
    const body = [
      '--batch_AAA123',
      'Content-Type: multipart/mixed; boundary=changeset_BBB456',
      '',
      '--changeset_BBB456',
      'Content-Type: application/http',
      'Content-Transfer-Encoding: binary',
      'Content-ID: 1',
      '',
      'POST https://org.crm.dynamics.com/api/data/v9.2/contacts HTTP/1.1',
      'Content-Type: application/json;type=entry',
      '',
      '{"firstname":"a"}',
      '--changeset_BBB456',
      'Content-Type: application/http',
      'Content-Transfer-Encoding: binary',
      'Content-ID: 2',
      '',
      'POST /api/data/v9.2/accounts HTTP/1.1',
      'Content-Type: application/json',
      '',
      '{"primarycontactid@odata.bind":"$1"}',
      '--changeset_BBB456--',
      '--batch_AAA123',
      'Content-Type: application/http',
      'Content-Transfer-Encoding: binary',
      '',
      "GET /api/data/v9.2/contacts?$select=firstname&$filter=firstname eq 'a' HTTP/1.1",
      'Accept: application/json',
      '',
      '',
      '--batch_AAA123--',
      '',
    ].join(CRLF);
    const items = parseBatch(body, 'batch_AAA123');
    assert.equal(items.length, 2);
    assert.equal(items[0]!.kind, 'changeset');
    const cs = items[0] as Extract<(typeof items)[0], { kind: 'changeset' }>;
    assert.deepEqual(
      cs.requests.map((r) => [r.method, r.url, r.contentId, r.body]),
      [
        ['POST', 'https://org.crm.dynamics.com/api/data/v9.2/contacts', '1', '{"firstname":"a"}'],
        ['POST', '/api/data/v9.2/accounts', '2', '{"primarycontactid@odata.bind":"$1"}'],
      ],
    );
    assert.equal(cs.requests[0]!.headers['content-type'], 'application/json;type=entry');
    const get = items[1] as Extract<(typeof items)[0], { kind: 'request' }>;
    assert.equal(get.request.method, 'GET');
    assert.equal(get.request.url, "/api/data/v9.2/contacts?$select=firstname&$filter=firstname eq 'a'");
    assert.equal(get.request.body, '');
  });

  it('accepts LF-only line endings and bodies with blank lines', () => {
    const body = [
      '--b',
      'Content-Type: application/http',
      '',
      'PATCH contacts(1) HTTP/1.1',
      'Content-Type: application/json',
      '',
      '{',
      '',
      '"a": 1}',
      '--b--',
    ].join('\n');
    const [item] = parseBatch(body, 'b');
    assert.equal(item!.kind, 'request');
    assert.equal((item as { request: { body: string } }).request.body, '{\n\n"a": 1}');
  });

  const malformed: Array<[string, string, RegExp]> = [
    ['no delimiter', 'hello', /no delimiter '--b'/],
    ['no closing delimiter', '--b\r\nContent-Type: application/http\r\n\r\nGET x HTTP/1.1\r\n', /closing delimiter/],
    ['not application/http', '--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--', /Content-Type 'text\/plain'/],
    ['no request line', '--b\r\nContent-Type: application/http\r\n\r\n\r\n--b--', /no request line/],
    [
      'GET in a change set',
      '--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\nContent-Type: application/http\r\n\r\nGET contacts HTTP/1.1\r\n\r\n--c--\r\n--b--',
      /GET requests are not allowed inside a change set/,
    ],
  ];
  for (const [name, body, message] of malformed) {
    it(`refuses a body with ${name}`, () =>
      assert.throws(
        () => parseBatch(body, 'b'),
        (err: unknown) => err instanceof MultipartError && message.test(err.message),
      ));
  }

  it('splits parts without the line break that belongs to the delimiter', () => {
    assert.deepEqual(splitParts('preamble\r\n--x\r\nA\r\n--x\r\nB\r\n\r\n--x--\r\nepilogue', 'x'), ['A', 'B\r\n']);
  });

  it('takes a delimiter only at the start of a line and followed by -- or a line end (boundary b_1 is not b_10)', () => {
    const body = [
      '--b_1',
      'X-Note: --b_1 inside a header',
      '',
      'A',
      '--b_10 is text, not a delimiter',
      '--b_1',
      '',
      'B',
      '--b_1--',
    ].join('\r\n');
    assert.deepEqual(splitParts(body, 'b_1'), [
      'X-Note: --b_1 inside a header\r\n\r\nA\r\n--b_10 is text, not a delimiter',
      '\r\nB',
    ]);
  });

  it('writes responses in the Dataverse format, which parse back part by part', () => {
    const { body, contentType } = writeBatch(
      [
        {
          kind: 'changeset',
          responses: [
            {
              status: 204,
              headers: { 'OData-Version': '4.0', 'OData-EntityId': 'http://x/api/data/v9.2/contacts(1)' },
              contentId: '1',
            },
          ],
        },
        {
          kind: 'response',
          response: {
            status: 400,
            headers: { 'Content-Type': 'application/json' },
            body: '{"error":{"code":"0x1","message":"m"}}',
          },
        },
      ],
      'fixed',
    );
    assert.equal(contentType, 'multipart/mixed; boundary=batchresponse_fixed');
    assert.ok(body.startsWith('--batchresponse_fixed\r\nContent-Type: multipart/mixed; boundary=changesetresponse_'));
    assert.match(
      body,
      /Content-ID: 1\r\n\r\nHTTP\/1\.1 204 No Content\r\nOData-Version: 4\.0\r\nOData-EntityId: http:\/\/x\/api\/data\/v9\.2\/contacts\(1\)\r\n/,
    );
    assert.match(
      body,
      /HTTP\/1\.1 400 Bad Request\r\nContent-Type: application\/json\r\n\r\n\{"error":\{"code":"0x1","message":"m"\}\}\r\n--batchresponse_fixed--\r\n$/,
    );
    const parts = splitParts(body, 'batchresponse_fixed');
    assert.equal(parts.length, 2);
  });
});
