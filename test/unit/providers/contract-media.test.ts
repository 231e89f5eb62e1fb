import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isProviderError } from '../../../src/errors.js';
import { mediaFetcher } from '../../../src/providers/index.js';
import { SIGNING_SECRET } from './fixtures.js';

/** Every byte value, twice: a body that text decoding would change. */
const BYTES = Buffer.from([...Array.from({ length: 256 }, (_, i) => i), ...Array.from({ length: 256 }, (_, i) => i)]);

describe('contract media fetcher', () => {
  let server: Server;
  let base: string;
  const seen: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  before(async () => {
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      if (req.url === '/moved') {
        res.writeHead(302, { location: '/files/photo' });
        res.end();
      } else if (req.url === '/files/photo') {
        res.writeHead(200, { 'content-type': 'image/png; charset=binary', 'content-length': BYTES.length });
        res.end(BYTES);
      } else {
        res.writeHead(404);
        res.end('no such file');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => (seen.length = 0));

  const settings = { type: 'contract', url: 'https://provider.example/send', signingSecret: SIGNING_SECRET } as const;

  it('GETs the URL without credentials, following a redirect: the bytes intact, the type and a name', async () => {
    const file = await mediaFetcher(settings)!.fetch({ url: `${base}/moved` });
    assert.ok(file.data.equals(BYTES), 'bytes intact');
    assert.equal(file.contentType, 'image/png');
    assert.equal(file.name, 'moved.png', "the name from the URL the message gave, with the type's extension");
    assert.deepEqual(
      seen.map((s) => s.url),
      ['/moved', '/files/photo'],
    );
    assert.ok(seen.every((s) => s.headers.authorization === undefined && s.headers.cookie === undefined));
  });

  it('refuses a file over the size limit, a missing file and a URL that is not http(s): ProviderRejected', async () => {
    const big = await mediaFetcher(settings, { maxBytes: 100 })!
      .fetch({ url: `${base}/files/photo` })
      .catch((e: unknown) => e);
    assert.ok(isProviderError(big) && big.code === 'ProviderRejected', String(big));
    assert.match(big.message, /limit of 100 bytes/);
    const missing = await mediaFetcher(settings)!
      .fetch({ url: `${base}/files/none` })
      .catch((e: unknown) => e);
    assert.ok(isProviderError(missing) && missing.code === 'ProviderRejected' && missing.upstream?.status === 404);
    const before = seen.length;
    const file = await mediaFetcher(settings)!
      .fetch({ url: 'file:///etc/passwd' })
      .catch((e: unknown) => e);
    assert.ok(isProviderError(file) && file.code === 'ProviderRejected');
    assert.equal(seen.length, before, 'no request for a non-http URL');
  });
});
