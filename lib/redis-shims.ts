/**
 * lib/redis-shims.ts: two gaps between the Redis adapters and node-redis's cluster and Sentinel
 * clients, each the smallest piece that closes it (test/redis-topologies.test.ts runs both).
 *
 * - RedisSentinel.sendCommand takes (isReadonly, args); the adapters call sendCommand(args) for
 *   PUBSUB NUMSUB, which fetchSockets() and serverSideEmit() with an ack need. Without the shim
 *   the classic adapter hangs such a call and the sharded and streams adapters crash the worker.
 *   Upstream: socket.io-redis-adapter#573 and #571, node-redis#3177 (open).
 * - The classic adapter and the official emitter call publish() and drop its promise. When a
 *   master dies, node-redis rejects the PUBLISH (the socket closed, the command timed out), and
 *   an unhandled rejection ends a Node process: one failover would take every worker down.
 *   Upstream: socket.io-redis-adapter#513, socket.io-redis-emitter#139 (both open).
 */

interface Duplicable<T> {
  duplicate(): T;
}

/**
 * The Sentinel client, also answering the plain client's sendCommand(args): an array first means
 * the adapter's form, sent as a write (isReadonly false) so it goes to the master. Duplicates keep
 * the shim: the streams adapter duplicates the client it is given.
 */
export function withPlainSendCommand<T extends Duplicable<T> & { sendCommand: (...args: never[]) => unknown }>(client: T): T {
  const sendCommand = client.sendCommand.bind(client) as (...args: unknown[]) => unknown;
  const duplicate = client.duplicate.bind(client);
  return Object.assign(client, {
    sendCommand: (first: unknown, ...rest: unknown[]) => (Array.isArray(first) ? sendCommand(false, first, ...rest) : sendCommand(first, ...rest)),
    duplicate: () => withPlainSendCommand(duplicate()),
  });
}

/** PUBLISHes not answered yet, per client. */
const inFlight = new WeakMap<object, Set<Promise<unknown>>>();

/**
 * publish() whose promise always has a rejection handler (`refused` is told), so that a caller
 * that drops it no longer turns a refused PUBLISH into an unhandled rejection. The same promise is
 * returned: a caller that awaits it still gets the error. Duplicates keep the guard.
 */
export function withHandledPublish<T extends Duplicable<T> & { publish: (...args: never[]) => Promise<unknown> }>(
  client: T,
  refused: (err: unknown) => void,
): T {
  const publish = client.publish.bind(client) as (...args: unknown[]) => Promise<unknown>;
  const duplicate = client.duplicate.bind(client);
  const pending = new Set<Promise<unknown>>();
  inFlight.set(client, pending);
  return Object.assign(client, {
    publish: (...args: unknown[]) => {
      const sent = publish(...args);
      pending.add(sent);
      sent.then(
        () => pending.delete(sent),
        (err: unknown) => {
          pending.delete(sent);
          refused(err);
        },
      );
      return sent;
    },
    duplicate: () => withHandledPublish(duplicate(), refused),
  });
}

/**
 * The PUBLISHes of `client` not answered yet. The emitter waits for them before it closes: the
 * cluster and Sentinel clients pick the node to send to asynchronously, so a close() right after
 * the official emitter's dropped publish() would end the connection before the message left.
 */
export function publishesInFlight(client: object): Promise<unknown>[] {
  return [...(inFlight.get(client) ?? [])];
}
