/**
 * Faults against the real clustered index.ts (2 workers), a real Redis and real Socket.IO clients:
 * a worker killed with SIGKILL, Redis restarting under the cluster, a client that sends garbage or
 * floods, SIGTERM while messages are being delivered. docs/reference/faults.md lists what each test shows.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import type { Socket } from "socket.io-client";
import type { ServerToClientEvents } from "../lib/chat.ts";
import { type Cluster, startCluster, workerOf } from "../support/cluster.ts";
import { freePort, type RunningRedis, startRedisServer } from "../support/redis.ts";
import { run, runToEnd, type Script, sleep, stopAll, until } from "../support/scripts.ts";
import { type ChatSocket, connected, type Recorder, record } from "../support/sockets.ts";

describe("a worker killed with SIGKILL", () => {
  let cluster: Cluster;
  let server: Script;
  let url: string;

  before(async () => {
    cluster = await startCluster();
    ({ server, url } = cluster);
  });

  after(async () => {
    await stopAll();
    await cluster?.stop();
  });

  test("is replaced; its clients come back and chat, the other worker's clients notice nothing", async () => {
    const clients: Recorder[] = [];
    const emitterClient = createClient({ url: cluster.redis.url });
    let ticker: NodeJS.Timeout | undefined;
    try {
      // One at a time: least-connection counts a client once its worker has reported it.
      // Quick retries reach the primary while the replacement worker is still starting: a
      // connection handed to it then would time out (see forkWorker in index.ts).
      for (let i = 0; i < 10; i++) {
        clients.push(record(url, { reconnectionDelay: 10, reconnectionDelayMax: 50, timeout: 5000 }));
        await connected(clients[i]!.socket);
        await workerOf(server, clients[i]!.socket.id!);
      }
      const workers = await Promise.all(clients.map((c) => workerOf(server, c.socket.id!)));
      assert.equal(new Set(workers).size, 2, "the clients are spread over both workers");

      // A numbered message every 50 ms from before the kill until every client is back.
      await emitterClient.connect();
      const emitter = new Emitter<ServerToClientEvents>(emitterClient);
      let tick = 0;
      ticker = setInterval(() => emitter.emit("chat message", `tick ${tick++}`), 50);

      await until(() => clients.every((c) => c.received.includes("tick 5")), 20_000, "every client gets the first ticks");
      const [victimPid] = cluster.workerPids();
      process.kill(victimPid!, "SIGKILL");
      const died = await server.waitFor(/^worker: (\d+) died \(SIGKILL\), starting a new one$/);
      const victims = clients.filter((_, i) => workers[i] === died[1]);
      const survivors = clients.filter((_, i) => workers[i] !== died[1]);

      await until(() => victims.every((c) => c.disconnects === 1 && c.socket.connected), 20_000, "the victims reconnect");
      const stopAt = tick + 5;
      await until(() => tick > stopAt, 20_000, "five more ticks");
      clearInterval(ticker);
      await sleep(500);

      const ticks = (c: Recorder) => c.received.filter((text) => text.startsWith("tick "));
      for (const survivor of survivors) {
        assert.equal(survivor.disconnects, 0, "a client of the other worker lost its connection");
        assert.deepEqual(ticks(survivor), Array.from({ length: tick }, (_, i) => `tick ${i}`), "a client of the other worker missed a message");
      }
      for (const victim of victims) {
        // Lost while it was away, at most: what it got is in order and without repeats.
        const numbers = ticks(victim).map((text) => Number(text.slice(5)));
        assert.deepEqual(numbers, [...numbers].sort((x, y) => x - y));
        assert.equal(new Set(numbers).size, numbers.length);
        assert.deepEqual(victim.connectErrors, [], "a reconnection attempt failed");
      }

      // Everyone chats again, across the new worker and the old one.
      const [speaker, listener] = [victims[0]!, survivors[0]!];
      speaker.socket.emit("chat message", "V", "back again");
      listener.socket.emit("chat message", "S", "welcome back");
      await until(() => survivors.every((c) => c.received.includes("back again from V")), 20_000, "survivors hear a reconnected client");
      await until(() => victims.every((c) => c.received.includes("welcome back from S")), 20_000, "reconnected clients hear a survivor");
      const replacement = await workerOf(server, speaker.socket.id!);
      assert.notEqual(replacement, died[1]);
    } finally {
      clearInterval(ticker);
      for (const c of clients) c.socket.disconnect();
      await emitterClient.close().catch(() => {});
    }
  });
});

describe("Redis restarts under the running cluster", () => {
  let redisPort: number;
  let redis: RunningRedis;
  let cluster: Cluster;
  let server: Script;
  let url: string;

  before(async () => {
    redisPort = await freePort();
    redis = await startRedisServer(redisPort);
    cluster = await startCluster({ redis: { url: `redis://127.0.0.1:${redisPort}` } });
    ({ server, url } = cluster);
  });

  after(async () => {
    await stopAll();
    await redis?.stop();
  });

  test("the workers and a later emitter deliver again once Redis is back, with no manual step", async (t) => {
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    const a = record(url);
    await connected(a.socket);
    const workerOfA = await workerOf(server, a.socket.id!);
    const b = record(url);
    await connected(b.socket);
    assert.notEqual(await workerOf(server, b.socket.id!), workerOfA, "A and B share a worker");
    let probeClient: ReturnType<typeof createClient> | undefined;
    let prober: NodeJS.Timeout | undefined;
    try {
      await redis.stop();
      const lost = () => server.stderr.filter((line) => /^worker: \d+, lost Redis \(.+\), reconnecting$/.test(line));
      await until(() => lost().length >= 2, 20_000, "both workers report the outage");
      // Sent while Redis is down: node-redis keeps the PUBLISH in its offline queue and sends it on
      // reconnection, which may come before or after the other worker has subscribed again.
      a.socket.emit("chat message", "A", "sent during the outage");
      await sleep(3000); // several reconnection attempts
      assert.equal(lost().length, 2, `one line per worker per outage, got:\n${server.stderr.join("\n")}`);
      assert.deepEqual(server.stderr.filter((line) => line !== "" && !lost().includes(line)), []);

      redis = await startRedisServer(redisPort);
      const redisBack = Date.now();
      // A numbered broadcast every 100 ms from a fresh emitter connection, until both clients get one.
      probeClient = createClient({ url: redisUrl });
      await probeClient.connect();
      const emitter = new Emitter<ServerToClientEvents>(probeClient);
      let probe = 0;
      prober = setInterval(() => emitter.emit("chat message", `probe ${probe++}`), 100);
      const firstProbe = (c: Recorder) => c.received.find((text) => text.startsWith("probe "));
      await until(() => firstProbe(a) !== undefined && firstProbe(b) !== undefined, 30_000, "both workers deliver again");
      const gap = Date.now() - redisBack;
      clearInterval(prober);
      t.diagnostic(`Redis back -> emitter broadcast delivered on both workers: ${gap} ms`);

      await server.waitFor(/^worker: \d+, Redis is back$/, 10_000);
      await until(() => server.stdout.filter((line) => /^worker: \d+, Redis is back$/.test(line)).length === 2, 20_000, "both workers say Redis is back");

      // The kit's emitter script, started after the restart, reaches both workers.
      const emitted = await runToEnd("emitter.ts", [], { REDIS_URL: redisUrl });
      assert.equal(emitted.code, 0, emitted.stderr.join("\n"));
      await until(() => a.received.includes("message from outside") && b.received.includes("message from outside"), 20_000, "emitter.ts reaches A and B");
      // Chat crosses workers again, both ways.
      a.socket.emit("chat message", "A", "after the restart");
      b.socket.emit("chat message", "B", "me too");
      await until(() => b.received.includes("after the restart from A") && a.received.includes("me too from B"), 20_000, "chat across workers");
      assert.ok(!server.stdout.some((line) => line.includes("died")), "a worker died");
      assert.ok(b.received.filter((text) => text === "sent during the outage from A").length <= 1, "delivered twice");
      t.diagnostic(`the chat message sent during the outage was ${b.received.includes("sent during the outage from A") ? "delivered late" : "lost"}`);
    } finally {
      clearInterval(prober);
      a.socket.disconnect();
      b.socket.disconnect();
      await probeClient?.close().catch(() => {});
    }
  });

  test("a worker that dies while Redis is down is replaced by one that waits for Redis, then serves", async () => {
    const lostBefore = server.stderr.filter((line) => line.includes("lost Redis")).length;
    await redis.stop();
    await until(() => server.stderr.filter((line) => line.includes("lost Redis")).length === lostBefore + 2, 20_000, "both workers report the outage");
    const [victimPid] = cluster.workerPids();
    process.kill(victimPid!, "SIGKILL");
    await server.waitFor(/^worker: (\d+) died \(SIGKILL\), starting a new one$/);
    await sleep(3000); // several of the replacement's connection attempts
    assert.equal(server.child.exitCode, null, `the cluster stopped:\n${server.stderr.join("\n")}`);
    assert.ok(!server.stderr.some((line) => /cannot connect to Redis|exited during start-up/.test(line)), server.stderr.join("\n"));

    redis = await startRedisServer(redisPort);
    // Least-connection ranks the replacement last until it reports ready: a client it serves
    // shows that it connected to Redis and started (the survivor gains a client each round).
    const clients: Recorder[] = [];
    let onReplacement: Recorder | undefined;
    try {
      for (let i = 0; i < 6 && !onReplacement; i++) {
        const client = record(url);
        clients.push(client);
        await connected(client.socket);
        // Workers 1 and 2 started with the cluster; the replacement's id comes after theirs.
        if (Number(await workerOf(server, client.socket.id!)) > 2) onReplacement = client;
        else await sleep(500);
      }
      assert.ok(onReplacement, `no client reached the replacement worker:\n${server.stdout.join("\n")}`);
      // The survivor's subscriber comes back on its own retry schedule (up to 2 s apart), so a
      // single PUBLISH may go out before it listens again: publish until every client has one.
      const everyone = () => clients.every((c) => c.received.includes("message from outside"));
      for (const deadline = Date.now() + 20_000; !everyone() && Date.now() < deadline; ) {
        const emitted = await runToEnd("emitter.ts", [], { REDIS_URL: `redis://127.0.0.1:${redisPort}` });
        assert.equal(emitted.code, 0, emitted.stderr.join("\n"));
        await until(everyone, 2000, "").catch(() => {});
      }
      assert.ok(everyone(), `the emitter reaches every client, the replacement's too: ${clients.map((c) => c.received.includes("message from outside")).join(", ")}`);
    } finally {
      for (const client of clients) client.socket.disconnect();
    }
  });

  test("SIGTERM while Redis is down: the server still exits 0 at once", async (t) => {
    const lostBefore = server.stderr.filter((line) => line.includes("lost Redis")).length;
    await redis.stop();
    await until(() => server.stderr.filter((line) => line.includes("lost Redis")).length === lostBefore + 2, 20_000, "both workers report the outage");
    const signalled = Date.now();
    process.kill(server.child.pid!, "SIGTERM");
    const { code } = await server.exited;
    t.diagnostic(`SIGTERM with Redis down -> exit ${code} in ${Date.now() - signalled} ms`);
    assert.equal(code, 0); // the primary would exit 1 after 10 s if a worker hung on Redis
  });
});

describe("ADAPTER=streams: clients leave while Redis drops the worker's connections", () => {
  let cluster: Cluster;
  let admin: ReturnType<typeof createClient>;

  before(async () => {
    cluster = await startCluster({ adapter: "streams", workers: 1 });
    admin = createClient({ url: cluster.redis.url });
    await admin.connect();
  });
  after(async () => {
    await stopAll();
    await admin?.close();
    await cluster?.stop();
  });

  test("the SET that keeps a leaving client's session is lost with its connection: counted, the worker lives on", async () => {
    // Writes wait while Redis is paused: the SET of each client that leaves now stays in flight,
    // until its connection is killed under it (as a restart or a failover would).
    const clients = await Promise.all(Array.from({ length: 3 }, async () => {
      const client = record(cluster.url, { transports: ["websocket"], reconnection: false });
      await connected(client.socket);
      return client;
    }));
    await admin.sendCommand(["CLIENT", "PAUSE", "3000", "WRITE"]);
    for (const client of clients) client.socket.io.engine.close(); // "transport close": a session to keep
    await sleep(300);
    await admin.sendCommand(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    await admin.sendCommand(["CLIENT", "UNPAUSE"]);
    await until(() => cluster.server.stderr.some((line) => /Redis refused a command or lost it with its connection, what it carried is lost: SET: /.test(line)), 10_000, "the counted line");
    // Still the same worker, delivering.
    const watcher = record(cluster.url, { transports: ["websocket"] });
    await connected(watcher.socket, 20_000);
    assert.equal((await runToEnd("emitter.ts", ["--message", "still delivering"], cluster.env)).code, 0);
    await until(() => watcher.received.includes("still delivering"), 15_000, "delivery after the loss");
    watcher.socket.disconnect();
    assert.ok(!cluster.server.stdout.some((line) => /died/.test(line)), `a worker died:\n${cluster.server.stderr.join("\n")}`);
  });
});

describe("Redis with a password and TLS (rediss://)", () => {
  let dir: string;
  let redis: RunningRedis;
  let plainUrl: string;
  let tlsUrl: string;
  let env: Record<string, string>;
  let server: Script;
  let url: string;

  before(async () => {
    // A throwaway self-signed certificate for localhost; clients trust it through NODE_EXTRA_CA_CERTS.
    dir = mkdtempSync(join(tmpdir(), "kit-tls-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
    const [port, tlsPort] = [await freePort(), await freePort()];
    redis = await startRedisServer(port, ["--requirepass", "s3cret", "--tls-port", String(tlsPort), "--tls-auth-clients", "no",
      "--tls-cert-file", join(dir, "cert.pem"), "--tls-key-file", join(dir, "key.pem")]);
    plainUrl = `redis://:s3cret@127.0.0.1:${port}`;
    tlsUrl = `rediss://:s3cret@localhost:${tlsPort}`;
    env = { REDIS_URL: tlsUrl, NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") };
    ({ server, url } = await startCluster({ redis: { url: tlsUrl }, env }));
  });

  after(async () => {
    await stopAll();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the server over TLS and the emitter over TLS or plain TCP, both with the password, deliver", async () => {
    assert.ok(server.stdout[0]!.includes("Redis at rediss://:***@localhost:"), "the password is masked in the log");
    const a = record(url);
    try {
      await connected(a.socket);
      const overTls = await runToEnd("emitter.ts", [], env);
      assert.equal(overTls.code, 0, overTls.stderr.join("\n"));
      const overTcp = await runToEnd("emitter.ts", [a.socket.id!], { REDIS_URL: plainUrl });
      assert.equal(overTcp.code, 0, overTcp.stderr.join("\n"));
      await until(() => a.received.length === 2, 20_000, "both messages");
      assert.deepEqual(a.received, ["message from outside", "Hi guys from Emitter"]);
    } finally {
      a.socket.disconnect();
    }
  });

  test("the emitter with a wrong password, no password, an untrusted certificate or a malformed URL: one line, exit 1 (2 for a malformed URL)", async () => {
    const port = new URL(plainUrl).port;
    const tlsPort = new URL(tlsUrl).port;
    // A REDIS_URL that is not a Redis URL is a configuration error (exit code 2); the rest fail at
    // run time (exit code 1).
    const cases: { env: Record<string, string>; line: RegExp; code?: number }[] = [
      { env: { REDIS_URL: `redis://:wrong@127.0.0.1:${port}` }, line: /^cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: wrong user name or password in REDIS_URL$/ },
      { env: { REDIS_URL: `redis://127.0.0.1:${port}` }, line: /^cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+: Redis requires a password: put it in REDIS_URL/ },
      { env: { REDIS_URL: `rediss://:s3cret@localhost:${tlsPort}`, NODE_EXTRA_CA_CERTS: "" }, line: /: self-signed certificate \(a private CA: point NODE_EXTRA_CA_CERTS at its certificate\)$/ },
      { env: { REDIS_URL: `redis://127.0.0.1:notaport` }, line: /^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL, got "redis:\/\/127\.0\.0\.1:notaport"$/, code: 2 },
      { env: { REDIS_URL: `http://127.0.0.1:${port}` }, line: /^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/, code: 2 },
      { env: { REDIS_URL: "redis://no-such-host.invalid:6379" }, line: /ENOTFOUND no-such-host\.invalid$/ },
    ];
    const results = await Promise.all(cases.map((c) => runToEnd("emitter.ts", [], c.env)));
    results.forEach((result, i) => {
      const what = JSON.stringify(cases[i]!.env);
      assert.equal(result.code, cases[i]!.code ?? 1, `${what}: exit code`);
      assert.equal(result.stderr.length, 1, `${what} printed ${JSON.stringify(result.stderr)}`);
      assert.match(result.stderr[0]!, cases[i]!.line, what);
      assert.ok(!result.stderr[0]!.includes("s3cret") && !result.stderr[0]!.includes("wrong@"), "a password in the output");
    });
  });
});

describe("bad input from clients", () => {
  let cluster: Cluster;
  let server: Script;
  let url: string;
  let b: Script; // the kit's client.ts, to see what reaches a terminal
  let a: Recorder;

  before(async () => {
    cluster = await startCluster();
    ({ server, url } = cluster);
    b = run("client.ts", ["B"], { SERVER_URL: url });
    await b.waitFor(/^connected, id: /);
    a = record(url);
    await connected(a.socket);
  });

  after(async () => {
    a?.socket.disconnect();
    await stopAll();
    await cluster?.stop();
  });

  /** Sends with a fresh client on each worker in turn, then checks that only `expected` reached B. */
  async function fromRogue(send: (rogue: ChatSocket) => void, expected: string[], settled = (_rogue: Recorder) => sleep(500)) {
    const rogue = record(url, { transports: ["websocket"] });
    try {
      await connected(rogue.socket);
      const fromB = b.stdout.length;
      send(rogue.socket);
      await settled(rogue);
      rogue.socket.emit("chat message", "R", "end of test");
      await b.waitFor(/^end of test from R$/, 10_000, fromB);
      assert.deepEqual(b.stdout.slice(fromB), [...expected, "end of test from R"]);
      return rogue;
    } finally {
      rogue.socket.disconnect();
    }
  }

  const ignored = () => server.stdout.filter((line) => line.includes("ignored a malformed chat message")).length;

  test("wrong argument types, missing arguments, too long or binary text: ignored with a log line", async () => {
    const before = ignored();
    await fromRogue((rogue) => {
      const raw = rogue as unknown as Socket; // what a client that ignores the types can send
      raw.emit("chat message", 42, { not: "text" });
      raw.emit("chat message", ["R"], "hello");
      raw.emit("chat message");
      raw.emit("chat message", "R");
      raw.emit("chat message", "", "empty user");
      raw.emit("chat message", "R", "x".repeat(1001));
      raw.emit("chat message", "R", Buffer.from("binary"));
    }, []);
    // The log lines come through another pipe than B's output: wait for them, then count.
    await until(() => ignored() - before >= 7, 20_000, "seven log lines");
    await sleep(200);
    assert.equal(ignored() - before, 7);
  });

  test("unknown events: dropped without a word", async () => {
    const lines = server.stdout.length;
    await fromRogue((rogue) => {
      const raw = rogue as unknown as Socket;
      raw.emit("no such event", "R", "hello");
      raw.emit("chat", "R", "hello", () => {}); // with an acknowledgement that never comes
    }, []);
    assert.deepEqual(server.stdout.slice(lines).filter((line) => !line.includes("end of test") && !line.includes("connected, id")), []);
  });

  test("control characters reach other clients but not their terminal, nor the server's log", async () => {
    await fromRogue((rogue) => rogue.emit("chat message", "R", "\u001b[2J\u001b[31mred\u0007\r\nworker: 1 died"), ["[2J[31mredworker: 1 died from R"]);
    await until(() => server.stdout.includes("[2J[31mredworker: 1 died from R"), 20_000, "the server's log line");
    assert.ok(!server.stdout.some((line) => line.includes("\u001b") || line.startsWith("worker: 1 died")));
  });

  test("a message over maxHttpBufferSize (1 MB): its sender is disconnected and reconnects on its own", async () => {
    // fromRogue's last message, sent once the client has reconnected by itself, arrives.
    const rogue = await fromRogue((rogue) => rogue.emit("chat message", "R", "y".repeat(2_000_000)), [], async (rogue) => {
      await until(() => rogue.disconnects === 1 && rogue.socket.connected, 20_000, "the sender is dropped and reconnects");
    });
    assert.deepEqual(rogue.disconnectReasons, ["transport close", "io client disconnect"]);
  });

  test("a flood from one client: the excess is dropped, the flooder is told once, the others keep chatting", async () => {
    const flooder = record(url, { transports: ["websocket"] });
    try {
      await connected(flooder.socket);
      const fromB = b.stdout.length;
      const started = Date.now();
      for (let i = 0; i < 500; i++) flooder.socket.emit("chat message", "F", `flood ${i}`);
      a.socket.emit("chat message", "A", "still chatting");
      await b.waitFor(/^still chatting from A$/, 10_000, fromB);
      await sleep(1000);
      const seconds = (Date.now() - started) / 1000;
      const flood = b.stdout.slice(fromB).filter((line) => /^flood \d+ from F$/.test(line));
      // A burst of 2 s worth (10), then 5 per second at most, in the order sent.
      assert.ok(flood.length >= 10, `only ${flood.length} went through`);
      assert.ok(flood.length <= 10 + Math.ceil(5 * seconds), `${flood.length} went through in ${seconds} s`);
      assert.deepEqual(flood.slice(0, 10), Array.from({ length: 10 }, (_, i) => `flood ${i} from F`));
      assert.deepEqual(flooder.received.filter((text) => text.startsWith("server:")), ["server: too many messages, yours are dropped until you send at most 5 per second"]);
      assert.equal(flooder.disconnects, 0, "the flooder keeps its connection");
      const dropping = () => server.stdout.filter((line) => line.includes(`dropping chat messages over CHAT_RATE_LIMIT: from ${flooder.socket.id}, over 5 per second`)).length;
      await until(() => dropping() >= 1, 20_000, "the worker's log line");
      assert.equal(dropping(), 1);
    } finally {
      flooder.socket.disconnect();
    }
  });

  test("nothing of the above crashed a worker or reached stderr", () => {
    assert.ok(!server.stdout.some((line) => /^worker: \d+ died/.test(line)), "a worker died");
    assert.deepEqual(server.stderr.filter((line) => line !== ""), []);
  });
});

