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
import { isWorkerReport, RELOAD_DRAIN } from "../ipc.ts";

/** @socket.io/sticky's least-connection count on the Worker object (lib/primary/sticky.ts). */
type StickyWorker = Worker & { clientsCount?: number };

export interface Reloads {
  /** Whether this worker's exit is the reload's business (a replaced one, or a fresh one that failed). */
  owns(worker: Worker): boolean;
}

export function reloadOnHangup(fork: () => Worker, stopping: () => boolean, config: Pick<ServerConfig, "reloadSpread">): Reloads {
  const owned = new WeakSet<Worker>();
  let running = false;

  async function reload() {
    if (stopping()) return;
    if (running) return console.log("a reload is under way: SIGHUP ignored");
    running = true;
    const started = performance.now();
    const previous = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    console.log(`reload: replacing ${previous.length} workers one at a time, each letting its clients go over ${config.reloadSpread} ms`);
    let replaced = 0;
    for (const old of previous) {
      if (stopping()) break;
      if (old.isDead()) continue;
      const fresh = fork();
      owned.add(fresh);
      const outcome = await readyOrExit(fresh);
      if (outcome !== "ready") {
        console.error(`reload stopped: the new worker ${fresh.id} ${outcome} before it served; the workers not yet replaced keep serving`);
        break;
      }
      owned.delete(fresh); // from now on it is a worker like the others: replaced if it dies
      owned.add(old);
      (old as StickyWorker).clientsCount = Infinity; // no new sessions for it
      old.send({ type: RELOAD_DRAIN });
      await new Promise((resolve) => (old.isDead() ? resolve(undefined) : old.once("exit", resolve)));
      replaced++;
      console.log(`reload: worker ${old.id} (pid ${old.process.pid}) replaced by worker ${fresh.id} (pid ${fresh.process.pid})`);
    }
    console.log(`reload done: ${replaced} of ${previous.length} workers replaced in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    running = false;
  }

  process.on("SIGHUP", () => void reload());
  return { owns: (worker) => owned.has(worker) };
}

function readyOrExit(worker: Worker): Promise<string> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      if (!isWorkerReport(message) || message.type !== "kit:ready") return;
      worker.off("exit", onExit);
      resolve("ready");
    };
    const onExit = (code: number, signal: string | null) => {
      worker.off("message", onMessage);
      resolve(`exited (${signal ?? `exit code ${code}`})`);
    };
    worker.on("message", onMessage);
    worker.once("exit", onExit);
  });
}
