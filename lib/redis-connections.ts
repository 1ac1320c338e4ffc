/**
 * lib/redis-connections.ts: the Redis connections of a worker and of the emitter, on one node, a
 * Redis Cluster or a Sentinel group (lib/config.ts), and what they say when Redis is away.
 * node-redis retries a lost connection forever and reports every retry of every client (and, on a
 * cluster, of every node) as an error; a reader of the log wants one line per outage, and a command
 * that cannot reach Redis at all wants one line and an exit, not a retry loop.
 */
import { createClient, createCluster, createSentinel, type RedisClientType } from "redis";
import { EXIT_FAILURE, type RedisConfig, type RedisTopology } from "./config.ts";
import { connectWithin, exitIfRedisHangs } from "./redis-deadline.ts";
import { withHandledPublish, withPlainSendCommand } from "./redis-shims.ts";
import { type RedisIdentity, redisIdentity, whyCut } from "./subscriber-cuts.ts";

/**
 * What createClient() returns without modules or scripts, speaking RESP3. The cluster and
 * Sentinel clients have the same commands the adapters and emitters use (publish, sPublish, xAdd,
 * subscriptions, duplicate, connect, close), but node-redis declares no common type for the three.
 */
export type RedisClient = RedisClientType<{}, {}, {}, 3, {}>;

export interface WorkerRedis {
  pubClient: RedisClient;
  subClient: RedisClient;
  /** The connections this worker really opens: the streams adapter reads with duplicates of its own. */
  clients: RedisClient[];
}

interface ConnectionOptions {
  connectTimeout: number;
  /** node-redis's: a delay before the next attempt, an Error to give up with, or false for none. */
  reconnectStrategy: false | ((retries: number, cause: Error) => number | Error);
  /** Told about a PUBLISH that Redis or node-redis refused, which its caller did not wait for. */
  publishRefused: (err: unknown) => void;
}

/**
 * The one place that builds a client, for index.ts and emitter.ts: createClient, createCluster or
 * createSentinel, with the shims of lib/redis-shims.ts. The nodes a cluster or the sentinels name
 * are reached with the credentials and the TLS (rediss://) of the first URL given.
 */
export function createRedisClient(topology: RedisTopology, options: ConnectionOptions): RedisClient {
  const socket = { connectTimeout: options.connectTimeout, reconnectStrategy: options.reconnectStrategy };
  if (topology.kind === "single") return withHandledPublish(createClient({ url: topology.url, socket }), options.publishRefused);
  const first = new URL(topology.urls[0]!);
  const nodeOptions = {
    username: first.username ? decodeURIComponent(first.username) : undefined,
    password: first.password ? decodeURIComponent(first.password) : undefined,
    socket: { ...socket, ...(first.protocol === "rediss:" ? { tls: true as const } : {}) },
  };
  if (topology.kind === "cluster") {
    const cluster = createCluster({ rootNodes: topology.urls.map((url) => ({ url })), defaults: nodeOptions });
    return withHandledPublish(cluster, options.publishRefused) as unknown as RedisClient;
  }
  const sentinel = createSentinel({
    name: topology.master,
    sentinelRootNodes: topology.urls.map((url) => ({ host: new URL(url).hostname, port: Number(new URL(url).port || 26379) })),
    nodeClientOptions: nodeOptions,
    sentinelClientOptions: nodeOptions,
  });
  return withHandledPublish(withPlainSendCommand(sentinel), options.publishRefused) as unknown as RedisClient;
}

/**
 * Connects a worker's publisher and subscriber. A first worker gives up at once (rejecting with
 * the reason), so that a wrong Redis address stops the cluster with one line; a replacement for a
 * worker that died (`waitForRedis`) waits for Redis instead, as the running workers do.
 */
