/**
 * bench/redis-fanout.ts: how far one Redis carries. Many lightweight node-redis subscribers stand
 * in for the workers of many hosts (a worker of index.ts holds exactly such a subscription); the
 * script publishes room broadcasts and reads Redis's own CPU time (INFO CPU, used_cpu_sys +
 * used_cpu_user) before and after, so the figure is Redis's work per published message, whatever
 * the subscribers' side costs. Two set-ups, each on private redis-servers on loopback:
 *
 * - classic on one node: every worker PSUBSCRIBEs "socket.io#/#*", as the classic adapter does,
 *   so every message (a room broadcast included) is matched and sent to every worker;
 * - sharded on a 3-master Redis Cluster: every worker SSUBSCRIBEs "socket.io#/#" and, as the
 *   sharded adapter's dynamic mode does, the channel of each room it has members in; a room
 *   broadcast goes to that room's channel only, on the master that owns its slot.
 *
 * Rooms: WORKERS/2 rooms, each with members on 2 workers (a small chat room spread over hosts).
 *
 *   npx tsx bench/redis-fanout.ts                     workers 1,50,100,200,400; 2,000 messages each
 *   npx tsx bench/redis-fanout.ts --workers 10,100 --messages 1000
 *
 * Bounded: at most 600 subscribers, 10,000 messages per point, 60 s per point.
 * docs/reference/performance.md ("How far one Redis carries") holds the table it printed.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { promisify } from "node:util";
import { createClient, createCluster } from "redis";
import { freePort, type RunningRedis, startRedisServer } from "../support/redis.ts";

const { values } = parseArgs({
  options: {
    workers: { type: "string", default: "1,50,100,200,400" },
    messages: { type: "string", default: "2000" },
    size: { type: "string", default: "120" },
  },
});
const WORKER_COUNTS = values.workers.split(",").map(Number);
const MESSAGES = Number(values.messages);
const PAYLOAD = Buffer.alloc(Number(values.size), "x"); // about a msgpack'd chat message with its envelope
if (WORKER_COUNTS.some((n) => !Number.isInteger(n) || n < 1 || n > 600) || !(MESSAGES >= 100 && MESSAGES <= 10_000)) {
  console.error("redis-fanout: --workers takes counts of 1 to 600, --messages 100 to 10000");
  process.exit(2);
}
const POINT_LIMIT_MS = 60_000;

/** Redis's CPU seconds so far, user + sys, from INFO CPU. */
async function cpuSeconds(client: { info(section: string): Promise<unknown> }): Promise<number> {
  const info = String(await client.info("cpu"));
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)![1]);
  return field("used_cpu_sys") + field("used_cpu_user");
}

/** Publishes in batches of 100 and waits until the subscribers got `expected` messages (or the point's time is up). */
async function publishAll(publish: (i: number) => Promise<unknown>, received: () => number, expected: number) {
  const deadline = Date.now() + POINT_LIMIT_MS;
  for (let i = 0; i < MESSAGES && Date.now() < deadline; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, MESSAGES - i) }, (_, j) => publish(i + j)));
  }
  while (received() < expected && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return received();
}

/**
 * Redis's CPU seconds per second with the subscribers connected and nothing published (its cron
 * visits every client): subtracted from a point's CPU for the cost of the messages themselves.
 */
async function idleRate(cpu: () => Promise<number>): Promise<number> {
  const before = await cpu();
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 2000));
  return ((await cpu()) - before) / ((performance.now() - started) / 1000);
}

const roomOf = (worker: number, rooms: number) => Math.floor(worker / 2) % rooms;

async function classicPoint(redis: RunningRedis, workers: number) {
  const rooms = Math.max(1, Math.floor(workers / 2));
  let received = 0;
  const subscribers: { close(): Promise<void> }[] = [];
  for (let w = 0; w < workers; w++) {
    const sub = createClient({ url: redis.url });
    await sub.connect();
    await sub.pSubscribe("socket.io#/#*", () => void received++, true);
    subscribers.push(sub);
  }
  const pub = createClient({ url: redis.url });
  await pub.connect();
  const idle = await idleRate(() => cpuSeconds(pub));
  const before = await cpuSeconds(pub);
  const started = performance.now();
  const got = await publishAll((i) => pub.publish(`socket.io#/#room${i % rooms}#`, PAYLOAD), () => received, MESSAGES * workers);
  const seconds = (performance.now() - started) / 1000;
  const cpu = (await cpuSeconds(pub)) - before;
  await Promise.all([pub, ...subscribers].map((c) => c.close()));
  return { cpu, net: cpu - idle * seconds, idle, seconds, got, expected: MESSAGES * workers };
}

