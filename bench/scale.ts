/**
 * bench/scale.ts: how many connections one machine holds, and what one broadcast to all of them
 * costs, with the floor beside the kit in the same run.
 *
 * For each server in turn (the floor: a bare `ws` server, bench/scale-floor.ts; the kit: index.ts
 * with its defaults; then each --variant), it starts the server with W workers and a private Redis,
 * then for each N in ascending order grows its light clients (bench/scale-clients.ts: raw
 * WebSockets speaking Engine.IO v4, spread over processes and loopback source addresses) to N and
 * measures: seconds to connect them, the handshakes reset on the way, the workers' idle CPU, their
 * memory, B broadcasts through Redis (@socket.io/redis-emitter for the kit, a PUBLISH the floor's
 * workers subscribe to) with the median and last client's latency, server CPU per delivery beyond
 * idle, and clients that missed one. Memory per connection is the slope of the workers' RSS, read
 * after a full garbage collection (bench/scale-gc.ts), over the N points (0 included), not one point. Absolute figures drift threefold between days on these
 * machines: read the kit's beside the floor's. Linux only (/proc). Asserts nothing; exit code 0
 * when every client connected and got every broadcast.
 *
 *   npm run bench:scale                                  N = 2,000, 10,000, 20,000
 *   npm run bench:scale -- --n 20000,50000,100000 --workers 6
 *   npm run bench:scale -- --variant MAX_CLIENT_BACKLOG=0 --variant=--max-semi-space-size=32
 *   npm run bench:scale -- --variant TRANSPORTS=websocket --variant bun
 *   npm run bench:scale -- --help
 */
import { type ChildProcess, fork } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { EXIT_USAGE } from "../lib/failures.ts";
import { startCluster } from "../support/cluster.ts";
import { processTree, rssOf } from "../support/processes.ts";
import { ROOT, type Runtime, sleep } from "../support/scripts.ts";
import { now, shareOf } from "./protocol.ts";
import type { FromScaleClients, ToScaleClients } from "./scale-clients.ts";

const USAGE = `usage: npm run bench:scale -- [options]
      --n LIST              connection counts, ascending, comma-separated (2000,10000,20000)
  -w, --workers W           server workers, the floor's and the kit's (enough for <= 18,000 each, at least 2)
      --client-processes P  light-client processes (enough for <= 14,000 each, at least 2)
      --broadcasts B        broadcasts to all at each N (3)
      --burst K             each broadcast is K messages published back to back (1); latency is the last one's
      --idle-seconds S      idle CPU window at each N (25: one ping interval)
      --concurrency C       handshakes in flight per client process (100)
      --connect-timeout S   seconds to connect each step's clients (300)
      --servers LIST        floor,kit (both); kit alone skips the floor
      --variant SPEC        one more kit configuration: KEY=VALUE[,KEY=VALUE] extra environment and
                            --flags for Node (--variant=--max-semi-space-size=32), or the path of
                            another server script (an older checkout's index.ts); "bun" in the
                            list runs the kit on Bun (no Node flags; memory is RSS, no forced GC); repeatable
      --profile DIR         V8 CPU profiles of every server process in DIR/<server>; where a broadcast's
                            time went: npx tsx bench/profile.ts DIR/kit 20 onmessage`;

const FLOOR_SCRIPT = "bench/scale-floor.ts";
/** Open files a process may hold on these machines: leave room for everything but the sockets. */
const SOCKETS_PER_WORKER = 18_000;
const SOCKETS_PER_CLIENT_PROCESS = 14_000;

