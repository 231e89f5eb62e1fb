import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the server received it. */
export interface Recorded {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** What the server answers: a status, headers and a body (objects are sent as JSON), or `'hang'` (never answers). */
export type Reply = { status: number; headers?: Record<string, string>; body?: unknown } | 'hang';

export interface RecordingServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  requests: Recorded[];
  /** Sets the answer to every following request. */
  reply(reply: Reply | ((request: Recorded) => Reply)): void;
  close(): Promise<void>;
}

/**
 * A tiny HTTP server on 127.0.0.1 and a random port that records every request and answers what the test set
 * (`{status: 200, body: {}}` until then). `close()` also ends hanging requests.
 */
export async function startRecordingServer(): Promise<RecordingServer> {
  const requests: Recorded[] = [];
  let answer: Reply | ((request: Recorded) => Reply) = { status: 200, body: {} };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded: Recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      const reply = typeof answer === 'function' ? answer(recorded) : answer;
      if (reply === 'hang') return;
      const isText = typeof reply.body === 'string';
      const body = reply.body === undefined ? '' : isText ? (reply.body as string) : JSON.stringify(reply.body);
      res.writeHead(reply.status, { 'content-type': isText ? 'text/plain' : 'application/json', ...reply.headers });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
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

/** A URL on 127.0.0.1 where nothing listens (a server was there a moment ago). */
export async function refusedUrl(): Promise<string> {
  const server = await startRecordingServer();
  await server.close();
  return server.url;
}
