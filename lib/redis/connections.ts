/**
 * lib/redis/connections.ts: the Redis connections of a worker and of the emitter, on one node, a
 * Redis Cluster or a Sentinel group (lib/config.ts). A worker's connections retry forever and
 * their outages are told by lib/redis/health.ts; the emitter's one connection gives up at once
 * with one line, never a retry loop.
 */
import type { RedisConfig } from "../config.ts";
import { Failure } from "../failures.ts";
import { isReplacement } from "../ipc.ts";
import { countedLog } from "../log.ts";
import { type ConnectionOptions, createRedisClient, type RedisClient, redisFailure } from "./client.ts";
import { connectWithin, failIfRedisHangs } from "./deadline.ts";
import { type RedisHealth, watchRedisHealth } from "./health.ts";

export interface WorkerRedis {
  pubClient: RedisClient;
  subClient: RedisClient;
  /** The connections this worker really opens: the streams adapter reads with duplicates of its own. */
  clients: RedisClient[];
  health: RedisHealth;
}

/**
 * Connects a worker's publisher and subscriber. A first worker gives up after REDIS_TIMEOUT (a
 * Failure with the reason), so that a wrong Redis address stops the cluster with one line; a
 * replacement for a worker that died waits for Redis instead, as the running workers do.
 */
export async function connectWorkerRedis(config: RedisConfig): Promise<WorkerRedis> {
  const waitForRedis = isReplacement();
  let connectedOnce = false;
  // While a master is away the adapters' broadcasts are refused or lost with their connection:
  // the worker goes on without them, and says so in one line, not one per message.
  const failedCommands = countedLog("Redis refused a command or lost it with its connection, what it carried is lost", 10_000);
  const pubClient = createRedisClient(config.redis, {
    connectTimeout: 5000,
    reconnectStrategy: (retries, cause) => (connectedOnce || waitForRedis ? Math.min(retries * 200, 2000) : cause),
    commandFailed: (command, err) => failedCommands(`${command}: ${redisFailure(err)}`),
  });
  const subClient = pubClient.duplicate();
  const clients = config.adapter === "streams" ? [pubClient] : [pubClient, subClient];
  const health = watchRedisHealth({ pubClient, subClient, clients }, config, () => connectedOnce || waitForRedis);
  try {
    // A replacement waits for Redis as long as it takes; a first worker gives up after REDIS_TIMEOUT,
    // also when Redis accepts the connection but never answers (lib/redis/deadline.ts).
    await (waitForRedis ? Promise.all(clients.map((client) => client.connect())) : connectWithin(clients, config.redisTimeout));
  } catch (err) {
    throw new Failure(`cannot connect to Redis at ${config.redisName}: ${redisFailure(err)}`);
  }
  connectedOnce = true;
  await health.connected();
  return { pubClient, subClient, clients, health };
}

/**
 * The emitter's one connection, without retries: a Failure (one line, exit code 1) when Redis
 * cannot be reached, or has not answered everything within REDIS_TIMEOUT (plus `waitMs`, the time
 * a question to the servers may wait for their answers). `commandFailed` is told of a PUBLISH
 * Redis refused.
 */
export async function connectEmitterRedis(config: RedisConfig, commandFailed: ConnectionOptions["commandFailed"] = () => {}, waitMs = 0): Promise<RedisClient> {
  const client = createRedisClient(config.redis, { connectTimeout: 5000, reconnectStrategy: false, commandFailed });
  client.on("error", () => {}); // connect() below reports the failure
  if (config.redis.kind === "redis-cluster") client.on("node-error", () => {});
  // Bounds the whole run, not only the connection: a Redis may freeze after it has answered once,
  // and while no master answers, a Redis Cluster or Sentinel client waits for one.
  failIfRedisHangs(client, config.redisTimeout + waitMs, (reason) => `Redis at ${config.redisName} does not answer: ${reason}`);
  try {
    await client.connect();
    return client;
  } catch (err) {
    throw new Failure(`cannot connect to Redis at ${config.redisName}: ${redisFailure(err)}`);
  }
}
