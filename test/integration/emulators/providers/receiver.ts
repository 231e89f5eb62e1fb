/** A small HTTP server on 127.0.0.1:0 that records what the simulators' callbacks send and answers as told. */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closedAfterEach } from '../../../helpers/fixtures.js';

export interface Received {
  method: string;
  /** Path and query, as received. */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** The requests to one path (query ignored). */
  at(path: string): Received[];
  /** Sets the answer status for requests (default: 204, 302 for paths under /l/). */
  answer: (req: Received) => number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const receiver: Receiver = {
    url: '',
    received,
    at: (path) => received.filter((r) => r.path.split('?')[0] === path),
    answer: (req) => (req.path.startsWith('/l/') ? 302 : 204),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(r);
      const status = receiver.answer(r);
      res.writeHead(status, status === 302 ? { Location: 'https://example.org/landing' } : {});
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return receiver;
}

/** Returns a starter of receivers closed after each test of the `describe` block. */
export function receivers(): () => Promise<Receiver> {
  const track = closedAfterEach();
  return async () => track(await startReceiver());
}
