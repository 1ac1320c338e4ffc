/**
 * bench/load.ts: many clients over a 2-worker cluster, many emitter messages. Prints how many
 * deliveries arrived out of how many expected, in order and without repeats, and the workers'
 * memory before, during and after each round of clients. The clients run in the benchmark's
 * client processes (bench/clients.ts, bench/protocol.ts), as for npm run bench.
 *
 *   npx tsx bench/load.ts                              1,000 clients, 10,000 messages, 3 rounds
 *   CLIENTS=100 MESSAGES=500 ROUNDS=1 npx tsx bench/load.ts
 *
 * Environment: CLIENTS (1000), MESSAGES (10000), ROUNDS (3), CLIENT_PROCESSES (4),
 * WINDOW (messages published ahead of the slowest client, 100), REDIS_URL (a private Redis).
 * A bad value is one line and exit code 2. Linux only (worker memory is read from /proc).
 * Exit code 1 when a client or a delivery is missing.
 */
import type { ChildProcess } from "node:child_process";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import type { ServerToClientEvents } from "../lib/chat.ts";
import { readRedisConfig } from "../lib/config.ts";
import { EXIT_FAILURE, EXIT_USAGE } from "../lib/failures.ts";
import { type Cluster, startCluster } from "../support/cluster.ts";
import { rssOf } from "../support/processes.ts";
import { sleep } from "../support/scripts.ts";
import { ask, closeClients, forkClients, formatMessage, shareOf } from "./protocol.ts";
import { sum } from "./report.ts";

const CLIENTS = setting("CLIENTS", 1000, 100_000);
const MESSAGES = setting("MESSAGES", 10_000, 100_000);
const ROUNDS = setting("ROUNDS", 3, 100);
const CLIENT_PROCESSES = Math.min(setting("CLIENT_PROCESSES", 4, 64), CLIENTS);
const WINDOW = setting("WINDOW", 100, 100_000);
const REDIS_URL = process.env.REDIS_URL || undefined;
if (REDIS_URL) {
  try {
    readRedisConfig({ REDIS_URL });
  } catch (err) {
    usage((err as Error).message);
  }
}
/** A round fails when no delivery progresses for this long. */
const STALL_MS = 30_000;
/** A client that has no connect acknowledgement by then is left out and counted apart. */
const CONNECT_TIMEOUT_MS = 20_000;
const MB = 2 ** 20;

let cluster: Cluster | undefined;
let publisher: ReturnType<typeof createClient> | undefined;
let clients: ChildProcess[] = [];
let failed = false;

