/**
 * emitter.ts: sends a chat message to the clients of index.ts without connecting to it. It only
 * publishes to Redis; the server's Redis adapter delivers the message as if a worker had sent it.
 *
 *   npx tsx emitter.ts               everyone gets "message from outside"
 *   npx tsx emitter.ts <socket id>   only that socket gets "Hi guys from Emitter"
 *   (also: npm run emit -- [socket id], bun emitter.ts, deno run -A emitter.ts)
 *
 * Environment: REDIS_URL (redis://localhost:6379).
 */
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { redactUrl, redisFailure, type ServerToClientEvents } from "./shared.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://localhost:6379";
const socketId = process.argv[2];

let redisClient;
try {
  // No retries: a one-shot command should fail fast and say why.
  redisClient = createClient({ url: REDIS_URL, socket: { connectTimeout: 5000, reconnectStrategy: false } });
  redisClient.on("error", () => {}); // connect() below reports the failure
  await redisClient.connect();
} catch (err) {
  console.error(`cannot connect to Redis at ${redactUrl(REDIS_URL)}: ${redisFailure(err)}`);
  process.exit(1);
}

const emitter = new Emitter<ServerToClientEvents>(redisClient);

if (socketId) {
  emitter.to(socketId).emit("chat message", "Hi guys from Emitter");
} else {
  emitter.emit("chat message", "message from outside");
}

// emit() does not wait for the PUBLISH; close() sends what is queued, then ends the connection.
await redisClient.close();
