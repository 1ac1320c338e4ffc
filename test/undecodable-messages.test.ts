/**
 * A message on Redis that the sharded or the streams adapter cannot decode: the adapter drops it
 * with a debug() line only (lib/worker/adapter-messages.ts); the kit says so in one rate-limited
 * line per worker, as under the classic adapter, and delivery goes on. The real index.ts, a real
 * Redis, real clients; the classic adapter's case is in hostile-peers.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import { startCluster } from "../support/cluster.ts";
import { type RunningRedis, startPrivateRedis } from "../support/redis.ts";
import { sleep, stopAll, until } from "../support/scripts.ts";
import { record } from "../support/sockets.ts";

/** A broadcast each adapter decodes, and a payload that is not JSON although it starts like it. */
const FORMATS = {
  sharded: {
    valid: (text: string) => ["SPUBLISH", "socket.io#/#", JSON.stringify({ uid: "emitter", nsp: "/", type: 3, data: { packet: { type: 2, data: ["chat message", text], nsp: "/" }, opts: { rooms: [], except: [], flags: {} } } })],
    undecodable: ["SPUBLISH", "socket.io#/#", "{not json"],
  },
  streams: {
    valid: (text: string) => ["XADD", "socket.io", "*", "uid", "emitter", "nsp", "/", "type", "3", "data", JSON.stringify({ packet: { type: 2, data: ["chat message", text], nsp: "/" }, opts: { rooms: [], except: [], flags: {} } })],
    undecodable: ["XADD", "socket.io", "*", "uid", "emitter", "nsp", "/", "type", "3", "data", "{not json"],
  },
} as const;

const LINE = /ignored a message from Redis that the adapter could not handle: the adapter could not decode it/;

describe("a message the adapter cannot decode", () => {
  let redis: RunningRedis;
  before(async () => {
    redis = await startPrivateRedis();
  });
  after(async () => {
    await stopAll();
    await redis?.stop();
  });

  for (const adapter of ["sharded", "streams"] as const) {
    test(`ADAPTER=${adapter}: one line per worker, however many, and delivery goes on`, async (t) => {
      const { server, url } = await startCluster({ redis, adapter });
      const clients = [record(url), record(url)];
      const publisher = createClient({ url: redis.url });
      try {
        await publisher.connect();
        await until(() => clients.every((c) => c.socket.connected), 15_000, "clients connected");
        await sleep(300); // both subscribed
        const { valid, undecodable } = FORMATS[adapter];
        await publisher.sendCommand(valid("before") as unknown as string[]);
        for (let i = 0; i < 3; i++) await publisher.sendCommand(undecodable as unknown as string[]);
        await publisher.sendCommand(valid("after") as unknown as string[]);
        await until(() => clients.every((c) => c.received.includes("after")), 15_000, "delivery goes on").catch(() => {});
        await until(() => server.stderr.filter((line) => LINE.test(line)).length >= 2, 10_000, "a line from each worker").catch(() => {});
        await sleep(300);
        for (const [i, c] of clients.entries()) assert.deepEqual(c.received, ["before", "after"], `client ${i} got the valid messages, and nothing else`);
        const lines = server.stderr.filter((line) => LINE.test(line));
        t.diagnostic(lines[0] ?? "no line");
        // Three dropped per worker: the first logged at once, the other two counted for the summary.
        assert.equal(lines.length, 2, `one line per worker:\n${server.stderr.join("\n")}`);
      } finally {
        for (const c of clients) c.socket.disconnect();
        await publisher.close().catch(() => {});
        await server.stop();
      }
    });
  }
});
