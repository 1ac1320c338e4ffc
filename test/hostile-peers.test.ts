/**
 * Hostile peers against the real clustered index.ts (2 workers) and a real Redis: TCP resets at
 * every point of a request, bytes that are not HTTP, connections that send nothing or drip, on
 * the Node, Bun and Deno servers; and malformed messages published on Redis under each adapter.
 * Honest clients chat throughout; the assertions are on what they receive. docs/reference/faults.md
 * tells what each test shows.
 */
import assert from "node:assert/strict";
import { connect as connectTcp, type Socket as TcpSocket } from "node:net";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import { type Cluster, startCluster, workerOf } from "../support/cluster.ts";
import { rawBroadcast, type RunningRedis, startPrivateRedis } from "../support/redis.ts";
import { type Runtime, type Script, sleep, stopAll, until } from "../support/scripts.ts";
import { type Recorder, record } from "../support/sockets.ts";

const REQUEST_TIMEOUT = 1500;

type Chatter = Recorder;

function chatter(url: string): Chatter {
  return record(url, { reconnectionDelay: 100, reconnectionDelayMax: 500 });
}

/** A message from A reaches B and one from B reaches A. */
async function chatBothWays(a: Chatter, b: Chatter, tag: string) {
  a.socket.emit("chat message", "A", `${tag} a`);
  b.socket.emit("chat message", "B", `${tag} b`);
  await until(() => b.received.includes(`${tag} a from A`) && a.received.includes(`${tag} b from B`), 15_000, `chat "${tag}" both ways`);
}

/** A raw TCP connection to the server, with what it has been told and when it was closed. */
function raw(port: number): Promise<{ socket: TcpSocket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, "127.0.0.1");
    const opened = Date.now();
    socket.on("error", () => {});
    socket.resume();
    const closed = new Promise<number>((done) => socket.once("close", () => done(Date.now() - opened)));
    socket.once("connect", () => resolve({ socket, closed }));
    socket.once("error", reject);
  });
}

const POST_HEAD = (length: number) =>
  `POST /socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ${length}\r\n\r\n`;
const UPGRADE_HEAD =
  "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/** Sends `bytes`, waits a little, then resets the connection (RST, as SO_LINGER 0 would). */
async function sendThenReset(port: number, bytes: string | Buffer, waitMs = 100) {
  const { socket } = await raw(port);
  if (bytes.length > 0) socket.write(bytes);
  await sleep(waitMs);
  socket.resetAndDestroy();
}

