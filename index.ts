/**
 * index.ts: a Socket.IO chat server that runs on every CPU core, scaled out with Redis.
 *
 * The primary process owns the port and hands each connection to a worker with @socket.io/sticky,
 * so that every HTTP request of one Socket.IO session reaches the same worker. The workers share
 * their broadcasts through the Redis adapter (Redis PUB/SUB), which is also what lets emitter.ts
 * reach the clients without connecting to this server.
 *
 *   npx tsx index.ts          (or: npm start, which also finds or starts a Redis)
 *   bun index.ts
 *   deno run -A index.ts
 *
 * Environment: PORT (3000), WORKERS (number of CPUs), REDIS_URL (redis://localhost:6379),
 * ADAPTER (classic | sharded | streams, see docs/adapters.md), CHAT_RATE_LIMIT (chat messages
 * per second one client may send, 5).
 */
import cluster, { type Worker } from "node:cluster";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { availableParallelism } from "node:os";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { setupMaster, setupWorker } from "@socket.io/sticky";
import { createClient } from "redis";
import { Server, type Socket } from "socket.io";
import {
  ADAPTERS,
  CHAT_NAMESPACES,
  type ClientToServerEvents,
  type InterServerEvents,
  isAdapterName,
  isChatText,
  MAX_ROOMS_PER_SOCKET,
  printable,
  redactUrl,
  redisFailure,
  roomNameProblem,
  type ServerToClientEvents,
} from "./shared.ts";
import { answerHandoffBarriers, guardStickyHandoffs } from "./sticky-handoff.ts";

const PORT = Number(process.env.PORT ?? 3000);
const WORKERS = Number(process.env.WORKERS ?? availableParallelism());
const CHAT_RATE_LIMIT = Number(process.env.CHAT_RATE_LIMIT ?? 5);
const REDIS_URL = process.env.REDIS_URL ?? "redis://localhost:6379";
const ADAPTER = process.env.ADAPTER ?? "classic";
if (!isAdapterName(ADAPTER)) fail(`ADAPTER must be one of ${ADAPTERS.join(", ")}, got "${ADAPTER}"`);

/** What a worker tells the primary. */
type WorkerReport = { type: "ready" } | { type: "redis-unreachable"; reason: string };

/** @socket.io/sticky keeps its least-connection count on the Worker object itself. */
type StickyWorker = Worker & { clientsCount?: number };

