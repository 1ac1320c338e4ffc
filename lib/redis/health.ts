/**
 * lib/redis/health.ts: one account of a worker's path to Redis, and the lines it logs about it.
 *
 * A worker is in one outage at a time, of one of three kinds, told apart because each asks
 * something else of whoever reads the log:
 *
 * - lost: node-redis reports a broken connection (Redis restarted or stopped, a failover) and
 *   reconnects by itself, forever. It reports every retry of every client, and on a Redis Cluster
 *   of every node (node-error, never error); a reader wants one line when the outage starts and one
 *   when every connection serves again. A Sentinel client stays "ready" while it looks for the new
 *   master; a node the Redis Cluster client let go of (a dead master whose replica took over) no
 *   longer counts.
 * - silent: a connection that stopped answering. A subscriber sends nothing on its own, so
 *   node-redis cannot tell a quiet channel from a dead path: behind a half-open path (a NAT or
 *   firewall that forgot the connection) a worker delivered nothing for as long as it ran, without
 *   a word (docs/reference/faults.md#a-sick-redis). node-redis 6.3.1's own tools do not fit: `pingInterval` schedules the next PING only
 *   after a reply, so one unanswered PING silently stops it; `socketTimeout` is an idle timer that
 *   our own writes reset, and with both set a short SIGSTOP of Redis (lossless: everything is
 *   delivered late) became a lossy reconnection (redis/node-redis#2175 asks for a command timeout).
 *   So each connection gets an application-level PING once a while. One not answered within
 *   REDIS_TIMEOUT makes the worker ask a new connection: if that one answers, the old path is dead,
 *   and the connection is dropped and reconnected (node-redis subscribes again by itself); if not,
 *   Redis itself is frozen or out of reach, and the old connections are kept, because a Redis that
 *   comes back answers them with all it held. On one node only: the Redis Cluster and Sentinel
 *   clients keep a connection per node and find a new master themselves.
 * - cut: Redis closed the subscriber connection because it fell behind
 *   (`client-output-buffer-limit pubsub`, 32 MB at once or 8 MB for 60 s by default), throwing away
 *   what it held for it. Seen as a plain loss, it logged "lost Redis" and "Redis is back" a few ms
 *   apart, which reads like a restart (docs/reference/faults.md#a-sick-redis). When the
 *   subscriber alone loses its connection while the publisher stays connected to the same Redis
 *   (same run_id), the line says what it was, with the limit in force; Redis 7.2 and later count
 *   such cuts (client_output_buffer_limit_disconnections), which confirms it. Under ADAPTER=streams
 *   broadcasts do not go through pub/sub: the reader catches up from its offset in the stream.
 *
 * `up` is false from an outage's first line to its last: what a readiness check or a metric should read.
 */
import { createClient } from "redis";
import type { RedisConfig, RedisTopology } from "../config.ts";
import { countedLog, log, logError } from "../log.ts";
import { connectWithin } from "./deadline.ts";
import type { RedisClient } from "./client.ts";

export interface RedisHealth {
  /** False from the first line of an outage to the line that ends it. */
  readonly up: boolean;
  /** Outages since the worker started. */
  readonly outages: number;
}

/** The streams adapter blocks its reading connection in XREAD for up to 5 s; a PING waits behind it. */
const STREAMS_BLOCK_MS = 5000;

type OutageKind = "lost" | "silent" | "cut";

interface Watched {
  client: RedisClient;
  name: string;
  /** How long a PING may wait for its answer. */
  deadline: number;
  pingSentAt?: number;
  /** Since when this connection has been overdue, once noticed. */
  overdueSince?: number;
}

/**
 * Follows the worker's connections from before they connect. `armed()` says whether a loss is
 * worth a line yet (a first worker that cannot connect at all fails instead); connected() is
 * called once they serve, and starts the PINGs and the check for cuts.
 */
