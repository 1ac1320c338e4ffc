/**
 * bench/slow-readers.ts: what clients that stop reading cost a worker, with the slow-reader check
 * off (MAX_CLIENT_BACKLOG=0) and on (the default, or --limit), measured one after the other.
 *
 * One worker, N stuck readers (support/readers.ts, frozen with SIGSTOP) beside one healthy websocket
 * client and one healthy long-polling client, a flood of --size bytes x --rate messages per
 * second for --seconds through Redis. It prints the worker's RSS before, at its peak and at the
 * end, when each stuck reader was let go, and what the healthy clients received; then the same
 * flood with no stuck reader, for what the flood alone costs. Linux only.
 *
 *   npx tsx bench/slow-readers.ts
 *   npx tsx bench/slow-readers.ts --stuck 10 --size 10000 --rate 1000 --seconds 20 --limit 10485760
 */
import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { EXIT_USAGE } from "../lib/failures.ts";
import { startCluster } from "../support/cluster.ts";
import { rssOf } from "../support/processes.ts";
import { startPrivateRedis } from "../support/redis.ts";
import { sleep, until } from "../support/scripts.ts";
import { record, startReaders } from "../support/sockets.ts";

const { values } = parseArgs({
  options: {
    stuck: { type: "string", default: "10" },
    size: { type: "string", default: "10000" },
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "20" },
    limit: { type: "string", default: String(10 * 2 ** 20) },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log("usage: npx tsx bench/slow-readers.ts [--stuck N] [--size BYTES] [--rate PER_SECOND] [--seconds S] [--limit BYTES]");
  process.exit(0);
}
const [STUCK, SIZE, RATE, SECONDS, LIMIT] = [values.stuck, values.size, values.rate, values.seconds, values.limit].map(Number) as number[];
if (![STUCK, SIZE, RATE, SECONDS, LIMIT].every((n) => Number.isInteger(n) && n! > 0)) {
  console.error("every option takes a whole number > 0");
  process.exit(EXIT_USAGE);
}

const MB = 2 ** 20;
const redis = await startPrivateRedis();
try {
  // The check off, then on; then on without stuck readers: what the flood alone costs.
  for (const [limit, stuck] of [[0, STUCK!], [LIMIT!, STUCK!], [LIMIT!, 0]] as const) await measure(limit, stuck);
} finally {
  await redis.stop();
}

async function measure(limit: number, stuckCount: number) {
  const cluster = await startCluster({ redis, workers: 1, env: { MAX_CLIENT_BACKLOG: String(limit) } });
  const { server, url } = cluster;
  const stuck = startReaders(url, stuckCount);
  // Counted, not kept: a flood's texts would fill this process's memory.
  const healthy = (["websocket", "polling"] as const).map((transport) => Object.assign(record(url, { transports: [transport] }, { keepTexts: false }), { transport }));
  const publisher = createClient({ url: redis.url });
  try {
    await until(() => healthy.every((h) => h.socket.connected) && stuck.ids().length === stuckCount, 30_000, "everyone connected");
    const [worker] = cluster.workerPids();
    await publisher.connect();
    const emitter = new Emitter(publisher);
    stuck.freeze();
    const before = rssOf(worker!);
    let peak = before;
    const started = performance.now();
    const message = "x".repeat(SIZE!);
    const total = RATE! * SECONDS!;
    let sent = 0;
    const cutTimes: number[] = [];
    // Every 10 ms, what is due by now: the rate holds even when a tick comes late.
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * RATE!));
      for (; sent < due; sent++) emitter.emit("chat message", message);
      peak = Math.max(peak, rssOf(worker!));
      const cutsNow = server.stdout.filter((line) => line.includes("closed the connection of a client that does not read")).length;
      while (cutTimes.length < cutsNow) cutTimes.push((performance.now() - started) / 1000);
      await sleep(10);
    }
    await until(() => healthy.every((h) => h.count === total), 30_000, "the healthy clients get everything").catch(() => {});
    await sleep(1000);
    const end = rssOf(worker!);
    const cuts = server.stdout.filter((line) => line.includes("closed the connection of a client that does not read"));
    console.log(`MAX_CLIENT_BACKLOG=${limit}${limit === 0 ? " (check off)" : ` (${(limit / MB).toFixed(0)} MiB)`}, ${stuckCount} stuck readers, ${SIZE} B x ${RATE}/s for ${SECONDS} s:`);
    console.log(`  worker RSS: ${(before / MB).toFixed(0)} MB before, ${(peak / MB).toFixed(0)} MB at the peak, ${(end / MB).toFixed(0)} MB at the end`);
    const when = cutTimes.length ? `, ${cutTimes[0]!.toFixed(1)}-${cutTimes.at(-1)!.toFixed(1)} s into the flood` : "";
    console.log(`  stuck readers let go: ${cuts.length} of ${stuckCount}${when}`);
    for (const h of healthy) console.log(`  healthy ${h.transport} client: ${h.count} of ${total} messages`);
    if (cuts[0]) console.log(`  the first cut, as the worker logged it: ${cuts[0]}`);
  } finally {
    for (const h of healthy) h.socket.disconnect();
    await publisher.close().catch(() => {});
    await stuck.stop();
    await cluster.stop();
  }
}
