/**
 * lib/worker/drain.ts: a worker that stops lets its clients go cleanly. Exiting at once would throw
 * away what the worker has accepted but not yet written to its clients; so it takes no more
 * messages from Redis, lets each connection send what it holds, then closes. The clients see the
 * transport close and reconnect on their own (to another worker, or to the server once it is back).
 */
import type { Server } from "socket.io";
import { CHAT_NAMESPACES } from "../chat.ts";
import { WORKER_STOP_LIMIT_MS } from "../ipc.ts";
import type { WorkerRedis } from "../redis/connections.ts";

/** The primary gives up on its workers after WORKER_STOP_LIMIT_MS: stay within that for a client that stalls. */
const FLUSH_LIMIT_MS = WORKER_STOP_LIMIT_MS - 2000;

export async function drain(io: Server, redis: WorkerRedis): Promise<void> {
  const namespaces = CHAT_NAMESPACES.map((name) => io.of(name));
  // Each adapter unsubscribes (or stops reading the stream); skipped while Redis is down, when
  // nothing arrives anyway and an unsubscribe would wait for Redis to come back.
  if (redis.clients.every((c) => c.isReady)) await Promise.allSettled(namespaces.map((nsp) => nsp.adapter.close()));
  // One connection may carry a socket of each namespace: close each connection once.
  const connections = new Set(namespaces.flatMap((nsp) => [...nsp.sockets.values()].map((socket) => socket.conn)));
  const closed = [...connections].map(
    (conn) => new Promise((resolve) => conn.once("close", resolve).close()), // close() waits for the write buffer
  );
  await Promise.race([Promise.all(closed), new Promise((resolve) => setTimeout(resolve, FLUSH_LIMIT_MS))]);
  await io.close();
  // close() lets queued commands finish, which never happens while Redis is down.
  await Promise.allSettled(redis.clients.map((client) => (client.isReady ? client.close() : client.destroy())));
}
