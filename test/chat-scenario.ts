/**
 * The post's scenario against a real Redis, the real clustered index.ts (2 workers) and real
 * client.ts / emitter.ts processes: chat across workers, emitter broadcast, emitter to one socket.
 * chat.test.ts runs it on Node; runtimes.test.ts on Bun, on Deno and on a mix of the three.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { io as connect, type Socket } from "socket.io-client";
import { freePort, type RunningRedis, startPrivateRedis } from "../dev/redis.ts";
import { type ClientToServerEvents, MAX_TEXT_LENGTH, type ServerToClientEvents } from "../shared.ts";
import { run, runToEnd, type Runtime, type Script, sleep, stopAll, until } from "./harness.ts";

/** How long "nothing arrived" is watched for. */
const QUIET_MS = 1000;

/** Which runtime runs each of the kit's scripts. */
export interface Runtimes {
  server: Runtime;
  client: Runtime;
  emitter: Runtime;
}

export function chatScenario(runtimes: Runtimes): void {
  const { server: serverRuntime, client: clientRuntime, emitter: emitterRuntime } = runtimes;
  const name = new Set(Object.values(runtimes)).size === 1
    ? serverRuntime
    : `server: ${serverRuntime}, clients: ${clientRuntime}, emitter: ${emitterRuntime}`;

  describe(`chat across workers and the emitter (${name})`, () => {
    let redis: RunningRedis;
    let server: Script;
    let serverUrl: string;
    let env: Record<string, string>;
    let a: Script;
    let b: Script;
    let idA: string;
    let idB: string;

    before(async () => {
      redis = process.env.REDIS_URL
        ? { url: process.env.REDIS_URL, origin: "REDIS_URL", stop: async () => {} }
        : await startPrivateRedis();
      const port = await freePort();
      serverUrl = `http://127.0.0.1:${port}`;
      env = { REDIS_URL: redis.url, SERVER_URL: serverUrl };
      server = run("index.ts", [], { ...env, PORT: String(port), WORKERS: "2" }, serverRuntime);
      await server.waitFor("listening on port", 20_000);
    });

    after(async () => {
      await stopAll();
      await redis?.stop();
    });

    test("clients A and B are served by different workers", async () => {
      a = run("client.ts", ["A"], env, clientRuntime);
      idA = (await a.waitFor(/^connected, id: (\S+)$/))[1]!;
      b = run("client.ts", ["B"], env, clientRuntime);
      idB = (await b.waitFor(/^connected, id: (\S+)$/))[1]!;
      const workerOfA = (await server.waitFor(new RegExp(`^worker: (\\d+), connected, id: ${idA}$`)))[1];
      const workerOfB = (await server.waitFor(new RegExp(`^worker: (\\d+), connected, id: ${idB}$`)))[1];
      assert.notEqual(workerOfA, workerOfB);
    });

    test("a line typed by A reaches B, not A", async () => {
      a.send("Hello");
      await b.waitFor(/^Hello from A$/);
      b.send("Hi");
      await a.waitFor(/^Hi from B$/);
      await sleep(QUIET_MS);
      assert.ok(!a.stdout.includes("Hello from A"), "A got its own message back");
      assert.ok(!b.stdout.includes("Hi from B"), "B got its own message back");
      assert.equal(server.stdout.filter((line) => line === "Hello from A").length, 1);
    });

    test("the emitter without argument reaches every client", async () => {
      const emitter = await runToEnd("emitter.ts", [], env, emitterRuntime);
      assert.equal(emitter.code, 0, emitter.stderr.join("\n"));
      await a.waitFor(/^message from outside$/);
      await b.waitFor(/^message from outside$/);
    });

    test("the emitter with A's id reaches A and not B", async () => {
      const fromB = b.stdout.length;
      const emitter = await runToEnd("emitter.ts", [idA], env, emitterRuntime);
      assert.equal(emitter.code, 0, emitter.stderr.join("\n"));
      await a.waitFor(/^Hi guys from Emitter$/);
      await sleep(QUIET_MS);
      // A broadcast published after the targeted message is B's next line: Redis keeps the order.
      await runToEnd("emitter.ts", [], env, emitterRuntime);
      await b.waitFor(/^message from outside$/, 10_000, fromB);
      assert.deepEqual(b.stdout.slice(fromB), ["message from outside"]);
    });

    test("the server's chat message handler does not run for the emitter's events", () => {
      const handled = server.stdout.filter((line) => /from outside|from Emitter|ignored/.test(line));
      assert.deepEqual(handled, []);
    });

    test("long-polling, then the upgrade to WebSocket, through the sticky primary", async () => {
      // The client's default: open with HTTP long-polling, then upgrade the session to WebSocket.
      const client: Socket<ServerToClientEvents, ClientToServerEvents> = connect(serverUrl, { forceNew: true });
      const transports: string[] = [];
      client.io.on("open", () => {
        transports.push(client.io.engine.transport.name);
        client.io.engine.on("upgrade", (transport) => transports.push(transport.name));
      });
      // Long-polling only: every message is an HTTP POST that the primary forwards to the worker.
      const pollingOnly: Socket<ServerToClientEvents, ClientToServerEvents> = connect(serverUrl, { forceNew: true, transports: ["polling"] });
      try {
        await Promise.all([connected(client), connected(pollingOnly)]);
        await until(() => transports.length === 2, 5000);
        assert.deepEqual(transports, ["polling", "websocket"]);
        const pollingGot: string[] = [];
        pollingOnly.on("chat message", (text) => pollingGot.push(text));
        client.emit("chat message", "P", "sent after the upgrade");
        await b.waitFor(/^sent after the upgrade from P$/);
        pollingOnly.emit("chat message", "Q", "sent over long-polling");
        await b.waitFor(/^sent over long-polling from Q$/);
        a.send("to the long-polling client");
        await b.waitFor(/^to the long-polling client from A$/);
        await until(() => pollingGot.includes("to the long-polling client from A"), 10_000);
        assert.deepEqual(pollingGot, ["sent after the upgrade from P", "to the long-polling client from A"]);
      } finally {
        client.disconnect();
        pollingOnly.disconnect();
      }
    });

    test("a client that breaks the rules crashes nothing, and the others keep chatting", async () => {
      const rogue = connect(serverUrl, { forceNew: true, transports: ["websocket"] });
      try {
        await connected(rogue);
        const fromB = b.stdout.length;
        rogue.emit("chat message", 42, { not: "text" });
        rogue.emit("chat message");
        rogue.emit("chat message", "R", "x".repeat(MAX_TEXT_LENGTH + 1));
        rogue.emit("no such event", "R", "hello");
        const ignored = () => server.stdout.filter((line) => line.includes("ignored a malformed chat message")).length;
        await until(() => ignored() === 3, 10_000);
        // Sent on its own: a server that drops the connection for it may drop what is still unread too.
        rogue.emit("chat message", "R", "y".repeat(2_000_000)); // over maxHttpBufferSize: the server drops this client
        await sleep(QUIET_MS);
        a.send("still here");
        await b.waitFor(/^still here from A$/, 10_000, fromB);
        assert.deepEqual(b.stdout.slice(fromB), ["still here from A"], "B received something from the rogue client");
        assert.equal(ignored(), 3);
        assert.ok(!server.stdout.some((line) => line.includes("died")), "a worker died");
      } finally {
        rogue.disconnect();
      }
    });

    test("bad input: each script fails fast with one line", async () => {
      const nowhere = `redis://127.0.0.1:${await freePort()}`;
      const cases: { script: "index.ts" | "client.ts" | "emitter.ts"; args: string[]; env: Record<string, string>; code: number; line: RegExp }[] = [
        { script: "emitter.ts", args: [], env: { REDIS_URL: nowhere }, code: 1, line: /^cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+/ },
        { script: "emitter.ts", args: [], env: { REDIS_URL: "not a url" }, code: 1, line: /^cannot connect to Redis at not a url/ },
        { script: "client.ts", args: ["A"], env: { SERVER_URL: `http://127.0.0.1:${await freePort()}` }, code: 1, line: /^Error: cannot connect to http/ },
        { script: "client.ts", args: ["A"], env: { SERVER_URL: "localhost:3000" }, code: 2, line: /^SERVER_URL must be an http\(s\) or ws\(s\) URL/ },
        { script: "client.ts", args: [], env: {}, code: 2, line: /^usage: client\.ts <user name>$/ },
        { script: "client.ts", args: ["x".repeat(1001)], env: {}, code: 2, line: /^the user name must be 1 to 1000 characters$/ },
        { script: "index.ts", args: [], env: { REDIS_URL: "not a url", PORT: "0", WORKERS: "2" }, code: 1, line: /^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/ },
        { script: "index.ts", args: [], env: { REDIS_URL: nowhere, PORT: "0", WORKERS: "2" }, code: 1, line: /^cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+/ },
      ];
      const runtimeOf = { "emitter.ts": emitterRuntime, "client.ts": clientRuntime, "index.ts": serverRuntime };
      const results = await Promise.all(cases.map((c) => runToEnd(c.script, c.args, c.env, runtimeOf[c.script])));
      results.forEach((result, i) => {
        const c = cases[i]!;
        const what = `${c.script} ${JSON.stringify(c.env)}`;
        assert.equal(result.code, c.code, `${what} exit code; stderr: ${result.stderr.join("\n")}`);
        assert.equal(result.stderr.length, 1, `${what} printed ${JSON.stringify(result.stderr)}`);
        assert.match(result.stderr[0]!, c.line, what);
        assert.ok(result.ms < 10_000, `${what} took ${result.ms} ms`);
      });
    });
  });
}

/** Resolves on "connect"; rejects on "connect_error", or after `ms` (a client stuck after the handshake). */
function connected(socket: Socket, ms = 10_000): Promise<void> {
  // Checked first: a socket may have connected while the test awaited something else.
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connect within ${ms} ms (transport: ${socket.io.engine?.transport?.name})`)), ms);
    socket.once("connect", () => (clearTimeout(timer), resolve()));
    socket.once("connect_error", (err) => (clearTimeout(timer), reject(err)));
  });
}

