/**
 * lib/worker/page.ts: the chat page for browsers, served by every worker.
 *
 * The post's server answers every plain HTTP request with "worker: N", and curl still gets that. A
 * browser asking for "/" (a request that accepts text/html) gets public/index.html instead, with
 * the id of the worker that served it written in, and the script and stylesheet it loads. Socket.IO
 * itself serves /socket.io/socket.io.js. The files are read once, when the worker starts, and only
 * these names are served: no part of a request's path ever reaches the file system.
 *
 * The page connects with the transports the server accepts (TRANSPORTS), written into it as the
 * worker's id is: with websocket alone, a page that tried long-polling first would be refused.
 *
 * The page also asks which worker holds its socket (the "worker" event): only that worker can answer
 * over the socket, whichever worker served the page.
 */
import cluster from "node:cluster";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "socket.io";
import type { Transport } from "../config.ts";

/**
 * Only this origin's files, for everything a page can load or do (`default-src` covers scripts,
 * styles and connections, ws:// to the same host included; the other three do not fall back to it).
 * No inline script or style can run, so text that slipped into the page as HTML could not act.
 */
export const CONTENT_SECURITY_POLICY = "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'";

const PUBLIC = new URL("../../public/", import.meta.url);
const WORKER_MARK = "__WORKER__";
const TRANSPORTS_MARK = "__TRANSPORTS__";

interface File {
  type: string;
  body: Buffer;
}

/**
 * A request handler for the page's files: it answers and returns true, or returns false for a
 * request that is not for the page (which then gets the post's "worker: N").
 */
export function chatPage(transports: readonly Transport[]): (req: IncomingMessage, res: ServerResponse) => boolean {
  const read = (name: string) => readFileSync(new URL(name, PUBLIC), "utf8");
  const html: File = { type: "text/html; charset=utf-8", body: Buffer.from(read("index.html").replace(WORKER_MARK, String(cluster.worker!.id)).replace(TRANSPORTS_MARK, transports.join(","))) };
  const files = new Map<string, File>([
    ["/chat.js", { type: "text/javascript; charset=utf-8", body: Buffer.from(read("chat.js")) }],
    ["/chat.css", { type: "text/css; charset=utf-8", body: Buffer.from(read("chat.css")) }],
  ]);

  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = (req.url ?? "/").split("?")[0]!;
    const file = path === "/" ? (acceptsHtml(req) ? html : undefined) : files.get(path);
    if (!file) return false;
    res.writeHead(200, {
      "Content-Type": file.type,
      "Content-Length": file.body.length,
      "Content-Security-Policy": CONTENT_SECURITY_POLICY,
      "X-Content-Type-Options": "nosniff",
      // The page names the worker that served it: ask again each time, never keep an old copy.
      "Cache-Control": "no-cache",
    });
    res.end(req.method === "HEAD" ? undefined : file.body);
    return true;
  };
}

/** True when the Accept header lists text/html, as a browser's navigation does; curl's accepts anything, which is not asking for a page. */
function acceptsHtml(req: IncomingMessage): boolean {
  return (req.headers.accept ?? "").split(",").some((range) => range.split(";")[0]!.trim().toLowerCase() === "text/html");
}

/** Answers the page's "worker" question on a socket: the id of the worker that holds it. */
export function answerWorkerQuestion(socket: Socket): void {
  socket.on("worker", (answer: unknown) => {
    if (typeof answer === "function") answer(cluster.worker!.id);
  });
}
