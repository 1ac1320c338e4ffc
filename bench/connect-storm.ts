/**
 * bench/connect-storm.ts: does every client connect? Starts a private Redis and the real 2-worker
 * cluster (index.ts), then in each trial opens many Socket.IO clients at once, spread over a few
 * client processes, and counts the ones that finish the Engine.IO handshake but never get the
 * Socket.IO connect acknowledgement (the symptom lib/primary/handoffs.ts fixes). Not part of `npm test`:
 * it prints figures and asserts nothing; the exit code is 0 only when every client connected.
 *
 *   npx -y -p node@24 npx tsx bench/connect-storm.ts                    20 trials x 1,000, Node server
 *   npx -y -p node@24 npx tsx bench/connect-storm.ts --server deno      the server on Deno (or bun)
 *   npx -y -p node@24 npx tsx bench/connect-storm.ts --transports default --trials 5
 *
 * --transports websocket (the default here) connects straight over WebSocket, where the race was
 * seen; "default" is the client's own default (long-polling first, then the upgrade).
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { io as connect, type Socket } from "socket.io-client";
import { EXIT_USAGE } from "../lib/failures.ts";
import { startCluster } from "../support/cluster.ts";
import { type Runtime, sleep, stopAll } from "../support/scripts.ts";
import { shareOf } from "./protocol.ts";

// A mistyped option gets one line, not a stack trace.
const options = (() => {
  try {
    return parseArgs({
      options: {
        server: { type: "string", default: "node" },
        trials: { type: "string", default: "20" },
        clients: { type: "string", default: "1000" },
        processes: { type: "string", default: "4" },
        transports: { type: "string", default: "websocket" },
        "timeout-ms": { type: "string", default: "15000" },
      },
    }).values;
  } catch (err) {
    fail((err as Error).message);
  }
})();
const SERVER = options.server as Runtime;
const TRIALS = Number(options.trials);
const CLIENTS = Number(options.clients);
const PROCESSES = Number(options.processes);
const TIMEOUT_MS = Number(options["timeout-ms"]);
const TRANSPORTS = options.transports === "default" ? undefined : [options.transports!];

/** What one client process reports for one trial. */
interface Counts {
  connected: number;
  /** Engine.IO handshake done, no Socket.IO connect acknowledgement. */
  hung: number;
  /** Refused: connect_error, before or after the handshake. */
  failed: number;
  /** The connect_error messages and the hung clients' Engine.IO states, with their counts. */
  errors: Record<string, number>;
  /** Milliseconds from creation to "connect", one per connected client. */
  latencies: number[];
}
/** What the parent asks a client process to do. */
interface Order {
  url: string;
  clients: number;
}

if (process.send) {
  // A client process: one storm per order, then its counts.
  process.on("message", async (order: Order) => process.send!(await storm(order)));
  process.on("disconnect", () => process.exit(0));
} else {
  await main();
}

