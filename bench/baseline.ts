/**
 * bench/baseline.ts: the benchmark's yardstick. One process, Socket.IO's default in-memory
 * adapter, no Redis, no cluster: what the same machine delivers without scaling out. It publishes
 * itself when bench.ts asks, with the same pacing as the emitter:
 *
 *   GET /publish?phase=1&count=500&rate=100   emits the messages, answers when all are sent
 *
 * Its Server options are index.ts's worker options, so that the comparison is like for like:
 * change both together.
 *
 * Environment: PORT (required).
 */
import { createServer } from "node:http";
import { Server } from "socket.io";
import type { ClientToServerEvents, ServerToClientEvents } from "../lib/chat.ts";
import { publish } from "./protocol.ts";

const PORT = Number(process.env.PORT);
if (!Number.isInteger(PORT) || PORT <= 0 || PORT > 65535) {
  console.error(`PORT must be a port number, got "${process.env.PORT}"`);
  process.exit(2); // the kit's rule: a configuration error
}

const httpServer = createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://localhost");
  if (url.pathname !== "/publish") return res.writeHead(404).end();
  const [phase, count, rate] = ["phase", "count", "rate"].map((name) => Number(url.searchParams.get(name)));
  await publish(phase!, count!, rate!, (text) => io.emit("chat message", text));
  res.end("sent");
});

const io = new Server<ClientToServerEvents, ServerToClientEvents>(httpServer);

httpServer.listen(PORT, "127.0.0.1", () => console.log(`listening on port ${PORT}, in-memory adapter`));
process.on("SIGTERM", () => process.exit(0));
