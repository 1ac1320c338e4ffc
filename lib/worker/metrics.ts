/**
 * lib/worker/metrics.ts: what a worker counts for Prometheus, in prom-client's registry, which the
 * primary gathers from every worker and serves on METRICS_PORT (lib/primary/metrics.ts).
 *
 * The kit had no way to say how many are connected, on which worker, and whether Redis is
 * healthy; under a process manager even socket.io's admin UI shows one server
 * (socketio/socket.io-admin-ui#24). The primary asks every serving worker over IPC for this
 * registry and sums the answers family by family with prom-client's AggregatorRegistry. Every
 * value here carries a `worker` label (the cluster's worker id), so that the sum keeps the
 * workers apart: `sum by (...)` in a query adds them up.
 *
 * The counting calls (count...) are one line at the place where each thing happens; they cost an
 * increment, also when METRICS_PORT is unset. What costs more (the default process metrics, the
 * event loop's histogram, the answers to the primary) starts only when metrics are on. Bun has no
 * event loop delay histogram: nodejs_eventloop_lag_seconds reads 0 there.
 */
import cluster from "node:cluster";
import { collectDefaultMetrics, Counter, Gauge, register } from "prom-client";
import type { Server } from "socket.io";
import { CHAT_NAMESPACES } from "../chat.ts";
import type { AdapterName, ServerConfig } from "../config.ts";
import { isMetricsRequest, METRICS_REQUEST } from "../ipc.ts";
import type { RedisHealth } from "../redis/health.ts";

if (cluster.isWorker) register.setDefaultLabels({ worker: String(cluster.worker!.id) });

/** socket.io's disconnect reasons; anything else (a future one) is "other", so that labels stay few. */
const DISCONNECT_REASONS = new Set([
  "transport close",
  "transport error",
  "ping timeout",
  "parse error",
  "forced close",
  "forced server close",
  "server shutting down",
  "server namespace disconnect",
  "client namespace disconnect",
]);

/** What the gauges read at each scrape, once the worker serves. */
let watched: { io: Server; health: RedisHealth; isDraining: () => boolean } | undefined;

new Gauge({
  name: "kit_connected_clients",
  help: "Sockets connected to this worker, by namespace",
  labelNames: ["namespace"],
  collect() {
    for (const name of CHAT_NAMESPACES) this.set({ namespace: name }, watched?.io.of(name).sockets.size ?? 0);
  },
});
const handshakesAccepted = new Counter({ name: "kit_handshakes_accepted_total", help: "Sockets that passed the handshake's checks, by namespace", labelNames: ["namespace"] });
const handshakesRefused = new Counter({ name: "kit_handshakes_refused_total", help: "Handshakes refused, by reason: origin (lib/worker/origins.ts), auth (lib/worker/identity.ts)", labelNames: ["reason"] });
const disconnects = new Counter({ name: "kit_disconnects_total", help: "Sockets disconnected, by socket.io's reason", labelNames: ["reason"] });
const chatMessages = new Counter({ name: "kit_chat_messages_total", help: "Chat messages received from this worker's clients and broadcast" });
const redisMessages = new Counter({ name: "kit_redis_messages_total", help: "Messages the adapter read from Redis (its own included), by adapter", labelNames: ["adapter"] });
const malformedMessages = new Counter({ name: "kit_redis_malformed_messages_total", help: "Messages from Redis the adapter could not handle, dropped (lib/worker/adapter-messages.ts)" });
const slowReadersCut = new Counter({ name: "kit_slow_readers_cut_total", help: "Connections of slow readers closed, by rule: took nothing (SLOW_READER_GRACE), client ceiling (MAX_CLIENT_BACKLOG), worker ceiling (MAX_WORKER_BACKLOG)", labelNames: ["rule"] });
new Gauge({
  name: "kit_redis_up",
  help: "1 while this worker's path to Redis serves, 0 during an outage (lib/redis/health.ts)",
  collect() {
    this.set(watched && !watched.health.up ? 0 : 1);
  },
});
new Counter({
  name: "kit_redis_outages_total",
  help: "Outages of this worker's path to Redis since it started",
  collect() {
    this.reset();
    this.inc(watched?.health.outages ?? 0);
  },
});
new Gauge({
  name: "kit_draining",
  help: "1 while this worker lets its clients go (a stop or a reload)",
  collect() {
    this.set(watched?.isDraining() ? 1 : 0);
  },
});

export const countHandshakeRefused = (reason: "origin" | "auth") => handshakesRefused.inc({ reason });
export const countChatMessage = () => chatMessages.inc();
export const countMalformedRedisMessage = () => malformedMessages.inc();
export const countSlowReaderCut = (rule: "took nothing" | "client ceiling" | "worker ceiling") => slowReadersCut.inc({ rule });

/** What lib/worker/adapter-messages.ts calls for each message an adapter is handed by Redis. */
export function redisMessageCounter(adapter: AdapterName): () => void {
  const counter = redisMessages.labels({ adapter });
  return () => counter.inc();
}

/**
 * Follows the worker's sockets, Redis and drain; when METRICS_PORT is set, also the process's
 * default metrics (CPU, memory, event loop lag) and the answers to the primary's requests.
 */
export function watchWorkerMetrics(io: Server, health: RedisHealth, isDraining: () => boolean, config: Pick<ServerConfig, "metrics">): void {
  for (const name of CHAT_NAMESPACES) {
    const nsp = io.of(name);
    nsp.on("connection", (socket) => {
      handshakesAccepted.inc({ namespace: name });
      socket.once("disconnect", (reason: string) => disconnects.inc({ reason: DISCONNECT_REASONS.has(reason) ? reason : "other" }));
    });
  }
  watched = { io, health, isDraining };
  for (const reason of ["origin", "auth"]) handshakesRefused.inc({ reason }, 0); // a series from the start, for rate()
  if (!config.metrics) return;
  collectDefaultMetrics();
  process.on("message", (message: unknown) => {
    if (!isMetricsRequest(message)) return;
    void register.getMetricsAsJSON().then((metrics) => process.send!({ type: METRICS_REQUEST, id: message.id, metrics }));
  });
}
