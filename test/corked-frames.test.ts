/**
 * lib/worker/corked-frames.ts against the real clustered index.ts (2 workers) and a private Redis:
 * a burst of broadcasts published back to back through @socket.io/redis-emitter reaches WebSocket
 * and long-polling clients whole and in order with CORK_FRAMES on (the default) and off, and with
 * it on the workers make fewer write system calls for the same burst (Linux's /proc/<pid>/io
 * `syscw`, a count, not a time). A bad CORK_FRAMES is one line and exit code 2.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { after, test } from "node:test";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { type Cluster, startCluster } from "../support/cluster.ts";
import { runToEnd, sleep } from "../support/scripts.ts";
import { connected, type Recorder, record } from "../support/sockets.ts";

const BURST = 200;
const clusters: Cluster[] = [];
const recorders: Recorder[] = [];
after(async () => {
  for (const r of recorders) r.socket.close();
  for (const c of clusters) await c.stop();
});

/** write(2)-family system calls the processes made so far (writev included). */
const writeCalls = (pids: number[]) => pids.reduce((sum, pid) => sum + Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? NaN), 0);

/** Publishes a burst to clients on both transports; what each got, and the workers' write calls for it. */
async function burst(corkFrames: "0" | "1") {
  const cluster = await startCluster({ workers: 2, env: { CORK_FRAMES: corkFrames } });
  clusters.push(cluster);
  const clients = [
    ...Array.from({ length: 6 }, () => record(cluster.url, { transports: ["websocket"] })),
    record(cluster.url, { transports: ["polling"] }),
    record(cluster.url), // polling, then the upgrade
  ];
  recorders.push(...clients);
  await Promise.all(clients.map((c) => connected(c.socket, 30_000)));
  await sleep(1000); // the last upgrade done
  const redis = createClient({ url: cluster.redis.url });
  await redis.connect();
  try {
    const pids = cluster.workerPids();
    const before = writeCalls(pids);
    const emitter = new Emitter(redis);
    for (let i = 1; i <= BURST; i++) emitter.emit("chat message", `burst ${i}`);
    const deadline = Date.now() + 30_000;
    while (clients.some((c) => c.count < BURST) && Date.now() < deadline) await sleep(50);
    await sleep(500); // anything extra (a duplicate) would have come by now
    return { got: clients.map((c) => c.received), writes: writeCalls(pids) - before };
  } finally {
    await redis.quit();
  }
}

test("a burst arrives whole and in order with CORK_FRAMES on and off, in fewer write calls with it on", async () => {
  const expected = Array.from({ length: BURST }, (_, i) => `burst ${i + 1}`);
  const on = await burst("1");
  const off = await burst("0");
  for (const [name, run] of [["on", on], ["off", off]] as const) {
    for (const [i, got] of run.got.entries()) assert.deepEqual(got, expected, `CORK_FRAMES ${name}, client ${i}`);
  }
  console.log(`# write system calls of the workers for the burst: ${on.writes} corked, ${off.writes} not`);
  if (!existsSync("/proc/self/io")) return; // not Linux: the count cannot be read
  // Eight clients, 200 messages each: one writev per frame uncorked; corked, the frames queued
  // behind the first go out together.
  assert.ok(on.writes * 2 < off.writes, `corked ${on.writes} write calls, uncorked ${off.writes}`);
});

test("CORK_FRAMES other than 0 or 1: one line, exit code 2", async () => {
  const { code, stderr } = await runToEnd("index.ts", [], { CORK_FRAMES: "yes", PORT: "0", WORKERS: "1" });
  assert.equal(code, 2);
  assert.deepEqual(stderr, ['CORK_FRAMES must be 0 or 1, got "yes"']);
});