try {
  // `node --import tsx --trace-gc --gc-global index.ts`: the workers inherit both flags, make every
  // garbage collection a full one and print it, which tells their live heap (RSS alone would not: V8
  // keeps the pages it grew). Full collections cost time: deliveries/s is lower than without them.
  // ADAPTER is set: the emitter below speaks the classic adapter's format, whatever the shell says.
  cluster = await startCluster({ flags: ["--trace-gc", "--gc-global"], adapter: "classic", redis: REDIS_URL ? { url: REDIS_URL } : undefined, timeoutMs: 30_000 });
  const { server, url } = cluster;
  publisher = createClient({ url: cluster.redis.url });
  await publisher.connect();
  const emitter = new Emitter<ServerToClientEvents>(publisher);
  const workers = cluster.workerPids();
  await sleep(2000);
  console.log(`server: 2 workers, Redis at ${cluster.redis.url}; ${CLIENTS} clients in ${CLIENT_PROCESSES} processes, ${MESSAGES} messages per round`);
  console.log(`worker memory at rest: RSS ${show(rss(workers))} MB, heap after a full GC ${show(await liveHeap(emitter, workers))} MB`);

  for (let round = 1; round <= ROUNDS; round++) {
    clients = forkClients(CLIENT_PROCESSES);
    const connectedAt = performance.now();
    const replies = await ask(
      clients,
      clients.map((_, i) => ({ type: "connect", url, count: shareOf(CLIENTS, CLIENT_PROCESSES, i), transports: ["websocket"], timeoutMs: CONNECT_TIMEOUT_MS }) as const),
      "connected",
    );
    const ids = replies.flatMap((r) => r.ids);
    const failedToConnect = sum(replies.map((r) => r.failed));
    failed ||= failedToConnect > 0;
    const logged = () => new Set(server.stdout.map((line) => line.match(/^worker: (\d+), connected, id: (\S+)$/)).filter((m) => m !== null).map((m) => m[2]));
    for (const deadline = Date.now() + 5000; Date.now() < deadline && !ids.every((id) => logged().has(id)); ) await sleep(100);
    const perWorker = countBy(ids.map((id) => server.stdout.find((line) => line.endsWith(`connected, id: ${id}`))?.match(/^worker: (\d+)/)?.[1] ?? "?"));
    console.log(
      `round ${round}: ${ids.length}/${CLIENTS} clients connected in ${ms(connectedAt)} (per worker: ${JSON.stringify(perWorker)})` +
        (failedToConnect ? `; ${failedToConnect} never got the connect acknowledgement within ${CONNECT_TIMEOUT_MS / 1000} s, left out below` : ""),
    );
    const expected = ids.length * MESSAGES;
    const withClients = rss(workers);

    // Publish, keeping at most WINDOW messages ahead of the slowest client: the point is to see
    // every delivery, not how deep the buffers can grow.
    await ask(clients, { type: "phase", phase: round, messages: MESSAGES }, "phase-ready");
    const started = performance.now();
    let published = 0;
    let progress = await total(clients);
    let lastChange = performance.now();
    let peak = withClients;
    while (progress.received < expected && performance.now() - lastChange < STALL_MS) {
      while (published < MESSAGES && published - progress.lowest < WINDOW) emitter.emit("chat message", formatMessage(round, published++));
      await sleep(50);
      const now = await total(clients);
      if (now.received !== progress.received) lastChange = performance.now();
      progress = now;
      peak = rss(workers).map((mb, i) => Math.max(mb, peak[i]!));
    }
    const seconds = (performance.now() - started) / 1000;
    const reports = (await ask(clients, { type: "report" }, "report")).map((r) => r.report);
    const duplicates = sum(reports.map((r) => r.duplicated));
    const outOfOrder = sum(reports.map((r) => r.reordered));
    const reasons: Record<string, number> = {};
    for (const r of reports) for (const [reason, n] of Object.entries(r.disconnectReasons)) reasons[reason] = (reasons[reason] ?? 0) + n;
    const complete = progress.received === expected && duplicates === 0 && outOfOrder === 0;
    failed ||= !complete;
    console.log(
      `round ${round}: delivered ${progress.received}/${expected}, out of order ${outOfOrder}, ` +
        `duplicates ${duplicates}, disconnected ${sum(reports.map((r) => r.disconnects))} ${JSON.stringify(reasons)}; ${seconds.toFixed(1)} s, ` +
        `${Math.round(progress.received / seconds)} deliveries/s${complete ? "" : "  INCOMPLETE"}`,
    );

    await closeClients(clients);
    clients = [];
    await sleep(5000); // let the workers notice the departures
    const heap = await liveHeap(emitter, workers);
    console.log(
      `round ${round}: worker memory: RSS with clients ${show(withClients)} MB, peak while publishing ${show(peak)} MB, ` +
        `after they left ${show(rss(workers))} MB; heap after a full GC once they left ${show(heap)} MB`,
    );
  }
} catch (err) {
  console.error(`load: ${(err as Error).message}`);
  failed = true;
} finally {
  for (const child of clients) child.kill("SIGKILL");
  await publisher?.close().catch(() => {});
  await cluster?.stop();
}
process.exit(failed ? EXIT_FAILURE : 0);

/** What every client process has received so far, and the next message the slowest socket waits for. */
async function total(clients: ChildProcess[]) {
  const parts = await ask(clients, { type: "progress" }, "progress");
  return { received: sum(parts.map((p) => p.received)), lowest: Math.min(...parts.map((p) => p.lowest)) };
}

/** Resident memory of each process, in MB. */
function rss(pids: number[]): number[] {
  return pids.map((pid) => rssOf(pid) / MB);
}

/**
 * The live heap of each worker, in MB, after its next full collection (NaN: none within 30 s).
 * An idle process collects nothing: a few messages for nobody make the workers allocate.
 */
async function liveHeap(emitter: Emitter<ServerToClientEvents>, pids: number[]): Promise<number[]> {
  const fromLine = cluster!.server.stdout.length;
  const nudge = setInterval(() => {
    for (let i = 0; i < 100; i++) emitter.emit("chat message", "to nobody");
  }, 50);
  try {
    return await heapAfterFullGc(pids, fromLine);
  } finally {
    clearInterval(nudge);
  }
}

async function heapAfterFullGc(pids: number[], fromLine: number): Promise<number[]> {
  const { stdout } = cluster!.server;
  const deadline = Date.now() + 30_000;
  const found = new Map<number, number>();
  for (let line = fromLine; found.size < pids.length && Date.now() < deadline; ) {
    for (; line < stdout.length; line++) {
      const match = stdout[line]!.match(/^\[(\d+):0x[0-9a-f]+\]\s+[\d.]+ ms: Mark-Compact.*? [\d.]+ \([\d.]+\) -> ([\d.]+) \(/);
      if (match && pids.includes(Number(match[1])) && !found.has(Number(match[1]))) found.set(Number(match[1]), Number(match[2]));
    }
    await sleep(200);
  }
  return pids.map((pid) => found.get(pid) ?? NaN);
}

/** A whole number from the environment within 1..max, else one line and exit code 2. */
function setting(name: string, fallback: number, max: number): number {
  const text = process.env[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) usage(`${name} must be a whole number from 1 to ${max}, got "${text}"`);
  return value;
}

function usage(problem: string): never {
  console.error(`load: ${problem}`);
  process.exit(EXIT_USAGE);
}

function show(mbs: number[]): string {
  return mbs.map((mb) => mb.toFixed(0)).join(" / ");
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

function ms(since: number) {
  return `${Math.round(performance.now() - since)} ms`;
}
