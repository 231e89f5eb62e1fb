/**
 * TCP_NODELAY on the SDK's AMQP connections. rhea turns Nagle's algorithm off only when a receiver is attached through
 * the connection (`tcp_no_delay`, true by default there); rhea-promise, under `@azure/service-bus` 7.9.5, attaches
 * every link through a session, so the SDK's sockets keep Nagle on. A small frame written while the previous one is
 * not yet acknowledged then waits for the peer's delayed ACK (40 ms on Linux, up to 200 ms on Windows): measured on
 * the emulator, the first receive after reading a session's state took 42-48 ms against 1-8 ms with it off, and
 * accepting a session 45-51 ms against 3-10 ms. The relay writes no bulk stream a coalescing would help: its frames
 * (a flow, a disposition, a transfer of a batch) each go out in one write anyway.
 */
import rhea from 'rhea';

let applied = false;

/**
 * Makes `tcp_no_delay` true unless a connection's options say otherwise, for every rhea connection of the process
 * made from then on (rhea has one `Connection` prototype, which the SDK's connections share). Idempotent.
 */
export function noDelayOnAmqpConnections(): void {
  if (applied) return;
  applied = true;
  // rhea exports no Connection class: its prototype is reached through a connection made and never opened (given
  // options, so that rhea reads no connect file).
  const proto = Object.getPrototypeOf(rhea.create_connection({ host: 'localhost', port: 5672 })) as {
    get_option: (name: string, defaultValue: unknown) => unknown;
  };
  const getOption = proto.get_option;
  proto.get_option = function (this: unknown, name: string, defaultValue: unknown): unknown {
    return getOption.call(this, name, name === 'tcp_no_delay' ? true : defaultValue);
  };
}
