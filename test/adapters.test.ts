/**
 * Every emitter.ts option on every adapter (ADAPTER=classic|sharded|streams), against a real Redis,
 * the real clustered index.ts (2 workers), a real client.ts and socket.io-client sockets placed on
 * both workers. Each check lists what every socket received, so it fails on a missing message and
 * on an extra one. "Nothing else arrived" is checked without a timer: after the emitter has run,
 * a sentinel message follows the same path through Redis, and once every socket has the sentinel,
 * anything that was coming has come.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { shardedStreamsEmitter, type NamespaceEmitter } from "../lib/emitter/sharded-streams.ts";
import { ADAPTERS, type AdapterName } from "../lib/config.ts";
import { type Cluster, startCluster, workerOf } from "../support/cluster.ts";
import { run, runToEnd, type Script, stopAll, until } from "../support/scripts.ts";
import { connected, type Recorder, record } from "../support/sockets.ts";

/** A socket, its id, the worker that holds it, and the texts it received ("event: text" for events other than chat). */
type Watched = Recorder & { id: string; worker: string };

for (const adapter of ADAPTERS) {
  describe(`ADAPTER=${adapter}: emitter options on sockets of both workers`, () => {
    let cluster: Cluster;
    let redisClient: ReturnType<typeof createClient>;
    let server: Script;
    let serverUrl: string;
    let env: Record<string, string>;
    /** x1, y1 on one worker, x2, y2 on the other; x1 and x2 are in "lobby", y1 in "other". */
    let x1: Watched, y1: Watched, x2: Watched, y2: Watched;
    /** In the /lounge namespace. */
    let lounge: Watched;
    /** A real client.ts, in "lobby" too. */
    let c: Script;
    let idC: string;
    let sentinels = 0;

    before(async () => {
      cluster = await startCluster({ adapter });
      ({ server, url: serverUrl, env } = cluster);
      redisClient = createClient({ url: cluster.redis.url });
      await redisClient.connect();
    });

    after(async () => {
      for (const watched of [x1, y1, x2, y2, lounge]) watched?.socket.disconnect();
      await stopAll();
      await redisClient?.close();
      await cluster?.stop();
    });

    /** Connects sockets until each worker has two, then gives them their rooms. */
    test("two sockets on each worker, a client.ts and a /lounge socket", async () => {
      const byWorker = new Map<string, Watched[]>();
      for (let i = 0; i < 12 && [...byWorker.values()].filter((list) => list.length >= 2).length < 2; i++) {
        const watched = await watch(serverUrl, server);
        const list = byWorker.get(watched.worker) ?? [];
        if (list.length < 2) byWorker.set(watched.worker, [...list, watched]);
        else watched.socket.disconnect();
      }
      const workers = [...byWorker.values()];
      assert.equal(workers.length, 2, "sockets landed on one worker only");
      [[x1, y1], [x2, y2]] = workers as [[Watched, Watched], [Watched, Watched]];
      assert.equal(await join(x1, "lobby"), null);
      assert.equal(await join(x2, "lobby"), null);
      assert.equal(await join(y1, "other"), null);
      lounge = await watch(`${serverUrl}/lounge`, server);

      c = run("client.ts", ["C"], env);
      idC = (await c.waitFor(/^connected, id: (\S+)$/))[1]!;
      c.send("/join lobby");
      await c.waitFor(/^joined lobby$/);
    });

    test("room names are checked: no one enters another socket's id room", async () => {
      c.send(`/join ${x1.id}`);
      await c.waitFor(/^cannot join \S+: a name shaped like a socket id .* is reserved$/);
      assert.match((await join(y2, x1.id))!, /reserved/);
      assert.match((await join(y2, "two words"))!, /without spaces/);
      assert.match((await join(y2, "\u001b[31mred"))!, /without spaces/);
      assert.match((await join(y2, "r".repeat(51)))!, /at most 50 characters/);
      assert.match((await join(y2, 42 as unknown as string))!, /room name/);
      assert.match((await leave(y2, y2.id))!, /reserved/); // leaving its own id room would cut it off
      const greedy = await watch(serverUrl, server);
      try {
        for (let i = 1; i <= 20; i++) assert.equal(await join(greedy, `room-${i}`), null);
        assert.match((await join(greedy, "room-21"))!, /at most 20 rooms per client/);
        // Join and leave in a loop: past a burst of 40 room changes, the server refuses more.
        const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? leave : join)(greedy, "churn")));
        assert.ok(answers.some((answer) => answer === "too many room changes, slow down"), JSON.stringify(answers));
      } finally {
        greedy.socket.disconnect();
      }
    });

    test("no option: every socket of the / namespace, not /lounge", async () => {
      const got = await emitAndSettle([], "message from outside");
      assert.deepEqual(got, { x1: ["message from outside"], y1: ["message from outside"], x2: ["message from outside"], y2: ["message from outside"], lounge: [], c: ["message from outside"] });
    });

    test("a socket id: that socket only (C tried to join x1's id room and was refused)", async () => {
      const got = await emitAndSettle(["--", x1.id], "Hi guys from Emitter"); // "--": an id may start with "-"
      assert.deepEqual(got, { x1: ["Hi guys from Emitter"], y1: [], x2: [], y2: [], lounge: [], c: [] });
    });

    test("--room lobby: the lobby on both workers and client.ts", async () => {
      const got = await emitAndSettle(["--room", "lobby", "--message", "to the lobby"], "to the lobby");
      assert.deepEqual(got, { x1: ["to the lobby"], y1: [], x2: ["to the lobby"], y2: [], lounge: [], c: ["to the lobby"] });
    });

    test("--room twice: either room, once each", async () => {
      const got = await emitAndSettle(["--room", "lobby", "--room", "other", `--room=${x1.id}`, "--message", "two rooms"], "two rooms");
      assert.deepEqual(got, { x1: ["two rooms"], y1: ["two rooms"], x2: ["two rooms"], y2: [], lounge: [], c: ["two rooms"] });
    });

    test("--except: the room but not the excepted", async () => {
      const got = await emitAndSettle(["--room", "lobby", `--except=${x2.id}`, `--except=${idC}`, "--message", "not x2"], "not x2");
      assert.deepEqual(got, { x1: ["not x2"], y1: [], x2: [], y2: [], lounge: [], c: [] });
      const all = await emitAndSettle(["--except", "lobby", "--message", "not the lobby"], "not the lobby");
      assert.deepEqual(all, { x1: [], y1: ["not the lobby"], x2: [], y2: ["not the lobby"], lounge: [], c: [] });
    });

    test("--event: another event name, which client.ts prints with its name", async () => {
      const got = await emitAndSettle(["--room", "lobby", "--event", "news", "--message", "headline"], "news: headline");
      assert.deepEqual(got, { x1: ["news: headline"], y1: [], x2: ["news: headline"], y2: [], lounge: [], c: ["news: headline"] });
    });

    test("--nsp /lounge: the lounge only; chat works there too", async () => {
      const got = await emitAndSettle(["--nsp", "/lounge", "--message", "in the lounge"], "in the lounge");
      assert.deepEqual(got, { x1: [], y1: [], x2: [], y2: [], lounge: ["in the lounge"], c: [] });
      const inLounge = await watch(`${serverUrl}/lounge`, server);
      try {
        inLounge.socket.emit("chat message", "L", "lounge chat");
        await until(() => lounge.received.includes("lounge chat from L"));
      } finally {
        inLounge.socket.disconnect();
      }
    });

    test("--server-side: every worker's handler runs, and each relays to its own clients once", async () => {
      const from = server.stdout.length;
      const got = await emitAndSettle(["--server-side", "--message", "to the servers"], "to the servers");
      assert.deepEqual(got, { x1: ["to the servers"], y1: ["to the servers"], x2: ["to the servers"], y2: ["to the servers"], lounge: [], c: ["to the servers"] });
      const handled = server.stdout.slice(from).filter((line) => line.endsWith("server-side chat message on /: to the servers"));
      assert.deepEqual(handled.map((line) => line.split(",")[0]).sort(), [`worker: ${x1.worker}`, `worker: ${x2.worker}`].sort());
      // The post's remark: an emit to the clients never runs the server's own handlers.
      assert.ok(!server.stdout.some((line) => /server-side chat message on \/: (message from outside|to the lobby)/.test(line)));
    });

    test("--join and --leave act on sockets of both workers; client.ts /leave", async () => {
      await emitter([`--room=${y1.id}`, `--room=${y2.id}`, "--join", "vip"]);
      const joined = await emitAndSettle(["--room", "vip", "--message", "to vip"], "to vip");
      assert.deepEqual(joined, { x1: [], y1: ["to vip"], x2: [], y2: ["to vip"], lounge: [], c: [] });
      await emitter(["--room", "vip", "--leave", "vip"]);
      const left = await emitAndSettle(["--room", "vip", "--message", "to vip again"], null);
      assert.deepEqual(left, { x1: [], y1: [], x2: [], y2: [], lounge: [], c: [] });
      c.send("/leave lobby"); // and a client leaves by itself
      await c.waitFor(/^left lobby$/);
      const withoutC = await emitAndSettle(["--room", "lobby", "--message", "lobby without C"], "lobby without C");
      assert.deepEqual(withoutC, { x1: ["lobby without C"], y1: [], x2: ["lobby without C"], y2: [], lounge: [], c: [] });
    });

    if (adapter === "streams") {
      test("connection state recovery: a dropped client gets what it missed, once, in order", async () => {
        const r = await watch(serverUrl, server, { reconnection: false });
        assert.equal(await join(r, "lobby"), null);
        await emitAndSettle(["--message", "before the drop"], "before the drop", [r]); // r now holds a stream offset
        // A server-side relay last: it must not spoil r's offset (see index.ts).
        await emitter(["--server-side", "--message", "relayed"]);
        await until(() => r.received.at(-1) === "relayed");
        const id = r.id;
        const gone = new Promise((resolve) => r.socket.once("disconnect", resolve));
        r.socket.io.engine.close(); // as if the network dropped: the server sees "transport close"
        await gone;
        await server.waitFor(`disconnected, id: ${id}`);
        const from = r.received.length;

        await emitter(["--message", "missed 1"]);
        x1.socket.emit("chat message", "X", "missed 2");
        await until(() => x2.received.includes("missed 2 from X"));
        await emitter(["--room", "lobby", "--message", "missed 3"]);
        await emitter([`--except=${id}`, "--message", "not for r"]);
        await emitter(["--room", "other", "--message", "not for r either"]);
        await until(() => x2.received.includes("not for r"));

        const back = new Promise<void>((resolve) => r.socket.once("connect", () => resolve()));
        r.socket.connect();
        await back;
        assert.equal(r.socket.recovered, true, "the session was not recovered");
        assert.equal(r.socket.id, id);
        await emitAndSettle(["--message", "after the return"], "after the return", [r]);
        const texts = r.received.slice(from).filter((text) => !text.startsWith("sentinel"));
        assert.deepEqual(texts, ["missed 1", "missed 2 from X", "missed 3", "after the return"]);
        r.socket.disconnect();
      });
    }

    test("--disconnect: the targeted sockets on both workers and client.ts, no one else", async () => {
      const reasons = [y1, y2].map((w) => new Promise((resolve) => w.socket.once("disconnect", resolve)));
      await emitter([`--room=${y1.id}`, `--room=${y2.id}`, `--room=${idC}`, "--disconnect"]);
      assert.deepEqual(await Promise.all(reasons), ["io server disconnect", "io server disconnect"]);
      assert.equal((await c.exited).code, 0);
      assert.equal(c.stdout.at(-1), "disconnected");
      const got = await emitAndSettle(["--message", "still here"], "still here", [], ["x1", "x2", "lounge"]);
      assert.deepEqual(got, { x1: ["still here"], x2: ["still here"], lounge: [] });
    });

    // ----- helpers that use this cluster -----

    async function emitter(args: string[]) {
      const result = await runToEnd("emitter.ts", args, env);
      assert.equal(result.code, 0, `emitter.ts ${args.join(" ")}: ${result.stderr.join("\n")}`);
    }

    /**
     * Runs emitter.ts with `args`, waits until the sockets that should get `expected` have it
     * (those that get it at all), then sends a sentinel through Redis to / and /lounge, waits for
     * it everywhere (and on `alsoWaitFor`), and returns what each socket (or only those in `names`)
     * received in between, without the sentinel.
     */
    async function emitAndSettle(args: string[], expected: string | null, alsoWaitFor: Watched[] = [], names?: string[]) {
      const sockets: Record<string, Watched> = { x1, y1, x2, y2, lounge };
      const chosen = names ?? [...Object.keys(sockets), "c"];
      const marks = new Map(chosen.map((name) => [name, name === "c" ? c.stdout.length : sockets[name]!.received.length]));
      const since = (name: string) => (name === "c" ? c.stdout.slice(marks.get(name)) : sockets[name]!.received.slice(marks.get(name)));
      await emitter(args);

      const sentinel = `sentinel ${++sentinels}`;
      const sender = (nsp: string): NamespaceEmitter =>
        adapter === "classic" ? new Emitter(redisClient).of(nsp) : shardedStreamsEmitter(redisClient, adapter as Exclude<AdapterName, "classic">).of(nsp);
      if (expected) await until(() => chosen.some((name) => since(name).includes(expected)));
      await sender("/").to([]).emit("chat message", sentinel);
      await sender("/lounge").to([]).emit("chat message", sentinel);
      await until(() => chosen.every((name) => since(name).includes(sentinel)) && alsoWaitFor.every((w) => w.received.includes(sentinel)));

      const got: Record<string, string[]> = {};
      for (const name of chosen) got[name] = since(name).filter((text) => text !== sentinel);
      return got;
    }
  });
}

/** Connects a socket over WebSocket (one connection per socket: least-connection alternates workers). */
async function watch(url: string, server: Script, options: { reconnection?: boolean } = {}): Promise<Watched> {
  const watched = record(url, { transports: ["websocket"], ...options });
  await connected(watched.socket, 15_000, { firstTry: true });
  const id = watched.socket.id!;
  return Object.assign(watched, { id, worker: await workerOf(server, id, 10_000) });
}

function join(watched: Watched, room: string): Promise<string | null> {
  return watched.socket.emitWithAck("join", room);
}

function leave(watched: Watched, room: string): Promise<string | null> {
  return watched.socket.emitWithAck("leave", room);
}


