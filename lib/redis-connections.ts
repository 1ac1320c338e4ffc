/**
 * lib/redis-connections.ts: the Redis connections of a worker and of the emitter, and what they
 * say when Redis is away. node-redis retries a lost connection forever and reports every retry
 * of every client as an error; a reader of the log wants one line per outage, and a command
 * that cannot reach Redis at all wants one line and an exit, not a retry loop.
 */
import { createClient, type RedisClientType } from "redis";
import { EXIT_FAILURE, type RedisConfig, redactUrl } from "./config.ts";
import { connectWithin, exitIfRedisHangs } from "./redis-deadline.ts";
import { type RedisIdentity, redisIdentity, whyCut } from "./subscriber-cuts.ts";

/** What createClient() returns without modules or scripts, speaking RESP3. */
export type RedisClient = RedisClientType<{}, {}, {}, 3, {}>;

export interface WorkerRedis {
  pubClient: RedisClient;
  subClient: RedisClient;
  /** The connections this worker really opens: the streams adapter reads with duplicates of its own. */
  clients: RedisClient[];
}

/**
 * Connects a worker's publisher and subscriber. A first worker gives up at once (rejecting with
 * the reason), so that a wrong REDIS_URL stops the cluster with one line; a replacement for a
 * worker that died (`waitForRedis`) waits for Redis instead, as the running workers do.
 */
export async function connectWorkerRedis(config: RedisConfig, workerId: number, waitForRedis: boolean): Promise<WorkerRedis> {
  let connectedOnce = false;
  let redisDown = false;
  const pubClient = createClient({
    url: config.redisUrl,
    socket: {
      connectTimeout: 5000,
      reconnectStrategy: (retries, cause) => (connectedOnce || waitForRedis ? Math.min(retries * 200, 2000) : cause),
    },
  });
  const subClient = pubClient.duplicate();
  const clients = config.adapter === "streams" ? [pubClient] : [pubClient, subClient];
  let identity: RedisIdentity | undefined; // which Redis, to tell a cut subscriber from a restart
  let cutAt: number | undefined;
  for (const client of clients) {
    client.on("error", (err: Error) => {
      if (client.isReady) {
        // Still connected: the adapter failed on a message someone published (a malformed payload).
        console.error(`worker: ${workerId}, ignored a message from Redis that the adapter could not handle (${err.message})`);
      } else if ((connectedOnce || waitForRedis) && !redisDown && cutAt === undefined) {
        const lost = () => {
          redisDown = true;
          console.error(`worker: ${workerId}, lost Redis (${err.message || err.name}), reconnecting`);
        };
        // The subscriber alone, the publisher still connected: Redis may have cut it (lib/subscriber-cuts.ts).
        if (client !== subClient || !pubClient.isReady || !identity) return lost();
        cutAt = performance.now();
        void whyCut(pubClient, identity, config.redisTimeout).then((cut) => {
          if (cut) return console.error(`worker: ${workerId}, ${cut}`);
          cutAt = undefined;
          if (!subClient.isReady && !redisDown) lost();
        });
      }
    });
    client.on("ready", () => {
      if (client === subClient && cutAt !== undefined) {
        console.log(`worker: ${workerId}, subscribed again, ${((performance.now() - cutAt) / 1000).toFixed(1)} s after the cut`);
        cutAt = undefined;
      }
      if (redisDown && clients.every((c) => c.isReady)) {
        redisDown = false;
        console.log(`worker: ${workerId}, Redis is back`);
      }
    });
  }
  try {
    // A replacement waits for Redis as long as it takes; a first worker gives up after REDIS_TIMEOUT,
    // also when Redis accepts the connection but never answers (lib/redis-deadline.ts).
    await (waitForRedis ? Promise.all(clients.map((client) => client.connect())) : connectWithin(clients, config.redisTimeout));
  } catch (err) {
    throw new Error(redisFailure(err));
  }
  connectedOnce = true;
  identity = await redisIdentity(pubClient, config.redisTimeout);
  return { pubClient, subClient, clients };
}

/**
 * The emitter's one connection, without retries: one line and exit code 1 when Redis cannot be
 * reached, or has not answered everything within REDIS_TIMEOUT.
 */
export async function connectOnce(config: RedisConfig): Promise<RedisClient> {
  const client = createClient({ url: config.redisUrl, socket: { connectTimeout: 5000, reconnectStrategy: false } });
  client.on("error", () => {}); // connect() below reports the failure
  // Bounds the whole run, not only the connection: a Redis may freeze after it has answered once.
  exitIfRedisHangs(client, config.redisTimeout, (reason) => `Redis at ${redactUrl(config.redisUrl)} does not answer: ${reason}`);
  try {
    await client.connect();
    return client;
  } catch (err) {
    console.error(`cannot connect to Redis at ${redactUrl(config.redisUrl)}: ${redisFailure(err)}`);
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
