/**
 * bench/load.ts: many clients over a 2-worker cluster, many emitter messages. Prints how many
 * deliveries arrived out of how many expected, in order and without repeats, and the workers'
 * memory before, during and after each round of clients.
 *
 *   npx tsx bench/load.ts                              1,000 clients, 10,000 messages, 3 rounds
 *   CLIENTS=100 MESSAGES=500 ROUNDS=1 npx tsx bench/load.ts
 *
 * Environment: CLIENTS (1000), MESSAGES (10000), ROUNDS (3), CLIENT_PROCESSES (4),
 * WINDOW (messages published ahead of the slowest client, 100), REDIS_URL (a private Redis).
 * Linux only (worker memory is read from /proc). Exit code 1 when a client or a delivery is missing.
 */
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { freePort, startPrivateRedis } from "../support/redis.ts";
import type { ServerToClientEvents } from "../lib/chat.ts";
import { run, sleep } from "../support/scripts.ts";

const CLIENTS = Number(process.env.CLIENTS ?? 1000);
const MESSAGES = Number(process.env.MESSAGES ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CLIENT_PROCESSES = Number(process.env.CLIENT_PROCESSES ?? 4);
const WINDOW = Number(process.env.WINDOW ?? 100);
/** A round fails when no delivery progresses for this long. */
const STALL_MS = 30_000;

for (const [name, value] of Object.entries({ CLIENTS, MESSAGES, ROUNDS, CLIENT_PROCESSES, WINDOW })) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} must be a whole number >= 1, got "${process.env[name]}"`);
    process.exit(2);
  }
}

type Progress = {
  lowest: number;
  delivered: number;
  duplicates: number;
  outOfOrder: number;
  disconnected: number;
  disconnectReasons: Record<string, number>;
};

const redis = process.env.REDIS_URL ? { url: process.env.REDIS_URL, stop: async () => {} } : await startPrivateRedis();
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
// `node --import tsx --trace-gc --gc-global index.ts`: the workers inherit both flags, make every
// garbage collection a full one and print it, which tells their live heap (RSS alone would not: V8
// keeps the pages it grew). Full collections cost time: deliveries/s is lower than without them.
const server = run("--trace-gc", ["--gc-global", "index.ts"], { REDIS_URL: redis.url, PORT: String(port), WORKERS: "2" });
const publisher = createClient({ url: redis.url });
let failed = false;

try {
  await server.waitFor("listening on port", 30_000);
  await publisher.connect();
  const emitter = new Emitter<ServerToClientEvents>(publisher);
  const workers = workerPids(server.child.pid!);
  await sleep(2000);
  console.log(`server: 2 workers, Redis at ${redis.url}; ${CLIENTS} clients in ${CLIENT_PROCESSES} processes, ${MESSAGES} messages per round`);
  console.log(`worker memory at rest: RSS ${show(rss(workers))} MB, heap after a full GC ${show(await liveHeap(emitter, workers))} MB`);

  for (let round = 1; round <= ROUNDS; round++) {
    const processes = Array.from({ length: CLIENT_PROCESSES }, (_, i) => {
      const child = fork(fileURLToPath(new URL("load-clients.ts", import.meta.url)), [], { stdio: "inherit" });
      const count = Math.floor(CLIENTS / CLIENT_PROCESSES) + (i < CLIENTS % CLIENT_PROCESSES ? 1 : 0);
      child.send({ type: "connect", url, count });
      return child;
    });
    const connectedAt = performance.now();
    const replies = await Promise.all(processes.map((child) => reply<{ ids: string[]; failed: number }>(child, "connected")));
    const ids = replies.flatMap((r) => r.ids);
    const failedToConnect = replies.reduce((sum, r) => sum + r.failed, 0);
    failed ||= failedToConnect > 0;
    const logged = () => new Set(server.stdout.map((line) => line.match(/^worker: (\d+), connected, id: (\S+)$/)).filter((m) => m !== null).map((m) => m[2]));
    for (const deadline = Date.now() + 5000; Date.now() < deadline && !ids.every((id) => logged().has(id)); ) await sleep(100);
    const perWorker = countBy(ids.map((id) => server.stdout.find((line) => line.endsWith(`connected, id: ${id}`))?.match(/^worker: (\d+)/)?.[1] ?? "?"));
    console.log(
      `round ${round}: ${ids.length}/${CLIENTS} clients connected in ${ms(connectedAt)} (per worker: ${JSON.stringify(perWorker)})` +
        (failedToConnect ? `; ${failedToConnect} never got the connect acknowledgement within 20 s, left out below` : ""),
    );
    const expected = ids.length * MESSAGES;
    const withClients = rss(workers);

    // Publish, keeping at most WINDOW messages ahead of the slowest client: the point is to see
    // every delivery, not how deep the buffers can grow.
    const started = performance.now();
    let published = 0;
    let progress = await total(processes);
    let lastChange = performance.now();
    let peak = withClients;
    while (progress.delivered < expected && performance.now() - lastChange < STALL_MS) {
      while (published < MESSAGES && published - progress.lowest < WINDOW) emitter.emit("chat message", `load ${published++}`);
      await sleep(50);
      const now = await total(processes);
      if (now.delivered !== progress.delivered) lastChange = performance.now();
      progress = now;
      peak = rss(workers).map((mb, i) => Math.max(mb, peak[i]!));
    }
    const seconds = (performance.now() - started) / 1000;
    const complete = progress.delivered === expected && progress.duplicates === 0 && progress.outOfOrder === 0;
    failed ||= !complete;
    console.log(
      `round ${round}: delivered ${progress.delivered}/${expected}, out of order ${progress.outOfOrder}, ` +
        `duplicates ${progress.duplicates}, disconnected ${progress.disconnected} ${JSON.stringify(progress.disconnectReasons)}; ${seconds.toFixed(1)} s, ` +
        `${Math.round(progress.delivered / seconds)} deliveries/s${complete ? "" : "  INCOMPLETE"}`,
    );

    await Promise.all(processes.map(async (child) => {
      child.send({ type: "leave" });
      await reply(child, "left");
      if (child.exitCode === null) await once(child, "exit");
    }));
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
  await publisher.close().catch(() => {});
  await server.stop();
  await redis.stop();
}
process.exit(failed ? 1 : 0);

function reply<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type: string } & T) => {
      if (message.type !== type) return;
      child.off("message", onMessage).off("exit", onExit);
      resolve(message);
    };
    const onExit = (code: number | null) => reject(new Error(`a client process exited with code ${code}`));
    child.on("message", onMessage).once("exit", onExit);
  });
}

async function total(processes: ChildProcess[]): Promise<Progress> {
  const parts = await Promise.all(processes.map((child) => {
    const answer = reply<Progress>(child, "progress");
    child.send({ type: "progress" });
    return answer;
  }));
  return {
    lowest: Math.min(...parts.map((p) => p.lowest)),
    delivered: parts.reduce((sum, p) => sum + p.delivered, 0),
    duplicates: parts.reduce((sum, p) => sum + p.duplicates, 0),
    outOfOrder: parts.reduce((sum, p) => sum + p.outOfOrder, 0),
    disconnected: parts.reduce((sum, p) => sum + p.disconnected, 0),
    disconnectReasons: parts.reduce((all, p) => {
      for (const [reason, n] of Object.entries(p.disconnectReasons)) all[reason] = (all[reason] ?? 0) + n;
      return all;
    }, {} as Record<string, number>),
  };
}

/** The cluster workers: the primary's children that run index.ts. */
function workerPids(primaryPid: number): number[] {
  const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(primaryPid)], { encoding: "utf8" });
  return out.split("\n").filter((line) => line.trimEnd().endsWith("index.ts")).map((line) => Number(line.trim().split(/\s+/)[0]));
}

/** Resident memory of each process, in MB. */
function rss(pids: number[]): number[] {
  return pids.map((pid) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m)![1]) / 1024);
}

/**
 * The live heap of each worker, in MB, after its next full collection (NaN: none within 30 s).
 * An idle process collects nothing: a few messages for nobody make the workers allocate.
 */
async function liveHeap(emitter: Emitter<ServerToClientEvents>, pids: number[]): Promise<number[]> {
  const fromLine = server.stdout.length;
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
  const deadline = Date.now() + 30_000;
  const found = new Map<number, number>();
  for (let line = fromLine; found.size < pids.length && Date.now() < deadline; ) {
    for (; line < server.stdout.length; line++) {
      const match = server.stdout[line]!.match(/^\[(\d+):0x[0-9a-f]+\]\s+[\d.]+ ms: Mark-Compact.*? [\d.]+ \([\d.]+\) -> ([\d.]+) \(/);
      if (match && pids.includes(Number(match[1])) && !found.has(Number(match[1]))) found.set(Number(match[1]), Number(match[2]));
    }
    await sleep(200);
  }
  return pids.map((pid) => found.get(pid) ?? NaN);
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
