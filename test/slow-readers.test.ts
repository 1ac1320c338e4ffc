/**
 * Clients that stop reading, beside healthy ones, under floods through Redis: the real index.ts,
 * a real Redis, real socket.io clients (the stuck ones in a process the test freezes with
 * SIGSTOP). Paced: the stuck ones are let go and come back; the healthy ones, a long-polling one
 * among them, get every message. Unpaced (thousands of 10 KB broadcasts published back to back):
 * a client that reads as fast as it can gets every one, with and without stuck clients beside it,
 * round after round; a client that reads slowly but steadily is kept while its backlog drains;
 * the ceilings cut a client that reads, and say which one did. Memory figures:
 * bench/slow-readers.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import type { ServerToClientEvents } from "../lib/chat.ts";
import { EXIT_USAGE } from "../lib/failures.ts";
import { type Cluster, startCluster } from "../support/cluster.ts";
import { rssOf } from "../support/processes.ts";
import { freePort, type RunningRedis, startPrivateRedis } from "../support/redis.ts";
import { type Runtime, runToEnd, type Script, sleep, stopAll, until } from "../support/scripts.ts";
import { type Readers, record, startReaders } from "../support/sockets.ts";

/** A cut, as the worker logs it (lib/worker/slow-readers.ts). */
const CUT = /closed the connection of a slow reader \((\S+), (\w+)\), rule "([^"]+)"/;
const MESSAGE = "x".repeat(5000);
const RATE = 400; // messages per second: 2 MB/s to every client
const SECONDS = 10;

/** The RSS of the cluster's workers together, in MB. */
function workersRss(cluster: Cluster): number {
  return Math.round(cluster.workerPids().reduce((bytes, pid) => bytes + rssOf(pid), 0) / 2 ** 20);
}

describe("clients that stop reading, under a flood", () => {
  let cluster: Cluster;
  let server: Script;
  let url: string;

  before(async () => {
    cluster = await startCluster({ workers: 1 });
    ({ server, url } = cluster);
  });

  after(async () => {
    await stopAll();
    await cluster?.stop();
  });

  test("are cut and reconnect; healthy clients, websocket and long-polling, get every message", async (t) => {
    // Only MESSAGE is sent: counting is enough, and keeps 2 x 20 MB of texts out of memory.
    const healthy = [["websocket"], ["polling"]].map((transports) => record(url, { transports }, { keepTexts: false }));
    const stuck = startReaders(url, 3);
    const publisher = createClient({ url: cluster.redis.url });
    let ticker: NodeJS.Timeout | undefined;
    try {
      await publisher.connect();
      await until(() => healthy.every((h) => h.socket.connected) && stuck.ids().length === 3, 20_000, "everyone connected");
      const stuckIds = stuck.ids();
      const rssBefore = workersRss(cluster);
      stuck.freeze();

      const emitter = new Emitter<ServerToClientEvents>(publisher);
      const total = RATE * SECONDS;
      let sent = 0;
      let rssPeak = 0;
      ticker = setInterval(() => {
        for (let i = 0; i < RATE / 20 && sent < total; i++, sent++) emitter.emit("chat message", MESSAGE);
        rssPeak = Math.max(rssPeak, workersRss(cluster));
      }, 50);
      await until(() => sent === total, (SECONDS + 20) * 1000, "the flood is sent");
      clearInterval(ticker);
      await until(() => healthy.every((h) => h.count === total), 20_000, `healthy clients got ${total} messages`).catch(() => {});
      t.diagnostic(`worker RSS: ${rssBefore} MB before, peak ${rssPeak} MB during the flood (3 stuck readers, the defaults)`);
      t.diagnostic(`healthy: websocket ${healthy[0]!.count}, polling ${healthy[1]!.count} of ${total}`);

      for (const h of healthy) assert.equal(h.count, total, "a healthy client got every message");
      const cuts = server.stdout.filter((line) => CUT.test(line));
      for (const h of healthy) assert.ok(!cuts.some((line) => line.includes(h.socket.io.engine.id)), `a healthy client was cut: ${cuts.join("\n")}`);
      assert.equal(cuts.length, 3, `one line per stuck client:\n${cuts.join("\n")}`);
      t.diagnostic(cuts[0]!);
      // The engine ids in the log are not the socket ids the fixture printed; count is what matters.
      assert.equal(stuckIds.length, 3);

      // Thawed, the stuck clients find their connection gone and come back by themselves.
      stuck.thaw();
      await until(() => stuck.ids().length === 6, 20_000, "the stuck clients reconnect");
    } finally {
      clearInterval(ticker);
      for (const h of healthy) h.socket.disconnect();
      await publisher.close().catch(() => {});
      await stuck.stop();
    }
    await sleep(0);
  });
});

