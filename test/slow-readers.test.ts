/**
 * Clients that stop reading, beside healthy ones, under a flood through Redis: the real index.ts,
 * a real Redis, real socket.io clients (the stuck ones in a process the test freezes with
 * SIGSTOP). The stuck ones are let go and come back; the healthy ones, a long-polling one among
 * them, get every message. Memory figures: bench/slow-readers.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import type { ServerToClientEvents } from "../lib/chat.ts";
import { type Cluster, startCluster } from "../support/cluster.ts";
import { rssOf } from "../support/processes.ts";
import { type Script, sleep, stopAll, until } from "../support/scripts.ts";
import { record, startReaders } from "../support/sockets.ts";

const MAX_CLIENT_BACKLOG = 2 * 2 ** 20;
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
    cluster = await startCluster({ workers: 1, env: { MAX_CLIENT_BACKLOG: String(MAX_CLIENT_BACKLOG) } });
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
      t.diagnostic(`worker RSS: ${rssBefore} MB before, peak ${rssPeak} MB during the flood (3 stuck readers, limit ${MAX_CLIENT_BACKLOG / 2 ** 20} MiB)`);
      t.diagnostic(`healthy: websocket ${healthy[0]!.count}, polling ${healthy[1]!.count} of ${total}`);

      for (const h of healthy) assert.equal(h.count, total, "a healthy client got every message");
      const cuts = server.stdout.filter((line) => /closed the connection of a client that does not read/.test(line));
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
