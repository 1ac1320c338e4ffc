/**
 * Clients that stop reading, beside healthy ones, under a flood through Redis: the real index.ts,
 * a real Redis, real socket.io clients (the stuck ones in a process the test freezes with
 * SIGSTOP). The stuck ones are let go and come back; the healthy ones, a long-polling one among
 * them, get every message. Memory figures: bench/slow-readers.ts.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { io as connect, type Socket } from "socket.io-client";
import { freePort, type RunningRedis, startPrivateRedis } from "../support/redis.ts";
import type { ClientToServerEvents, ServerToClientEvents } from "../lib/chat.ts";
import { run, type Script, sleep, stopAll, until } from "../support/scripts.ts";

const MAX_CLIENT_BACKLOG = 2 * 2 ** 20;
const MESSAGE = "x".repeat(5000);
const RATE = 400; // messages per second: 2 MB/s to every client
const SECONDS = 10;

/** The RSS of the primary's children (the workers), in MB. */
function workersRss(primaryPid: number): number {
  const pids = execFileSync("ps", ["-o", "pid=", "--ppid", String(primaryPid)], { encoding: "utf8" }).trim().split(/\s+/);
  let kb = 0;
  for (const pid of pids) {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
    kb += Number(match?.[1] ?? 0);
  }
  return Math.round(kb / 1024);
}

describe("clients that stop reading, under a flood", () => {
  let redis: RunningRedis;
  let server: Script;
  let url: string;

  before(async () => {
    redis = await startPrivateRedis();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = run("index.ts", [], { REDIS_URL: redis.url, PORT: String(port), WORKERS: "1", MAX_CLIENT_BACKLOG: String(MAX_CLIENT_BACKLOG) });
    await server.waitFor("listening on port", 60_000);
  });

  after(async () => {
    await stopAll();
    await redis?.stop();
  });

  test("are cut and reconnect; healthy clients, websocket and long-polling, get every message", async (t) => {
    const healthy: { socket: Socket<ServerToClientEvents, ClientToServerEvents>; received: number }[] = [];
    for (const transports of [["websocket"], ["polling"]]) {
      const socket: Socket<ServerToClientEvents, ClientToServerEvents> = connect(url, { forceNew: true, transports });
      const h = { socket, received: 0 };
      socket.on("chat message", (text) => void (text === MESSAGE && h.received++));
      healthy.push(h);
    }
    const stuck = run("support/readers.ts", [url, "3"], {});
    const publisher = createClient({ url: redis.url });
    let ticker: NodeJS.Timeout | undefined;
    try {
      await publisher.connect();
      await until(() => healthy.every((h) => h.socket.connected) && stuck.stdout.filter((l) => l.startsWith("connected ")).length === 3, 20_000, "everyone connected");
      const stuckIds = stuck.stdout.filter((l) => l.startsWith("connected ")).map((l) => l.slice(10));
      const rssBefore = workersRss(server.child.pid!);
      process.kill(stuck.child.pid!, "SIGSTOP");

      const emitter = new Emitter<ServerToClientEvents>(publisher);
      const total = RATE * SECONDS;
      let sent = 0;
      let rssPeak = 0;
      ticker = setInterval(() => {
        for (let i = 0; i < RATE / 20 && sent < total; i++, sent++) emitter.emit("chat message", MESSAGE);
        rssPeak = Math.max(rssPeak, workersRss(server.child.pid!));
      }, 50);
      await until(() => sent === total, (SECONDS + 20) * 1000, "the flood is sent");
      clearInterval(ticker);
      await until(() => healthy.every((h) => h.received === total), 20_000, `healthy clients got ${total} messages`).catch(() => {});
      t.diagnostic(`worker RSS: ${rssBefore} MB before, peak ${rssPeak} MB during the flood (3 stuck readers, limit ${MAX_CLIENT_BACKLOG / 2 ** 20} MiB)`);
      t.diagnostic(`healthy: websocket ${healthy[0]!.received}, polling ${healthy[1]!.received} of ${total}`);

      for (const h of healthy) assert.equal(h.received, total, "a healthy client got every message");
      const cuts = server.stdout.filter((line) => /closed the connection of a client that does not read/.test(line));
      for (const h of healthy) assert.ok(!cuts.some((line) => line.includes(h.socket.io.engine.id)), `a healthy client was cut: ${cuts.join("\n")}`);
      assert.equal(cuts.length, 3, `one line per stuck client:\n${cuts.join("\n")}`);
      t.diagnostic(cuts[0]!);
      // The engine ids in the log are not the socket ids the fixture printed; count is what matters.
      assert.equal(stuckIds.length, 3);

      // Thawed, the stuck clients find their connection gone and come back by themselves.
      process.kill(stuck.child.pid!, "SIGCONT");
      await until(() => stuck.stdout.filter((l) => l.startsWith("connected ")).length === 6, 20_000, "the stuck clients reconnect");
    } finally {
      clearInterval(ticker);
      try {
        process.kill(stuck.child.pid!, "SIGCONT");
      } catch {}
      for (const h of healthy) h.socket.disconnect();
      await publisher.close().catch(() => {});
      await stuck.stop();
    }
    await sleep(0);
  });
});
