/**
 * A sick Redis against the real scripts: a redis-server frozen with SIGSTOP (it accepts TCP and
 * answers nothing), another service on REDIS_URL's port, a half-open path between the workers and
 * Redis (support/tcp-proxy.ts stops forwarding without closing), and Redis cutting a subscriber
 * that fell behind. The assertions are on what honest clients receive and on what the scripts
 * say; how long things take is printed (t.diagnostic), and measured by bench/sick-redis.ts.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { type AddressInfo, createServer, type Server } from "node:net";
import { after, before, describe, test } from "node:test";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import type { ServerToClientEvents } from "../lib/chat.ts";
import { shardedStreamsEmitter } from "../lib/emitter/sharded-streams.ts";
import { type Cluster, startCluster, workerOf } from "../support/cluster.ts";
import { freePort, type RunningRedis, startRedisServer } from "../support/redis.ts";
import { type Runtime, runToEnd, type Script, sleep, stopAll, until } from "../support/scripts.ts";
import { connected, type Recorder, record } from "../support/sockets.ts";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.ts";

/** A service that is not Redis: it answers anything with an HTTP error and keeps the connection. */
async function notRedis(): Promise<Server> {
  const server = createServer((socket) => {
    socket.on("error", () => {});
    socket.on("data", () => socket.write("HTTP/1.1 400 Bad Request\r\n\r\n"));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return server;
}

describe("a Redis that accepts TCP but never answers, and a service that is not Redis", () => {
  let frozen: RunningRedis;
  let other: Server;
  before(async () => {
    frozen = await startRedisServer(await freePort());
    process.kill(frozen.pid!, "SIGSTOP");
    other = await notRedis();
  });
  after(async () => {
    await frozen?.stop(); // SIGCONT, then SIGTERM
    other?.close();
    await stopAll();
  });

  test("emitter.ts on Node, Bun and Deno, and index.ts on Node: one line and exit code 1, in bounded time", async (t) => {
    const urls = { frozen: frozen.url, "not Redis": `redis://127.0.0.1:${(other.address() as AddressInfo).port}` };
    const runs: Promise<void>[] = [];
    for (const [what, url] of Object.entries(urls)) {
      for (const runtime of ["node", "bun", "deno"] as Runtime[]) {
        runs.push(
          runToEnd("emitter.ts", [], { REDIS_URL: url }, runtime, 20_000).then(({ code, stderr, ms }) => {
            t.diagnostic(`emitter.ts on ${runtime}, ${what}: exit ${code} after ${ms} ms: ${stderr.join(" | ")}`);
            assert.equal(code, 1, `${runtime}, ${what}`);
            assert.equal(stderr.length, 1, stderr.join("\n"));
            assert.match(stderr[0]!, /^Redis at redis:\/\/127\.0\.0\.1:\d+\/? does not answer: no answer within 5 s/);
          }),
        );
      }
      runs.push(
        runToEnd("index.ts", [], { REDIS_URL: url, PORT: "0", WORKERS: "2" }, "node", 30_000).then(({ code, stdout, stderr, ms }) => {
          t.diagnostic(`index.ts, ${what}: exit ${code} after ${ms} ms: ${stderr.join(" | ")}`);
          assert.equal(code, 1, what);
          assert.deepEqual(stdout, [], "it never listened");
          assert.equal(stderr.length, 1, stderr.join("\n"));
          assert.match(stderr[0]!, /^cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+\/?: no answer within 5 s/);
        }),
      );
    }
    await Promise.all(runs);
  });
});

// Classic and streams: sharded shares classic's two connections; streams reads with its own.
for (const adapter of ["classic", "streams"] as const) describe(`a running cluster whose path to Redis freezes, ADAPTER=${adapter}`, () => {
  const REDIS_TIMEOUT = 1500;
  let redis: RunningRedis;
  let proxy: TcpProxy;
  let server: Script;
  let clients: Recorder[];
  let publisher: ReturnType<typeof createClient>;
  let emit: (text: string) => unknown;
  let tick = 0;
  let ticker: NodeJS.Timeout | undefined;

  before(async () => {
    redis = await startRedisServer(await freePort());
    proxy = await startTcpProxy(Number(new URL(redis.url).port));
    const cluster = await startCluster({ redis: { url: `redis://127.0.0.1:${proxy.port}` }, adapter, env: { REDIS_TIMEOUT: String(REDIS_TIMEOUT) } });
    server = cluster.server;
    clients = [];
    const workers = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const c = record(cluster.url, { transports: ["websocket"] });
      clients.push(c);
      await connected(c.socket, 10_000);
      workers.add(await workerOf(server, c.socket.id!, 10_000));
    }
    assert.equal(workers.size, 2, "one client on each worker");
    // The test publishes straight to Redis, around the proxy: only the workers' path is broken.
    publisher = createClient({ url: redis.url });
    await publisher.connect();
    const emitter = adapter === "classic" ? new Emitter(publisher).of("/") : shardedStreamsEmitter(publisher, adapter).of("/").to([]);
    emit = (text) => emitter.emit("chat message", text);
    ticker = setInterval(() => emit(`tick ${tick++}`), 50);
    await until(() => clients.every((c) => c.received.length > 5), 10_000, "ticks flow");
  });

  after(async () => {
    clearInterval(ticker);
    for (const c of clients ?? []) c.socket.disconnect();
    await publisher?.close().catch(() => {});
    await stopAll();
    await proxy?.close();
    await redis?.stop();
  });

  const lines = (pattern: RegExp, from = 0) => server.stderr.slice(from).filter((line) => pattern.test(line));
  const ticks = (c: { received: string[] }) => c.received.filter((text) => text.startsWith("tick ")).map((text) => Number(text.slice(5)));

  test("Redis frozen longer than REDIS_TIMEOUT (SIGSTOP): noticed, connections kept, every message delivered late", async (t) => {
    const from = server.stderr.length;
    process.kill(redis.pid!, "SIGSTOP");
    const frozenAt = Date.now();
    try {
      await until(() => lines(/gets no answer either/, from).length === 2, 15_000, "both workers find Redis frozen");
      t.diagnostic(`both workers said Redis is frozen ${Date.now() - frozenAt} ms after SIGSTOP`);
      await sleep(1000);
    } finally {
      process.kill(redis.pid!, "SIGCONT");
    }
    const thawedAt = Date.now();
    await until(() => lines(/Redis answers again after/, from).length === 2, 10_000, "both workers see Redis answer again");
    const last = tick + 5;
    await until(() => clients.every((c) => ticks(c).includes(last)), 10_000, "ticks after the thaw");
    t.diagnostic(`frozen ${thawedAt - frozenAt} ms; ${server.stderr.slice(from).join(" | ")}`);
    for (const [i, c] of clients.entries()) {
      const got = ticks(c);
      const first = got[0]!;
      assert.deepEqual(got, Array.from({ length: got.length }, (_, k) => first + k), `client ${i}: every tick, once, in order`);
    }
    assert.deepEqual(lines(/reconnecting|lost Redis/, from), [], "nothing was dropped or reconnected");
  });

  test("a half-open path: noticed within seconds, replaced once a path exists, delivery resumes", async (t) => {
    const from = server.stderr.length;
    proxy.holdNew(true); // no new path yet
    proxy.blackholeExisting(); // and the old one forwards nothing, closing nothing
    const brokenAt = Date.now();
    await until(() => lines(/has not answered the/, from).length === 2, 15_000, "both workers notice");
    const noticedAfter = Date.now() - brokenAt;
    await until(() => lines(/gets no answer either/, from).length === 2, 15_000, "both workers find no new path");
    const tickAtRepair = tick;
    proxy.holdNew(false); // a path exists again
    const repairedAt = Date.now();
    await until(() => clients.every((c) => ticks(c).some((n) => n > tickAtRepair)), 20_000, "delivery resumes on both workers");
    const resumedAfter = Date.now() - repairedAt;
    await until(() => lines(/reconnected to Redis, .* after it stopped answering$/, from).length === 2, 10_000, "the workers say so");
    const lost = clients.map((c) => {
      const got = new Set(ticks(c));
      const span = [...got].filter((n) => n > tickAtRepair - 200);
      return `${Math.max(...span) - Math.min(...span) + 1 - span.length} lost`;
    });
    t.diagnostic(`noticed ${noticedAfter} ms after the path broke; delivery back ${resumedAfter} ms after a path existed; ${lost.join(", ")}`);
    t.diagnostic(server.stderr.slice(from).join("\n"));
    assert.equal(lines(/a new connection to Redis answers: the path of the .* connections? is dead; reconnecting$/, from).length, 2);
    // The publishers came back too: chat crosses workers again.
    clients[0]!.socket.emit("chat message", "A", "after the repair");
    await until(() => clients[1]!.received.includes("after the repair from A"), 10_000, "chat from A reaches B");
    assert.equal(server.child.exitCode, null);
    assert.ok(!server.stdout.some((line) => /died/.test(line)), "no worker died");
  });
});

describe("Redis cutting a subscriber that fell behind (client-output-buffer-limit pubsub)", () => {
  let redis: RunningRedis;
  let cluster: Cluster;
  let server: Script;

  before(async () => {
    // A low limit, so that a worker frozen for a few seconds passes it.
    redis = await startRedisServer(await freePort(), ["--client-output-buffer-limit", "pubsub 262144 0 0"]);
    cluster = await startCluster({ redis });
    server = cluster.server;
  });
  after(async () => {
    await stopAll();
    await redis?.stop();
  });

  test("is told as a cut, not as a Redis restart; the other worker's clients lose nothing", async (t) => {
    const clients: (Recorder & { worker: string })[] = [];
    const publisher = createClient({ url: redis.url });
    let ticker: NodeJS.Timeout | undefined;
    let frozenPid: number | undefined;
    try {
      for (let i = 0; i < 2; i++) {
        const c = record(cluster.url, { transports: ["websocket"] });
        await connected(c.socket, 10_000);
        clients.push(Object.assign(c, { worker: await workerOf(server, c.socket.id!, 10_000) }));
      }
      assert.notEqual(clients[0]!.worker, clients[1]!.worker, "one client on each worker");
      await publisher.connect();
      const emitter = new Emitter<ServerToClientEvents>(publisher);
      const padding = "x".repeat(10_000);
      let tick = 0;
      ticker = setInterval(() => {
        for (let i = 0; i < 15; i++) emitter.emit("chat message", `tick ${tick++} ${padding}`);
      }, 50); // 3 MB/s
      await until(() => clients.every((c) => c.received.length > 20), 10_000, "ticks flow");

      // Freeze one worker: once the kernel's socket buffers are full (several MB on loopback),
      // Redis queues for its subscriber until the limit, then cuts it.
      const [pid] = cluster.workerPids();
      frozenPid = pid!;
      const from = server.stderr.length;
      process.kill(frozenPid, "SIGSTOP");
      await sleep(4000);
      process.kill(frozenPid, "SIGCONT");
      frozenPid = undefined;
      const cut = await until(() => server.stderr.slice(from).some((line) => /Redis closed the subscriber connection while it stayed up/.test(line)), 10_000, "the cut is told").then(
        () => server.stderr.slice(from).find((line) => /Redis closed the subscriber connection/.test(line))!,
      );
      const victim = cut.match(/^worker: (\d+),/)![1]!;
      t.diagnostic((await server.waitFor(new RegExp(`^worker: ${victim}, subscribed again, [\\d.]+ s after the cut$`), 10_000))[0]);
      const last = tick + 20;
      await until(() => clients.every((c) => c.received.some((text) => text.startsWith(`tick ${last} `))), 10_000, "ticks after the cut");
      clearInterval(ticker);

      t.diagnostic(cut);
      assert.deepEqual(server.stderr.slice(from).filter((line) => /lost Redis|Redis is back/.test(line)), [], "not told as a Redis restart");
      assert.deepEqual(server.stdout.filter((line) => /Redis is back/.test(line)), []);
      for (const c of clients) {
        const numbers = c.received.map((text) => Number(text.split(" ")[1]));
        const missing = numbers.at(-1)! - numbers[0]! + 1 - numbers.length;
        t.diagnostic(`client of worker ${c.worker}${c.worker === victim ? " (cut)" : ""}: ${missing} ticks missing`);
        if (c.worker !== victim) assert.equal(missing, 0, "the other worker's client lost nothing");
      }
    } finally {
      clearInterval(ticker);
      if (frozenPid) process.kill(frozenPid, "SIGCONT");
      for (const c of clients) c.socket.disconnect();
      await publisher.close().catch(() => {});
    }
  });
});
