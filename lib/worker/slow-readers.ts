/**
 * lib/worker/slow-readers.ts: a client that stops reading is let go before it costs its worker a
 * gigabyte, and a client that keeps reading is kept, however far behind a burst puts it.
 *
 * engine.io queues every packet for a connection whose transport is not writable in
 * `socket.writeBuffer`, with no cap (socketio/engine.io#420; socket.io#4435 asks for
 * back-pressure). A client that stops reading (a frozen tab, a stuck process, a peer that means
 * harm) makes that queue grow until the ping timeout lets the connection go, ~45 s later, and a
 * worker's memory with it (docs/reference/faults.md#clients-that-stop-reading has the figures).
 * Size alone is the wrong test: an unpaced burst puts a healthy reader tens of MiB behind for a
 * few seconds (docs/reference/faults.md#bursts). Centrifugo's client queue limit and engine.io#420
 * name the same two needs: progress for the reader, a ceiling for the process.
 *
 * Event-driven: a connection is looked at only while its transport has told engine.io it is not
 * writable (a WebSocket whose last batch the kernel has not taken yet, a long-polling client
 * between two polls) and packets pile up for it; with every client writable no timer runs. While
 * some are watched, a tick every 100 ms measures, per watched connection, the bytes waiting
 * (engine.io's write buffer plus the TCP socket's unsent bytes) and the bytes it took (handed to
 * the kernel for a WebSocket, handed to a poll response for long-polling). Three rules, each
 * named in the log line of the cut:
 * - "took nothing": over 1 MiB waiting and less than 16 KiB taken for SLOW_READER_GRACE (0.5 s;
 *   2 s at least for long-polling, whose progress shows once per poll). A stuck client is let go
 *   about that long into a burst, before it holds all of it. The grace is a trade: the kernel
 *   of a slow reader shows the sender progress only once the reader has emptied about half its
 *   receive buffer (MiBs on loopback), so a reader slower than that half per grace looks stuck
 *   under a burst (docs/reference/faults.md#bursts has the figures).
 * - "client ceiling": over MAX_CLIENT_BACKLOG waiting, taking bytes or not;
 * - "worker ceiling": the worker's watched clients together over MAX_WORKER_BACKLOG: the client
 *   that has gone longest without taking anything goes first, until the sum is under it again.
 *
 * A cut frees the memory at once: close(true) discards the transport, and the WebSocket is
 * terminated rather than closed (a close handshake would wait for a reader that does not read).
 * The client sees its transport close and reconnects by itself; under ADAPTER=streams it then
 * recovers what it missed. MAX_CLIENT_BACKLOG=0 turns the check off.
 */
import { setImmediate } from "node:timers";
import type { Server } from "socket.io";
import { log } from "../log.ts";
import { countSlowReaderCut } from "./metrics.ts";

const TICK_MS = 100;
/** Long-polling shows progress once per poll, and a poll can carry MiBs: never less than this. */
const POLLING_GRACE_MS = 2000;
/** What counts as taking something (32 KiB/s at the default grace). A reader that keeps up takes MB/s, a stuck one nothing. */
const PROGRESS_BYTES = 16 * 2 ** 10;
/** Less than this waiting is no one's trouble: a healthy polling client holds ~1 MiB between polls at 10 MB/s. */
const STALL_FLOOR = 2 ** 20;
/** Below this a connection is not worth a look: a polling client between polls, a ws mid-batch. */
const WATCH_FLOOR = 64 * 2 ** 10;

export interface SlowReaderLimits {
  /** SLOW_READER_GRACE: milliseconds a client with bytes waiting may go without taking any. */
  slowReaderGrace: number;
  /** MAX_CLIENT_BACKLOG: bytes that may wait for one client, reading or not; 0 turns it all off. */
  maxClientBacklog: number;
  /** MAX_WORKER_BACKLOG: bytes that may wait for all the worker's clients together. */
  maxWorkerBacklog: number;
}

/** The parts of engine.io's socket (not in its public types) that say what waits for a client. */
interface EngineConnection {
  id: string;
  transport: {
    name: string;
    writable: boolean;
    socket?: { terminate?: () => void; _socket?: NetSide };
  };
  close(discard?: boolean): void;
  on(event: "packetCreate", listener: (packet: Packet) => void): void;
  on(event: "flush", listener: (packets: Packet[]) => void): void;
  on(event: "upgrade", listener: () => void): void;
  once(event: "close", listener: () => void): void;
}
interface Packet {
  data?: unknown;
}
/** A WebSocket's TCP socket; _handle only under Node, where libuv tells what the kernel took mid-write. */
interface NetSide {
  bytesWritten?: number;
  writableLength?: number;
  _handle?: { writeQueueSize?: number } | null;
}

/** What the check knows of one connection. */
interface Reader {
  conn: EngineConnection;
  /** Bytes in engine.io's write buffer, kept up to date by its packetCreate and flush events. */
  queued: number;
  /** Bytes handed to the transport so far. */
  flushed: number;
  /** Bytes handed to the kernel so far (WebSocket), as last measured. */
  completed: number;
  /** libuv's unsent bytes of the write in flight, at its largest since `completed` last moved. */
  queueSeen: number;
  /** Bytes taken (flushed for polling, kernel's for ws) when it last made progress, and when. */
  takenAtProgress: number;
  progressAt: number;
  /** Bytes waiting, as of the last tick. */
  backlog: number;
  watched: boolean;
}

