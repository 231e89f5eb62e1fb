/** A local HTTP server for the Direct Line client's unit tests: records each request with its raw body, answers as told. */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * An answer: status, headers, body (objects as JSON, strings as they are); `'hang'` never answers; `cut` sends the
 * status line and the start of a longer body, then drops the connection.
 */
export type Reply = { status: number; headers?: Record<string, string>; body?: unknown } | 'hang' | { cut: number };

export interface FakeDirectLine {
  url: string;
  received: Received[];
  /** TCP connections accepted so far. */
  connections(): number;
  /** The answer to every following request (a function decides per request). */
  reply(reply: Reply | ((request: Received) => Reply)): void;
  close(): Promise<void>;
}

export async function startFakeDirectLine(): Promise<FakeDirectLine> {
  const received: Received[] = [];
  let answer: Reply | ((request: Received) => Reply) = { status: 200, body: {} };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks),
      };
      received.push(request);
      const reply = typeof answer === 'function' ? answer(request) : answer;
      if (reply === 'hang') return;
      if ('cut' in reply) {
        res.writeHead(reply.cut, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"id":"con');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      const text =
        reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(text);
    });
  });
  let connections = 0;
  server.on('connection', () => (connections += 1));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    connections: () => connections,
    reply(next) {
      answer = next;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
