/**
 * lib/primary/sockets.ts: the sticky primary survives anything a TCP peer does.
 *
 * @socket.io/sticky 2.0.1 reads the first bytes of every connection in the primary, and keeps a
 * connection whose request has a body (a long-polling POST) there for its whole life, relaying
 * the body to a worker chunk by chunk. It adds no "error" listener to these sockets: one reset
 * at the wrong moment (the head of a POST, then RST) is an unhandled ECONNRESET that kills the
 * primary and, with it, every worker. Nor does it bound how long it waits: a peer that connects
 * and sends nothing, or sends a head and drips its body, holds a socket in the primary forever.
 *
 * guardPrimarySockets() gives every accepted socket an error listener and two deadlines; the
 * errors are counted (countedLog), not logged one by one. The workers bound a dripped request head
 * the same way (lib/worker/http.ts).
 * No issue in socketio/socket.io-sticky names the gap; another sticky library had the same one
 * (wzrdtales/socket-io-sticky-session#9: ECONNRESET on a socket the primary held).
 */
import type { Server as NetServer, Socket } from "node:net";
import { countedLog } from "../log.ts";

/**
 * In the primary, after setupMaster(server) (sticky's own "connection" listener clears "data"
 * listeners, so ours must come after it). `timeoutMs` bounds the wait for the first bytes, and
 * the life of a connection whose body the primary relays (the worker answers such a request at
 * once and closes the connection: "Connection: close").
 */
export function guardPrimarySockets(server: NetServer, timeoutMs: number): void {
  const count = countedLog("primary: client connections failed or timed out");
  server.on("connection", (socket: Socket) => {
    socket.on("error", (err: NodeJS.ErrnoException) => count(err.code ?? err.message));
    let deadline = setTimeout(() => {
      count("no request in time");
      socket.destroy();
    }, timeoutMs);
    socket.once("data", (chunk: Buffer) => {
      clearTimeout(deadline);
      // The same test as sticky's: a head that announces a body keeps the socket here.
      const head = chunk.subarray(0, chunk.indexOf("\r\n\r\n")).toString("latin1").toLowerCase();
      if (!head.includes("content-length:") && !head.includes("transfer-encoding:")) return;
      deadline = setTimeout(() => {
        count("request body not complete in time");
        socket.destroy();
      }, timeoutMs);
    });
    socket.once("close", () => clearTimeout(deadline));
  });
}
