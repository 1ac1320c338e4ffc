/**
 * lib/primary/reload.ts: SIGHUP to the primary replaces its workers one at a time with fresh
 * processes, which load the code on disk as it is now (each fork reads the files again). The
 * primary, its pid and its port stay: a process manager's `reload`, without dropping everyone.
 *
 * SIGTERM lets every client go in the same second, and upstream calls a rolling deploy done that
 * way a "self-DDoS" (socketio/socket.io#5413): every client reconnects at once. Here, for each old
 * worker in turn: a fresh one is forked and must say it serves; only then the old one stops
 * getting new sessions (sticky ranks it last, its /readyz turns 503) and lets its clients go one
 * by one over RELOAD_SPREAD_MS (lib/worker/drain.ts), and they reconnect to the live workers;
 * under the streams adapter connection state recovery gives them what they missed. A fresh worker
 * that fails before it serves stops the reload: the workers not yet replaced keep serving.
 */
import cluster, { type Worker } from "node:cluster";
import type { ServerConfig } from "../config.ts";
import { isWorkerReport, RELOAD_DRAIN, WORKER_STOP_LIMIT_MS } from "../ipc.ts";

/** @socket.io/sticky's least-connection count on the Worker object (lib/primary/sticky.ts). */
type StickyWorker = Worker & { clientsCount?: number };

/** Beyond REDIS_TIMEOUT, how long a fresh worker may take to load the code and say it serves. */
const START_MARGIN_MS = 30_000;

export interface Reloads {
  /** Whether this worker's exit is the reload's business (a replaced one, or a fresh one that failed). */
  owns(worker: Worker): boolean;
}

/**
 * `fork(replacement)` forks as the cluster does: a replacement waits for Redis, a fresh reload
 * worker gives up after REDIS_TIMEOUT like a first one (a Redis out of reach stops the reload).
 */
export function reloadOnHangup(fork: (replacement: boolean) => Worker, stopping: () => boolean, config: Pick<ServerConfig, "reloadSpread" | "redisTimeout">): Reloads {
  const owned = new WeakSet<Worker>();
  // Only workers that serve are replaced: one still starting (a replacement waiting for Redis)
  // loads the code on disk already, and would not hear the drain before it serves.
  const serving = new WeakSet<Worker>();
  cluster.on("message", (worker: Worker, message: unknown) => {
    if (isWorkerReport(message) && message.type === "kit:ready") serving.add(worker);
  });
  let running = false;

  async function reload() {
    if (stopping()) return console.log("SIGHUP ignored: the cluster is starting or stopping");
    if (running) return console.log("a reload is under way: SIGHUP ignored");
    running = true;
    const started = performance.now();
    const previous = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && serving.has(w));
    console.log(`reload: replacing ${previous.length} workers one at a time, each letting its clients go over ${config.reloadSpread} ms`);
    let replaced = 0;
    for (const old of previous) {
      if (stopping()) break;
      if (old.isDead()) continue;
      // From here the old worker's exit is the reload's: the fresh one takes its place.
      owned.add(old);
      const fresh = fork(false);
      owned.add(fresh);
      const outcome = await readyOrExit(fresh, config.redisTimeout + START_MARGIN_MS);
      if (stopping()) break;
      if (outcome !== "ready") {
        if (!fresh.isDead()) fresh.process.kill("SIGKILL");
        console.error(`reload stopped: the new worker ${fresh.id} ${outcome} before it served; the workers not yet replaced keep serving`);
        owned.delete(old);
        if (old.isDead()) fork(true); // it died meanwhile, and no one took its place
        break;
      }
      owned.delete(fresh); // from now on it is a worker like the others: replaced if it dies
      replaced++;
      if (old.isDead()) {
        console.log(`reload: worker ${old.id} died during the reload; worker ${fresh.id} (pid ${fresh.process.pid}) took its place`);
        continue;
      }
      (old as StickyWorker).clientsCount = Infinity; // no new sessions for it
      old.send({ type: RELOAD_DRAIN }, (err: Error | null) => err && old.process.kill("SIGTERM"));
      // A worker frozen in its drain (SIGSTOP, a Redis that does not answer its last commands) must
      // not hold the reload: it gets its spread and the stop limit, then SIGKILL.
      if (!(await exited(old, config.reloadSpread + WORKER_STOP_LIMIT_MS))) {
        console.error(`reload: worker ${old.id} (pid ${old.process.pid}) did not stop within ${(config.reloadSpread + WORKER_STOP_LIMIT_MS) / 1000} s: killed`);
        old.process.kill("SIGKILL");
        await exited(old, WORKER_STOP_LIMIT_MS);
      }
      console.log(`reload: worker ${old.id} (pid ${old.process.pid}) replaced by worker ${fresh.id} (pid ${fresh.process.pid})`);
    }
    if (!stopping()) console.log(`reload done: ${replaced} of ${previous.length} workers replaced in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    running = false;
  }

  process.on("SIGHUP", () => void reload());
  return { owns: (worker) => owned.has(worker) };
}

/** "ready" once the worker says it serves, else why not: it exited, or said nothing within `limitMs`. */
function readyOrExit(worker: Worker, limitMs: number): Promise<string> {
  return new Promise((resolve) => {
    const done = (outcome: string) => {
      clearTimeout(timer);
      worker.off("message", onMessage);
      worker.off("exit", onExit);
      resolve(outcome);
    };
    const onMessage = (message: unknown) => {
      if (isWorkerReport(message) && message.type === "kit:ready") done("ready");
    };
    const onExit = (code: number, signal: string | null) => done(`exited (${signal ?? `exit code ${code}`})`);
    const timer = setTimeout(() => done(`did not say it serves within ${limitMs / 1000} s`), limitMs);
    worker.on("message", onMessage);
    worker.once("exit", onExit);
  });
}

/** Whether the worker exits within `limitMs`. */
function exited(worker: Worker, limitMs: number): Promise<boolean> {
  if (worker.isDead()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      worker.off("exit", onExit);
      resolve(false);
    }, limitMs);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    worker.once("exit", onExit);
  });
}