export async function connectWorkerRedis(config: RedisConfig, workerId: number, { waitForRedis }: { waitForRedis: boolean }): Promise<WorkerRedis> {
  let connectedOnce = false;
  let redisDown = false;
  let lastRefusal = -Infinity;
  const pubClient = createRedisClient(config.redis, {
    connectTimeout: 5000,
    reconnectStrategy: (retries, cause) => (connectedOnce || waitForRedis ? Math.min(retries * 200, 2000) : cause),
    // While a master is away, the classic adapter's broadcasts are refused: they are lost, the
    // worker goes on. Said once per outage (and at most every 10 s), not once per message.
    publishRefused: (err) => {
      if (redisDown || performance.now() - lastRefusal < 10_000) return;
      lastRefusal = performance.now();
      console.error(`worker: ${workerId}, Redis refused a message (${redisFailure(err)}): it is lost`);
    },
  });
  const subClient = pubClient.duplicate();
  const clients = config.adapter === "streams" ? [pubClient] : [pubClient, subClient];
  // Which Redis this is, to tell a subscriber that Redis cut (lib/subscriber-cuts.ts) from a
  // restart: asked on one node only, where publisher and subscriber share the server.
  let identity: RedisIdentity | undefined;
  let cutAt: number | undefined;
  const lost = (reason: string) => {
    redisDown = true;
    console.error(`worker: ${workerId}, lost Redis (${reason}), reconnecting`);
  };
  watchOutages(clients, config.redis.kind, {
    down: (reason, client) => {
      if (!(connectedOnce || waitForRedis) || redisDown || cutAt !== undefined) return;
      // The subscriber alone, the publisher still connected: Redis may have cut it.
      if (client !== subClient || !pubClient.isReady || !identity) return lost(reason);
      cutAt = performance.now();
      void whyCut(pubClient, identity, config.redisTimeout).then((cut) => {
        if (cut) return console.error(`worker: ${workerId}, ${cut}`);
        cutAt = undefined;
        if (!subClient.isReady && !redisDown) lost(reason);
      });
    },
    back: (client) => {
      if (client === subClient && cutAt !== undefined) {
        console.log(`worker: ${workerId}, subscribed again, ${((performance.now() - cutAt) / 1000).toFixed(1)} s after the cut`);
        cutAt = undefined;
      }
      if (!redisDown) return;
      redisDown = false;
      console.log(`worker: ${workerId}, Redis is back`);
    },
    // Still connected: the adapter failed on a message someone published (a malformed payload).
    badMessage: (err) => console.error(`worker: ${workerId}, ignored a message from Redis that the adapter could not handle (${err.message})`),
  });
  try {
    // A replacement waits for Redis as long as it takes; a first worker gives up after REDIS_TIMEOUT,
    // also when Redis accepts the connection but never answers (lib/redis-deadline.ts).
    await (waitForRedis ? Promise.all(clients.map((client) => client.connect())) : connectWithin(clients, config.redisTimeout));
  } catch (err) {
    throw new Error(redisFailure(err));
  }
  connectedOnce = true;
  if (config.redis.kind === "single") identity = await redisIdentity(pubClient, config.redisTimeout);
  return { pubClient, subClient, clients };
}

interface OutageReport {
  down(reason: string, client: RedisClient): void;
  back(client: RedisClient): void;
  badMessage(err: Error): void;
}

/**
 * Turns the clients' events into `down` once when any of them (any node) loses Redis and `back`
 * once all serve again. A plain client emits error and ready. A Sentinel client emits the same,
 * but stays "ready" while it looks for the new master. The cluster client emits only node-error
 * and node-ready per node, never error, and node-disconnect for a node it let go of (a dead master
 * whose replica took over): that node no longer counts.
 */
function watchOutages(clients: RedisClient[], kind: RedisTopology["kind"], report: OutageReport) {
  const troubled = new Set<string>();
  clients.forEach((client, index) => {
    const update = (reason = "") => (troubled.size > 0 ? report.down(reason, client) : report.back(client));
    if (kind !== "cluster") {
      client.on("error", (err: Error) => {
        if (kind === "single" ? client.isReady : !isConnectionError(err)) return report.badMessage(err);
        troubled.add(String(index));
        update(err.message || err.name);
      });
      client.on("ready", () => troubled.delete(String(index)) && update());
      return;
    }
    type Node = { host: string; port: number };
    const key = (node: Node) => `${index} ${node.host}:${node.port}`;
    client.on("node-error", (err: Error, node: Node) => {
      if (!isConnectionError(err)) return report.badMessage(err);
      troubled.add(key(node));
      update(`${node.host}:${node.port} ${err.message || err.name}`);
    });
    for (const event of ["node-ready", "node-disconnect"]) client.on(event, (node: Node) => troubled.delete(key(node)) && update());
  });
}

/**
 * Connection trouble has a system error code (ECONNREFUSED...) or is one of node-redis's socket
 * errors (SocketClosedUnexpectedlyError, ConnectionTimeoutError...), which set no name of their own.
 */
function isConnectionError(err: Error & { code?: unknown }): boolean {
  return typeof err.code === "string" || /Socket|Connection|Timeout|Reconnect|Closed/.test(err.constructor.name);
}

/**
 * The emitter's one connection, without retries: one line and exit code 1 when Redis cannot be
 * reached, or has not answered everything within REDIS_TIMEOUT.
 */
export async function connectWithoutRetries(config: RedisConfig, publishRefused: (err: unknown) => void): Promise<RedisClient> {
  const client = createRedisClient(config.redis, { connectTimeout: 5000, reconnectStrategy: false, publishRefused });
  client.on("error", () => {}); // connect() below reports the failure
  if (config.redis.kind === "cluster") client.on("node-error", () => {});
  // Bounds the whole run, not only the connection: a Redis may freeze after it has answered once,
  // and while no master answers, a cluster or Sentinel client waits for one.
  exitIfRedisHangs(client, config.redisTimeout, (reason) => `Redis at ${config.redisName} does not answer: ${reason}`);
  try {
    await client.connect();
    return client;
  } catch (err) {
    console.error(`cannot connect to Redis at ${config.redisName}: ${redisFailure(err)}`);
    process.exit(EXIT_FAILURE);
  }
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
