/**
 * bench/bench.ts: what scaling out with Redis costs, measured side by side in one run.
 *
 * For each repetition it runs, one after the other on the same machine:
 *   baseline  one process, in-memory adapter, publishing itself (bench/baseline.ts)
 *   cluster   the real index.ts (W workers, Redis adapter), fed through @socket.io/redis-emitter
 *   variants  index.ts again with extra environment or another server script (--variant)
 * Each one gets N socket.io-client clients spread over a few client processes (bench/clients.ts),
 * then two phases: messages at a fixed rate (latency), then M messages as fast as the publisher
 * goes (throughput). It prints median [min-max] over the repetitions. Linux only (/proc).
 *
 *   npm run bench
 *   npm run bench -- --clients 2000 --workers 2 --messages 500 --repetitions 5
 *   npm run bench -- --runtime bun --adapter sharded
 *   npm run bench -- --variant WS_NO_BUFFER_UTIL=1 --variant ./my-index.ts
 *   npm run bench -- --help
 */
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { SignJWT } from "jose";
import { createClient } from "redis";
import { ADAPTERS, type AdapterName } from "../lib/config.ts";
import { shardedStreamsEmitter } from "../lib/emitter/sharded-streams.ts";
import { EXIT_USAGE } from "../lib/failures.ts";
import { startCluster } from "../support/cluster.ts";
import { processTree, rssOf, serverProcesses } from "../support/processes.ts";
import { type RunningRedis, startPrivateRedis } from "../support/redis.ts";
import { commandFor, ROOT, type Runtime, type Script, sleep } from "../support/scripts.ts";
import { ask, closeClients, forkClients, now, publish, shareOf } from "./protocol.ts";
import { type Cpu, percentile, printTable, type Result, sortedLatencies, sum } from "./report.ts";

const USAGE = `usage: npm run bench -- [options]
  -n, --clients N           socket.io-client connections (1000)
  -w, --workers W           index.ts workers (2)
  -m, --messages M          messages in the throughput phase (1000)
      --rate R              messages per second in the latency phase (100)
      --seconds S           length of the latency phase (4)
      --runtime NAME        server runtime: node, bun or deno (node)
      --adapter NAME        ADAPTER for index.ts: classic, sharded or streams (classic)
  -r, --repetitions K       runs of each configuration (3)
      --client-processes P  processes the clients are spread over (3)
      --transports LIST     client transports, comma-separated (websocket)
      --variant SPEC        one more cluster configuration: KEY=VALUE[,KEY=VALUE] extra
                            environment, or the path of another server script (repeatable);
                            with AUTH_SECRET=... the clients show tokens signed with it
      --profile DIR         write V8 CPU profiles of the server and client processes to DIR
                            (node only; summarize them with bench/profile.ts)`;

