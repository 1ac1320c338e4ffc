/**
 * lib/primary/workers.ts: the primary's side of the cluster, between fork and exit. The post's
 * sticky-session did this out of sight; with @socket.io/sticky it is ours to write, and each rule
 * here answers a way the cluster once failed:
 * - the port opens once every worker is ready, so that no connection reaches a worker without Redis;
 * - a worker that fails at start-up (Redis out of reach) stops the cluster with its one line,
 *   printed once, instead of being replaced by another that fails too, forever;
 * - a worker that dies later is replaced, and the replacement is told so at fork: it waits for
 *   Redis rather than giving up;
 * - SIGTERM or Ctrl-C stops every worker, with the port kept open until they are gone (a
 *   long-polling client needs one more request to fetch what its worker still holds for it);
 * - SIGHUP replaces the workers one at a time (lib/primary/reload.ts), and the metrics of every
 *   worker are served on METRICS_PORT once the cluster listens (lib/primary/metrics.ts).
 */
import cluster, { type Worker } from "node:cluster";
import type { AddressInfo, Server } from "node:net";
import type { ServerConfig } from "../config.ts";
import { EXIT_USAGE, Failure, UsageError } from "../failures.ts";
import { forkEnvironment, isWorkerReport, WORKER_STOP_LIMIT_MS } from "../ipc.ts";
import { serveMetrics } from "./metrics.ts";
import { reloadOnHangup } from "./reload.ts";

/**
 * The accept queue asked of the kernel, which caps it at net.core.somaxconn (4096 here: that
 * sysctl is the knob). Node asks for 511. In a connect storm the one primary, which reads each
 * connection's first bytes before handing it over, falls behind and a 511-entry queue overflows
 * (TcpExtListenOverflows): the kernel drops SYNs and handshakes' last ACKs, clients wait for
 * retransmissions, and one whose half-open entry expires while it believes it is connected gets
 * a reset (ECONNRESET) for its request. bench/scale.ts storms it
 * (docs/reference/performance.md#connections-on-one-machine).
 */
const LISTEN_BACKLOG = 65_535;

/**
 * Forks the workers, listens once all are ready and replaces those that die. Resolves once a
 * signal has stopped every worker; rejects (after stopping them) when the cluster cannot start:
 * a port it cannot listen on, a worker that failed or exited during start-up.
 */
export function runWorkers(server: Server, config: Pick<ServerConfig, "port" | "workers" | "redisName" | "redisTimeout" | "metrics" | "reloadSpread">): Promise<void> {
  return new Promise((resolve, reject) => {
    let listening = false;
    let stopping = false;
    let readyWorkers = 0; // until the cluster listens: a worker that exits before then stops it
    const fork = (replacement: boolean) => {
      const worker = cluster.fork(forkEnvironment(replacement));
      // A message sent to a worker that has just died (a reload's drain, a metrics question) is
      // an 'error' on its Worker object: unheard, it would end the primary and every worker.
      worker.on("error", (err) => console.error(`worker: ${worker.id}, cannot be told: ${err.message}`));
      return worker;
    };
    const reloads = reloadOnHangup(fork, () => stopping || !listening, config);

    server.on("error", (err) => stop(new Failure(`cannot listen on port ${config.port}: ${err.message}`)));

    cluster.on("message", (worker: Worker, report: unknown) => {
      if (!isWorkerReport(report)) return;
      if (report.type === "kit:failed") {
        // During start-up the first failure's line is the cluster's: the other workers would only
        // repeat it. Later, each is told, also while the cluster stops (a worker that fails as it drains).
        if (!listening) return stopping ? undefined : stop(report.code === EXIT_USAGE ? new UsageError(report.line) : new Failure(report.line));
        return console.error(`worker: ${worker.id}, ${report.line}`);
      }
      if (stopping) return;
      if (!listening && ++readyWorkers === config.workers) {
        listening = true;
        server.listen({ port: config.port, backlog: LISTEN_BACKLOG }, () => {
          const { port } = server.address() as AddressInfo; // PORT=0 picks a free one
          console.log(`listening on port ${port} with ${config.workers} workers, Redis at ${config.redisName}`);
        });
        if (config.metrics) serveMetrics(config.metrics).catch(stop);
      }
    });

    cluster.on("exit", (worker, code, signal) => {
      if (stopping || reloads.owns(worker)) return;
      const how = signal ?? `exit code ${code}`;
      if (!listening) {
        // Its last words, if it had any, may still be on their way: they say more than this line.
        setTimeout(() => stop(new Failure(`worker: ${worker.id} exited during start-up (${how})`)), 200);
        return;
      }
      console.log(`worker: ${worker.id} died (${how}), starting a new one`);
      fork(true);
    });

    function stop(failure?: Error) {
      if (stopping) return;
      stopping = true;
      const done = () => (failure ? reject(failure) : resolve());
      const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
      let running = workers.length;
      if (running === 0) return done();
      for (const worker of workers) {
        worker.once("exit", () => --running === 0 && done());
        worker.process.kill("SIGTERM");
      }
      setTimeout(() => {
        reject(failure ?? new Failure(`${running} of ${workers.length} workers did not stop within ${WORKER_STOP_LIMIT_MS / 1000} s`));
      }, WORKER_STOP_LIMIT_MS).unref();
    }

    process.on("SIGINT", () => stop());
    process.on("SIGTERM", () => stop());
    for (let i = 0; i < config.workers; i++) fork(false);
  });
}
