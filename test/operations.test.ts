/**
 * Operating the kit (docs/reference/operations.md): the Prometheus metrics the primary gathers
 * from its workers (METRICS_PORT), /healthz and /readyz, a real Prometheus scraping them, and the
 * rolling reload (SIGHUP) under traffic. Real Redis servers, the real cluster, real clients; Redis
 * frozen with SIGSTOP as in test/sick-redis.test.ts; metrics and reload on Bun and Deno too. How long things take is printed
 * (t.diagnostic); the storm's figures come from bench/reload.ts.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SignJWT } from "jose";
import { createClient } from "redis";
import { shardedStreamsEmitter } from "../lib/emitter/sharded-streams.ts";
import { type Cluster, startCluster, workerOf } from "../support/cluster.ts";
import { freePort, type RunningRedis, startRedisServer } from "../support/redis.ts";
import { sleep, stopAll, until } from "../support/scripts.ts";
import { connected, type Recorder, record } from "../support/sockets.ts";

/** The samples of one family in Prometheus text: labels (as one string) and value. */
function samples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const found = [];
  for (const line of text.split("\n")) {
    const match = line.match(/^(\w+)(?:\{(.*)\})? (\S+)$/);
    if (!match || match[1] !== name) continue;
    const labels = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    found.push({ labels, value: Number(match[3]) });
  }
  return found;
}

const sum = (list: { value: number }[]) => list.reduce((total, s) => total + s.value, 0);

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200, await res.clone().text());
  return res.text();
}

/** Polls a condition that needs a scrape, until it holds. */
async function untilScraped(port: number, holds: (text: string) => boolean, ms: number, what: string): Promise<string> {
  let last = "";
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(200)) {
    last = await scrape(port);
    if (holds(last)) return last;
  }
  throw new Error(`not within ${ms} ms: ${what}`);
}

const SECRET = "operations-test-secret-operations-test-secret";
const token = (sub: string) =>
  new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(sub).setExpirationTime("10m").sign(new TextEncoder().encode(SECRET));

