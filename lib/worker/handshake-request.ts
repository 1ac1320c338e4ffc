/**
 * lib/worker/handshake-request.ts: let go of each connection's handshake request.
 *
 * engine.io keeps the HTTP request of a connection's handshake (its IncomingMessage: raw headers,
 * stream state, the parser's leftovers) for the connection's whole life, and socket.io reads it
 * only to build `socket.handshake` when the client joins a namespace. Socket.IO's memory-usage
 * page tells users to set `rawSocket.request = null`, which engine.io's types refuse
 * (socketio/engine.io#696) and which leaves a namespace joined later (the kit's "/lounge") with
 * empty headers and a wrong `secure`. So the request is swapped for a plain object holding only
 * what socket.io's handshake reads: headers, url, the parsed query and whether TLS carried it.
 * Who the socket is, and its origin, were settled at the handshake (lib/worker/identity.ts,
 * lib/worker/origins.ts) and live in `socket.data` and `socket.handshake`.
 * bench/scale.ts measured what it saves (docs/reference/performance.md#connections-on-one-machine).
 */
import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import type { Server } from "socket.io";

/** What socket.io 4.8 reads of engine.io's request when it builds a socket's handshake. */
interface KeptRequest {
  headers: IncomingMessage["headers"];
  url: string | undefined;
  _query: Record<string, string>;
  connection: { encrypted: boolean; remoteAddress: string | undefined };
}

export function releaseHandshakeRequests(io: Server): void {
  io.engine.on("connection", (conn: { request: IncomingMessage & { _query?: Record<string, string> } | KeptRequest }) => {
    const req = conn.request as IncomingMessage & { _query?: Record<string, string> };
    if (!req) return;
    const kept: KeptRequest = {
      headers: req.headers,
      url: req.url,
      _query: req._query ?? {},
      connection: { encrypted: Boolean((req.socket as TLSSocket | undefined)?.encrypted), remoteAddress: req.socket?.remoteAddress },
    };
    conn.request = kept;
  });
}
