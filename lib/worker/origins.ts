/**
 * lib/worker/origins.ts: which web pages may connect to the chat.
 *
 * A browser lets any page open a WebSocket to any server, and sends a cross-origin long-polling
 * handshake (a plain GET) without asking either; only the Origin header says which page is asking.
 * engine.io checks no Origin, and socket.io's `cors` option only adds response headers, so by
 * default every page a user visits could join the chat, read it and post into it (cross-site
 * WebSocket hijacking; upstream socket.io#3788, and #4014 where the maintainers point to
 * `allowRequest`, which this module fills in).
 *
 * Accepted: a handshake without Origin (client.ts and other programs send none; a browser sends one
 * on every WebSocket handshake and cross-origin request, and none on the page's own same-origin
 * long-polling GET, nor on a <script> or <img> request, whose answer the page cannot read), one from the server's own origin as the browser sees it (the Origin's scheme and
 * host:port are those the request came to: its Host header, and X-Forwarded-Proto or the
 * connection's TLS for the scheme), and one from ALLOWED_ORIGINS. The check runs on the handshake,
 * polling or WebSocket alike; the requests that follow carry the session id that only an accepted
 * handshake hands out (engine.io does not check them again: upstream socket.io#5077).
 */
import type { IncomingMessage } from "node:http";
import type { ServerOptions } from "socket.io";
import { printable } from "../chat.ts";
import { countedLog, log } from "../log.ts";
import { countHandshakeRefused } from "./metrics.ts";

/** Why this handshake's Origin is refused, or null when it may connect. */
export function originProblem(req: IncomingMessage, allowedOrigins: readonly string[]): string | null {
  const origin = req.headers.origin;
  if (origin === undefined) return null; // not a browser
  if (allowedOrigins.includes(origin)) return null;
  const own = ownOrigin(req);
  if (own !== null && origin === own) return null;
  return `origin ${origin} is neither this server's (${own ?? "no Host header"}) nor in ALLOWED_ORIGINS`;
}

/** The origin a browser that sent this request to us would have: its scheme and Host header. */
export function ownOrigin(req: IncomingMessage): string | null {
  const host = req.headers.host;
  // Behind a proxy that ends TLS, the proxy says which scheme the browser used.
  const forwarded = req.headers["x-forwarded-proto"];
  const proto = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(",")[0]!.trim().toLowerCase();
  const scheme = proto === "https" || proto === "http" ? proto : "encrypted" in req.socket && req.socket.encrypted ? "https" : "http";
  if (!host || !URL.canParse(`${scheme}://${host}`)) return null;
  const url = new URL(`${scheme}://${host}`);
  return url.pathname === "/" && !url.username ? url.origin : null; // a Host header with more in it is no host
}

/**
 * socket.io options that let in only the pages above: `allowRequest`, and `cors` for the pages of
 * ALLOWED_ORIGINS, whose long-polling requests the browser would otherwise not let them read.
 * A refusal is answered with HTTP 403 (polling) or 400 (WebSocket) by engine.io, and logged in one
 * line at most every 10 s per worker, with the count of refusals since.
 */
export function allowedOrigins(origins: readonly string[]): Pick<Partial<ServerOptions>, "allowRequest" | "cors"> {
  const refused = countedLog("refused a connection", 10_000, log);
  return {
    allowRequest(req, callback) {
      const problem = originProblem(req, origins);
      if (problem === null) return callback(null, true);
      refused(printable(problem).slice(0, 300));
      countHandshakeRefused("origin");
      callback("origin not allowed", false);
    },
    cors: origins.length > 0 ? { origin: [...origins] } : undefined,
  };
}
