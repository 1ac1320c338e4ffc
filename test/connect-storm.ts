/**
 * test/connect-storm.ts: does every client connect? Starts a private Redis and the real 2-worker
 * cluster (index.ts), then in each trial opens many Socket.IO clients at once and counts the ones
 * that finish the Engine.IO handshake but never get the Socket.IO connect acknowledgement (the
 * symptom sticky-handoff.ts fixes). Not part of `npm test`: it prints figures, it asserts nothing.
 *
 *   npx -y -p node@24 npx tsx test/connect-storm.ts                    20 trials x 1,000, Node server
 *   npx -y -p node@24 npx tsx test/connect-storm.ts --server deno      the server on Deno (or bun)
 *   npx -y -p node@24 npx tsx test/connect-storm.ts --transports default --trials 5
 *
 * --transports websocket (the default here) connects straight over WebSocket, where the race was
 * seen; "default" is the client's own default (long-polling first, then the upgrade).
 * Exit code: 0 when every client of every trial connected, 1 otherwise.
 */
import { parseArgs } from "node:util";
import { io as connect, type Socket } from "socket.io-client";
import { freePort, startPrivateRedis } from "../dev/redis.ts";
import { run, type Runtime, sleep, stopAll } from "./harness.ts";

const { values: options } = parseArgs({
  options: {
    server: { type: "string", default: "node" },
    trials: { type: "string", default: "20" },
    clients: { type: "string", default: "1000" },
    transports: { type: "string", default: "websocket" },
    "timeout-ms": { type: "string", default: "15000" },
  },
});
const SERVER = options.server as Runtime;
const TRIALS = Number(options.trials);
const CLIENTS = Number(options.clients);
const TIMEOUT_MS = Number(options["timeout-ms"]);
const TRANSPORTS = options.transports === "default" ? undefined : [options.transports!];

if (!["node", "bun", "deno"].includes(SERVER)) fail(`--server must be node, bun or deno, got "${SERVER}"`);
if (!(TRIALS >= 1 && CLIENTS >= 1 && CLIENTS <= 5000 && TIMEOUT_MS >= 1000)) fail("--trials >= 1, 1 <= --clients <= 5000, --timeout-ms >= 1000");
if (TRANSPORTS && !["websocket", "polling"].includes(TRANSPORTS[0]!)) fail("--transports must be websocket, polling or default");

interface Trial {
  connected: number;
  /** Engine.IO handshake done, no Socket.IO connect acknowledgement. */
  hung: number;
  /** Not even the handshake (connect_error or nothing). */
  failed: number;
  /** From the first client created to the last one connected. */
  allMs: number;
  p50Ms: number;
  p99Ms: number;
}

const redis = await startPrivateRedis();
const port = await freePort();
const serverUrl = `http://127.0.0.1:${port}`;
const server = run("index.ts", [], { REDIS_URL: redis.url, PORT: String(port), WORKERS: "2" }, SERVER);
const trials: Trial[] = [];
try {
  await server.waitFor("listening on port", 30_000);
  console.log(`server: ${SERVER}, 2 workers; ${TRIALS} trials x ${CLIENTS} clients, transports: ${options.transports}, timeout ${TIMEOUT_MS} ms`);
  for (let i = 1; i <= TRIALS; i++) {
    const trial = await runTrial();
    trials.push(trial);
    console.log(
      `trial ${String(i).padStart(2)}: connected ${trial.connected}, hung ${trial.hung}, failed ${trial.failed}; ` +
        `all in ${trial.allMs} ms, p50 ${trial.p50Ms} ms, p99 ${trial.p99Ms} ms`,
    );
    await sleep(1000); // let the disconnections settle before the next storm
  }
} finally {
  await stopAll();
  await redis.stop();
}

const sum = (pick: (t: Trial) => number) => trials.reduce((total, t) => total + pick(t), 0);
const median = (values: number[]) => values.sort((x, y) => x - y)[Math.floor(values.length / 2)]!;
console.log(
  `summary: ${sum((t) => t.connected)}/${TRIALS * CLIENTS} connected; hung ${sum((t) => t.hung)} ` +
    `(trials with a hung client: ${trials.filter((t) => t.hung > 0).length}/${TRIALS}); failed ${sum((t) => t.failed)}; ` +
    `median time for all: ${median(trials.map((t) => t.allMs))} ms, median p99: ${median(trials.map((t) => t.p99Ms))} ms`,
);
process.exit(sum((t) => t.hung + t.failed) === 0 ? 0 : 1);

async function runTrial(): Promise<Trial> {
  const sockets: Socket[] = [];
  const opened = new Set<Socket>();
  const latencies: number[] = [];
  let errors = 0;
  const started = Date.now();
  let lastConnected = started;
  for (let i = 0; i < CLIENTS; i++) {
    const created = Date.now();
    const socket = connect(serverUrl, { forceNew: true, reconnection: false, transports: TRANSPORTS, timeout: TIMEOUT_MS });
    socket.io.once("open", () => opened.add(socket));
    socket.once("connect", () => {
      lastConnected = Date.now();
      latencies.push(lastConnected - created);
    });
    socket.once("connect_error", () => errors++);
    sockets.push(socket);
  }
  const deadline = Date.now() + TIMEOUT_MS;
  while (latencies.length + errors < CLIENTS && Date.now() < deadline) await sleep(50);
  const connected = sockets.filter((socket) => socket.connected).length;
  const hung = sockets.filter((socket) => opened.has(socket) && !socket.connected).length;
  for (const socket of sockets) socket.disconnect();
  return {
    connected,
    hung,
    failed: CLIENTS - connected - hung,
    allMs: lastConnected - started,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}
