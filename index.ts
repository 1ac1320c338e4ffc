/**
 * index.ts: the post's chat server, on every CPU core, scaled out with Redis.
 *
 * The primary process owns the port and hands each connection to a worker with @socket.io/sticky,
 * so that every HTTP request of one Socket.IO session reaches the same worker. The workers share
 * their broadcasts through a Redis adapter, which is also what lets emitter.ts reach the clients
 * without connecting to this server. What guards each step lives in lib/, one concern per file.
 *
 *   npx tsx index.ts          (or: npm start, which also finds or starts a Redis)
 *   bun index.ts
 *   deno run -A index.ts
 *
 * Environment: PORT, WORKERS, REDIS_URL, ADAPTER and the rest in docs/reference/configuration.md.
 */
import cluster from "node:cluster";
import { createServer, type Server as HttpServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { setupMaster, setupWorker } from "@socket.io/sticky";
import { Server } from "socket.io";
import { guardAdapterMessages } from "./lib/adapter-messages.ts";
import { redisAdapter, stateRecovery } from "./lib/adapters.ts";
import { allowedOrigins } from "./lib/allowed-origins.ts";
import { CHAT_NAMESPACES, type ClientToServerEvents, type InterServerEvents, type ServerToClientEvents } from "./lib/chat-events.ts";
import { guardChatMessage } from "./lib/chat-guards.ts";
import { answerWorkerQuestion, chatPage } from "./lib/chat-page.ts";
import { readServerConfig } from "./lib/config.ts";
import { drainOnSignal } from "./lib/drain-on-signal.ts";
import { forkWorker, isReplacement, reportReady, reportRedisUnreachable, superviseWorkers } from "./lib/primary-lifecycle.ts";
import { boundWorkerRequests, guardPrimarySockets } from "./lib/primary-sockets.ts";
import { connectWorkerRedis } from "./lib/redis-connections.ts";
import { watchRedisPaths } from "./lib/redis-watchdog.ts";
import { answerRoomRequests } from "./lib/rooms.ts";
import { relayServerSideChat } from "./lib/server-side-relay.ts";
import { waitForSessionOwners } from "./lib/session-owners.ts";
import { cutSlowReaders } from "./lib/slow-readers.ts";
import { answerHandoffBarriers, guardStickyHandoffs } from "./lib/sticky-fixes.ts";
import { printable } from "./lib/text.ts";

const config = readServerConfig(); // a wrong value: one line, exit code 2

if (cluster.isPrimary) {
  // "advanced" serialization carries the Buffers that sticky forwards to the workers.
  cluster.setupPrimary({ serialization: "advanced" });

  // A plain TCP server: sticky reads the first bytes of each connection itself to pick the worker.
  // Its types ask for an http.Server, which works on Node but hangs on Bun and Deno
  // (docs/reference/runtimes.md); sticky only uses the "connection" event, which both emit.
  const server = createNetServer({ allowHalfOpen: true });
  setupMaster(server as HttpServer, { loadBalancingMethod: "least-connection" });
  guardStickyHandoffs();
  waitForSessionOwners(server); // a request may name its session before the primary knows where it is
  guardPrimarySockets(server, config.requestTimeout); // resets, junk, silent or dripping peers

  superviseWorkers(server, config); // listens once every worker is ready, replaces the dead, stops on Ctrl-C
  for (let i = 0; i < config.workers; i++) forkWorker();
} else {
  const workerId = cluster.worker!.id;

  // A request that is not Socket.IO's gets the worker's id, as in the post; a browser gets the page.
  const page = chatPage(workerId);
  const httpServer = createServer((req, res) => page(req, res) || res.end(`worker: ${workerId}`));
  boundWorkerRequests(httpServer, config.requestTimeout);

  const redis = await connectWorkerRedis(config, workerId, { waitForRedis: isReplacement() }).catch(reportRedisUnreachable);
  watchRedisPaths(redis, config, workerId); // a frozen or half-open path to Redis is noticed (first: it watches the adapter's own too)
  const io = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents>(httpServer, {
    adapter: redisAdapter(config.adapter, redis),
    connectionStateRecovery: stateRecovery(config.adapter),
    ...allowedOrigins(config.allowedOrigins, workerId), // pages of other sites may not connect
  });
  setupWorker(io);
  answerHandoffBarriers();
  cutSlowReaders(io, config.maxClientBacklog, workerId); // a client that stops reading is let go

  // The chat runs on "/" and on "/lounge", with the same handlers.
  for (const nsp of CHAT_NAMESPACES.map((name) => io.of(name))) {
    guardAdapterMessages(nsp, workerId); // a malformed message on Redis costs that message only

    nsp.on("connection", (socket) => {
      console.log(`worker: ${workerId}, connected, id: ${socket.id}`);

      socket.on("chat message", guardChatMessage(socket, workerId, config.chatRateLimit, (user, message) => {
        const data = `${message} from ${user}`;
        console.log(printable(data)); // no escape sequences or fake lines in the server's log
        socket.broadcast.emit("chat message", data);
      }));

      answerRoomRequests(socket); // /join and /leave, for emitter.ts --room
      answerWorkerQuestion(socket, workerId); // the page shows which worker holds its socket

      socket.on("disconnect", () => {
        console.log(`disconnected, id: ${socket.id}`);
      });
    });

    relayServerSideChat(nsp, workerId, config.adapter); // emitter.ts --server-side
  }

  drainOnSignal(io, redis.clients);
  reportReady();
}