/** Thousands of 10 KB broadcasts, published back to back: node-redis pipelines them all at once. */
const BURST = 4000;
const BIG = "x".repeat(10_000);

function publishBurst(emitter: Emitter<ServerToClientEvents>, count = BURST) {
  for (let i = 0; i < count; i++) emitter.emit("chat message", BIG);
}

function cutsIn(cluster: Cluster, from: number) {
  return cluster.server.stdout.slice(from).filter((line) => CUT.test(line));
}

describe("an unpaced burst through Redis", () => {
  let redis: RunningRedis;
  let cluster: Cluster;
  let publisher: ReturnType<typeof createClient>;
  let emitter: Emitter<ServerToClientEvents>;

  before(async () => {
    // Redis's default pubsub limit (32 MB) cuts a worker's subscriber that falls that far behind
    // a burst, before any client is judged (docs/reference/faults.md#bursts): raised here.
    redis = await startPrivateRedis(["--client-output-buffer-limit", "pubsub 512mb 512mb 60"]);
    cluster = await startCluster({ redis, workers: 2 });
    publisher = createClient({ url: redis.url });
    await publisher.connect();
    emitter = new Emitter<ServerToClientEvents>(publisher);
  });

  after(async () => {
    await publisher?.close().catch(() => {});
    await stopAll();
    await cluster?.stop();
    await redis?.stop();
  });

  test("a client that reads as fast as it can gets every message, round after round, with and without stuck clients; the stuck ones are let go", async (t) => {
    const healthy = startReaders(cluster.url, 1);
    let stuck: Readers | undefined;
    try {
      await until(() => healthy.ids().length === 1, 20_000, "the healthy reader connected");
      let expected = 0;
      for (const [round, stuckCount] of [0, 5, 0, 5, 5].entries()) {
        const logFrom = cluster.server.stdout.length;
        if (stuckCount) {
          stuck = startReaders(cluster.url, stuckCount);
          await until(() => stuck!.ids().length === stuckCount, 20_000, "the stuck readers connected");
          stuck.freeze();
        }
        publishBurst(emitter);
        expected += BURST;
        await until(() => healthy.received() >= expected, 60_000, `round ${round + 1}: the healthy reader got ${expected}`).catch(() => {});
        if (stuckCount) await until(() => cutsIn(cluster, logFrom).length >= stuckCount, 20_000, "the stuck readers are let go").catch(() => {});
        await sleep(500); // anything more, or a late cut, shows
        const cuts = cutsIn(cluster, logFrom);
        t.diagnostic(`round ${round + 1}, ${stuckCount} stuck: healthy ${healthy.received()} of ${expected}; cuts: ${cuts.map((line) => CUT.exec(line)![3]).join(", ") || "none"}`);
        assert.equal(healthy.received(), expected, `round ${round + 1}: the healthy reader got every message, and only those`);
        assert.equal(healthy.ids().length, 1, "the healthy reader was never disconnected");
        assert.equal(cuts.length, stuckCount, `one cut per stuck reader, none for the healthy one:\n${cuts.join("\n")}`);
        for (const line of cuts) assert.equal(CUT.exec(line)![3], "took nothing", line);
        if (stuck) {
          // Thawed, they find their connection gone and come back by themselves.
          stuck.thaw();
          await until(() => stuck!.ids().length === 2 * stuckCount, 20_000, "the stuck readers reconnect");
          await stuck.stop();
          stuck = undefined;
        }
      }
    } finally {
      await healthy.stop();
      await stuck?.stop();
    }
  });

  test("a client that reads slowly but steadily is kept while its backlog drains", async (t) => {
    // 600 messages a second, 6 MB/s: the burst puts it about 15 MB behind for 3 s or so. Its
    // kernel shows the server progress in steps of half its receive buffer (about 3 MB here, every
    // 0.5 s): SLOW_READER_GRACE=1000 leaves it twice that on a loaded machine (the trade:
    // docs/reference/faults.md#bursts).
    const COUNT = 2000;
    const patient = await startCluster({ redis, workers: 1, env: { SLOW_READER_GRACE: "1000" } });
    const slow = startReaders(patient.url, 1, "websocket", 600);
    try {
      await until(() => slow.ids().length === 1, 20_000, "the slow reader connected");
      const logFrom = patient.server.stdout.length;
      const started = performance.now();
      publishBurst(emitter, COUNT);
      await until(() => slow.received() >= COUNT, 60_000, `the slow reader got ${COUNT}`).catch(() => {});
      t.diagnostic(`slow reader: ${slow.received()} of ${COUNT} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      assert.equal(slow.received(), COUNT, "the slow reader got every message");
      assert.equal(slow.ids().length, 1, "the slow reader was never disconnected");
      assert.deepEqual(cutsIn(patient, logFrom), [], "no cut");
    } finally {
      await slow.stop();
      await patient.stop();
    }
  });
});

describe("the ceilings cut a client that reads, and say which one did", () => {
  let cluster: Cluster | undefined;
  after(async () => {
    await stopAll();
    await cluster?.stop();
  });

  for (const [rule, env] of [
    ["client ceiling", { MAX_CLIENT_BACKLOG: String(4 * 2 ** 20) }],
    ["worker ceiling", { MAX_WORKER_BACKLOG: String(6 * 2 ** 20) }],
  ] as const) {
    test(`${rule}: ${Object.entries(env)[0]!.join("=")}`, async (t) => {
      cluster = await startCluster({ workers: 1, env: { ...env } });
      const slow = startReaders(cluster.url, 2, "websocket", 300);
      const publisher = createClient({ url: cluster.redis.url });
      try {
        await publisher.connect();
        await until(() => slow.ids().length === 2, 20_000, "the slow readers connected");
        publishBurst(new Emitter<ServerToClientEvents>(publisher), 2000);
        await until(() => cutsIn(cluster!, 0).length > 0, 30_000, "a cut").catch(() => {});
        const cuts = cutsIn(cluster, 0);
        t.diagnostic(cuts[0] ?? "no cut");
        assert.ok(cuts.length > 0, "the burst put the slow readers over the ceiling");
        for (const line of cuts) assert.equal(CUT.exec(line)![3], rule, line);
        // They read: the other rule never fired, and they come back.
        await until(() => slow.ids().length >= 2 + cuts.length, 20_000, "the cut readers reconnect");
      } finally {
        await publisher.close().catch(() => {});
        await slow.stop();
        await cluster.stop();
        cluster = undefined;
      }
    });
  }
});

test("bad slow-reader settings: one line, exit code 2, before Redis is touched", async () => {
  const env = { REDIS_URL: `redis://127.0.0.1:${await freePort()}`, WORKERS: "1" };
  for (const [name, value] of [
    ["MAX_CLIENT_BACKLOG", "-1"],
    ["MAX_WORKER_BACKLOG", "0"],
    ["MAX_WORKER_BACKLOG", "lots"],
    ["SLOW_READER_GRACE", "50"],
    ["SLOW_READER_GRACE", "1.5"],
  ] as const) {
    const result = await runToEnd("index.ts", [], { ...env, [name]: value });
    assert.equal(result.code, EXIT_USAGE, `${name}=${value}: ${result.stderr.join("\n")}`);
    assert.equal(result.stderr.length, 1, `${name}=${value}: one line\n${result.stderr.join("\n")}`);
    assert.match(result.stderr[0]!, new RegExp(`${name} must be`));
  }
});

describe("an unpaced burst, on Bun and Deno servers", () => {
  // Bun and Deno have no libuv handle on their sockets: progress shows only as completed writes.
  after(stopAll);
  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: the reading client gets every message, the stuck ones are let go`, async (t) => {
      const cluster = await startCluster({ workers: 1, runtime });
      const healthy = startReaders(cluster.url, 1);
      const stuck = startReaders(cluster.url, 2);
      const publisher = createClient({ url: cluster.redis.url });
      try {
        await publisher.connect();
        await until(() => healthy.ids().length === 1 && stuck.ids().length === 2, 20_000, "everyone connected");
        stuck.freeze();
        publishBurst(new Emitter<ServerToClientEvents>(publisher), 3000);
        await until(() => healthy.received() >= 3000, 60_000, "the healthy reader got everything").catch(() => {});
        await until(() => cutsIn(cluster, 0).length >= 2, 20_000, "the stuck readers are let go").catch(() => {});
        await sleep(500);
        const cuts = cutsIn(cluster, 0);
        t.diagnostic(`healthy ${healthy.received()} of 3000; ${cuts[0] ?? "no cut"}`);
        assert.equal(healthy.received(), 3000, "the healthy reader got every message");
        assert.equal(healthy.ids().length, 1, "the healthy reader was never disconnected");
        assert.equal(cuts.length, 2, cuts.join("\n"));
      } finally {
        await publisher.close().catch(() => {});
        await healthy.stop();
        await stuck.stop();
        await cluster.stop();
      }
    });
  }
});
