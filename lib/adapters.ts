/**
 * lib/adapters.ts: the three Redis adapters a worker can run on (ADAPTER=classic|sharded|streams,
 * docs/reference/adapters.md), and connection state recovery, which only the streams adapter can
 * give because only it keeps what was sent.
 */
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import type { ServerOptions } from "socket.io";
import type { AdapterName } from "./config.ts";
import type { WorkerRedis } from "./redis-connections.ts";

export function redisAdapter(adapter: AdapterName, { pubClient, subClient }: WorkerRedis): ServerOptions["adapter"] {
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
}

/** A client that drops for up to two minutes gets what it missed, once, in order (streams only). */
export function stateRecovery(adapter: AdapterName): ServerOptions["connectionStateRecovery"] | undefined {
  return adapter === "streams" ? { maxDisconnectionDuration: 2 * 60_000 } : undefined;
}