if (cluster.isPrimary) {
  if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) fail(`PORT must be a port number, got "${process.env.PORT}"`);
  if (!Number.isInteger(WORKERS) || WORKERS < 1) fail(`WORKERS must be a whole number >= 1, got "${process.env.WORKERS}"`);
  if (!URL.canParse(REDIS_URL) || !/^rediss?:$/.test(new URL(REDIS_URL).protocol)) {
    fail(`REDIS_URL must be a redis:// or rediss:// URL, got "${redactUrl(REDIS_URL)}"`);
  }
  if (!(CHAT_RATE_LIMIT > 0)) fail(`CHAT_RATE_LIMIT must be a number of messages per second > 0, got "${process.env.CHAT_RATE_LIMIT}"`);

  // "advanced" serialization carries the Buffers that sticky forwards to the workers.
  cluster.setupPrimary({ serialization: "advanced" });

  // A plain TCP server: sticky reads the first bytes of each connection itself to pick the worker.
  // Its types ask for an http.Server, which works on Node but hangs on Bun and Deno (docs/runtimes.md);
  // sticky only uses the "connection" event, which both kinds of server emit.
  const server = createNetServer({ allowHalfOpen: true });
  setupMaster(server as HttpServer, { loadBalancingMethod: "least-connection" });
  // Sticky hands sockets to workers without stopping reads in the primary (sticky-handoff.ts).
  guardStickyHandoffs();
  server.on("error", (err) => fail(`cannot listen on port ${PORT}: ${err.message}`));

  let listening = false;
  let stopping = false;
  let readyWorkers = 0; // until the cluster listens: a worker that exits before then stops it

  cluster.on("message", (worker: Worker, report: WorkerReport) => {
    if (report.type === "ready") {
      (worker as StickyWorker).clientsCount = 0; // see forkWorker
      if (!listening && ++readyWorkers === WORKERS) {
        listening = true;
        server.listen(PORT, () => {
          const { port } = server.address() as AddressInfo; // PORT=0 picks a free one
          console.log(`listening on port ${port} with ${WORKERS} workers, Redis at ${redactUrl(REDIS_URL)}`);
        });
      }
    } else if (report.type === "redis-unreachable" && !listening && !stopping) {
      // Nothing can work without Redis: say so once and stop, rather than restart workers forever.
      console.error(`cannot connect to Redis at ${redactUrl(REDIS_URL)}: ${report.reason}`);
      stop(1);
    }
  });

  cluster.on("exit", (worker, code, signal) => {
    if (stopping) return;
    if (!listening) {
      // A worker that cannot start would only be replaced by another that cannot either.
      console.error(`worker: ${worker.id} exited during start-up (${signal ?? `exit code ${code}`})`);
      return stop(1);
    }
    console.log(`worker: ${worker.id} died (${signal ?? `exit code ${code}`}), starting a new one`);
    forkWorker();
  });

  // Least-connection sends a new connection to the worker with the lowest count, and a worker
  // counts from the moment it is forked. A replacement would get every reconnecting client before
  // it listens for connections, and those would hang until their timeout: rank it last until ready.
  function forkWorker() {
    (cluster.fork() as StickyWorker).clientsCount = Infinity;
  }

  function stop(exitCode: number) {
    if (stopping) return;
    stopping = true;
    // The port stays open until the workers have gone: a long-polling client needs one more
    // request to fetch what its worker still holds for it.
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    let running = workers.length;
    if (running === 0) process.exit(exitCode);
    for (const worker of workers) {
      worker.once("exit", () => --running === 0 && process.exit(exitCode));
      worker.process.kill("SIGTERM");
    }
    // A worker stuck on a dead Redis must not keep the cluster up.
    setTimeout(() => process.exit(exitCode || 1), 10_000).unref();
  }

  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));

  for (let i = 0; i < WORKERS; i++) forkWorker();
} else {
  const workerId = cluster.worker!.id;
  const report = (message: WorkerReport) => process.send!(message);

  // A request that is not Socket.IO's gets the worker's id, as in the original post.
  const httpServer = createHttpServer((_req, res) => res.end(`worker: ${workerId}`));

  // A first worker gives up on Redis at once, so that a wrong REDIS_URL stops the cluster with one
  // line; a replacement (ids go on counting after the first WORKERS) waits for Redis instead,
  // as the running workers do while Redis is away.
  const isReplacement = workerId > WORKERS;
  let connectedOnce = false;
  let redisDown = false;
  const pubClient = createClient({
    url: REDIS_URL,
    socket: {
      connectTimeout: 5000,
      reconnectStrategy: (retries, cause) => (connectedOnce || isReplacement ? Math.min(retries * 200, 2000) : cause),
    },
  });
  const subClient = pubClient.duplicate();
  // The streams adapter reads and listens with connections it duplicates from pubClient itself.
  const redisClients = ADAPTER === "streams" ? [pubClient] : [pubClient, subClient];
  for (const client of redisClients) {
    // One line per outage, not one per retry and client.
    client.on("error", (err: Error) => {
      if (client.isReady) {
        // Still connected: the adapter failed on a message someone published (a malformed payload).
        console.error(`worker: ${workerId}, ignored a message from Redis that the adapter could not handle (${err.message})`);
      } else if ((connectedOnce || isReplacement) && !redisDown) {
        redisDown = true;
        console.error(`worker: ${workerId}, lost Redis (${err.message || err.name}), reconnecting`);
      }
    });
    client.on("ready", () => {
      if (redisDown && redisClients.every((c) => c.isReady)) {
        redisDown = false;
        console.log(`worker: ${workerId}, Redis is back`);
      }
    });
  }

  try {
    await Promise.all(redisClients.map((client) => client.connect()));
    connectedOnce = true;
  } catch (err) {
    report({ type: "redis-unreachable", reason: redisFailure(err) });
    // The primary stops the cluster; do not start serving without Redis.
    await new Promise(() => {});
  }

  // Only the streams adapter keeps what was sent, so only it can replay what a client missed.
  const recoversState = ADAPTER === "streams";
  const io = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents>(httpServer, {
    adapter: {
      // Answers to cluster-wide requests (fetchSockets, socketsJoin...) go to the asking worker only,
      // not to every worker (upstream socket.io-redis-adapter#407); all workers must agree on it.
      classic: () => createAdapter(pubClient, subClient, { publishOnSpecificResponseChannel: true }),
      sharded: () => createShardedAdapter(pubClient, subClient),
      streams: () => createStreamsAdapter(pubClient),
    }[ADAPTER](),
    connectionStateRecovery: recoversState ? { maxDisconnectionDuration: 2 * 60_000 } : undefined,
  });
  setupWorker(io);
  answerHandoffBarriers();

  // The chat is served on each of CHAT_NAMESPACES ("/" and "/lounge"), with the same handlers.
  const chatNamespaces = CHAT_NAMESPACES.map((name) => io.of(name));
  const onChatConnection = (socket: ChatSocket) => {
    console.log(`worker: ${workerId}, connected, id: ${socket.id}`);

    // Each message is sent on to every other client, so one client's flood would cost everyone.
    // Over the limit, messages are dropped; the sender is told (and the log says) once per flood,
    // a flood being drops less than 10 s apart.
    const withinLimit = rateLimiter(CHAT_RATE_LIMIT);
    let lastDrop = -Infinity;

    socket.on("chat message", (user, message) => {
      if (!withinLimit()) {
        const now = performance.now();
        if (now - lastDrop > 10_000) {
          console.log(`worker: ${workerId}, dropping messages from ${socket.id}: over ${CHAT_RATE_LIMIT} per second`);
          socket.emit("chat message", `server: too many messages, yours are dropped until you send at most ${CHAT_RATE_LIMIT} per second`);
        }
        lastDrop = now;
        return;
      }
      // Types are a promise the client may break: check before use.
      if (!isChatText(user) || !isChatText(message)) {
        console.log(`worker: ${workerId}, ignored a malformed chat message from ${socket.id}`);
        return;
      }
      const data = `${message} from ${user}`;
      console.log(printable(data)); // no escape sequences or fake lines in the server's log
      socket.broadcast.emit("chat message", data);
    });

    // Rooms: client.ts sends /join and /leave, emitter.ts --room reaches who is in one. Limited too:
    // with the sharded adapter a room's first join and last leave cost a Redis (un)subscribe.
    const withinRoomLimit = rateLimiter(MAX_ROOMS_PER_SOCKET);
    const tooFast = "too many room changes, slow down";
    socket.on("join", (room, answer) => {
      const full = !socket.rooms.has(room) && socket.rooms.size > MAX_ROOMS_PER_SOCKET; // rooms holds its id room too
      const problem = roomNameProblem(room) ?? (full ? `at most ${MAX_ROOMS_PER_SOCKET} rooms per client` : null) ?? (withinRoomLimit() ? null : tooFast);
      if (!problem) socket.join(room);
      if (typeof answer === "function") answer(problem);
    });
    socket.on("leave", (room, answer) => {
      const problem = roomNameProblem(room) ?? (withinRoomLimit() ? null : tooFast);
      if (!problem) socket.leave(room);
      if (typeof answer === "function") answer(problem);
    });

    socket.on("disconnect", () => {
      console.log(`disconnected, id: ${socket.id}`);
    });
  };
  for (const nsp of chatNamespaces) nsp.on("connection", onChatConnection);

  // A server-side emit (emitter.ts --server-side) reaches this handler on every worker, unlike
  // an emit to the clients, which no server handler sees. Each worker relays it to its own clients.
  for (const nsp of chatNamespaces) {
    nsp.on("chat message", (text) => {
      if (!isChatText(text)) {
        console.log(`worker: ${workerId}, ignored a malformed server-side chat message`);
        return;
      }
      console.log(`worker: ${workerId}, server-side chat message on ${nsp.name}: ${printable(text)}`);
      if (!recoversState) {
        nsp.local.emit("chat message", text);
        return;
      }
      // With connection state recovery a client keeps the last string argument of each event as its
      // offset in the stream (socket.io-client's _lastOffset); a local emit carries no offset, so the
      // text would become the offset and the next recovery would fail (upstream socket.io#5539, the
      // same trap with volatile emits). Sent through the adapter instead, to this worker's own
      // sockets by id, the relay gets a real offset. No local socket: nothing to send (an empty
      // list would mean everyone).
      const ownSockets = [...nsp.sockets.keys()];
      if (ownSockets.length > 0) nsp.to(ownSockets).emit("chat message", text);
    });
  }

  // SIGTERM or Ctrl-C: take no more messages from Redis, let each connection send what this worker
  // has already accepted for its client, then close it. The clients see the transport close and
  // reconnect on their own (to another worker, or to the server once it is back).
  let stopping = false;
  async function shutdown() {
    if (stopping) return;
    stopping = true;
    // Each adapter unsubscribes (or stops reading the stream); skipped while Redis is down, when
    // nothing arrives anyway and an unsubscribe would wait for Redis to come back.
    if (redisClients.every((c) => c.isReady)) await Promise.allSettled(chatNamespaces.map((nsp) => nsp.adapter.close()));
    // One connection may carry a socket of each namespace: close each connection once.
    const connections = new Set(chatNamespaces.flatMap((nsp) => [...nsp.sockets.values()].map((socket) => socket.conn)));
    const closed = [...connections].map(
      (conn) => new Promise((resolve) => conn.once("close", resolve).close()), // close() waits for the write buffer
    );
    // The primary gives up on its workers after 10 s: stay within that for a client that stalls.
    await Promise.race([Promise.all(closed), new Promise((resolve) => setTimeout(resolve, 8000))]);
    await io.close();
    // close() lets queued commands finish, which never happens while Redis is down.
    await Promise.allSettled(redisClients.map((client) => (client.isReady ? client.close() : client.destroy())));
    process.exit(0);
  }
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);

  report({ type: "ready" });
}

type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents>;

/**
 * A token bucket: true while the caller keeps to `perSecond` calls a second on average, after a
 * first burst of two seconds' worth (a few pasted lines go through).
 */
function rateLimiter(perSecond: number): () => boolean {
  const burst = Math.max(1, 2 * perSecond);
  let tokens = burst;
  let last = performance.now();
  return () => {
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - last) / 1000) * perSecond);
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}
