/**
 * lib/worker/slow-readers.ts: a client that stops reading is let go before it costs its worker a gigabyte.
 *
 * engine.io queues every packet for a connection whose transport is not writable in
 * `socket.writeBuffer`, with no cap (socketio/engine.io#420; socket.io#4435 asks for
 * back-pressure). A client that stops reading (a frozen tab, a stuck process, a peer that means
 * harm) makes that queue grow until the ping timeout lets the connection go, ~45 s later, and a
 * worker's memory with it (docs/reference/faults.md#clients-that-stop-reading has the figures).
 *
 * cutSlowReaders() looks at every connection of the worker four times a second. A connection
 * whose pending output (the bytes in engine.io's write buffer, plus what the WebSocket's TCP
 * socket still holds) has stayed over `maxBacklog` for 2 s is closed, and its memory freed at
 * once: close(true) discards the transport, and the WebSocket is terminated rather than closed
 * (a close handshake would wait for a reader that does not read). The client sees its transport
 * close and reconnects by itself; under ADAPTER=streams it then recovers what it missed.
 *
 * Size the limit as the rate one client receives times the lag it may fall behind before it is
 * better off reconnecting: the default, 10 MiB, is 1 MB/s for 10 s. Healthy clients stay far
 * below it (long-polling ones hold what arrives between two polls: about 1 MiB at 10 MB/s).
 * MAX_CLIENT_BACKLOG=0 turns the check off.
 */
import type { Server } from "socket.io";
import { log } from "../log.ts";
import { countSlowReaderCut } from "./metrics.ts";

/** How often the backlogs are looked at, and how long one may stay over the limit. */
const CHECK_EVERY_MS = 250;
const GRACE_MS = 2000;

/** The parts of engine.io's socket (not in its public types) that say what waits for a client. */
interface EngineConnection {
  id: string;
  writeBuffer: { data?: unknown }[];
  transport: { name: string; socket?: { terminate?: () => void; _socket?: { writableLength?: number } } };
  close(discard?: boolean): void;
}

export function cutSlowReaders(io: Server, maxBacklog: number): void {
  if (maxBacklog === 0) return;
  const overSince = new WeakMap<EngineConnection, number>();
  const timer = setInterval(() => {
    const now = performance.now();
    const clients = (io.engine as unknown as { clients: Record<string, EngineConnection> }).clients;
    for (const id in clients) {
      const conn = clients[id]!;
      const backlog = pendingBytes(conn, maxBacklog);
      if (backlog <= maxBacklog) {
        overSince.delete(conn);
        continue;
      }
      const since = overSince.get(conn);
      if (since === undefined) overSince.set(conn, now);
      else if (now - since >= GRACE_MS) cut(conn, backlog, now - since);
    }
  }, CHECK_EVERY_MS);
  timer.unref();

  function cut(conn: EngineConnection, backlog: number, ms: number) {
    const mib = (backlog / 2 ** 20).toFixed(1);
    log(
      `closed the connection of a client that does not read (${conn.id}, ${conn.transport.name}): ` +
        `over ${mib} MiB waiting for it for ${(ms / 1000).toFixed(1)} s, MAX_CLIENT_BACKLOG is ${maxBacklog} bytes`,
    );
    countSlowReaderCut();
    const transport = conn.transport;
    conn.close(true);
    transport.socket?.terminate?.();
  }
}

/**
 * The bytes waiting for a connection, counted until they pass `enough` (a stuck client's buffer
 * holds tens of thousands of packets: no need to add them all up four times a second). A packet
 * that is a string counts its length, a close enough measure of its bytes for this purpose.
 */
function pendingBytes(conn: EngineConnection, enough: number): number {
  let total = conn.transport.socket?._socket?.writableLength ?? 0;
  for (const packet of conn.writeBuffer) {
    const data = packet.data;
    total += typeof data === "string" ? data.length : data instanceof ArrayBuffer || ArrayBuffer.isView(data) ? data.byteLength : 0;
    if (total > enough) break;
  }
  return total;
}
