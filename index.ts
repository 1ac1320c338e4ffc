/**
 * index.ts: the post's chat server, on every CPU core, scaled out with Redis.
 *
 * The primary process owns the port and hands each connection to a worker with @socket.io/sticky,
 * so that every HTTP request of one Socket.IO session reaches the same worker. The workers share
 * their broadcasts through a Redis adapter, which is also what lets emitter.ts reach the clients
 * without connecting to this server. What hardens each step lives in lib/, in a folder named
 * after the process that runs it: lib/primary/, lib/worker/, lib/redis/.
 *
 *   npx tsx index.ts          (or: npm start, which also finds or starts a Redis)
 *   bun index.ts
 *   deno run -A index.ts
 *
 * Environment: PORT, WORKERS, REDIS_URL, ADAPTER and the rest in docs/reference/configuration.md.
 */
import cluster from "node:cluster";
import { createServer as createNetServer } from "node:net";
import { Server } from "socket.io";
import { CHAT_NAMESPACES, type ClientToServerEvents, type InterServerEvents, printable, type ServerToClientEvents, type SocketData } from "./lib/chat.ts";
import { readServerConfig } from "./lib/config.ts";
import { onUncaught } from "./lib/failures.ts";
import { setupStickyPrimary } from "./lib/primary/sticky.ts";
import { runWorkers } from "./lib/primary/workers.ts";
import { connectWorkerRedis } from "./lib/redis/connections.ts";
import { redisAdapter, stateRecovery } from "./lib/worker/adapters.ts";
import { guardChatMessage, setupChat } from "./lib/worker/chat.ts";
import { workerHttpServer } from "./lib/worker/http.ts";
import { serve } from "./lib/worker/lifecycle.ts";
import { allowedOrigins } from "./lib/worker/origins.ts";

// One way out: what the kit's code throws ends here as one line and the exit code of the kit's
// rule (lib/failures.ts). A worker's line is printed by the primary: once, not once per worker.
onUncaught((failure) => {
  if (cluster.isWorker) {
    process.send!({ type: "kit:failed", ...failure }, () => process.exit(failure.code));
    setTimeout(() => process.exit(failure.code), 1000); // the primary may be gone, or its pipe full
    return;
  }
  console.error(failure.line);
  process.exit(failure.code);
});

const config = readServerConfig();

if (cluster.isPrimary) {
  // A plain TCP server: sticky reads the first bytes of each connection itself to pick the worker,
  // and on Bun and Deno an http.Server never hands them over (docs/reference/sticky-sessions.md).
  const server = createNetServer({ allowHalfOpen: true });
  setupStickyPrimary(server, config); // sticky's setupMaster, and the fixes it needs, in their order
  await runWorkers(server, config); // listens once every worker is ready, replaces the dead, stops on Ctrl-C
  process.exit(0);
} else {
  const workerId = cluster.worker!.id;

  // A request that is not Socket.IO's gets the worker's id, as in the post; a browser gets the page.
  const httpServer = workerHttpServer(config, (req, res) => res.end(`worker: ${workerId}`));
  const redis = await connectWorkerRedis(config); // its outages are watched and told (lib/redis/health.ts)
  const io = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>(httpServer, {
    adapter: redisAdapter(config.adapter, redis),
    connectionStateRecovery: stateRecovery(config.adapter),
    ...allowedOrigins(config.allowedOrigins), // pages of other sites may not connect
    transports: config.transports, // TRANSPORTS=websocket: no long-polling, and the page is told so
  });

  // The chat runs on "/" and on "/lounge", with the same handlers.
  for (const nsp of CHAT_NAMESPACES.map((name) => io.of(name))) {
    setupChat(nsp, config); // who each socket is (a name, or a token's sub), /join and /leave, the page's question, --server-side

    nsp.on("connection", (socket) => {
      console.log(`worker: ${workerId}, connected, id: ${socket.id}`);

      socket.on("chat message", guardChatMessage(socket, config.chatRateLimit, (user, message) => {
        const data = `${message} from ${user}`;
        console.log(printable(data)); // no escape sequences or fake lines in the server's log
        socket.broadcast.emit("chat message", data);
      }));

      socket.on("disconnect", () => {
        console.log(`disconnected, id: ${socket.id}`);
      });
    });
  }

  await serve(io, redis, config); // takes connections from the primary (sticky), lets go of clients that stop reading, drains on SIGTERM
  process.exit(0);
}
