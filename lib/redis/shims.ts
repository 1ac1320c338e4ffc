/**
 * lib/redis/shims.ts: two gaps between the Redis adapters (and the official emitter) and
 * node-redis, each the smallest piece that closes it (test/redis-topologies.test.ts runs both).
 *
 * - RedisSentinel.sendCommand takes (isReadonly, args); the adapters call sendCommand(args) for
 *   PUBSUB NUMSUB, which fetchSockets() and serverSideEmit() with an ack need. Without the shim
 *   the classic adapter hangs such a call and the sharded and streams adapters crash the worker.
 *   Upstream: socket.io-redis-adapter#573 and #571, node-redis#3177 (open).
 * - The adapters and the official emitter send some commands and drop their promise: PUBLISH
 *   (classic adapter, emitter), SSUBSCRIBE and SUNSUBSCRIBE as rooms come and go (sharded
 *   adapter), the SET that keeps a disconnected client's session (streams adapter, for connection
 *   state recovery), the subscriptions made when an adapter starts or closes. When a master dies, or a
 *   dead path is dropped (lib/redis/health.ts), node-redis rejects what was in flight, and an
 *   unhandled rejection ends the process: one failover would take every worker down.
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

/** The commands that a caller may send without waiting for their answer. */
const UNAWAITED_COMMANDS = ["set", "publish", "sPublish", "subscribe", "pSubscribe", "sSubscribe", "unsubscribe", "pUnsubscribe", "sUnsubscribe"];

/** Commands not answered yet, per client. */
const inFlight = new WeakMap<object, Set<Promise<unknown>>>();

/**
 * The commands above, whose promises always have a rejection handler (`failed` is told, with the
 * command's name), so that a caller that drops one no longer turns a failure into an unhandled
 * rejection. The same promise is returned: a caller that awaits it still gets the error.
 * Duplicates keep the guard.
 */
export function withHandledCommands<T extends Duplicable<T>>(client: T, failed: (command: string, err: unknown) => void): T {
  const pending = new Set<Promise<unknown>>();
  inFlight.set(client, pending);
  const methods = client as unknown as Record<string, unknown>;
  for (const name of UNAWAITED_COMMANDS) {
    const original = methods[name];
    if (typeof original !== "function") continue;
    methods[name] = (...args: unknown[]) => {
      const sent = original.apply(client, args) as Promise<unknown>;
      pending.add(sent);
      sent.then(
        () => pending.delete(sent),
        (err: unknown) => {
          pending.delete(sent);
          failed(name.toUpperCase(), err);
        },
      );
      return sent;
    };
  }
  const duplicate = client.duplicate.bind(client);
  return Object.assign(client, { duplicate: () => withHandledCommands(duplicate(), failed) });
}

/**
 * The commands of `client` not answered yet. The emitter waits for them before it closes: the
 * official emitter does not return its PUBLISH, and the Redis Cluster and Sentinel clients pick the node
 * to send to asynchronously, so a close() right after it would end the connection before the
 * message left.
 */
export function commandsInFlight(client: object): Promise<unknown>[] {
  return [...(inFlight.get(client) ?? [])];
}
