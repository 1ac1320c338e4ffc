/**
 * bench/scale-floor.ts: the floor that bench/scale.ts runs beside the kit. Absolute figures on
 * these machines drift threefold from day to day, so the kit's are only read beside what the least
 * a server can do costs in the same run: a bare `ws` server, no Socket.IO, on WORKERS processes
 * sharing PORT through node:cluster, that answers the light clients' Engine.IO and Socket.IO
 * handshake (bench/scale-clients.ts), pings them as engine.io does, and on each message of the
 * Redis channel `scale-floor` sends one pre-built text payload to every connection
 * (ws adds each frame's two-byte header). Started by
 * bench/scale.ts (support/cluster.ts), which reads its workers' CPU and memory in /proc.
 *
 *   REDIS_URL=redis://127.0.0.1:6390 PORT=3100 WORKERS=2 npx tsx bench/scale-floor.ts
 */
import cluster from "node:cluster";
import { randomUUID } from "node:crypto";
import { createClient } from "redis";
import { WebSocket, WebSocketServer } from "ws";

export const FLOOR_CHANNEL = "scale-floor";
const PING_INTERVAL_MS = 25_000; // engine.io's default, which the kit keeps

const port = Number(process.env.PORT ?? 3000);
const workers = Number(process.env.WORKERS ?? 2);

if (cluster.isPrimary) {
  let ready = 0;
  cluster.on("message", () => {
    if (++ready === workers) console.log(`listening on port ${port} with ${workers} workers (floor)`);
  });
  cluster.on("exit", (worker, code, signal) => {
    console.error(`floor worker ${worker.id} exited (${signal ?? code})`);
    process.exit(1);
  });
  for (let i = 0; i < workers; i++) cluster.fork();
  process.on("SIGTERM", () => process.exit(0));
} else {
  const server = new WebSocketServer({ port, perMessageDeflate: false, maxPayload: 1_000_000 });
  server.on("connection", (ws: WebSocket) => {
    const sid = randomUUID();
    ws.send(`0${JSON.stringify({ sid, upgrades: [], pingInterval: PING_INTERVAL_MS, pingTimeout: 20_000, maxPayload: 1_000_000 })}`);
    ws.on("message", (data: Buffer) => {
      if (data.length === 2 && data.toString() === "40") ws.send(`40${JSON.stringify({ sid: randomUUID() })}`);
    });
    ws.on("error", () => ws.terminate());
  });
  // One timer for all, where engine.io keeps one per socket: the floor is the least it can cost.
  setInterval(() => {
    for (const ws of server.clients) ws.send("2");
  }, PING_INTERVAL_MS).unref();

  await new Promise((listening) => (server.address() ? listening(null) : server.once("listening", listening)));
  const subscriber = createClient({ url: process.env.REDIS_URL });
  await subscriber.connect();
  await subscriber.subscribe(FLOOR_CHANNEL, (text) => {
    const frame = Buffer.from(`42${JSON.stringify(["chat message", text])}`);
    for (const ws of server.clients) ws.send(frame, { binary: false });
  });
  process.send!("ready");
  process.on("SIGTERM", () => process.exit(0));
}
