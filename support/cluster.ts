/**
 * support/cluster.ts: the kit's clustered server as the tests and benchmarks start it: index.ts
 * (or another server script) with its workers on a free port, on a private Redis unless one is
 * given, run as a user runs it, and what a client.ts or emitter.ts beside it needs to reach it.
 * Hosts in network namespaces start theirs in support/topology/hosts.ts.
 */
import type { AdapterName } from "../lib/config.ts";
import { workerPids } from "./processes.ts";
import { freePort, startPrivateRedis } from "./redis.ts";
import { escape, run, type Runtime, type Script } from "./scripts.ts";

export interface ClusterOptions {
  /** WORKERS (2). */
  workers?: number;
  /** ADAPTER; unset leaves the server its default. */
  adapter?: AdapterName;
  /** More variables for the server alone (REDIS_TIMEOUT, MAX_CLIENT_BACKLOG, ALLOWED_ORIGINS...). */
  env?: Record<string, string>;
  runtime?: Runtime;
  /** A Redis that the caller owns (a fixed port, a proxy in front, TLS): used and left running. */
  redis?: { url: string };
  /** PORT: a free one unless given (a server started again on the same address). */
  port?: number;
  /** The server script: index.ts, or for the benchmark a variant of it or bench/baseline.ts. */
  script?: string;
  /** Node's own flags for the server (--trace-gc), which NODE_OPTIONS refuses. */
  flags?: string[];
  /** How long the server may take to say it listens. */
  timeoutMs?: number;
}

export interface Cluster {
  server: Script;
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  redis: { url: string };
  /** What client.ts and emitter.ts need for this cluster: REDIS_URL, SERVER_URL, and ADAPTER when chosen. */
  env: Record<string, string>;
  /** The worker processes right now (a killed one's replacement included). */
  workerPids(): number[];
  /** Stops the server, then the Redis it started (not one it was given). */
  stop(): Promise<void>;
}

/** Starts the server and resolves once it listens with all its workers. */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const { workers = 2, adapter, runtime = "node", script = "index.ts", timeoutMs = 60_000 } = options;
  const owned = options.redis ? undefined : await startPrivateRedis();
  const redis = options.redis ?? owned!;
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const chosen: Record<string, string> = adapter ? { ADAPTER: adapter } : {};
  const server = run(script, [], { REDIS_URL: redis.url, PORT: String(port), WORKERS: String(workers), ...chosen, ...options.env }, runtime, { flags: options.flags });
  const stop = async () => {
    await server.stop();
    await owned?.stop();
  };
  try {
    await server.waitFor("listening on port", timeoutMs);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    server,
    port,
    url,
    redis,
    env: { REDIS_URL: redis.url, SERVER_URL: url, ...chosen },
    workerPids: () => workerPids(server.child.pid!, script),
    stop,
  };
}

/** The worker that logged the connection of this socket id ("worker: N, connected, id: ..."): N. */
export async function workerOf(server: Script, socketId: string, ms = 20_000): Promise<string> {
  return (await server.waitFor(new RegExp(`^worker: (\\d+), connected, id: ${escape(socketId)}$`), ms))[1]!;
}
