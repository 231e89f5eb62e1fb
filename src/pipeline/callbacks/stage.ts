/**
 * The callbacks stage: the service listening on `host:port`, with the life cycle of the other stages: `start()`
 * listens, `stop()` turns readiness off (a load balancer stops sending; requests still arriving are served),
 * `close()` stops listening and waits for the requests in flight (idempotent).
 */
import type { AddressInfo } from 'node:net';
import { createCallbacksServer, type CallbacksServer } from './server.js';
import type { CallbacksDeps } from './service.js';

export interface CallbacksStageOptions extends CallbacksDeps {
  /** @defaultValue '0.0.0.0' */
  host?: string;
  /** 0 picks a free port. @defaultValue 8090 */
  port?: number;
}

export const CALLBACKS_STAGE_DEFAULTS = { host: '0.0.0.0', port: 8090 } as const;

export class CallbacksStage {
  readonly #server: CallbacksServer;
  readonly #host: string;
  readonly #port: number;
  #started: Promise<{ url: string; port: number }> | undefined;
  #closed: Promise<void> | undefined;
  #listening = false;

  constructor(options: CallbacksStageOptions) {
    const port = options.port ?? CALLBACKS_STAGE_DEFAULTS.port;
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new TypeError(`CallbacksStage: port must be an integer 0-65535, found ${String(options.port)}`);
    this.#host = options.host ?? CALLBACKS_STAGE_DEFAULTS.host;
    this.#port = port;
    this.#server = createCallbacksServer(options);
  }

  /** The fastify app (tests inject into it). */
  get app(): CallbacksServer['app'] {
    return this.#server.app;
  }

  /** Whether it is listening (and not stopped). */
  get listening(): boolean {
    return this.#listening;
  }

  /** Listens; resolves to the bound URL (127.0.0.1 for a wildcard host). Rejects when the port cannot be bound. */
  start(): Promise<{ url: string; port: number }> {
    if (this.#closed) return Promise.reject(new Error('CallbacksStage: closed'));
    this.#started ??= this.#server.app.listen({ host: this.#host, port: this.#port }).then(() => {
      this.#listening = true;
      const port = (this.#server.app.server.address() as AddressInfo).port;
      const host = this.#host === '0.0.0.0' || this.#host === '::' ? '127.0.0.1' : this.#host;
      this.#server.service.log.info('callbacks service listening', { host: this.#host, port });
      return { url: `http://${host}:${port}`, port };
    });
    return this.#started;
  }

  /** Readiness off: `/readyz` answers 503. Requests are still served until `close()`. */
  stop(): void {
    this.#server.setReady(false);
  }

  /** Stops listening and waits for the requests in flight. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.stop();
      this.#listening = false;
      await this.#started?.catch(() => undefined);
      await this.#server.app.close();
    })();
    return this.#closed;
  }
}
