/**
 * lib/worker/drain.ts: a worker that stops lets its clients go cleanly. Exiting at once would throw
 * away what the worker has accepted but not yet written to its clients; so it takes no more
 * messages from Redis, lets each connection send what it holds, then closes. The clients see the
 * transport close and reconnect on their own (to another worker, or to the server once it is back).
 *
 * A reload (SIGHUP to the primary, lib/primary/reload.ts) drains one worker while the others
 * serve: letting all its clients go at once sends them all to reconnect in the same second, the
 * "self-DDoS" of a rolling deploy (socketio/socket.io#5413). drainGradually() lets them go one by
 * one over RELOAD_SPREAD_MS first, while the worker still delivers to those that remain.
 */
import type { Server } from "socket.io";
import { CHAT_NAMESPACES } from "../chat.ts";
import { WORKER_STOP_LIMIT_MS } from "../ipc.ts";
import type { WorkerRedis } from "../redis/connections.ts";

/** The primary gives up on its workers after WORKER_STOP_LIMIT_MS: stay within that for a client that stalls. */
const FLUSH_LIMIT_MS = WORKER_STOP_LIMIT_MS - 2000;

let draining = false;

/** True once the worker lets its clients go: its readiness (/readyz) is then 503. */
export function isDraining(): boolean {
  return draining;
}

/**
 * Lets the clients go one by one, evenly over `spreadMs` (unless `stopNow` resolves first: a
 * SIGTERM during a reload), then drains the rest.
 */
export async function drainGradually(io: Server, redis: WorkerRedis, spreadMs: number, stopNow: Promise<unknown>): Promise<void> {
  draining = true;
  let interrupted = false;
  void stopNow.then(() => (interrupted = true));
  const connections = [...new Set(CHAT_NAMESPACES.flatMap((name) => [...io.of(name).sockets.values()].map((socket) => socket.conn)))];
  const gap = connections.length > 0 ? spreadMs / connections.length : 0;
  const start = performance.now();
  for (const [i, conn] of connections.entries()) {
    const wait = start + i * gap - performance.now();
    if (wait > 0) await Promise.race([new Promise((resolve) => setTimeout(resolve, wait)), stopNow]);
    if (interrupted) break;
    conn.close(); // after its write buffer; the client reconnects, to another worker
  }
  await drain(io, redis);
}

export async function drain(io: Server, redis: WorkerRedis): Promise<void> {
  draining = true;
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
