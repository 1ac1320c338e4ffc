/**
 * lib/primary/metrics.ts: the primary serves Prometheus text at /metrics on METRICS_PORT, the sum
 * of what each worker counts (lib/worker/metrics.ts), added up family by family by prom-client's
 * AggregatorRegistry.aggregate(), the library's answer for node:cluster. Bound to METRICS_HOST,
 * loopback unless told: the numbers say how many are connected and how Redis is doing, nothing a
 * stranger needs. Off unless METRICS_PORT is set.
 *
 * The asking is ours, not prom-client's clusterMetrics(): that one asks every forked worker, and a
 * worker still starting (every reload forks one, lib/primary/reload.ts) has nobody listening yet,
 * so each scrape failed after prom-client's fixed 5 s. Here only the workers that said they serve
 * are asked; one that does not answer within ANSWER_MS (frozen, busy) is left out of that scrape
 * and counted in kit_scrape_workers_missing, so that a sum is never silently short.
 */
import cluster, { type Worker } from "node:cluster";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { AggregatorRegistry } from "prom-client";
import type { ServerConfig } from "../config.ts";
import { Failure } from "../failures.ts";
import { isMetricsAnswer, isWorkerReport, METRICS_REQUEST } from "../ipc.ts";

const ANSWER_MS = 3000;

export async function serveMetrics({ port, host }: NonNullable<ServerConfig["metrics"]>): Promise<void> {
  const serving = new Set<Worker>();
  const pending = new Map<number, (worker: Worker, metrics: object[]) => void>();
  let nextId = 0;
  cluster.on("message", (worker: Worker, message: unknown) => {
    if (isWorkerReport(message) && message.type === "kit:ready") serving.add(worker);
    else if (isMetricsAnswer(message)) pending.get(message.id)?.(worker, message.metrics as object[]);
  });
  cluster.on("exit", (worker) => serving.delete(worker));
  // A worker that drains for a reload still counts: its clients are still connected.
  for (const worker of Object.values(cluster.workers ?? {})) if (worker) serving.add(worker);

  async function gather(): Promise<string> {
    const id = nextId++;
    const asked = [...serving].filter((worker) => worker.isConnected());
    const answers = new Map<Worker, object[]>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ANSWER_MS);
      pending.set(id, (worker, metrics) => {
        answers.set(worker, metrics);
        if (answers.size === asked.length) (clearTimeout(timer), resolve());
      });
      if (asked.length === 0) (clearTimeout(timer), resolve());
      for (const worker of asked) worker.send({ type: METRICS_REQUEST, id });
    });
    pending.delete(id);
    const missing = { name: "kit_scrape_workers_missing", help: "Serving workers that did not answer this scrape in time", type: "gauge", aggregator: "sum", values: [{ value: asked.length - answers.size, labels: {} }] };
    return AggregatorRegistry.aggregate([...answers.values(), [missing]]).metrics();
  }

  const server = createServer((req, res) => {
    if (req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("metrics are at /metrics\n");
      return;
    }
    gather().then(
      (text) => res.writeHead(200, { "content-type": AggregatorRegistry.PROMETHEUS_CONTENT_TYPE }).end(text),
      (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`cannot gather the metrics: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new Failure(`cannot serve metrics on ${host}:${port}: ${err.message}`)));
    server.listen(port, host, resolve);
  });
  // Once it listens, an error (an accept that fails for want of file descriptors) is a line, not the primary's end.
  server.removeAllListeners("error");
  server.on("error", (err) => console.error(`metrics: ${err.message}`));
  const address = server.address() as AddressInfo;
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
  console.log(`metrics on http://${shown}:${address.port}/metrics`);
  server.unref(); // the cluster's stop decides when the primary exits
}