for (const runtime of ["node", "bun", "deno"] as Runtime[]) {
  describe(`the sticky primary on ${runtime}, against hostile TCP peers`, () => {
    let cluster: Cluster;
    let server: Script;
    let port: number;
    let a: Chatter;
    let b: Chatter;

    before(async () => {
      cluster = await startCluster({ runtime, env: { REQUEST_TIMEOUT: String(REQUEST_TIMEOUT) } });
      ({ server, port } = cluster);
      a = chatter(cluster.url);
      b = chatter(cluster.url);
      // Both known to their workers before anyone chats: a broadcast reaches only who is there.
      await until(() => a.socket.connected && b.socket.connected, 20_000, "both clients connected");
      for (const c of [a, b]) await workerOf(server, c.socket.id!);
      await chatBothWays(a, b, "before");
    });

    after(async () => {
      a?.socket.disconnect();
      b?.socket.disconnect();
      await stopAll();
      await cluster?.stop();
    });

    test("resets at every point of a request leave the same server up and the honest clients chatting", async () => {
      const pid = server.child.pid;
      const points: [string, string | Buffer][] = [
        ["right after connecting", ""],
        ["mid-POST head", POST_HEAD(1000).slice(0, 40)],
        ["after a POST head, before its body", POST_HEAD(1000)],
        ["mid-POST body", `${POST_HEAD(1000)}40${"x".repeat(300)}`],
        ["mid-upgrade head", UPGRADE_HEAD.slice(0, 60)],
        ["after an upgrade head", UPGRADE_HEAD],
        ["mid-GET head", "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHo"],
      ];
      for (const [point, bytes] of points) {
        for (let i = 0; i < 3; i++) await sendThenReset(port, bytes);
        await chatBothWays(a, b, point);
      }
      // And all at once, 20 of each kind.
      await Promise.all(points.flatMap(([, bytes]) => Array.from({ length: 20 }, () => sendThenReset(port, bytes, 50))));
      await chatBothWays(a, b, "after the volley");
      assert.equal(server.child.exitCode, null, "the server is still running");
      assert.equal(server.child.pid, pid);
      assert.ok(!server.stdout.some((line) => /died/.test(line)), "no worker died");
      // Counted, and said once (the next summary comes a minute later).
      const said = server.stderr.filter((line) => line.startsWith("primary: client connections failed or timed out"));
      assert.equal(said.length, 1, server.stderr.join("\n"));
    });

    test("bytes that are not HTTP get the connection closed, nothing else", async () => {
      const junk = [Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00]), Buffer.from("\x00\xff\xfe garbage\r\n\r\n"), Buffer.from("PING\r\n")];
      for (const bytes of junk) {
        const { socket, closed } = await raw(port);
        socket.write(bytes);
        await closed;
      }
      await chatBothWays(a, b, "after junk");
    });

    test("a connection that sends nothing, or drips a head or a body, is closed after REQUEST_TIMEOUT", async (t) => {
      const silent = await raw(port);
      const headDrip = await raw(port);
      // A real session, so that its worker waits for the body rather than refusing the request.
      const handshake = await (await fetch(`http://127.0.0.1:${port}/socket.io/?EIO=4&transport=polling`)).text();
      const sid = (JSON.parse(handshake.slice(1)) as { sid: string }).sid;
      const bodyDrip = await raw(port);
      bodyDrip.socket.write(POST_HEAD(1000).replace("AAAAAAAAAAAAAAAAAAAA", sid));
      const head = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n";
      let i = 0;
      const drip = setInterval(() => {
        headDrip.socket.write(head[i++ % head.length]!);
        bodyDrip.socket.write("x");
      }, 100);
      try {
        const waited = await Promise.all([silent.closed, headDrip.closed, bodyDrip.closed].map((closed) => Promise.race([closed, sleep(15_000).then(() => -1)])));
        t.diagnostic(`closed after (ms): silent ${waited[0]}, head drip ${waited[1]}, body drip ${waited[2]} (REQUEST_TIMEOUT=${REQUEST_TIMEOUT})`);
        assert.ok(waited.every((ms) => ms >= 0), `every connection closed within 15 s: ${waited}`);
      } finally {
        clearInterval(drip);
      }
      await chatBothWays(a, b, "after the drips");
    });
  });
}

/** A message that throws in each adapter (its valid neighbours: rawBroadcast() of support/redis.ts). */
const ADAPTER_FORMATS = {
  classic: {
    malformed: ["PUBLISH", "socket.io#/#", Buffer.from([0xc1, 0xc1, 0xc1])],
  },
  sharded: {
    malformed: ["SPUBLISH", "socket.io#/#", JSON.stringify({ uid: "emitter", nsp: "/", type: 3, data: {} })],
  },
  streams: {
    malformed: ["XADD", "socket.io", "*", "uid", "emitter", "nsp", "/", "type", "3", "data", "{}"],
  },
} as const;

