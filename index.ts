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
 * Environment: PORT (3000), WORKERS (number of CPUs), REDIS_URL (redis://localhost:6379).
 */
import cluster, { type Worker } from "node:cluster";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { availableParallelism } from "node:os";
import { createAdapter } from "@socket.io/redis-adapter";
import { setupMaster, setupWorker } from "@socket.io/sticky";
import { createClient } from "redis";
import { Server } from "socket.io";
import { type ClientToServerEvents, isChatText, redactUrl, type ServerToClientEvents } from "./shared.ts";

const PORT = Number(process.env.PORT ?? 3000);
const WORKERS = Number(process.env.WORKERS ?? availableParallelism());
const REDIS_URL = process.env.REDIS_URL ?? "redis://localhost:6379";

/** What a worker tells the primary. */
type WorkerReport = { type: "ready" } | { type: "redis-unreachable"; reason: string };

if (cluster.isPrimary) {
  if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) fail(`PORT must be a port number, got "${process.env.PORT}"`);
  if (!Number.isInteger(WORKERS) || WORKERS < 1) fail(`WORKERS must be a whole number >= 1, got "${process.env.WORKERS}"`);

  // "advanced" serialization carries the Buffers that sticky forwards to the workers.
  cluster.setupPrimary({ serialization: "advanced" });

  // A plain TCP server: sticky reads the first bytes of each connection itself to pick the worker.
  // Its types ask for an http.Server, which works on Node but hangs on Bun and Deno (README.md);
  // sticky only uses the "connection" event, which both kinds of server emit.
  const server = createNetServer({ allowHalfOpen: true });
  setupMaster(server as HttpServer, { loadBalancingMethod: "least-connection" });
  server.on("error", (err) => fail(`cannot listen on port ${PORT}: ${err.message}`));

  let listening = false;
  let stopping = false;
  const ready = new Set<number>();

  cluster.on("message", (worker: Worker, report: WorkerReport) => {
    if (report.type === "ready") {
      ready.add(worker.id);
      if (!listening && ready.size === WORKERS) {
        listening = true;
        server.listen(PORT, () => {
          console.log(`listening on port ${PORT} with ${WORKERS} workers, Redis at ${redactUrl(REDIS_URL)}`);
        });
      }
    } else if (report.type === "redis-unreachable" && !listening) {
      // Nothing can work without Redis: say so once and stop, rather than restart workers forever.
      console.error(`cannot connect to Redis at ${redactUrl(REDIS_URL)}: ${report.reason}`);
      stop(1);
    }
  });

  cluster.on("exit", (worker, code, signal) => {
    ready.delete(worker.id);
    if (stopping) return;
    console.log(`worker: ${worker.id} died (${signal ?? `exit code ${code}`}), starting a new one`);
    cluster.fork();
  });

  function stop(exitCode: number) {
    if (stopping) return;
    stopping = true;
    server.close();
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

  for (let i = 0; i < WORKERS; i++) cluster.fork();
} else {
  const workerId = cluster.worker!.id;
  const report = (message: WorkerReport) => process.send!(message);

  // A request that is not Socket.IO's gets the worker's id, as in the original post.
  const httpServer = createHttpServer((_req, res) => res.end(`worker: ${workerId}`));

  let connectedOnce = false;
  let redisDown = false;
  const pubClient = createClient({
    url: REDIS_URL,
    socket: {
      connectTimeout: 5000,
      // Give up at start (Redis is missing or misconfigured); later, keep retrying (Redis restarts).
      reconnectStrategy: (retries, cause) => (connectedOnce ? Math.min(retries * 200, 2000) : cause),
    },
  });
  const subClient = pubClient.duplicate();
  for (const client of [pubClient, subClient]) {
    // One line per outage, not one per retry and client.
    client.on("error", (err: Error) => {
      if (connectedOnce && !redisDown) {
        redisDown = true;
        console.error(`worker: ${workerId}, lost Redis (${err.message || err.name}), reconnecting`);
      }
    });
    client.on("ready", () => {
      if (redisDown && pubClient.isReady && subClient.isReady) {
        redisDown = false;
        console.log(`worker: ${workerId}, Redis is back`);
      }
    });
  }

  try {
    await Promise.all([pubClient.connect(), subClient.connect()]);
    connectedOnce = true;
  } catch (err) {
    report({ type: "redis-unreachable", reason: (err as Error).message || String(err) });
    // The primary stops the cluster; do not start serving without Redis.
    await new Promise(() => {});
  }

  const io = new Server<ClientToServerEvents, ServerToClientEvents>(httpServer, {
    // Answers to cluster-wide requests (fetchSockets, socketsJoin, allRooms...) go to the asking
    // worker only, not to every worker (upstream socket.io-redis-adapter#407). It leaves broadcasts
    // as they are; every worker must use the same setting (docs/performance.md).
    adapter: createAdapter(pubClient, subClient, { publishOnSpecificResponseChannel: true }),
  });
  setupWorker(io);

  io.on("connection", (socket) => {
    console.log(`worker: ${workerId}, connected, id: ${socket.id}`);

    socket.on("chat message", (user, message) => {
      // Types are a promise the client may break: check before use.
      if (!isChatText(user) || !isChatText(message)) {
        console.log(`worker: ${workerId}, ignored a malformed chat message from ${socket.id}`);
        return;
      }
      const data = `${message} from ${user}`;
      console.log(data);
      socket.broadcast.emit("chat message", data);
    });

    socket.on("disconnect", () => {
      console.log(`disconnected, id: ${socket.id}`);
    });
  });

  let stopping = false;
  async function shutdown() {
    if (stopping) return;
    stopping = true;
    await io.close(); // disconnects every client of this worker
    await Promise.allSettled([pubClient.close(), subClient.close()]);
    process.exit(0);
  }
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);

  report({ type: "ready" });
}

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}
