/**
 * lib/redis/client.ts: the one place that builds a Redis client, for the workers and the emitter,
 * on one node, a Redis Cluster or a Sentinel group (lib/config.ts), with the shims of
 * lib/redis/shims.ts; and the words for a failed connection.
 */
import { createClient, createCluster, createSentinel, type RedisClientType } from "redis";
import type { RedisTopology } from "../config.ts";
import { withHandledCommands, withPlainSendCommand } from "./shims.ts";

/**
 * What createClient() returns without modules or scripts, speaking RESP3. The Redis Cluster and
 * Sentinel clients have the same commands the adapters and emitters use (publish, sPublish, xAdd,
 * subscriptions, duplicate, connect, close), but node-redis declares no common type for the three.
 */
export type RedisClient = RedisClientType<{}, {}, {}, 3, {}>;

export interface ConnectionOptions {
  connectTimeout: number;
  /** node-redis's: a delay before the next attempt, an Error to give up with, or false for none. */
  reconnectStrategy: false | ((retries: number, cause: Error) => number | Error);
  /** Told about a command that failed and that its caller may not wait for (lib/redis/shims.ts). */
  commandFailed: (command: string, err: unknown) => void;
}

/** How often a Sentinel client asks the sentinels which node is the master, events or not. */
const SENTINEL_SCAN_MS = 5000;

/**
 * createClient, createCluster or createSentinel. The nodes a Redis Cluster or the sentinels name
 * are reached with the credentials and the TLS (rediss://) of the first URL given.
 */
export function createRedisClient(topology: RedisTopology, options: ConnectionOptions): RedisClient {
  const socket = { connectTimeout: options.connectTimeout, reconnectStrategy: options.reconnectStrategy };
  if (topology.kind === "single") return withHandledCommands(createClient({ url: topology.url, socket }), options.commandFailed);
  const first = new URL(topology.urls[0]!);
  const nodeOptions = {
    username: first.username ? decodeURIComponent(first.username) : undefined,
    password: first.password ? decodeURIComponent(first.password) : undefined,
    socket: { ...socket, ...(first.protocol === "rediss:" ? { tls: true as const } : {}) },
  };
  if (topology.kind === "redis-cluster") {
    const redisCluster = createCluster({ rootNodes: topology.urls.map((url) => ({ url })), defaults: nodeOptions });
    return withHandledCommands(redisCluster, options.commandFailed) as unknown as RedisClient;
  }
  const sentinel = createSentinel({
    name: topology.master,
    sentinelRootNodes: topology.urls.map((url) => ({ host: new URL(url).hostname, port: Number(new URL(url).port || 26379) })),
    nodeClientOptions: nodeOptions,
    sentinelClientOptions: nodeOptions,
    // node-redis follows a failover on the sentinels' events, or when a command to the master
    // fails; a client that only subscribes (a worker's subscriber) sends no such command, so one
    // that misses or outruns the +switch-master event can stay on the dead master, deaf. That is
    // our reading of a host that stopped hearing the other after a failover in
    // test/redis-topologies.test.ts (twice in about six runs). Asking the sentinels every few
    // seconds bounds it (scanInterval is off by default).
    scanInterval: SENTINEL_SCAN_MS,
  });
  return withHandledCommands(withPlainSendCommand(sentinel), options.commandFailed) as unknown as RedisClient;
}

/** Why a Redis connection failed, in words that say what to change where Redis's own are cryptic. */
export function redisFailure(err: unknown): string {
  const message = err instanceof Error ? err.message || err.name : String(err);
  const code = (err as { code?: unknown }).code;
  if (message.startsWith("NOAUTH")) return "Redis requires a password: put it in REDIS_URL (redis://:password@host:port)";
  if (message.startsWith("WRONGPASS")) return "wrong user name or password in REDIS_URL";
  if (typeof code === "string" && /CERT|UNABLE_TO_VERIFY/.test(code)) {
    return `${message.split(";")[0]} (a private CA: point NODE_EXTRA_CA_CERTS at its certificate)`;
  }
  return message;
}