describe("a malformed message on Redis, inside a burst of many", () => {
  let redis: RunningRedis;
  before(async () => {
    redis = await startPrivateRedis();
  });
  after(async () => {
    await stopAll();
    await redis?.stop();
  });

  /** A cluster on `adapter`, two connected clients and a raw publisher, all stopped after `body`. */
  async function onCluster(adapter: keyof typeof ADAPTER_FORMATS, body: (run: { server: Script; clients: Chatter[]; publish: (command: readonly (string | Buffer)[]) => Promise<unknown> }) => Promise<void>) {
    const { server, url } = await startCluster({ redis, adapter });
    const clients = [chatter(url), chatter(url)];
    const publisher = createClient({ url: redis.url });
    try {
      await publisher.connect();
      await until(() => clients.every((c) => c.socket.connected), 15_000, "clients connected");
      await sleep(300); // both subscribed
      await body({ server, clients, publish: (command) => publisher.sendCommand(command as unknown as string[]) });
    } finally {
      for (const c of clients) c.socket.disconnect();
      await publisher.close().catch(() => {});
      await server.stop();
    }
  }
  const droppedLine = /ignored a message from Redis that the adapter could not handle/;

  for (const adapter of ["classic", "sharded", "streams"] as const) {
    test(`costs exactly that message under ADAPTER=${adapter}, with one log line`, (t) =>
      onCluster(adapter, async ({ server, clients, publish }) => {
        const BURST = 2000;
        const sent: Promise<unknown>[] = [];
        for (let i = 0; i < BURST; i++) {
          // Issued in one go: node-redis pipelines them, and Redis sends them on in big chunks.
          if (i === BURST / 2) sent.push(publish(ADAPTER_FORMATS[adapter].malformed));
          sent.push(publish(rawBroadcast(adapter, `n ${i}`)));
        }
        await Promise.all(sent);
        const expected = Array.from({ length: BURST }, (_, i) => `n ${i}`);
        await until(() => clients.every((c) => c.received.length >= BURST), 20_000, "every valid message delivered").catch(() => {});
        for (const [i, c] of clients.entries()) {
          t.diagnostic(`client ${i}: ${c.received.length} of ${BURST}`);
          assert.deepEqual(c.received, expected, `client ${i} got every valid message, in order, and nothing else`);
        }
        const lines = server.stderr.filter((line) => droppedLine.test(line));
        assert.equal(lines.length, 2, `one line per worker:\n${server.stderr.join("\n")}`);
        t.diagnostic(lines[0]!);
        // The workers still deliver afterwards.
        await publish(rawBroadcast(adapter, "after"));
        await until(() => clients.every((c) => c.received.includes("after")), 10_000, "delivery goes on");
      }));
  }

  // The sharded and streams adapters drop what they cannot decode with a debug() line only; the kit
  // says so as under classic (lib/worker/adapter-messages.ts).
  for (const adapter of ["sharded", "streams"] as const) {
    test(`ADAPTER=${adapter}: a message the adapter cannot decode gives one line per worker, however many, and delivery goes on`, (t) =>
      onCluster(adapter, async ({ server, clients, publish }) => {
        const undecodable = adapter === "sharded" ? ["SPUBLISH", "socket.io#/#", "{not json"] : ["XADD", "socket.io", "*", "uid", "emitter", "nsp", "/", "type", "3", "data", "{not json"];
        const undecodableLine = /ignored a message from Redis that the adapter could not handle: the adapter could not decode it/;
        await publish(rawBroadcast(adapter, "before"));
        for (let i = 0; i < 3; i++) await publish(undecodable);
        await publish(rawBroadcast(adapter, "after"));
        await until(() => clients.every((c) => c.received.includes("after")), 15_000, "delivery goes on").catch(() => {});
        await until(() => server.stderr.filter((line) => undecodableLine.test(line)).length >= 2, 10_000, "a line from each worker").catch(() => {});
        await sleep(300);
        for (const [i, c] of clients.entries()) assert.deepEqual(c.received, ["before", "after"], `client ${i} got the valid messages, and nothing else`);
        const lines = server.stderr.filter((line) => undecodableLine.test(line));
        t.diagnostic(lines[0] ?? "no line");
        // Three dropped per worker: the first logged at once, the other two counted for the summary.
        assert.equal(lines.length, 2, `one line per worker:\n${server.stderr.join("\n")}`);
      }));
  }
});
