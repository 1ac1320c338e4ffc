/**
 * lib/primary/sticky.ts: the primary's half of sticky sessions, @socket.io/sticky's setupMaster()
 * with the fixes it needs, applied in the order they need (the workers call sticky's setupWorker()
 * and echo the handoff barriers: lib/worker/lifecycle.ts). docs/reference/sticky-sessions.md tells
 * why each fix exists.
 */
import cluster, { type Worker } from "node:cluster";
import type { Server as HttpServer } from "node:http";
import type { Server as NetServer } from "node:net";
import { setupMaster } from "@socket.io/sticky";
import type { ServerConfig } from "../config.ts";
import { isWorkerReport } from "../ipc.ts";
import { guardHandoffs } from "./handoffs.ts";
import { waitForSessionOwners } from "./session-owners.ts";
import { guardPrimarySockets } from "./sockets.ts";

/** @socket.io/sticky keeps its least-connection count on the Worker object itself (undocumented). */
type StickyWorker = Worker & { clientsCount?: number };

/** Call before the first fork, with the server that will listen. */
export function setupStickyPrimary(server: NetServer, config: Pick<ServerConfig, "requestTimeout">): void {
  // "advanced" serialization carries the Buffers that sticky forwards to the workers.
  cluster.setupPrimary({ serialization: "advanced" });
  // Its types ask for an http.Server; sticky only uses the "connection" event, which a net.Server has.
  setupMaster(server as HttpServer, { loadBalancingMethod: "least-connection" });
  // Wraps worker.send at each fork: before the first one.
  guardHandoffs();
  // Both wrap or follow the "data" listener that sticky's own "connection" listener adds (and
  // sticky removes the listeners before its own): they must come after setupMaster().
  waitForSessionOwners(server);
  guardPrimarySockets(server, config.requestTimeout);
  rankWorkersOnceReady();
}

/**
 * Sticky sends a new connection to the worker with the lowest count, and a forked worker starts
 * at 0: a replacement would get every reconnecting client seconds before it listens, and those
 * clients would hang until their timeout (docs/reference/sticky-sessions.md#a-worker-not-yet-ready-ranks-last).
 * So a worker ranks last until it says it serves, then counts its connections from zero, as
 * sticky expects.
 */
function rankWorkersOnceReady(): void {
  cluster.on("fork", (worker: StickyWorker) => void (worker.clientsCount = Infinity));
  cluster.on("message", (worker: StickyWorker, message: unknown) => {
    if (isWorkerReport(message) && message.type === "kit:ready") worker.clientsCount = 0;
  });
}
