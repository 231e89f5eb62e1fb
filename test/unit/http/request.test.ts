import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lowerHeaders, readBody } from '../../../src/http/request.js';

describe('http: reading a request', () => {
  let server: Server;
  let url: string;
  before(async () => {
    server = createServer((req, res) => {
      readBody(req, 16, () => new RangeError('over 16 bytes')).then(
        (body) => res.end(JSON.stringify({ body, headers: lowerHeaders(req) })),
        (err: Error) => res.writeHead(413).end(err.message),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  it('returns the body as text and the headers in lower case', async () => {
    const res = await fetch(url, { method: 'POST', body: 'héllo', headers: { 'X-Custom': 'a' } });
    const got = (await res.json()) as { body: string; headers: Record<string, string> };
    assert.equal(got.body, 'héllo');
    assert.equal(got.headers['x-custom'], 'a');
  });

  it('refuses a body over the limit with the caller-given error, and the answer still reaches the client', async () => {
    const res = await fetch(url, { method: 'POST', body: 'x'.repeat(100_000) });
    assert.equal(res.status, 413);
    assert.equal(await res.text(), 'over 16 bytes');
  });
});
