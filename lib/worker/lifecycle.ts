/**
 * lib/worker/lifecycle.ts: a worker from "ready" to its exit, the counterpart of the primary's
 * lib/primary/workers.ts. Once the chat's handlers are in place, serve() takes the connections the
 * primary hands over (@socket.io/sticky's setupWorker(), the worker's half of sticky sessions),
 * echoes the primary's handoff barriers (lib/worker/handoffs.ts), starts letting go of clients that
 * stop reading, and tells the primary that this worker serves; on SIGTERM or Ctrl-C it drains and
 * resolves, and the script exits. A reload (lib/primary/reload.ts) asks it to drain gradually
 * instead. Its readiness (/readyz, lib/worker/http.ts) and its metrics (lib/worker/metrics.ts)
 * follow Redis and the drain from here.
 */
import { setupWorker } from "@socket.io/sticky";
import type { Server } from "socket.io";
import type { ServerConfig } from "../config.ts";
import { isReloadDrain, tellPrimary } from "../ipc.ts";
import type { WorkerRedis } from "../redis/connections.ts";
import { drain, drainGradually, isDraining } from "./drain.ts";
import { answerHandoffBarriers } from "./handoffs.ts";
import { corkFrames } from "./corked-frames.ts";
import { reportReadiness } from "./http.ts";
import { watchWorkerMetrics } from "./metrics.ts";
import { cutSlowReaders } from "./slow-readers.ts";

export function serve(io: Server, redis: WorkerRedis, config: Pick<ServerConfig, "maxClientBacklog" | "maxWorkerBacklog" | "slowReaderGrace" | "metrics" | "reloadSpread" | "corkFrames">): Promise<void> {
  setupWorker(io);
  if (config.corkFrames) corkFrames(io);
  answerHandoffBarriers();
  cutSlowReaders(io, config);
  watchWorkerMetrics(io, redis.health, isDraining, config);
  reportReadiness(() => (isDraining() ? "draining" : redis.health.up ? null : "Redis is down"));
  tellPrimary({ type: "kit:ready" });
  return new Promise((resolve, reject) => {
    let stopping = false;
    let signalled: () => void;
    const signal = new Promise<void>((resolve) => (signalled = resolve));
    const stop = () => {
      signalled();
      if (stopping) return; // Ctrl-C reaches every process of the terminal: the primary's SIGTERM follows
      stopping = true;
      drain(io, redis).then(resolve, reject);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    process.on("message", (message: unknown) => {
      if (!isReloadDrain(message) || stopping) return;
      stopping = true; // a SIGTERM from now on cuts the spread short
      drainGradually(io, redis, config.reloadSpread, signal).then(resolve, reject);
    });
  });
}