describe("SIGTERM while messages are being delivered", () => {
  let cluster: Cluster | undefined;

  after(async () => {
    await stopAll();
    await cluster?.stop();
  });

  test("every client gets every message its worker took from Redis, and the server exits 0 within 10 s", async (t) => {
    cluster = await startCluster();
    const { server, url } = cluster;
    const clients: Recorder[] = [];
    const emitterClient = createClient({ url: cluster.redis.url });
    let publishing = true;
    try {
      for (let i = 0; i < 20; i++) {
        clients.push(record(url, { transports: i % 2 ? ["websocket"] : ["polling"], reconnection: false }));
        await connected(clients[i]!.socket);
      }
      const workers = await Promise.all(clients.map((c) => workerOf(server, c.socket.id!)));
      await emitterClient.connect();
      const emitter = new Emitter<ServerToClientEvents>(emitterClient);

      // Publish as fast as Redis takes it, 100 at a time, at most 50,000 messages.
      let sent = 0;
      const publisher = (async () => {
        while (publishing && sent < 50_000) {
          for (let i = 0; i < 100; i++) emitter.emit("chat message", `m ${sent++}`);
          await emitterClient.ping(); // lets the batch go out before the next one
        }
      })();
      await until(() => clients.every((c) => c.received.length >= 500), 20_000, "deliveries are under way");
      const signalled = Date.now();
      process.kill(server.child.pid!, "SIGTERM");
      const { code } = await server.exited;
      const ms = Date.now() - signalled;
      publishing = false;
      await publisher;
      t.diagnostic(`SIGTERM -> exit ${code} in ${ms} ms; published ${sent}; received per client: ${clients.map((c) => c.received.length).join(" ")}`);
      assert.equal(code, 0, `exit code; stderr:\n${server.stderr.join("\n")}`);
      assert.ok(ms < 10_000, `took ${ms} ms`); // the primary gives up on its workers after 10 s

      for (const [i, c] of clients.entries()) {
        // A gapless run from the first message: nothing dropped in the middle or at the end.
        assert.deepEqual(c.received, Array.from({ length: c.received.length }, (_, n) => `m ${n}`), `client ${i}`);
      }
      // A worker hands each message to all of its clients at once: they end at the same message.
      for (const worker of new Set(workers)) {
        const counts = new Set(clients.filter((_, i) => workers[i] === worker).map((c) => c.received.length));
        assert.equal(counts.size, 1, `clients of worker ${worker} got ${[...counts].join(", ")} messages`);
      }
    } finally {
      publishing = false;
      for (const c of clients) c.socket.disconnect();
      await emitterClient.close().catch(() => {});
    }
  });
});