const { values: options } = (() => {
  try {
    return parseArgs({
      options: {
        clients: { type: "string", short: "n", default: "1000" },
        workers: { type: "string", short: "w", default: "2" },
        messages: { type: "string", short: "m", default: "1000" },
        rate: { type: "string", default: "100" },
        seconds: { type: "string", default: "4" },
        runtime: { type: "string", default: "node" },
        adapter: { type: "string", default: "classic" },
        repetitions: { type: "string", short: "r", default: "3" },
        "client-processes": { type: "string", default: "3" },
        transports: { type: "string", default: "websocket" },
        variant: { type: "string", multiple: true, default: [] },
        profile: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    fail((err as Error).message);
  }
})();
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}

const CLIENTS = wholeNumber("clients", 1, 100_000);
const WORKERS = wholeNumber("workers", 1, 64);
const MESSAGES = wholeNumber("messages", 1, 100_000);
const RATE = wholeNumber("rate", 1, 100_000);
const SECONDS = wholeNumber("seconds", 1, 600);
const REPETITIONS = wholeNumber("repetitions", 1, 100);
const CLIENT_PROCESSES = Math.min(wholeNumber("client-processes", 1, 64), CLIENTS);
const RUNTIME = oneOf("runtime", ["node", "bun", "deno"]) as Runtime;
const ADAPTER = oneOf("adapter", ADAPTERS) as AdapterName;
const TRANSPORTS = options.transports.split(",");
if (!TRANSPORTS.every((t) => t === "websocket" || t === "polling")) fail(`--transports takes websocket and/or polling, got "${options.transports}"`);
const LATENCY_MESSAGES = RATE * SECONDS;
const PROFILE_DIR = options.profile && resolve(options.profile);
if (PROFILE_DIR && RUNTIME !== "node") fail("--profile works with --runtime node only");
/** Deadlines: every wait of the benchmark is bounded. */
const CONNECT_TIMEOUT_MS = 20_000;
const START_TIMEOUT_MS = 60_000;
const QUIET_MS = 3_000;
const DRAIN_LIMIT_MS = 120_000;

/** One configuration the benchmark runs. */
interface Config {
  name: string;
  script: string;
  env: Record<string, string>;
  /** Publishes through Redis (the emitter) or asks the server to publish (the baseline). */
  cluster: boolean;
}

const configs: Config[] = [
  { name: "baseline", script: "bench/baseline.ts", env: {}, cluster: false },
  { name: "cluster", script: "index.ts", env: {}, cluster: true },
  ...options.variant.map(variantConfig),
];
if (RUNTIME !== "node" && !existsSync(commandFor(RUNTIME, "")[0]!)) fail(`--runtime ${RUNTIME}: ${commandFor(RUNTIME, "")[0]} is not installed (npm install ${RUNTIME})`);

// ---- the run --------------------------------------------------------------------------------

let redis: RunningRedis | undefined;
let server: Script | undefined;
let clients: ChildProcess[] = [];
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => void cleanUp().then(() => process.exit(130)));

try {
  redis = await startPrivateRedis();
  const results = new Map<string, Result[]>(configs.map((config) => [config.name, []]));
  console.log(
    `${CLIENTS} clients in ${CLIENT_PROCESSES} processes (${TRANSPORTS.join(",")}), ${WORKERS} workers on ${RUNTIME}, ` +
      `${ADAPTER} adapter, ${LATENCY_MESSAGES} messages at ${RATE}/s then ${MESSAGES} flat out, ${REPETITIONS} repetitions`,
  );
  for (let repetition = 1; repetition <= REPETITIONS; repetition++) {
    // Configurations take turns within a repetition, so that a noisy minute hits them all.
    for (const config of configs) {
      const label = `[${repetition}/${REPETITIONS}] ${config.name}`;
      results.get(config.name)!.push(await runOnce(config, (step, counter) => progress(`${label}: ${step}`, counter)));
    }
  }
  progress("");
  printTable(results, RATE);
} catch (err) {
  progress("");
  console.error(`bench: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await cleanUp();
}

async function runOnce(config: Config, step: (text: string, counter?: boolean) => void): Promise<Result> {
  step("starting the server");
  // --cpu-prof writes one profile per process when it exits, so every worker gets its own.
  const profiling: Record<string, string> = PROFILE_DIR ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${PROFILE_DIR}/${config.name.replace(/\W+/g, "_")}-server` } : {};
  const cluster = await startCluster({
    script: config.script,
    workers: WORKERS,
    adapter: ADAPTER,
    runtime: RUNTIME,
    redis: redis!,
    env: { ...profiling, ...config.env },
    timeoutMs: START_TIMEOUT_MS,
  });
  server = cluster.server;
  const { url } = cluster;
  const serverPids = () => serverProcesses(server!.child.pid!, config.script, config.cluster);
  await sleep(500);
  const rssAtStart = sum(serverPids().map(rssOf));

  // A server in auth mode (a variant with AUTH_SECRET) asks each client for a token: minted here,
  // before the clock starts, one user per connection, as many users would connect.
  const tokens = config.env.AUTH_SECRET ? await mintTokens(config.env.AUTH_SECRET, CLIENTS) : undefined;
  step("connecting");
  clients = forkClients(CLIENT_PROCESSES, PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}/${config.name.replace(/\W+/g, "_")}-clients`] : []);
  const started = now();
  const connected = await ask(
    clients,
    clients.map((_, i) => {
      const count = shareOf(CLIENTS, CLIENT_PROCESSES, i);
      const first = Array.from({ length: i }, (_, j) => shareOf(CLIENTS, CLIENT_PROCESSES, j)).reduce((a, b) => a + b, 0);
      return { type: "connect", url, count, transports: TRANSPORTS, timeoutMs: CONNECT_TIMEOUT_MS, tokens: tokens?.slice(first, first + count) } as const;
    }),
    "connected",
  );
  const connectSeconds = (now() - started) / 1000;
  const ok = sum(connected.map((c) => c.ok));
  const failedToConnect = sum(connected.map((c) => c.failed));
  if (ok === 0) {
    const said = [...server.stdout, ...server.stderr].filter((line) => line && !/connected, id:/.test(line)).slice(-5);
    throw new Error(`no client could connect to ${config.name}: ${connected.flatMap((c) => c.reasons).slice(0, 3).join("; ")}; the server said:\n  ${said.join("\n  ")}`);
  }
  await sleep(1000);
  // All of the growth counts, one-off costs included (V8's young generation grows while the
  // clients connect): docs/reference/performance.md measures how much of it that is.
  const kibPerConnection = (sum(serverPids().map(rssOf)) - rssAtStart) / 1024 / ok;

  const publisher = await publisherFor(config, url);
  step(`latency phase, ${LATENCY_MESSAGES} messages at ${RATE}/s`);
  const latencyCpuBefore = await cpuNow();
  const latencyStarted = now();
  const latency = await phase(1, LATENCY_MESSAGES, RATE, ok, publisher, step);
  const latencyCpuAfter = await cpuNow();
  const latencySeconds = (now() - latencyStarted) / 1000;
  step(`throughput phase, ${MESSAGES} messages`);
  const cpuBefore = await cpuNow();
  const publishedAt = now();
  const throughput = await phase(2, MESSAGES, 0, ok, publisher, step);
  const cpuAfter = await cpuNow();
  await publisher.close();

  step("stopping");
  await closeClients(clients);
  clients = [];
  await server.stop();
  server = undefined;

  const deliveries = sum(throughput.map((r) => r.received));
  const latencies = sortedLatencies(latency);
  return {
    deliveredPerSecond: deliveries / ((Math.max(...throughput.map((r) => r.lastAt)) - publishedAt) / 1000),
    p50: percentile(latencies, 0.5),
    p95: percentile(latencies, 0.95),
    p99: percentile(latencies, 0.99),
    lost: sum([...latency, ...throughput].map((r) => r.lost)),
    duplicated: sum([...latency, ...throughput].map((r) => r.duplicated)),
    reordered: sum([...latency, ...throughput].map((r) => r.reordered)),
    failedToConnect,
    failures: connected.flatMap((c) => c.reasons),
    disconnects: sum(throughput.map((r) => r.disconnects)),
    connectSeconds,
    kibPerConnection,
    cpu: cpuSpent(cpuBefore, cpuAfter, (seconds) => (deliveries > 0 ? (seconds / deliveries) * 1000 : Number.NaN)),
    latencyCores: cpuSpent(latencyCpuBefore, latencyCpuAfter, (seconds) => seconds / latencySeconds),
  };
}

/** One phase: every client process resets its counters, the messages go out, then the wait for them. */
async function phase(id: number, messages: number, rate: number, connected: number, publisher: Publisher, step: (text: string, counter?: boolean) => void) {
  await ask(clients, { type: "phase", phase: id, messages }, "phase-ready");
  const expected = connected * messages;
  const publishing = publisher.publishPhase(id, messages, rate);
  let last = -1;
  let lastChange = now();
  const started = now();
  for (;;) {
    await sleep(250);
    const received = sum((await ask(clients, { type: "progress" }, "progress")).map((p) => p.received));
    step(`phase ${id}: ${received}/${expected} delivered`, true);
    if (received !== last) [last, lastChange] = [received, now()];
    if (received >= expected || now() - lastChange > QUIET_MS || now() - started > DRAIN_LIMIT_MS) break;
  }
  await publishing;
  return (await ask(clients, { type: "report" }, "report")).map((r) => r.report);
}

// ---- publishers -----------------------------------------------------------------------------

/** How a configuration's messages are published: through Redis, or by the baseline server itself. */
interface Publisher {
  publishPhase(id: number, count: number, rate: number): Promise<void>;
  close(): Promise<void>;
}

async function publisherFor(config: Config, url: string): Promise<Publisher> {
  if (!config.cluster) {
    return {
      publishPhase: async (id, count, rate) => {
        const response = await fetch(`${url}/publish?phase=${id}&count=${count}&rate=${rate}`);
        if (!response.ok) throw new Error(`the baseline answered ${response.status} to /publish`);
        await response.text();
      },
      close: async () => {},
    };
  }
  const client = createClient({ url: redis!.url });
  await client.connect();
  // The same emitters as emitter.ts: the official one for classic, ours for sharded and streams.
  const emitter = ADAPTER === "classic" ? new Emitter(client).of("/") : shardedStreamsEmitter(client, ADAPTER).of("/");
  const send = (text: string) => void emitter.to([]).emit("chat message", text);
  return { publishPhase: (id, count, rate) => publish(id, count, rate, send), close: () => client.close() };
}

// ---- CPU ------------------------------------------------------------------------------------

function cpuSpent(before: Cpu, after: Cpu, scale: (seconds: number) => number): Cpu {
  return {
    server: scale(after.server - before.server),
    clients: scale(after.clients - before.clients),
    redis: scale(after.redis - before.redis),
    publisher: scale(after.publisher - before.publisher),
  };
}

/** CPU seconds used so far by the server's processes, the client processes, Redis and this process. */
async function cpuNow(): Promise<Cpu> {
  const secondsOf = (rootPid: number) => sum(processTree(rootPid).map((p) => p.cpuSeconds));
  const info = createClient({ url: redis!.url });
  await info.connect();
  const text = String(await info.info("cpu"));
  await info.close();
  const field = (name: string) => Number(text.match(new RegExp(`^${name}:([\\d.]+)`, "m"))?.[1] ?? 0);
  const own = process.cpuUsage();
  return {
    server: secondsOf(server!.child.pid!),
    clients: sum(clients.map((child) => secondsOf(child.pid!))),
    redis: field("used_cpu_user") + field("used_cpu_sys"),
    publisher: (own.user + own.system) / 1e6,
  };
}

// ---- small helpers --------------------------------------------------------------------------

/** One status line, rewritten in place on a terminal; elsewhere (a log) only the steps, not the counters. */
/** `count` HS256 tokens signed with `secret`, for users bench-0, bench-1... (lib/worker/identity.ts checks them). */
async function mintTokens(secret: string, count: number): Promise<string[]> {
  const key = new TextEncoder().encode(secret);
  const exp = Math.floor(Date.now() / 1000) + 3600;
  return Promise.all(Array.from({ length: count }, (_, i) => new SignJWT({ sub: `bench-${i}` }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(exp).sign(key)));
}

function progress(text: string, counter = false) {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${text}`);
  else if (text && !counter) process.stderr.write(`${text}\n`);
}