async function main() {
  if (!["node", "bun", "deno"].includes(SERVER)) fail(`--server must be node, bun or deno, got "${SERVER}"`);
  if (!(TRIALS >= 1 && CLIENTS >= PROCESSES && CLIENTS <= 5000 && PROCESSES >= 1 && PROCESSES <= 16 && TIMEOUT_MS >= 1000)) {
    fail("expected 1 <= --trials, 1 <= --processes <= 16, --processes <= --clients <= 5000, --timeout-ms >= 1000");
  }
  if (TRANSPORTS && !["websocket", "polling"].includes(TRANSPORTS[0]!)) fail("--transports must be websocket, polling or default");

  const cluster = await startCluster({ runtime: SERVER, timeoutMs: 30_000 });
  const { server, url } = cluster;
  // fork() reuses this process's loader (tsx) and passes the options on.
  const children = Array.from({ length: PROCESSES }, () => fork(fileURLToPath(import.meta.url), process.argv.slice(2)));
  const results: (Omit<Counts, "errors"> & { errors: string[] })[] = [];
  try {
    console.log(
      `server: ${SERVER}, 2 workers; ${TRIALS} trials x ${CLIENTS} clients from ${PROCESSES} processes, ` +
        `transports: ${options.transports}, timeout ${TIMEOUT_MS} ms`,
    );
    for (let i = 1; i <= TRIALS; i++) {
      const counts = await Promise.all(
        children.map(async (child, c) => {
          child.send({ url, clients: shareOf(CLIENTS, PROCESSES, c) } satisfies Order);
          const [reply] = await once(child, "message");
          return reply as Counts;
        }),
      );
      const trial = {
        connected: total(counts, (c) => c.connected),
        hung: total(counts, (c) => c.hung),
        failed: total(counts, (c) => c.failed),
        errors: counts.flatMap((c) => Object.entries(c.errors)).map(([message, n]) => `${n} x ${message}`),
        latencies: counts.flatMap((c) => c.latencies),
      };
      results.push(trial);
      console.log(
        `trial ${String(i).padStart(2)}: connected ${trial.connected}, hung ${trial.hung}, failed ${trial.failed}; ` +
          `p50 ${percentile(trial.latencies, 0.5)} ms, p99 ${percentile(trial.latencies, 0.99)} ms, ` +
          `load ${loadavg()[0]!.toFixed(1)}` + // the machine may be busy with more than this
          (trial.errors.length > 0 ? `; ${trial.errors.join(", ")}` : ""),
      );
      await sleep(1000); // let the disconnections settle before the next storm
    }
    // A server that complained (a barrier timeout, a dead worker) says more than the counts.
    if (server.stderr.some((line) => line !== "")) console.log(`server stderr:\n${server.stderr.join("\n")}`);
  } finally {
    for (const child of children) child.kill();
    await stopAll();
    await cluster.stop();
  }

  const hung = total(results, (t) => t.hung);
  const failed = total(results, (t) => t.failed);
  const p99s = results.map((t) => percentile(t.latencies, 0.99)).sort((x, y) => x - y);
  console.log(
    `summary: ${total(results, (t) => t.connected)}/${TRIALS * CLIENTS} connected; hung ${hung} ` +
      `(trials with a hung client: ${results.filter((t) => t.hung > 0).length}/${TRIALS}); failed ${failed}; ` +
      `median p99 ${p99s[Math.floor(p99s.length / 2)]} ms, worst p99 ${p99s.at(-1)} ms`,
  );
  process.exit(hung + failed === 0 ? 0 : 1);
}

/** Opens `clients` sockets at once, waits for them (at most TIMEOUT_MS), counts, disconnects. */
async function storm({ url, clients }: Order): Promise<Counts> {
  const sockets: Socket[] = [];
  const opened = new Set<Socket>();
  const refused = new Set<Socket>();
  const errors: Record<string, number> = {};
  const latencies: number[] = [];
  for (let i = 0; i < clients; i++) {
    const created = Date.now();
    const socket = connect(url, { forceNew: true, reconnection: false, transports: TRANSPORTS, timeout: TIMEOUT_MS });
    socket.io.once("open", () => opened.add(socket));
    socket.once("connect", () => latencies.push(Date.now() - created));
    socket.once("connect_error", (err) => {
      refused.add(socket);
      errors[err.message] = (errors[err.message] ?? 0) + 1;
    });
    sockets.push(socket);
  }
  const deadline = Date.now() + TIMEOUT_MS;
  while (latencies.length + refused.size < clients && Date.now() < deadline) await sleep(50);
  const connected = sockets.filter((socket) => socket.connected).length;
  const hungSockets = sockets.filter((socket) => opened.has(socket) && !socket.connected && !refused.has(socket));
  // Whether the Engine.IO session is still open tells a lost packet from a dropped transport.
  for (const socket of hungSockets) {
    const state = `hung, Engine.IO ${socket.io.engine?.readyState ?? "gone"} over ${socket.io.engine?.transport?.name}`;
    errors[state] = (errors[state] ?? 0) + 1;
  }
  const hung = hungSockets.length;
  for (const socket of sockets) socket.disconnect();
  return { connected, hung, failed: clients - connected - hung, errors, latencies };
}

function total<T>(items: T[], pick: (item: T) => number): number {
  return items.reduce((sum, item) => sum + pick(item), 0);
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function fail(message: string): never {
  console.error(message);
  process.exit(EXIT_USAGE);
}
