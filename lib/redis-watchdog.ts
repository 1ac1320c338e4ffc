/**
 * lib/redis-watchdog.ts: a running worker notices a Redis connection that stopped answering, and
 * gets a working one back by itself, without dropping what a frozen Redis still holds for it.
 *
 * A subscriber connection sends nothing on its own, so node-redis cannot tell a quiet channel
 * from a dead path: behind a half-open path (a NAT or firewall that forgot the connection), a
 * worker delivered nothing for as long as it ran, without a word (52 s observed, no end in sight).
 * node-redis 6.3.1's own tools do not fit: `pingInterval` schedules the next PING only after a
 * reply, so one unanswered PING silently stops it; `socketTimeout` is an idle timer that our own
 * writes reset, and with both set a short SIGSTOP of Redis (lossless: everything is delivered
 * late) became a lossy reconnection (340 of 490 delivered). redis/node-redis#2175 asks for a
 * command timeout.
 *
 * watchRedisPaths() sends each connection an application-level PING once a while. A PING not
 * answered within REDIS_TIMEOUT makes the worker say so, once, and ask a new connection:
 * - the new connection answers too: the old connection's path is dead. It is dropped and
 *   reconnected (node-redis subscribes again by itself), and delivery resumes.
 * - the new connection gets no answer either: Redis itself is frozen, overloaded or out of reach.
 *   The old connections are kept, because a Redis that comes back answers them with all it
 *   held; the worker asks again until one of the two answers.
 * Commands that were in flight on a dropped connection are rejected by node-redis; the adapters
 * do not await their PUBLISH, so the rejections are counted here instead of killing the worker.
 */
import {
  ClientClosedError,
  ClientOfflineError,
  createClient,
  DisconnectsClientError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
} from "redis";
import { countedLog } from "./counted-log.ts";
import type { RedisConfig } from "./config.ts";
import { connectWithin } from "./redis-deadline.ts";
import type { RedisClient, WorkerRedis } from "./redis-connections.ts";

/** The streams adapter blocks its reading connection in XREAD for up to 5 s; a PING waits behind it. */
const STREAMS_BLOCK_MS = 5000;

interface Watched {
  client: RedisClient;
  name: string;
  /** How long a PING may wait for its answer. */
  deadline: number;
  pingSentAt?: number;
  /** Since when this connection has been overdue, once noticed. */
  overdueSince?: number;
}