async function shardedPoint(seeds: string[], ports: number[], workers: number) {
  const rooms = Math.max(1, Math.floor(workers / 2));
  let received = 0;
  const subscribers: { close(): Promise<void> }[] = [];
  for (let w = 0; w < workers; w++) {
    const sub = createCluster({ rootNodes: seeds.map((url) => ({ url })), minimizeConnections: true });
    await sub.connect();
    await sub.sSubscribe("socket.io#/#", () => void received++, true);
    await sub.sSubscribe(`socket.io#/#room${roomOf(w, rooms)}#`, () => void received++, true);
    subscribers.push(sub);
  }
  const pub = createCluster({ rootNodes: seeds.map((url) => ({ url })) });
  await pub.connect();
  const masters = await Promise.all(ports.map(async (port) => {
    const client = createClient({ url: `redis://127.0.0.1:${port}` });
    await client.connect();
    return client;
  }));
  const perMaster = async () => Promise.all(masters.map(cpuSeconds));
  const idle = await idleRate(async () => (await perMaster()).reduce((a, b) => a + b, 0));
  const before = await perMaster();
  const started = performance.now();
  const members = (room: number) => Array.from({ length: workers }, (_, w) => w).filter((w) => roomOf(w, rooms) === room).length;
  const expected = Array.from({ length: MESSAGES }, (_, i) => members(i % rooms)).reduce((a, b) => a + b, 0);
  const got = await publishAll((i) => pub.sPublish(`socket.io#/#room${i % rooms}#`, PAYLOAD), () => received, expected);
  const seconds = (performance.now() - started) / 1000;
  const after = await perMaster();
  const busiest = Math.max(...after.map((value, i) => value - before[i]! - (idle / 3) * seconds));
  const cpu = after.reduce((a, b) => a + b, 0) - before.reduce((a, b) => a + b, 0);
  await Promise.all([pub, ...subscribers, ...masters].map((c) => c.close()));
  return { cpu, net: cpu - idle * seconds, busiest, idle, seconds, got, expected };
}

async function startCluster() {
  const dir = mkdtempSync(join(tmpdir(), "kit-fanout-"));
  const ports = [await freePort(), await freePort(), await freePort()];
  const nodes: RunningRedis[] = [];
  for (const port of ports) {
    nodes.push(
      await startRedisServer(port, ["--cluster-enabled", "yes", "--cluster-config-file", join(dir, `nodes-${port}.conf`), "--cluster-port", String(await freePort())]),
    );
  }
  await promisify(execFile)("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"]);
  // Wait for every node to agree the cluster is up.
  for (const port of ports) {
    const client = createClient({ url: `redis://127.0.0.1:${port}` });
    await client.connect();
    for (let i = 0; i < 100 && !(await client.clusterInfo()).includes("cluster_state:ok"); i++) await new Promise((r) => setTimeout(r, 100));
    await client.close();
  }
  return {
    ports,
    seeds: ports.map((p) => `redis://127.0.0.1:${p}`),
    stop: async () => {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const single = await startRedisServer(await freePort());
const cluster = await startCluster();
const rows: string[] = [];
try {
  console.log(`${MESSAGES} room broadcasts of ${PAYLOAD.length} B per point; Redis CPU from INFO CPU (user + sys)`);
  console.log("µs of Redis CPU per message, idle cost (Redis's cron with that many clients) taken out; idle in % of a core; all deliveries checked");
  console.log("workers | classic 1 node: µs/msg  idle  deliveries | sharded 3 masters: µs/msg (all)  busiest master  idle  deliveries");
  for (const workers of WORKER_COUNTS) {
    const classic = await classicPoint(single, workers);
    const sharded = await shardedPoint(cluster.seeds, cluster.ports, workers);
    const us = (seconds: number) => ((seconds / MESSAGES) * 1e6).toFixed(1);
    const pct = (rate: number) => `${(rate * 100).toFixed(1)}%`.padStart(6);
    const row =
      `${String(workers).padStart(7)} | ${us(classic.net).padStart(8)}  ${pct(classic.idle)}  ${classic.got}/${classic.expected}` +
      ` | ${us(sharded.net).padStart(8)}  ${us(sharded.busiest).padStart(8)}  ${pct(sharded.idle)}  ${sharded.got}/${sharded.expected}`;
    console.log(row);
    rows.push(row);
  }
} finally {
  await single.stop();
  await cluster.stop();
}
