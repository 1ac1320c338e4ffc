/**
 * bench/clients.ts: one client process of the benchmarks. bench/bench.ts and bench/load.ts fork a
 * few of these (forkClients in bench/protocol.ts); each opens its share of the socket.io-client
 * connections and counts what arrives. It takes orders and answers over the IPC channel (see
 * ToClients / FromClients in bench/protocol.ts).
 *
 * Every benchmark message is the text "<phase> <seq> <sent at>", sent at is a wall-clock time in
 * milliseconds with sub-millisecond precision (performance.timeOrigin + performance.now()), so the
 * publish-to-receive latency can be measured across processes on the same machine.
 */
import { io, type Socket } from "socket.io-client";
import type { ServerToClientEvents } from "../lib/chat.ts";
import { type FromClients, now, type PhaseReport, parseMessage, type ToClients } from "./protocol.ts";

/** Connections opened at the same time: a burst of thousands would measure the kernel's backlog. */
const CONNECTING_AT_ONCE = 50;

const sockets: Socket<ServerToClientEvents>[] = [];
/** Indexes of the sockets that never connected: they expect nothing. */
const failed = new Set<number>();
let disconnects = 0;
const disconnectReasons: Record<string, number> = {};

// The phase being counted. seen[i] marks which sequence numbers socket i got, to tell lost,
// duplicated and reordered messages apart.
let phase = -1;
let expected = 0;
let seen: Uint8Array[] = [];
let highest: Int32Array = new Int32Array(0);
let latencies = new Float64Array(0);
let received = 0;
let duplicated = 0;
let reordered = 0;
let lastAt = 0;

const reply = (message: FromClients) => process.send!(message);

process.on("message", async (order: ToClients) => {
  switch (order.type) {
    case "connect": {
      const started = now();
      const failures = await connectAll(order.url, order.count, order.transports, order.timeoutMs, order.tokens);
      const ids = sockets.filter((socket) => socket.connected).map((socket) => socket.id!);
      reply({ type: "connected", ok: order.count - failures.length, failed: failures.length, reasons: failures.slice(0, 3), ms: now() - started, ids });
      break;
    }
    case "phase":
      phase = order.phase;
      expected = order.messages;
      seen = sockets.map(() => new Uint8Array(expected));
      highest = new Int32Array(sockets.length).fill(-1);
      latencies = new Float64Array(sockets.length * expected);
      received = duplicated = reordered = 0;
      lastAt = 0;
      reply({ type: "phase-ready" });
      break;
    case "progress": {
      let lowest = Infinity;
      for (let i = 0; i < sockets.length; i++) if (!failed.has(i)) lowest = Math.min(lowest, highest[i]! + 1);
      reply({ type: "progress", received, lowest });
      break;
    }
    case "report":
      reply({ type: "report", report: report() });
      break;
    case "close":
      for (const socket of sockets) socket.disconnect();
      // Let the close frames leave before the process ends.
      setTimeout(() => process.exit(0), 200);
      break;
  }
});

/**
 * Opens `count` connections, CONNECTING_AT_ONCE at a time; resolves with the failures' reasons.
 * With `tokens` (a server in auth mode), connection i shows tokens[i] at its handshake.
 */
async function connectAll(url: string, count: number, transports: string[], timeoutMs: number, tokens?: string[]): Promise<string[]> {
  const failures: string[] = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const token = tokens?.[next];
      next++;
      const reason = await connectOne(url, transports, timeoutMs, token);
      if (reason) failures.push(reason);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECTING_AT_ONCE, count) }, lane));
  return failures;
}

function connectOne(url: string, transports: string[], timeoutMs: number, token?: string): Promise<string | undefined> {
  // forceNew: one connection per socket (by default io() shares one connection per URL).
  // No reconnection: a client that cannot connect is what the benchmark reports, not hides.
  const auth = token === undefined ? {} : { token };
  const socket: Socket<ServerToClientEvents> = io(url, { forceNew: true, reconnection: false, transports, timeout: timeoutMs, auth });
  const index = sockets.length;
  sockets.push(socket);
  socket.on("chat message", (text) => count(index, text));
  return new Promise((resolve) => {
    // socket.io-client's `timeout` covers the Engine.IO handshake only; a client whose Socket.IO
    // CONNECT is never answered needs its own deadline.
    const timer = setTimeout(() => done("no Socket.IO connect within the timeout"), timeoutMs);
    const done = (reason?: string) => {
      clearTimeout(timer);
      socket.off("connect", onConnect).off("connect_error", onError);
      if (reason) {
        failed.add(index);
        socket.disconnect();
      } else {
        socket.on("disconnect", (reason) => {
          disconnects++;
          disconnectReasons[reason] = (disconnectReasons[reason] ?? 0) + 1;
        });
      }
      resolve(reason);
    };
    const onConnect = () => done();
    const onError = (err: Error) => done(err.message);
    socket.on("connect", onConnect).on("connect_error", onError);
  });
}

function count(index: number, text: string) {
  const at = now();
  const message = parseMessage(text);
  if (!message || message.phase !== phase || message.seq >= expected) return;
  const marks = seen[index]!;
  if (marks[message.seq]) {
    duplicated++;
    return;
  }
  marks[message.seq] = 1;
  if (message.seq < highest[index]!) reordered++;
  else highest[index] = message.seq;
  latencies[index * expected + message.seq] = at - message.sentAt;
  received++;
  lastAt = at;
}

function report(): PhaseReport {
  // Latencies of the messages that arrived, in one array (the missing ones are left out).
  const arrived = new Float64Array(received);
  let filled = 0;
  let lost = 0;
  for (let i = 0; i < sockets.length; i++) {
    if (failed.has(i)) continue;
    const marks = seen[i]!;
    for (let seq = 0; seq < expected; seq++) {
      if (marks[seq]) arrived[filled++] = latencies[i * expected + seq]!;
      else lost++;
    }
  }
  return { received, lost, duplicated, reordered, lastAt, disconnects, disconnectReasons, latencies: arrived };
}
