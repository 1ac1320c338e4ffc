/**
 * lib/worker/http.ts: the worker's HTTP server. Socket.IO answers its own requests on it; the
 * post's answer (`worker: N`) gets every other request, except a browser's, which gets the chat
 * page (lib/worker/page.ts).
 *
 * A connection the primary handed over must complete its request head within REQUEST_TIMEOUT: a
 * head dripped a byte at a time goes to a worker with its first byte (the primary bounds the rest,
 * lib/primary/sockets.ts). Node's own headersTimeout is checked only every 30 s and Bun and Deno
 * may not have it: a timer per connection, cleared by the request or the upgrade, works the same
 * on each runtime.
 *
 * Balancers ask two questions of every host: /healthz (is the worker alive: 200 while it runs)
 * and /readyz (should it get new sessions: 503 while its path to Redis is down or it drains,
 * with the reason; 200 "ready" otherwise). Every worker answers them, whichever the primary picks.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { ServerConfig } from "../config.ts";
import { chatPage } from "./page.ts";

/** Why this worker should not get new sessions, or null when it should. */
let notReady: () => string | null = () => "starting";

/** Called once the worker serves, with what decides its readiness from then on. */
export function reportReadiness(reason: () => string | null): void {
  notReady = reason;
}

/** /healthz and /readyz; false for any other request. */
function answerHealth(req: IncomingMessage, res: ServerResponse): boolean {
  const path = req.url?.split("?")[0];
  if (path !== "/healthz" && path !== "/readyz") return false;
  const reason = path === "/readyz" ? notReady() : null;
  res.writeHead(reason === null ? 200 : 503, { "content-type": "text/plain", "cache-control": "no-store" });
  res.end(reason === null ? (path === "/readyz" ? "ready\n" : "alive\n") : `not ready: ${reason}\n`);
  return true;
}

export function workerHttpServer(config: Pick<ServerConfig, "requestTimeout" | "transports">, answer: RequestListener): Server {
  const page = chatPage(config.transports);
  const server = createServer((req, res) => answerHealth(req, res) || page(req, res) || answer(req, res));

  const deadlines = new WeakMap<object, ReturnType<typeof setTimeout>>();
  const done = (req: IncomingMessage) => clearTimeout(deadlines.get(req.socket));
  server.on("connection", (socket: Socket) => {
    deadlines.set(socket, setTimeout(() => socket.destroy(), config.requestTimeout));
    socket.once("close", () => clearTimeout(deadlines.get(socket)));
  });
  server.prependListener("request", done);
  server.prependListener("upgrade", done);
  return server;
}