function variantConfig(spec: string): Config {
  if (spec.endsWith(".ts")) {
    if (!existsSync(`${ROOT}${spec.replace(/^\.\//, "")}`)) fail(`--variant ${spec}: no such script in ${ROOT}`);
    return { name: spec, script: spec.replace(/^\.\//, ""), env: {}, cluster: true };
  }
  const pairs = spec.split(",").map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]);
  if (!pairs.every(([key]) => key)) fail(`--variant takes KEY=VALUE[,KEY=VALUE] or a .ts script, got "${spec}"`);
  return { name: spec, script: "index.ts", env: Object.fromEntries(pairs), cluster: true };
}

function wholeNumber(name: keyof typeof options, min: number, max: number): number {
  const text = String(options[name]);
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) fail(`--${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  return value;
}

function oneOf(name: "runtime" | "adapter", allowed: readonly string[]): string {
  const value = options[name];
  if (!allowed.includes(value)) fail(`--${name} must be one of ${allowed.join(", ")}, got "${value}"`);
  return value;
}

async function cleanUp() {
  for (const child of clients) child.kill("SIGKILL");
  clients = [];
  await server?.stop();
  await redis?.stop();
}

function fail(message: string): never {
  console.error(`bench: ${message}`);
  console.error(USAGE.split("\n")[0]);
  process.exit(EXIT_USAGE);
}