const options = (() => {
  try {
    return parseArgs({
      options: {
        n: { type: "string", default: "2000,10000,20000" },
        workers: { type: "string", short: "w" },
        "client-processes": { type: "string" },
        broadcasts: { type: "string", default: "3" },
        burst: { type: "string", default: "1" },
        // One ping interval (engine.io's 25 s): a shorter window catches a share of the heartbeats
        // that depends on when they fall, and that share is subtracted from each broadcast's CPU.
        "idle-seconds": { type: "string", default: "25" },
        concurrency: { type: "string", default: "100" },
        "connect-timeout": { type: "string", default: "300" },
        servers: { type: "string", default: "floor,kit" },
        variant: { type: "string", multiple: true, default: [] },
        profile: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    return fail((err as Error).message);
  }
})();
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}

const STEPS = options.n.split(",").map(Number);
if (!STEPS.every((n, i) => Number.isInteger(n) && n >= 1 && n <= 200_000 && (i === 0 || n > STEPS[i - 1]!))) {
  fail(`--n must be ascending whole numbers from 1 to 200,000, got "${options.n}"`);
}
const MAX_N = STEPS.at(-1)!;
const WORKERS = wholeNumber("workers", options.workers ?? String(Math.max(2, Math.ceil(MAX_N / SOCKETS_PER_WORKER))), 1, 64);
const CLIENT_PROCESSES = wholeNumber(
  "client-processes",
  options["client-processes"] ?? String(Math.max(2, Math.ceil(MAX_N / SOCKETS_PER_CLIENT_PROCESS))),
  1,
  200,
);
if (Math.ceil(MAX_N / WORKERS) > SOCKETS_PER_WORKER) fail(`--workers ${WORKERS} would hold more than ${SOCKETS_PER_WORKER} sockets each: use at least ${Math.ceil(MAX_N / SOCKETS_PER_WORKER)}`);
if (Math.ceil(MAX_N / CLIENT_PROCESSES) > SOCKETS_PER_CLIENT_PROCESS) {
  fail(`--client-processes ${CLIENT_PROCESSES} would open more than ${SOCKETS_PER_CLIENT_PROCESS} sockets each: use at least ${Math.ceil(MAX_N / SOCKETS_PER_CLIENT_PROCESS)}`);
}
const BROADCASTS = wholeNumber("broadcasts", options.broadcasts, 1, 100);
const BURST = wholeNumber("burst", options.burst, 1, 1000);
const IDLE_SECONDS = wholeNumber("idle-seconds", options["idle-seconds"], 1, 600);
const CONCURRENCY = wholeNumber("concurrency", options.concurrency, 1, 10_000);
const CONNECT_TIMEOUT_MS = wholeNumber("connect-timeout", options["connect-timeout"], 5, 3600) * 1000;
const SERVERS = options.servers.split(",");
if (!SERVERS.every((s) => s === "floor" || s === "kit")) fail(`--servers takes floor and/or kit, got "${options.servers}"`);

/** One server configuration to measure. */
interface Config {
  name: string;
  script: string;
  env: Record<string, string>;
  flags: string[];
  runtime: Runtime;
}
const configs: Config[] = [
  ...(SERVERS.includes("floor") ? [{ name: "floor", script: FLOOR_SCRIPT, env: {}, flags: [], runtime: "node" as const }] : []),
  ...(SERVERS.includes("kit") ? [{ name: "kit", script: "index.ts", env: {}, flags: [], runtime: "node" as const }] : []),
  ...options.variant.map(variantConfig),
];

/** What one server measured at one N. */
interface Step {
  n: number;
  connected: number;
  failed: number;
  connectSeconds: number;
  /** Handshakes that failed before the Socket.IO connect (and were retried), by reason. */
  resets: Record<string, number>;
  idleMsPerSecond: number;
  rssBytes: number;
  /** The workers' V8 heap used plus external memory, after GC. */
  heapBytes: number;
  medianMs: number;
  lastMs: number;
  cpuMicrosPerDelivery: number;
  lost: number;
  dropped: number;
}

const started = new Date();
console.log(
  `scale: ${started.toISOString()}, N ${STEPS.join(", ")}, ${WORKERS} workers, ${CLIENT_PROCESSES} client processes, ` +
    `${BROADCASTS} broadcasts${BURST > 1 ? ` of ${BURST} messages each` : ""} and ${IDLE_SECONDS} s idle per N; servers: ${configs.map((c) => c.name).join(", ")}`,
);
interface Measured {
  baseRss: number;
  baseHeap: number;
  steps: Step[];
}
const results = new Map<string, Measured>();
for (const config of configs) results.set(config.name, await measure(config));
printTables();
const clean = [...results.values()].every((r) => r.steps.length === STEPS.length && r.steps.every((s) => s.failed === 0 && s.lost === 0 && s.dropped === 0));
process.exit(clean ? 0 : 1);

async function measure(config: Config): Promise<Measured> {
  console.log(`\n${config.name}: starting ${config.script} on ${config.runtime} with ${WORKERS} workers`);
  const onNode = config.runtime === "node";
  const profile = options.profile && onNode ? ["--cpu-prof", `--cpu-prof-dir=${resolve(options.profile, config.name.replace(/[^\w.=-]+/g, "_"))}`] : [];
  // The workers inherit the primary's flags. Bun takes none of Node's: its memory is read without a forced GC.
  const collectOnSignal = onNode ? ["--expose-gc", "--import", resolve(ROOT, "bench/scale-gc.ts")] : [];
  const memoryDir = mkdtempSync(join(tmpdir(), "scale-memory-"));
  const cluster = await startCluster({ workers: WORKERS, script: config.script, env: { ...config.env, SCALE_MEMORY_DIR: memoryDir }, flags: [...config.flags, ...collectOnSignal, ...profile], runtime: config.runtime, timeoutMs: 120_000 });
  const clients: ChildProcess[] = Array.from({ length: CLIENT_PROCESSES }, () =>
    fork(fileURLToPath(new URL("scale-clients.ts", import.meta.url)), [], { serialization: "advanced", stdio: ["ignore", "inherit", "inherit", "ipc"] }),
  );
  const redis = createClient({ url: cluster.redis.url });
  await redis.connect();
  const emitter = new Emitter(redis);
  const steps: Step[] = [];
  let seq = 0;
  let skippedBefore = 0;
  let skippedNow = 0;
  const workers = () => cluster.workerPids();
  const cpuOf = (pids: number[]) => processTree(cluster.server.child.pid!).filter((p) => pids.includes(p.pid)).reduce((sum, p) => sum + p.cpuSeconds, 0);
  /** The workers' RSS and V8 heap (used, plus external memory) once each has run a full garbage collection (bench/scale-gc.ts). */
  const memory = async () => {
    const pids = workers();
    // SIGUSR2 would end a process without bench/scale-gc.ts's handler: on Bun, RSS alone.
    if (!onNode) return { rss: pids.reduce((sum, pid) => sum + rssOf(pid), 0), heap: NaN };
    for (const pid of pids) rmSync(join(memoryDir, `${pid}.json`), { force: true });
    for (const pid of pids) process.kill(pid, "SIGUSR2");
    // A worker with 15,000 sockets on a crowded machine may take seconds to collect and answer.
    const answered = () => pids.every((pid) => existsSync(join(memoryDir, `${pid}.json`)));
    for (const deadline = Date.now() + 30_000; !answered() && Date.now() < deadline; ) await sleep(200);
    await sleep(200); // the last file's write finished
    const heaps = pids.map((pid) => {
      try {
        const usage = JSON.parse(readFileSync(join(memoryDir, `${pid}.json`), "utf8")) as NodeJS.MemoryUsage;
        return usage.heapUsed + usage.external;
      } catch {
        return NaN; // not a Node process (or it did not answer): the heap column says so
      }
    });
    return { rss: pids.reduce((sum, pid) => sum + rssOf(pid), 0), heap: heaps.reduce((a, b) => a + b, 0) };
  };
  try {
    await sleep(3000); // let the workers finish starting before their memory is the base
    const base = await memory();
    for (const n of STEPS) {
      const connectStart = now();
      const answers = await ask(
        clients,
        clients.map((_, i) => ({
          type: "connect",
          url: cluster.url,
          total: shareOf(n, CLIENT_PROCESSES, i),
          localAddress: `127.0.0.${11 + i}`, // one source address per process: ephemeral ports per address are ~28,000
          concurrency: CONCURRENCY,
          timeoutMs: CONNECT_TIMEOUT_MS,
          attempts: 5,
        })),
        "connected",
      );
      const connectSeconds = (now() - connectStart) / 1000;
      const connected = answers.reduce((sum, a) => sum + a.open, 0);
      const resets: Record<string, number> = {};
      for (const a of answers) for (const [why, count] of Object.entries(a.resets)) resets[why] = (resets[why] ?? 0) + count;

      await sleep(3000); // the connect storm's garbage and timers settle
      const pids = workers();
      const idleStart = cpuOf(pids);
      const idleWall = now();
      await sleep(IDLE_SECONDS * 1000);
      const idleRate = (cpuOf(pids) - idleStart) / ((now() - idleWall) / 1000); // CPU seconds per second
      const { rss: rssBytes, heap: heapBytes } = await memory();

      const medians: number[] = [];
      const lasts: number[] = [];
      let lost = 0;
      let dropped = 0;
      const cpuStart = cpuOf(pids);
      const wallStart = now();
      for (let b = 0; b < BROADCASTS; b++) {
        // A burst: K messages published back to back (pipelined), so that they reach a worker together.
        const published: Promise<unknown>[] = [];
        for (let k = 0; k < BURST; k++) {
          seq++;
          const text = `${seq} ${now().toFixed(3)}`;
          if (config.script === FLOOR_SCRIPT) published.push(redis.publish("scale-floor", text));
          else emitter.emit("chat message", text);
        }
        await Promise.all(published);
        const received = await ask(clients, { type: "expect", seq, timeoutMs: 60_000 + n }, "received");
        const latencies = Float64Array.from(received.flatMap((r) => [...r.latencies])).sort();
        medians.push(latencies[Math.floor(latencies.length / 2)] ?? NaN);
        lasts.push(latencies.at(-1) ?? NaN);
        lost += received.reduce((sum, r) => sum + r.missing, 0);
        skippedNow = received.reduce((sum, r) => sum + r.skipped, 0); // counted by each client process since it started
        dropped = received.reduce((sum, r) => sum + r.dropped, 0);
        await sleep(300); // the workers' last writes drain before the next one
      }
      lost += skippedNow - skippedBefore; // a burst's messages a client did not get, though it got a later one
      skippedBefore = skippedNow;
      const busySeconds = cpuOf(pids) - cpuStart - idleRate * ((now() - wallStart) / 1000);
      const step: Step = {
        n,
        connected,
        failed: n - connected,
        connectSeconds,
        resets,
        idleMsPerSecond: idleRate * 1000,
        rssBytes,
        heapBytes,
        medianMs: middle(medians),
        lastMs: middle(lasts),
        cpuMicrosPerDelivery: (busySeconds * 1e6) / (BROADCASTS * BURST * connected),
        lost,
        dropped,
      };
      steps.push(step);
      console.log(
        `${config.name} N=${n}: ${connected} connected in ${connectSeconds.toFixed(1)} s` +
          `${Object.keys(resets).length ? ` (retried: ${Object.entries(resets).map(([w, c]) => `${c} x ${w}`).join(", ")})` : ""}; ` +
          `idle ${step.idleMsPerSecond.toFixed(0)} ms/s; RSS ${(rssBytes / 2 ** 20).toFixed(0)} MiB; ` +
          `broadcast median ${step.medianMs.toFixed(0)} ms, last ${step.lastMs.toFixed(0)} ms; ` +
          `${step.cpuMicrosPerDelivery.toFixed(1)} us CPU per delivery; lost ${lost}, dropped ${dropped}`,
      );
      if (connected < n) break; // a bigger N would only fail further
    }
    // What the server counted or complained about says where a reset came from (lib/log.ts's counted lines).
    const complaints = [...cluster.server.stderr, ...cluster.server.stdout.filter((line) => /\b(failed|timed out|refused|error|died)\b/i.test(line))].filter((line) => line !== "");
    if (complaints.length > 0) console.log(`${config.name} server lines (first 10):\n${complaints.slice(0, 10).join("\n")}`);
    return { baseRss: base.rss, baseHeap: base.heap, steps };
  } finally {
    await Promise.all(clients.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : (child.once("exit", resolve), child.send({ type: "close" } satisfies ToScaleClients))))));
    await redis.quit().catch(() => undefined);
    await cluster.stop();
    rmSync(memoryDir, { recursive: true, force: true });
  }
}

