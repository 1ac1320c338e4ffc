/**
 * lib/primary-lifecycle.ts: the primary's side of the cluster, between fork and exit. The post's
 * sticky-session did this out of sight; with @socket.io/sticky it is ours to write, and each rule
 * here answers a way the cluster once failed:
 * - the port opens once every worker is ready, so that no connection reaches a worker without Redis;
 * - a worker that cannot reach Redis at start-up stops the cluster with one line, instead of
 *   being replaced by another that cannot either, forever;
 * - a worker that dies later is replaced, and the replacement is told so at fork: it waits for
 *   Redis rather than giving up;
 * - SIGTERM or Ctrl-C stops every worker, with the port kept open until they are gone (a
 *   long-polling client needs one more request to fetch what its worker still holds for it).
 */
import cluster, { type Worker } from "node:cluster";
import type { AddressInfo, Server } from "node:net";
import { EXIT_FAILURE, type ServerConfig } from "./config.ts";
import { rankByConnections, rankLastUntilReady } from "./sticky-fixes.ts";

/** What a worker tells the primary. */
type WorkerReport = { type: "ready" } | { type: "redis-unreachable"; reason: string };

const REPLACEMENT_VARIABLE = "KIT_REPLACEMENT_WORKER";
/** How long the primary waits for its workers to stop: one stuck on a dead Redis must not keep the cluster up. */
export const WORKER_STOP_LIMIT_MS = 10_000;

/** Forks a worker; `replacement` tells it that it takes the place of one that died. */
export function forkWorker(replacement = false): void {
  // Always set, so that a value in the primary's own environment cannot leak into a first worker.
  rankLastUntilReady(cluster.fork({ [REPLACEMENT_VARIABLE]: replacement ? "1" : "0" }));
}

/** In a worker: whether it replaces one that died (forkWorker's `replacement`). */
export function isReplacement(): boolean {
  return process.env[REPLACEMENT_VARIABLE] === "1";
}

/**
 * In the primary: listens once all workers are ready, replaces the dead ones, and on SIGINT or
 * SIGTERM stops them all; a port it cannot listen on is one line and exit code 1.
 */
export function superviseWorkers(server: Server, config: ServerConfig): void {
  let listening = false;
  let stopping = false;
  let readyWorkers = 0; // until the cluster listens: a worker that exits before then stops it

  server.on("error", (err) => {
    console.error(`cannot listen on port ${config.port}: ${err.message}`);
    process.exit(EXIT_FAILURE);
  });

  cluster.on("message", (worker: Worker, report: WorkerReport) => {
    if (report.type === "ready") {
      rankByConnections(worker);
      if (!listening && ++readyWorkers === config.workers) {
        listening = true;
        server.listen(config.port, () => {
          const { port } = server.address() as AddressInfo; // PORT=0 picks a free one
          console.log(`listening on port ${port} with ${config.workers} workers, Redis at ${config.redisName}`);
        });
      }
    } else if (report.type === "redis-unreachable" && !listening && !stopping) {
      console.error(`cannot connect to Redis at ${config.redisName}: ${report.reason}`);
      stop(EXIT_FAILURE);
    }
  });

  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    if (!listening) {
      console.error(`worker: ${worker.id} exited during start-up (${signal ?? `exit code ${code}`})`);
      return stop(EXIT_FAILURE);
    }
    console.log(`worker: ${worker.id} died (${signal ?? `exit code ${code}`}), starting a new one`);
    forkWorker(true);
  });

  function stop(exitCode: number) {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    let running = workers.length;
    if (running === 0) process.exit(exitCode);
    for (const worker of workers) {
      worker.once("exit", () => --running === 0 && process.exit(exitCode));
      worker.process.kill("SIGTERM");
    }
    setTimeout(() => process.exit(exitCode || EXIT_FAILURE), WORKER_STOP_LIMIT_MS).unref();
  }

  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));
}

/** In a worker: tells the primary it serves. */
export function reportReady(): void {
  process.send!({ type: "ready" } satisfies WorkerReport);
}

/**
 * In a worker that could not reach Redis at start-up: tells the primary, which stops the cluster
 * with one line, and serves nothing meanwhile.
 */
export async function reportRedisUnreachable(err: Error): Promise<never> {
  process.send!({ type: "redis-unreachable", reason: err.message } satisfies WorkerReport);
  return new Promise<never>(() => {});
}