export function watchRedisPaths(redis: WorkerRedis, config: RedisConfig, workerId: number): void {
  countCommandsLostWithConnection(workerId);
  // The PINGs on one node only: the cluster and Sentinel clients keep a connection per node and find a new
  // master themselves (docs/reference/production.md); a new single connection proves nothing there.
  if (config.redis.kind !== "single") return;
  const url = config.redis.url;
  const say = (line: string) => console.error(`worker: ${workerId}, ${line}`);
  const watched: Watched[] = [];
  const watch = (client: RedisClient, name: string, deadline = config.redisTimeout) => watched.push({ client, name, deadline });
  if (config.adapter !== "streams") watch(redis.subClient, "subscriber");
  watch(redis.pubClient, "publisher");
  // The streams adapter duplicates the publisher for its reading and subscribing connections,
  // when index.ts creates it: after this call.
  if (config.adapter === "streams") {
    const duplicate = redis.pubClient.duplicate.bind(redis.pubClient);
    let n = 0;
    redis.pubClient.duplicate = ((...args: Parameters<typeof duplicate>) => {
      const copy = duplicate(...args);
      watch(copy as unknown as RedisClient, `streams adapter #${++n}`, config.redisTimeout + STREAMS_BLOCK_MS);
      return copy;
    }) as typeof duplicate;
  }

  let outageSince: number | undefined;
  let saidFrozen = false;
  let probing = false;

  const every = Math.max(100, config.redisTimeout / 4);
  let lastCheck = performance.now();
  const check = () => {
    const now = performance.now();
    // Late by more than a round: this worker was not running (frozen, starved of CPU), so the
    // answers may be waiting unread. No verdict this round: they are read before the next.
    const late = now - lastCheck > 2 * every;
    lastCheck = now;
    if (late) return;
    for (const w of watched) {
      if (!w.client.isReady) continue; // node-redis knows, and reconnects by itself
      if (w.pingSentAt === undefined) {
        const sentAt = now;
        w.pingSentAt = sentAt;
        w.client.ping().then(
          () => answered(w, sentAt),
          () => failed(w, sentAt),
        );
      } else if (w.overdueSince === undefined && now - w.pingSentAt > w.deadline) {
        w.overdueSince = w.pingSentAt;
        if (outageSince === undefined) {
          outageSince = w.pingSentAt;
          say(`Redis has not answered the ${w.name} connection for ${seconds(now - w.pingSentAt)}: asking a new connection`);
        }
      }
    }
    if (outageSince !== undefined && !probing) void probe();
  };

  const answered = (w: Watched, sentAt: number) => {
    if (w.pingSentAt !== sentAt) return;
    w.pingSentAt = undefined;
    if (w.overdueSince === undefined) return;
    w.overdueSince = undefined;
    if (outageSince !== undefined && watched.every((o) => o.overdueSince === undefined)) {
      say(`Redis answers again after ${seconds(performance.now() - outageSince)} without an answer; nothing was dropped`);
      outageSince = undefined;
      saidFrozen = false;
    }
  };

  // The PING failed: node-redis lost that connection and reconnects it by itself, and
  // lib/redis-connections.ts says so. This watchdog has nothing more to say about it.
  const failed = (w: Watched, sentAt: number) => {
    if (w.pingSentAt !== sentAt) return;
    w.pingSentAt = undefined;
    w.overdueSince = undefined;
    if (watched.every((o) => o.overdueSince === undefined)) {
      outageSince = undefined;
      saidFrozen = false;
    }
  };

  async function probe() {
    probing = true;
    const fresh = createClient({ url, socket: { connectTimeout: config.redisTimeout, reconnectStrategy: false } });
    fresh.on("error", () => {});
    try {
      await connectWithin([fresh], config.redisTimeout);
      // Every connection with a PING out for longer than REDIS_TIMEOUT goes too, even one whose
      // deadline is longer (the streams adapter's): the path they share is the one that died.
      const now = performance.now();
      const dead = watched.filter((w) => w.overdueSince !== undefined || (w.pingSentAt !== undefined && now - w.pingSentAt > config.redisTimeout));
      if (dead.length > 0 && outageSince !== undefined) {
        const names = listed(dead.map((w) => w.name));
        say(`a new connection to Redis answers: the path of the ${names} connection${dead.length > 1 ? "s" : ""} is dead; reconnecting`);
        const since = outageSince;
        outageSince = undefined;
        saidFrozen = false;
        let waiting = dead.length;
        const back = () => --waiting === 0 && say(`reconnected to Redis, ${seconds(performance.now() - since)} after it stopped answering`);
        for (const w of dead) reconnect(w, back);
      }
    } catch {
      if (!saidFrozen && outageSince !== undefined) {
        saidFrozen = true;
        say("a new connection to Redis gets no answer either: Redis is frozen, overloaded or out of reach; keeping the connections and asking again");
      }
    } finally {
      fresh.destroy();
      probing = false;
    }
  }

  function reconnect(w: Watched, ready: () => void) {
    w.pingSentAt = undefined;
    w.overdueSince = undefined;
    // destroy() and connect() in one go: the client stays open, keeps its subscriptions and
    // subscribes again on the new connection (node-redis's resubscribe on connect).
    w.client.destroy();
    w.client.once("ready", ready);
    w.client.connect().catch(() => {}); // its reconnect strategy retries; errors are logged by redis-connections.ts
  }

  setInterval(check, every).unref();
}

/**
 * Rejections of commands that were in flight on a connection dropped by the watchdog, or by
 * node-redis itself (a failover on any topology): the adapters send some commands without awaiting
 * them. They are counted in one line; anything else keeps Node's default (a crash).
 */
function countCommandsLostWithConnection(workerId: number): void {
  const lost = countedLog(`worker: ${workerId}, commands lost with a Redis connection`);
  process.on("unhandledRejection", (reason) => {
    if (LOST_WITH_CONNECTION.some((kind) => reason instanceof kind)) return lost((reason as Error).message);
    throw reason;
  });
}

/** node-redis's errors for a command whose connection went away before its reply. */
const LOST_WITH_CONNECTION = [DisconnectsClientError, SocketClosedUnexpectedlyError, ClientClosedError, ClientOfflineError, SocketTimeoutError, TimeoutError];

function listed(names: string[]): string {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