function printTables() {
  console.log(`\nscale ${started.toISOString()}: ${WORKERS} workers, ${CLIENT_PROCESSES} client processes, ${BROADCASTS} broadcasts${BURST > 1 ? ` of ${BURST} messages` : ""} per N (median of them)`);
  const header = ["server", "N", "connect s", "retried", "idle ms/s", "RSS MiB", "KiB/conn", "heap KiB/conn", "median ms", "last ms", "us/delivery", "lost"];
  const rows: string[][] = [];
  for (const [name, { baseRss, baseHeap, steps }] of results) {
    for (const s of steps) {
      rows.push([
        name,
        String(s.n),
        s.connectSeconds.toFixed(1),
        String(Object.values(s.resets).reduce((a, b) => a + b, 0)),
        s.idleMsPerSecond.toFixed(0),
        (s.rssBytes / 2 ** 20).toFixed(0),
        ((s.rssBytes - baseRss) / s.connected / 1024).toFixed(1),
        ((s.heapBytes - baseHeap) / s.connected / 1024).toFixed(1),
        s.medianMs.toFixed(0),
        s.lastMs.toFixed(0),
        s.cpuMicrosPerDelivery.toFixed(1),
        String(s.lost + s.failed),
      ]);
    }
  }
  printRows(header, rows);
  console.log("\nworkers' memory per connection after GC, the slope over N (0 included): RSS, and V8 heap + external:");
  const floor = results.get("floor");
  for (const [name, r] of results) {
    const rss = slope(r.baseRss, r.steps, (s) => s.rssBytes) / 1024;
    const heap = slope(r.baseHeap, r.steps, (s) => s.heapBytes) / 1024;
    const beside = floor && name !== "floor" ? ` (${(rss / (slope(floor.baseRss, floor.steps, (s) => s.rssBytes) / 1024)).toFixed(2)}x the floor)` : "";
    console.log(`  ${name}: RSS ${rss.toFixed(1)} KiB${beside}, heap ${heap.toFixed(1)} KiB`);
  }
  if (floor) {
    console.log("\nbeside the floor at each N (kit / floor):");
    for (const [name, r] of results) {
      if (name === "floor") continue;
      for (const s of r.steps) {
        const f = floor.steps.find((x) => x.n === s.n);
        if (!f) continue;
        console.log(
          `  ${name} N=${s.n}: CPU per delivery ${(s.cpuMicrosPerDelivery / f.cpuMicrosPerDelivery).toFixed(2)}x, ` +
            `median ${(s.medianMs / f.medianMs).toFixed(2)}x, last ${(s.lastMs / f.lastMs).toFixed(2)}x, ` +
            `idle ${(s.idleMsPerSecond - f.idleMsPerSecond).toFixed(0)} ms/s more`,
        );
      }
    }
  }
}

