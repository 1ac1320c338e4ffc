/**
 * lib/primary/metrics.ts: the primary serves Prometheus text at /metrics on METRICS_PORT, the sum
 * of what each worker counts (lib/worker/metrics.ts), gathered over IPC by prom-client's
 * AggregatorRegistry, the library's answer for node:cluster. Bound to METRICS_HOST, loopback
 * unless told: the numbers say how many are connected and how Redis is doing, nothing a stranger
 * needs. Off unless METRICS_PORT is set. A worker that does not answer within 5 s (frozen, busy)
 * makes that scrape a 503 with the reason, and Prometheus marks the target down for it.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { AggregatorRegistry } from "prom-client";
import type { ServerConfig } from "../config.ts";
import { Failure } from "../failures.ts";

export async function serveMetrics({ port, host }: NonNullable<ServerConfig["metrics"]>): Promise<void> {
  const registry = new AggregatorRegistry();
  const server = createServer((req, res) => {
    if (req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("metrics are at /metrics\n");
      return;
    }
    registry.clusterMetrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: Error) => res.writeHead(503, { "content-type": "text/plain" }).end(`the workers did not all answer: ${err.message}\n`),
    );
  });
  server.listen(port, host);
  const failed = once(server, "error").then(([err]) => {
    throw new Failure(`cannot serve metrics on ${host}:${port}: ${(err as Error).message}`);
  });
  await Promise.race([once(server, "listening"), failed]);
  const address = server.address() as AddressInfo;
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
  console.log(`metrics on http://${shown}:${address.port}/metrics`);
  server.unref(); // the cluster's stop decides when the primary exits
}
