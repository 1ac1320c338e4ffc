/**
 * lib/worker/adapters.ts: the three Redis adapters a worker can run on (ADAPTER=classic|sharded|streams,
 * docs/reference/adapters.md), each namespace's adapter guarded against malformed messages
 * (lib/worker/adapter-messages.ts), and connection state recovery, which only the streams adapter
 * can give because only it keeps what was sent; a recovered session's missed messages wait for the
 * handshake's checks (lib/worker/recovery.ts).
 */
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import type { Namespace, ServerOptions } from "socket.io";
import type { AdapterName } from "../config.ts";
import type { WorkerRedis } from "../redis/connections.ts";
import { guardAdapterMessages } from "./adapter-messages.ts";
import { holdMissedPackets } from "./recovery.ts";

export function redisAdapter(adapter: AdapterName, { pubClient, subClient }: WorkerRedis): ServerOptions["adapter"] {
  const create = ((): ((nsp: Namespace) => object) => {
    switch (adapter) {
      case "classic":
        // Answers to cluster-wide requests (fetchSockets, socketsJoin...) go to the asking worker
        // only, not to every worker (upstream socket.io-redis-adapter#407); all workers must agree.
        return createAdapter(pubClient, subClient, { publishOnSpecificResponseChannel: true });
      case "sharded":
        return createShardedAdapter(pubClient, subClient);
      case "streams":
        return createStreamsAdapter(pubClient);
    }
  })();
  // socket.io calls it with `new`: a function, not an arrow, so that the adapter it returns is the result.
  return function (nsp: Namespace) {
    return guardAdapterMessages(holdMissedPackets(create(nsp)), adapter);
  } as unknown as ServerOptions["adapter"];
}

/**
 * A client that drops for up to two minutes gets what it missed, once, in order (streams only).
 * The handshake checks run again on a recovered session (socket.io skips them by default): a
 * client that comes back with a fresh token gets its new expiry, one whose token expired meanwhile
 * is refused (lib/worker/identity.ts), before it gets what it missed (lib/worker/recovery.ts).
 */
export function stateRecovery(adapter: AdapterName): ServerOptions["connectionStateRecovery"] | undefined {
  return adapter === "streams" ? { maxDisconnectionDuration: 2 * 60_000, skipMiddlewares: false } : undefined;
}