export function cutSlowReaders(io: Server, { maxClientBacklog, maxWorkerBacklog, slowReaderGrace }: SlowReaderLimits): void {
  if (maxClientBacklog === 0) return;
  const watched = new Set<Reader>();
  let timer: ReturnType<typeof setInterval> | undefined;
  let lastTick = 0;
  let tickSoon = false;

  io.engine.on("connection", (conn: EngineConnection) => {
    const reader: Reader = { conn, queued: 0, flushed: 0, completed: 0, queueSeen: 0, takenAtProgress: 0, progressAt: 0, backlog: 0, watched: false };
    conn.on("packetCreate", (packet) => {
      reader.queued += sizeOf(packet);
      // Writable, the packet leaves at once; not writable, it waits: that is when to look.
      if (!reader.watched && !conn.transport.writable && reader.queued > WATCH_FLOOR) watch(reader);
      // A burst from Redis can keep the event loop in I/O callbacks past the timer's turn: the
      // packets of watched clients bring the tick forward (after the callback, not inside engine.io's send).
      else if (reader.watched && !tickSoon && performance.now() - lastTick >= TICK_MS) {
        tickSoon = true;
        setImmediate(tick);
      }
    });
    conn.on("flush", (packets) => {
      let bytes = 0;
      for (const packet of packets) bytes += sizeOf(packet);
      reader.queued = Math.max(0, reader.queued - bytes);
      reader.flushed += bytes;
    });
    // After an upgrade from long-polling, "taken" is counted on the new TCP socket, from 0: the
    // polling total it replaces must not read as bytes still to take.
    conn.on("upgrade", () => {
      reader.completed = 0;
      reader.queueSeen = 0;
      reader.takenAtProgress = takenBy(reader);
      reader.progressAt = performance.now();
    });
    conn.once("close", () => unwatch(reader));
  });

  function watch(reader: Reader) {
    reader.watched = true;
    const taken = takenBy(reader);
    reader.takenAtProgress = taken;
    reader.progressAt = performance.now();
    watched.add(reader);
    if (timer === undefined) {
      timer = setInterval(tick, TICK_MS);
      timer.unref();
    }
  }

  function unwatch(reader: Reader) {
    reader.watched = false;
    watched.delete(reader);
    if (watched.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  function tick() {
    const now = performance.now();
    lastTick = now;
    tickSoon = false;
    let total = 0;
    for (const reader of watched) {
      const taken = takenBy(reader);
      reader.backlog = reader.queued + (netSide(reader.conn)?.writableLength ?? 0);
      if (taken - reader.takenAtProgress >= PROGRESS_BYTES || reader.backlog === 0) {
        reader.takenAtProgress = taken;
        reader.progressAt = now;
      }
      const idleMs = now - reader.progressAt;
      // Next to nothing waits: no one's trouble until packets pile up again (packetCreate watches it then).
      if (reader.backlog <= WATCH_FLOOR) unwatch(reader);
      else if (reader.backlog > maxClientBacklog) cut(reader, "client ceiling", `over MAX_CLIENT_BACKLOG (${mib(maxClientBacklog)} MiB)`, now);
      else if (reader.backlog > STALL_FLOOR && idleMs >= (reader.conn.transport.name === "polling" ? Math.max(slowReaderGrace, POLLING_GRACE_MS) : slowReaderGrace)) cut(reader, "took nothing", `over ${mib(STALL_FLOOR)} MiB`, now);
      else total += reader.backlog;
    }
    if (total <= maxWorkerBacklog) return;
    // Longest without taking anything first; the largest first among equals.
    const order = [...watched].sort((a, b) => a.progressAt - b.progressAt || b.backlog - a.backlog);
    for (const reader of order) {
      if (total <= maxWorkerBacklog) break;
      total -= reader.backlog;
      cut(reader, "worker ceiling", `the worker's clients together over MAX_WORKER_BACKLOG (${mib(maxWorkerBacklog)} MiB)`, now);
    }
  }

  /** The one place a slow reader is let go (and counted, where a metric is wanted). */
  function cut(reader: Reader, rule: "took nothing" | "client ceiling" | "worker ceiling", why: string, now: number) {
    const { conn } = reader;
    const idle = ((now - reader.progressAt) / 1000).toFixed(1);
    log(`closed the connection of a slow reader (${conn.id}, ${conn.transport.name}), rule "${rule}": ${mib(reader.backlog)} MiB waiting, ${why}; it took nothing for ${idle} s`);
    countSlowReaderCut(rule);
    unwatch(reader);
    const transport = conn.transport;
    conn.close(true);
    transport.socket?.terminate?.();
  }

  /**
   * The bytes a connection took so far: what went to poll responses, or for a WebSocket what the
   * kernel accepted (bytesWritten counts what was handed to the socket, writableLength what of it
   * is unsent or mid-write; libuv's writeQueueSize shows a large write going out piece by piece).
   */
  function takenBy(reader: Reader): number {
    const net = netSide(reader.conn);
    if (!net) return reader.flushed;
    const completed = (net.bytesWritten ?? 0) - (net.writableLength ?? 0);
    const inLibuv = net._handle?.writeQueueSize ?? 0;
    if (completed !== reader.completed) {
      reader.completed = completed;
      reader.queueSeen = inLibuv;
    } else reader.queueSeen = Math.max(reader.queueSeen, inLibuv);
    return completed + (reader.queueSeen - inLibuv);
  }
}

function netSide(conn: EngineConnection): NetSide | undefined {
  return conn.transport.name === "websocket" ? conn.transport.socket?._socket : undefined;
}

/** A packet's bytes: a string counts its length, a close enough measure for this purpose. */
function sizeOf(packet: Packet): number {
  const data = packet.data;
  return typeof data === "string" ? data.length : data instanceof ArrayBuffer || ArrayBuffer.isView(data) ? data.byteLength : 0;
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}