/** Least-squares slope of a memory figure against connections, the base (0 connections) included. */
function slope(base: number, steps: Step[], pick: (s: Step) => number): number {
  const points = [[0, base], ...steps.map((s) => [s.connected, pick(s)])] as [number, number][];
  const mx = points.reduce((a, [x]) => a + x, 0) / points.length;
  const my = points.reduce((a, [, y]) => a + y, 0) / points.length;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx === 0 ? NaN : sxy / sxx;
}

function printRows(header: string[], rows: string[][]) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

/** Sends each client process its order and collects the answers of type `answer`. */
function ask<T extends FromScaleClients["type"]>(clients: ChildProcess[], orders: ToScaleClients | ToScaleClients[], answer: T): Promise<Extract<FromScaleClients, { type: T }>[]> {
  return Promise.all(
    clients.map(
      (child, i) =>
        new Promise<Extract<FromScaleClients, { type: T }>>((resolve, reject) => {
          const onMessage = (message: FromScaleClients) => {
            if (message.type !== answer) return;
            child.off("message", onMessage).off("exit", onExit);
            resolve(message as Extract<FromScaleClients, { type: T }>);
          };
          const onExit = (code: number | null) => reject(new Error(`client process ${i + 1} exited (code ${code})`));
          child.on("message", onMessage).once("exit", onExit);
          child.send(Array.isArray(orders) ? orders[i]! : orders);
        }),
    ),
  );
}