describe("metrics and health, auth mode, ADAPTER=classic", () => {
  const REDIS_TIMEOUT = 1500;
  let redis: RunningRedis;
  let cluster: Cluster;
  let metricsPort: number;
  const clients: Recorder[] = [];

  before(async () => {
    redis = await startRedisServer(await freePort());
    metricsPort = await freePort();
    cluster = await startCluster({
      redis,
      adapter: "classic",
      env: { METRICS_PORT: String(metricsPort), REDIS_TIMEOUT: String(REDIS_TIMEOUT), AUTH_SECRET: SECRET },
    });
    await cluster.server.waitFor("metrics on http://127.0.0.1:", 10_000);
  });
  after(async () => {
    for (const c of clients) c.socket.disconnect();
    await stopAll();
    await redis?.stop();
  });

  test("the connected family sums to the clients, on both workers, and follows disconnects", async (t) => {
    const N = 6;
    const workers = new Set<string>();
    for (let i = 0; i < N; i++) {
      const c = record(cluster.url, { transports: ["websocket"], auth: { token: await token(`user${i}`) } });
      clients.push(c);
      await connected(c.socket, 20_000, { firstTry: true });
      workers.add(await workerOf(cluster.server, c.socket.id!));
    }
    assert.equal(workers.size, 2, "clients on both workers");
    let text = await untilScraped(metricsPort, (m) => sum(samples(m, "kit_connected_clients")) === N, 20_000, `${N} connected`);
    const root = samples(text, "kit_connected_clients").filter((s) => s.labels.namespace === "/");
    assert.equal(sum(root), N);
    assert.deepEqual(new Set(root.map((s) => s.labels.worker)), workers, "one series per worker");
    assert.ok(root.every((s) => s.value > 0), "each worker has some");
    assert.equal(sum(samples(text, "kit_connected_clients").filter((s) => s.labels.namespace === "/lounge")), 0, "nobody on /lounge");
    assert.equal(sum(samples(text, "kit_handshakes_accepted_total")), N);
    assert.equal(sum(samples(text, "kit_scrape_workers_missing")), 0, "every worker answered");

    clients[0]!.socket.emit("chat message", "user0", "hello");
    await until(() => clients[1]!.received.includes("hello from user0"), 20_000, "the chat line arrives");
    for (const c of clients.splice(0, 2)) c.socket.disconnect();
    text = await untilScraped(metricsPort, (m) => sum(samples(m, "kit_connected_clients")) === N - 2, 20_000, `${N - 2} connected`);
    const disconnects = samples(text, "kit_disconnects_total");
    assert.deepEqual(disconnects.map((s) => s.labels.reason).filter((r, i, all) => all.indexOf(r) === i), ["client namespace disconnect"]);
    assert.equal(sum(disconnects), 2);
    assert.equal(sum(samples(text, "kit_chat_messages_total")), 1);
    assert.ok(sum(samples(text, "kit_redis_messages_total").filter((s) => s.labels.adapter === "classic")) >= 1, "the broadcast crossed Redis");
    assert.ok(samples(text, "nodejs_eventloop_lag_seconds").length >= 2, "event loop lag per worker");
    assert.ok(samples(text, "process_cpu_seconds_total").length >= 2, "default process metrics per worker");
    // A payload the classic adapter cannot decode, published by hand: dropped and counted by both workers.
    const hand = createClient({ url: redis.url });
    await hand.connect();
    await hand.sendCommand(["PUBLISH", "socket.io#/#", Buffer.from([0xc1, 0xc1, 0xc1])]);
    await hand.close();
    text = await untilScraped(metricsPort, (m) => sum(samples(m, "kit_redis_malformed_messages_total")) === 2, 20_000, "the malformed message counted");
    assert.equal(samples(text, "kit_redis_malformed_messages_total").filter((s) => s.value === 1).length, 2, "once on each worker");
    t.diagnostic(`families: ${new Set(text.split("\n").filter((l) => l.startsWith("# TYPE")).map((l) => l.split(" ")[2])).size}`);
  });

  test("refusals are counted by reason: a page of another origin, a bad token", async () => {
    const before = await scrape(metricsPort);
    const refused = (m: string, reason: string) => sum(samples(m, "kit_handshakes_refused_total").filter((s) => s.labels.reason === reason));
    const res = await fetch(`${cluster.url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: "http://elsewhere.example" } });
    assert.equal(res.status, 403);
    await res.body?.cancel();
    const forged = record(cluster.url, { transports: ["websocket"], auth: { token: "not.a.token" }, reconnection: false });
    await until(() => forged.connectErrors.length === 1, 20_000, "the bad token is refused");
    forged.socket.disconnect();
    const after = await untilScraped(metricsPort, (m) => refused(m, "auth") === refused(before, "auth") + 1, 20_000, "the auth refusal counted");
    assert.equal(refused(after, "origin"), refused(before, "origin") + 1);
    assert.equal(sum(samples(after, "kit_handshakes_accepted_total")), sum(samples(before, "kit_handshakes_accepted_total")), "neither was accepted");
  });

  test("Redis frozen: /readyz 503 within REDIS_TIMEOUT and a little, kit_redis_up 0, /healthz 200; then both back", async (t) => {
    const status = async (path: string) => {
      const res = await fetch(`${cluster.url}${path}`);
      await res.body?.cancel();
      return res.status;
    };
    assert.equal(await status("/readyz"), 200);
    assert.equal(await status("/healthz"), 200);
    process.kill(redis.pid!, "SIGSTOP");
    const frozenAt = Date.now();
    let readyzDownAfter: number | undefined;
    try {
      // Both workers: /readyz is answered by whichever worker the primary picks.
      for (let downInARow = 0; downInARow < 6; await sleep(100)) {
        if (Date.now() - frozenAt > 30_000) assert.fail("/readyz stayed 200 for 30 s with Redis frozen");
        downInARow = (await status("/readyz")) === 503 ? downInARow + 1 : 0;
        if (downInARow === 1) readyzDownAfter ??= Date.now() - frozenAt;
      }
      const text = await untilScraped(metricsPort, (m) => sum(samples(m, "kit_redis_up")) === 0, 20_000, "kit_redis_up 0 on both workers");
      assert.equal(samples(text, "kit_redis_up").length, 2);
      assert.equal(await status("/healthz"), 200, "alive all along");
      const res = await fetch(`${cluster.url}/readyz`);
      assert.equal(await res.text(), "not ready: Redis is down\n");
      t.diagnostic(`/readyz 503 ${readyzDownAfter} ms after SIGSTOP (REDIS_TIMEOUT ${REDIS_TIMEOUT} ms)`);
    } finally {
      process.kill(redis.pid!, "SIGCONT");
    }
    const text = await untilScraped(metricsPort, (m) => sum(samples(m, "kit_redis_up")) === 2, 20_000, "kit_redis_up 1 on both workers");
    assert.ok(samples(text, "kit_redis_outages_total").every((s) => s.value >= 1), "an outage counted on each worker");
    for (let i = 0; i < 5; i++) assert.equal(await status("/readyz"), 200);
  });

  test("a real Prometheus scrapes the primary and answers the connected count", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "kit-prometheus-"));
    const webPort = await freePort();
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: kit\n    static_configs:\n      - targets: ["127.0.0.1:${metricsPort}"]\n`,
    );
    const prometheus = spawn("prometheus", [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${webPort}`], { stdio: "ignore" });
    const spawned = await new Promise<boolean>((resolve) => {
      prometheus.once("spawn", () => resolve(true));
      prometheus.once("error", () => resolve(false));
    });
    if (!spawned && process.env.CI === "true") assert.fail("CI=true, and there is no prometheus binary (Debian's prometheus package)");
    if (!spawned) return t.skip("no prometheus binary (Debian's prometheus package)");
    try {
      const query = async (promql: string) => {
        const res = await fetch(`http://127.0.0.1:${webPort}/api/v1/query?query=${encodeURIComponent(promql)}`).catch(() => undefined);
        if (!res?.ok) return undefined;
        const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
        return body.data.result[0] ? Number(body.data.result[0].value[1]) : undefined;
      };
      let answer: number | undefined;
      for (const deadline = Date.now() + 60_000; answer !== clients.length && Date.now() < deadline; await sleep(500)) {
        answer = await query('sum(kit_connected_clients{namespace="/"})');
      }
      t.diagnostic(`Prometheus answers sum(kit_connected_clients{namespace="/"}) = ${answer}`);
      assert.equal(answer, clients.length);
      assert.equal(await query('count(up{job="kit"} == 1)'), 1, "the target is up");
    } finally {
      prometheus.kill("SIGTERM");
      await new Promise((resolve) => (prometheus.exitCode !== null ? resolve(undefined) : prometheus.once("exit", resolve)));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("rolling reload (SIGHUP) under traffic, ADAPTER=streams", () => {
  let cluster: Cluster;
  let publisher: ReturnType<typeof createClient>;

  before(async () => {
    cluster = await startCluster({ adapter: "streams", env: { RELOAD_SPREAD_MS: "2000" } });
    publisher = createClient({ url: cluster.redis.url });
    await publisher.connect();
  });
  after(async () => {
    await publisher?.close().catch(() => {});
    await stopAll();
    await cluster?.stop(); // and the Redis it started
  });

  test("every worker replaced, the primary kept, no connection refused, all back, nothing lost", async (t) => {
    const receivers: Recorder[] = [];
    const recoveries: string[][] = [];
    t.after(() => receivers.forEach((c) => c.socket.disconnect()));
    for (let i = 0; i < 12; i++) {
      const c = record(cluster.url, { transports: i % 3 === 0 ? ["polling"] : ["websocket"] });
      receivers.push(c);
      const told: string[] = [];
      recoveries.push(told);
      c.socket.on("connect", () => told.push(c.socket.recovered ? "recovered" : "new session"));
      await connected(c.socket, 20_000, { firstTry: true });
    }
    const emitter = shardedStreamsEmitter(publisher, "streams").of("/").to([]);
    let sequence = 0;
    const ticker = setInterval(() => void emitter.emit("chat message", `seq ${sequence++}`), 25);
    const seqs = (c: Recorder) => c.received.filter((text) => text.startsWith("seq ")).map((text) => Number(text.slice(4)));
    await until(() => receivers.every((c) => seqs(c).length > 5), 20_000, "the sequence flows");

    // A new client every 200 ms, each on its first try only.
    const probes: { ok: boolean; error?: string }[] = [];
    let probing = true;
    let launched = 0;
    const prober = (async () => {
      while (probing) {
        launched++;
        const probe = record(cluster.url, { transports: ["polling", "websocket"], reconnection: false });
        const outcome = connected(probe.socket, 20_000, { firstTry: true }).then(
          () => ({ ok: true }),
          (err: Error) => ({ ok: false, error: err.message }),
        );
        void outcome.then((o) => (probes.push(o), probe.socket.disconnect()));
        await sleep(200);
      }
    })();

    const primary = cluster.server.child.pid!;
    const before = cluster.workerPids();
    assert.equal(before.length, 2);
    const from = cluster.server.stdout.length;
    const startedAt = Date.now();
    process.kill(primary, "SIGHUP");
    try {
      await cluster.server.waitFor(/^reload done: 2 of 2 workers replaced/, 90_000);
      await until(() => receivers.every((c) => c.socket.connected), 30_000, "every receiver back");
      const last = sequence + 10;
      await until(() => receivers.every((c) => seqs(c).includes(last)), 30_000, "the sequence after the reload");
    } finally {
      clearInterval(ticker);
      probing = false;
      await prober;
    }
    await until(() => probes.length === launched, 30_000, "every probe settled");
    t.diagnostic(`the reload took ${Date.now() - startedAt} ms from SIGHUP to every receiver back`);
    t.diagnostic(cluster.server.stdout.slice(from).filter((l) => l.startsWith("reload")).join(" | "));

    const after = cluster.workerPids();
    assert.equal(after.length, 2);
    assert.deepEqual(after.filter((pid) => before.includes(pid)), [], "every worker pid replaced");
    assert.equal(cluster.server.child.exitCode, null, "the primary runs");
    assert.ok(cluster.workerPids().length === 2 && process.kill(primary, 0), "the primary pid kept");

    const refused = probes.filter((p) => !p.ok);
    t.diagnostic(`${probes.length} probes during the reload, ${refused.length} refused`);
    assert.ok(probes.length >= 10, `probes ran (${probes.length})`);
    assert.deepEqual(refused, [], "no connection refused");

    // Counted per receiver by sequence: what never came, what came twice, what came out of order.
    const tally = receivers.map((c, i) => {
      const got = seqs(c);
      const seen = new Set(got);
      const lost = Array.from({ length: Math.max(...got) - got[0]! + 1 }, (_, k) => got[0]! + k).filter((n) => !seen.has(n));
      const duplicated = got.length - seen.size;
      const outOfOrder = got.filter((n, k) => k > 0 && n < got[k - 1]!).length - duplicated;
      assert.ok(c.disconnects >= 1, `receiver ${i} was let go and came back`);
      return { lost, duplicated, outOfOrder, how: `${c.disconnectReasons.join(", ")}; ${recoveries[i]!.join(", ")}` };
    });
    const troubled = tally.map((r, i) => ({ receiver: i, ...r })).filter((r) => r.lost.length + r.duplicated + r.outOfOrder > 0);
    t.diagnostic(`lost ${tally.reduce((n, r) => n + r.lost.length, 0)}, duplicated ${tally.reduce((n, r) => n + r.duplicated, 0)}: ${JSON.stringify(troubled)}`);
    // The recovery itself (the streams adapter's XRANGE snapshot, then live delivery) loses or
    // repeats a message now and then: 3 of 96 recovered sessions in 8 runs here (docs/reference/operations.md#what-the-reload-does-not-promise).
    // More than that, or any out of order, is the reload's doing.
    assert.ok(troubled.length <= 1 && troubled.every((r) => r.lost.length + r.duplicated <= 1 && r.outOfOrder === 0), JSON.stringify(troubled));
    t.diagnostic(`receivers let go: ${receivers.map((c) => c.disconnects).join(",")}; sequence reached ${sequence}`);
    for (const c of receivers) c.socket.disconnect();
  });
});

for (const runtime of ["bun", "deno"] as const) {
  describe(`metrics and reload on ${runtime}`, () => {
    let cluster: Cluster;
    let metricsPort: number;
    before(async () => {
      metricsPort = await freePort();
      cluster = await startCluster({ runtime, env: { METRICS_PORT: String(metricsPort), RELOAD_SPREAD_MS: "500" } });
    });
    after(async () => {
      await stopAll();
      await cluster?.stop();
    });

    test("both workers in /metrics; SIGHUP replaces them, the primary kept", async () => {
      const c = record(cluster.url, { transports: ["websocket"] });
      try {
        await connected(c.socket, 20_000, { firstTry: true });
        let text = await untilScraped(metricsPort, (m) => samples(m, "kit_redis_up").length === 2 && sum(samples(m, "kit_connected_clients")) === 1, 20_000, "two workers, one client");
        assert.equal(sum(samples(text, "kit_redis_up")), 2);
        const before = cluster.workerPids();
        assert.equal(before.length, 2, "two worker pids found");
        process.kill(cluster.server.child.pid!, "SIGHUP");
        await cluster.server.waitFor(/^reload done: 2 of 2 workers replaced/, 60_000);
        await until(() => c.socket.connected, 20_000, "the client back");
        text = await untilScraped(metricsPort, (m) => sum(samples(m, "kit_connected_clients")) === 1, 20_000, "the client counted again");
        assert.ok(samples(text, "kit_redis_up").every((s) => !["1", "2"].includes(s.labels.worker!)), "the old workers' series are gone");
        assert.deepEqual(cluster.workerPids().filter((pid) => before.includes(pid)), [], "every worker pid replaced");
        assert.equal(cluster.server.child.exitCode, null);
      } finally {
        c.socket.disconnect();
      }
    });
  });
}