export function watchRedisHealth(
  redis: { pubClient: RedisClient; subClient: RedisClient; clients: RedisClient[] },
  config: RedisConfig,
  armed: () => boolean,
): RedisHealth & { connected(): Promise<void> } {
  const { pubClient, subClient } = redis;
  let outage: { kind: OutageKind; since: number; told: boolean } | undefined;
  let outages = 0;
  const strangeErrors = countedLog("Redis reported an error on a working connection");

  function begin(kind: OutageKind, line?: string, since = performance.now()) {
    outage = { kind, since, told: line !== undefined };
    saidFrozen = false;
    outages++;
    if (line) logError(line);
  }
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const lostLine = (reason: string) => `lost Redis (${reason}), reconnecting`;

  // ---- lost: node-redis's events, one outage across all clients and nodes ----
  followConnections(redis.clients, config.redis.kind, {
    down(reason, client) {
      if (!armed()) return;
      if (outage?.kind === "silent") {
        outage = { ...outage, kind: "lost", told: true };
        return logError(lostLine(reason));
      }
      if (outage) return;
      // The subscriber alone, the publisher still connected to the same Redis: Redis may have cut it.
      if (client !== subClient || !pubClient.isReady || !identity) return begin("lost", lostLine(reason));
      begin("cut");
      const cut = outage!;
      void whyCut(pubClient, identity, config.redisTimeout).then((sentence) => {
        if (outage !== cut) return;
        if (sentence) {
          cut.told = true;
          logError(sentence);
          if (subClient.isReady) subscribedAgain();
        } else if (!subClient.isReady) {
          outage = { ...cut, kind: "lost", told: true };
          logError(lostLine(reason));
        } else {
          outage = undefined; // back already, and nothing to say about it
        }
      });
    },
    back(client) {
      if (outage?.kind === "cut" && client === subClient && outage.told) return subscribedAgain();
      if (outage?.kind !== "lost") return;
      outage = undefined;
      log("Redis is back");
    },
    strange: (err) => strangeErrors(err.message || err.name),
  });

  function subscribedAgain() {
    log(`subscribed again, ${seconds(performance.now() - outage!.since)} after the cut`);
    outage = undefined;
  }

  // ---- cut: which Redis this is, to tell a cut subscriber from a restart ----
  let identity: RedisIdentity | undefined;

  // ---- silent: the PINGs ----
  const watched: Watched[] = [];
  let probing = false;
  let saidFrozen = false;

  async function connected() {
    if (config.redis.kind !== "single") return;
    identity = await redisIdentity(pubClient, config.redisTimeout);
    const watch = (client: RedisClient, name: string, deadline = config.redisTimeout) => watched.push({ client, name, deadline });
    if (config.adapter !== "streams") watch(subClient, "subscriber");
    watch(pubClient, "publisher");
    // The streams adapter duplicates the publisher for its reading and subscribing connections
    // when it is created, which is after this.
    if (config.adapter === "streams") {
      const duplicate = pubClient.duplicate.bind(pubClient);
      let n = 0;
      pubClient.duplicate = ((...args: Parameters<typeof duplicate>) => {
        const copy = duplicate(...args);
        watch(copy as unknown as RedisClient, `streams adapter #${++n}`, config.redisTimeout + STREAMS_BLOCK_MS);
        return copy;
      }) as typeof duplicate;
    }
    const every = Math.max(100, config.redisTimeout / 4);
    let lastCheck = performance.now();
    setInterval(() => {
      const now = performance.now();
      // Late by more than a round: this worker was not running (frozen, starved of CPU), so the
      // answers may be waiting unread. No verdict this round: they are read before the next.
      const late = now - lastCheck > 2 * every;
      lastCheck = now;
      if (!late) checkPings(now);
    }, every).unref();
  }

  function checkPings(now: number) {
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
      }
    }
    // Also a connection that fell silent during another outage: it is told once that one is over.
    const silent = outage ? undefined : watched.find((o) => o.overdueSince !== undefined);
    if (silent) begin("silent", `Redis has not answered the ${silent.name} connection for ${seconds(now - silent.overdueSince!)}: asking a new connection`, silent.overdueSince);
    if (outage?.kind === "silent" && !probing) void probe();
  }

  function answered(w: Watched, sentAt: number) {
    if (w.pingSentAt !== sentAt) return;
    w.pingSentAt = undefined;
    if (w.overdueSince === undefined) return;
    w.overdueSince = undefined;
    if (outage?.kind === "silent" && watched.every((o) => o.overdueSince === undefined)) {
      logError(`Redis answers again after ${seconds(performance.now() - outage.since)} without an answer; nothing was dropped`);
      outage = undefined;
      saidFrozen = false;
    }
  }

  // The PING failed: node-redis lost that connection and reconnects it by itself, and says so
  // (the "lost" outage above). Nothing more to say about it here.
  function failed(w: Watched, sentAt: number) {
    if (w.pingSentAt !== sentAt) return;
    w.pingSentAt = undefined;
    w.overdueSince = undefined;
  }

  async function probe() {
    probing = true;
    const url = (config.redis as Extract<RedisTopology, { kind: "single" }>).url;
    const fresh = createClient({ url, socket: { connectTimeout: config.redisTimeout, reconnectStrategy: false } });
    fresh.on("error", () => {});
    try {
      await connectWithin([fresh], config.redisTimeout);
      // Every connection with a PING out for longer than REDIS_TIMEOUT goes too, even one whose
      // deadline is longer (the streams adapter's): the path they share is the one that died.
      const now = performance.now();
      const dead = watched.filter((w) => w.overdueSince !== undefined || (w.pingSentAt !== undefined && now - w.pingSentAt > config.redisTimeout));
      if (dead.length > 0 && outage?.kind === "silent") {
        const names = listed(dead.map((w) => w.name));
        logError(`a new connection to Redis answers: the path of the ${names} connection${dead.length > 1 ? "s" : ""} is dead; reconnecting`);
        const since = outage.since;
        outage = undefined;
        saidFrozen = false;
        let waiting = dead.length;
        const back = () => --waiting === 0 && logError(`reconnected to Redis, ${seconds(performance.now() - since)} after it stopped answering`);
        for (const w of dead) reconnect(w, back);
      }
    } catch {
      if (!saidFrozen && outage?.kind === "silent") {
        saidFrozen = true;
        logError("a new connection to Redis gets no answer either: Redis is frozen, overloaded or out of reach; keeping the connections and asking again");
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
    // subscribes again on the new connection (node-redis's resubscribe on connect). What was in
    // flight is rejected: the adapters' unawaited commands are handled (lib/redis/shims.ts).
    w.client.destroy();
    w.client.once("ready", ready);
    w.client.connect().catch(() => {}); // its reconnect strategy retries; the "lost" outage says so
  }

  return {
    get up() {
      return outage === undefined;
    },
    get outages() {
      return outages;
    },
    connected,
  };
}

interface ConnectionEvents {
  down(reason: string, client: RedisClient): void;
  back(client: RedisClient): void;
  /** An error on a connection that still serves: the adapter failed on a message someone published. */
  strange(err: Error): void;
}

/**
 * Turns the clients' events into `down` when any of them (any node) loses Redis and `back` once
 * all serve again. A plain client emits error and ready; a Sentinel client the same; the Redis
 * Cluster client node-error and node-ready per node, and node-disconnect for a node it let go of.
 */
function followConnections(clients: RedisClient[], kind: RedisTopology["kind"], report: ConnectionEvents) {
  const troubled = new Set<string>();
  clients.forEach((client, index) => {
    const update = (reason = "") => (troubled.size > 0 ? report.down(reason, client) : report.back(client));
    if (kind !== "redis-cluster") {
      client.on("error", (err: Error) => {
        if (kind === "single" ? client.isReady : !isConnectionError(err)) return report.strange(err);
        troubled.add(String(index));
        update(err.message || err.name);
      });
      client.on("ready", () => troubled.delete(String(index)) && update());
      return;
    }
    type Node = { host: string; port: number };
    const key = (node: Node) => `${index} ${node.host}:${node.port}`;
    client.on("node-error", (err: Error, node: Node) => {
      if (!isConnectionError(err)) return report.strange(err);
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

interface RedisIdentity {
  runId: string;
  /** client_output_buffer_limit_disconnections, on Redis 7.2 and later. */
  cuts?: number;
}

/** Which Redis this is; undefined when it cannot be asked (an ACL without INFO, no answer in time). */
async function redisIdentity(client: RedisClient, ms: number): Promise<RedisIdentity | undefined> {
  try {
    const info = (await withTimeout(Promise.all([client.info("server"), client.info("stats")]), ms)).join("");
    const runId = info.match(/^run_id:(\w+)/m)?.[1];
    const cuts = info.match(/^client_output_buffer_limit_disconnections:(\d+)/m)?.[1];
    return runId ? { runId, cuts: cuts === undefined ? undefined : Number(cuts) } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why the subscriber's connection closed while the publisher's did not: a sentence when Redis
 * stayed up (it most likely cut the subscriber for falling behind), undefined when it did not or
 * cannot be asked (then it is an ordinary loss of Redis). How many messages were lost the pub/sub
 * adapters cannot tell: Redis does not count what it threw away, and nothing numbers the messages.
 */
async function whyCut(publisher: RedisClient, before: RedisIdentity, ms: number): Promise<string | undefined> {
  const now = await redisIdentity(publisher, ms);
  if (!now || now.runId !== before.runId) return undefined;
  const confirmed = now.cuts !== undefined && before.cuts !== undefined && now.cuts > before.cuts;
  const limit = await withTimeout(publisher.configGet("client-output-buffer-limit"), ms).then(
    (reply) => reply["client-output-buffer-limit"]?.match(/pubsub (\d+) (\d+) (\d+)/)?.slice(1),
    () => undefined,
  );
  return (
    `Redis closed the subscriber connection while it stayed up: ${confirmed ? "it" : "most likely it"} fell behind past ` +
    `client-output-buffer-limit pubsub${limit ? ` (${limit[0]} bytes at once, or ${limit[1]} bytes for ${limit[2]} s)` : ""}; ` +
    "what was published until it subscribes again is lost for this worker's clients; subscribing again"
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("no answer")), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function listed(names: string[]): string {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}