function middle(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

function variantConfig(spec: string): Config {
  // Another server script: a variant of index.ts, or index.ts of an older checkout for an A/B.
  if (spec.endsWith(".ts")) {
    if (!existsSync(resolve(ROOT, spec))) fail(`--variant ${spec}: no such script`);
    return { name: spec, script: spec, env: {}, flags: [], runtime: "node" };
  }
  const parts = spec.split(",");
  const runtime: Runtime = parts.includes("bun") ? "bun" : "node";
  const flags = parts.filter((p) => p.startsWith("--"));
  const pairs = parts.filter((p) => !p.startsWith("--") && p !== "bun").map((p) => [p.slice(0, p.indexOf("=")), p.slice(p.indexOf("=") + 1)]);
  if (!parts.every((p) => p === "bun" || p.startsWith("--") || p.indexOf("=") > 0)) fail(`--variant takes KEY=VALUE[,KEY=VALUE], --node-flags and bun, got "${spec}"`);
  if (runtime === "bun" && flags.length > 0) fail(`--variant ${spec}: Node's flags do not go to Bun`);
  if (runtime === "bun" && !existsSync(resolve(ROOT, "node_modules/.bin/bun"))) fail("--variant bun: no node_modules/.bin/bun (npm install)");
  return { name: runtime === "bun" ? `kit on bun${pairs.length ? ` ${pairs.map((p) => p.join("=")).join(",")}` : ""}` : `kit ${spec}`, script: "index.ts", env: Object.fromEntries(pairs), flags, runtime };
}

function wholeNumber(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) fail(`--${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  return value;
}

function fail(message: string): never {
  console.error(`scale: ${message}\n${USAGE}`);
  process.exit(EXIT_USAGE);
}
