/**
 * lib/drain-on-signal.ts: a worker's SIGTERM or Ctrl-C. Exiting at once would throw away what the
 * worker has accepted but not yet written to its clients; so it takes no more messages from
 * Redis, lets each connection send what it holds, then closes. The clients see the transport
 * close and reconnect on their own (to another worker, or to the server once it is back).
 */
import type { Server } from "socket.io";
import { CHAT_NAMESPACES } from "./chat-events.ts";
import { WORKER_STOP_LIMIT_MS } from "./primary-lifecycle.ts";
import type { RedisClient } from "./redis-connections.ts";

/** The primary gives up on its workers after WORKER_STOP_LIMIT_MS: stay within that for a client that stalls. */
const FLUSH_LIMIT_MS = WORKER_STOP_LIMIT_MS - 2000;

export function drainOnSignal(io: Server, redisClients: RedisClient[]): void {
  let stopping = false;
  async function drain() {
    if (stopping) return;
    stopping = true;
    const namespaces = CHAT_NAMESPACES.map((name) => io.of(name));
    // Each adapter unsubscribes (or stops reading the stream); skipped while Redis is down, when
    // nothing arrives anyway and an unsubscribe would wait for Redis to come back.
    if (redisClients.every((c) => c.isReady)) await Promise.allSettled(namespaces.map((nsp) => nsp.adapter.close()));
    // One connection may carry a socket of each namespace: close each connection once.
    const connections = new Set(namespaces.flatMap((nsp) => [...nsp.sockets.values()].map((socket) => socket.conn)));
    const closed = [...connections].map(
      (conn) => new Promise((resolve) => conn.once("close", resolve).close()), // close() waits for the write buffer
    );
    await Promise.race([Promise.all(closed), new Promise((resolve) => setTimeout(resolve, FLUSH_LIMIT_MS))]);
    await io.close();
    // close() lets queued commands finish, which never happens while Redis is down.
    await Promise.allSettled(redisClients.map((client) => (client.isReady ? client.close() : client.destroy())));
    process.exit(0);
  }
  process.on("SIGINT", drain);
  process.on("SIGTERM", drain);
}
