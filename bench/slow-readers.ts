/**
 * bench/slow-readers.ts: what clients that stop reading cost a worker, and whether a client that
 * keeps reading is kept, under two floods through Redis.
 *
 * Paced (--only paced): one worker, N stuck readers (support/readers.ts, frozen with SIGSTOP)
 * beside one healthy websocket client and one healthy long-polling client, a flood of --size bytes
 * x --rate messages per second for --seconds, with the slow-reader check off (MAX_CLIENT_BACKLOG=0)
 * and on (the default, or --limit), then on with no stuck reader, for what the flood alone costs.
 *
 * Unpaced (--only burst): --burst broadcasts of --size bytes published back to back, as a backend
 * replaying a queue does, to two workers, one healthy websocket reader (a process of its own that
 * reads as fast as it can) with no stuck reader, then with --burst-stuck of them; each --runs
 * times. It prints what the healthy reader got, the cuts by rule, and the workers' peak RSS
 * together: the stuck readers' extra peak is the second figure minus the first. --steady-pace N
 * adds a reader that reads N messages a second, steadily (support/readers.ts). Linux only.
 *
 *   npx tsx bench/slow-readers.ts
 *   npx tsx bench/slow-readers.ts --only burst --burst 6000 --burst-stuck 5 --runs 5
 *   npx tsx bench/slow-readers.ts --only paced --stuck 10 --size 10000 --rate 1000 --seconds 20 --limit 10485760
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
    limit: { type: "string" },
    burst: { type: "string", default: "6000" },
    "burst-stuck": { type: "string", default: "5" },
    runs: { type: "string", default: "5" },
    only: { type: "string" },
    "pubsub-limit": { type: "string", default: "256mb" },
    "steady-pace": { type: "string", default: "0" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log(
    "usage: npx tsx bench/slow-readers.ts [--only paced|burst] [--stuck N] [--size BYTES] [--rate PER_SECOND] [--seconds S] [--limit BYTES] [--burst N] [--burst-stuck N] [--runs N] [--pubsub-limit 256mb] [--steady-pace PER_SECOND]",
  );
  process.exit(0);
}
// No --limit: the server's own default, whatever the checked-out lib/config.ts says.
const numbers = [values.stuck, values.size, values.rate, values.seconds, values.limit ?? "1", values.burst, values["burst-stuck"], values.runs].map(Number);
const [STUCK, SIZE, RATE, SECONDS, LIMIT, BURST, BURST_STUCK, RUNS] = numbers as number[];
if (!numbers.every((n) => Number.isInteger(n) && n > 0)) {
  console.error("every option takes a whole number > 0");
  process.exit(EXIT_USAGE);
}
const STEADY_PACE = Number(values["steady-pace"]);
if (!Number.isInteger(STEADY_PACE) || STEADY_PACE < 0) {
  console.error(`--steady-pace takes a whole number of messages per second (0: no steady reader), got "${values["steady-pace"]}"`);
  process.exit(EXIT_USAGE);
}
if (values.only !== undefined && values.only !== "paced" && values.only !== "burst") {
  console.error(`--only takes paced or burst, got "${values.only}"`);
  process.exit(EXIT_USAGE);
}

const MB = 2 ** 20;
/** A cut as the worker logs it, before (one rule) and after this round (three, named). */
const CUT = /closed the connection of a (client that does not read|slow reader)/;
const redis = await startPrivateRedis();
let burstRedis: Awaited<ReturnType<typeof startPrivateRedis>> | undefined;
try {
  if (values.only !== "burst") {
    // The check off, then on; then on without stuck readers: what the flood alone costs.
    const limit = values.limit === undefined ? undefined : LIMIT!;
    for (const [check, stuck] of [[0, STUCK!], [limit, STUCK!], [limit, 0]] as const) await measure(check, stuck);
  }
  if (values.only !== "paced") {
    // Redis's default pubsub limit (32 MB) cuts a worker's subscriber that falls that far behind
    // the burst before any client does (docs/reference/faults.md#bursts): raised here, so that
    // the clients' side is what is measured.
    burstRedis = await startPrivateRedis(["--client-output-buffer-limit", `pubsub ${values["pubsub-limit"]} ${values["pubsub-limit"]} 60`]);
    // Calm and stuck runs alternate; the peaks move by tens of MB from run to run with the
    // garbage collector's timing, so the medians are compared.
    const growth: Record<"calm" | "stuck", number[]> = { calm: [], stuck: [] };
    for (let run = 1; run <= RUNS!; run++) {
      growth.calm.push(await measureBurst(0));
      growth.stuck.push(await measureBurst(BURST_STUCK!));
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const mb = (values: number[]) => values.map((bytes) => (bytes / MB).toFixed(0)).join(", ");
    console.log(`the workers' peak RSS growth during the burst, ${RUNS} runs each: without stuck readers ${mb(growth.calm)} MB; with ${BURST_STUCK} ${mb(growth.stuck)} MB`);
    console.log(`the ${BURST_STUCK} stuck readers' extra peak (median minus median): ${((median(growth.stuck) - median(growth.calm)) / MB).toFixed(0)} MB`);
  }
} finally {
  await redis.stop();
  await burstRedis?.stop();
}

/** MAX_CLIENT_BACKLOG for the server: 0 turns the check off, undefined leaves the server's default. */
function limitEnv(limit: number | undefined): Record<string, string> {
  return limit === undefined ? {} : { MAX_CLIENT_BACKLOG: String(limit) };
}
function limitName(limit: number | undefined): string {
  return limit === undefined ? "MAX_CLIENT_BACKLOG unset (the default)" : limit === 0 ? "MAX_CLIENT_BACKLOG=0 (check off)" : `MAX_CLIENT_BACKLOG=${limit} (${(limit / MB).toFixed(0)} MiB)`;
}

async function measure(limit: number | undefined, stuckCount: number) {
  const cluster = await startCluster({ redis, workers: 1, env: limitEnv(limit) });
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
      const cutsNow = server.stdout.filter((line) => CUT.test(line)).length;
      while (cutTimes.length < cutsNow) cutTimes.push((performance.now() - started) / 1000);
      await sleep(10);
    }
    await until(() => healthy.every((h) => h.count === total), 30_000, "the healthy clients get everything").catch(() => {});
    await sleep(1000);
    const end = rssOf(worker!);
    const cuts = server.stdout.filter((line) => CUT.test(line));
    console.log(`${limitName(limit)}, ${stuckCount} stuck readers, ${SIZE} B x ${RATE}/s for ${SECONDS} s:`);
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

/** One unpaced burst; returns how much the workers' RSS together grew at its peak, in bytes. */
async function measureBurst(stuckCount: number): Promise<number> {
  const limit = values.limit === undefined ? undefined : LIMIT!;
  const cluster = await startCluster({ redis: burstRedis, workers: 2, env: limitEnv(limit) });
  const { server, url } = cluster;
  const stuck = startReaders(url, stuckCount);
  const healthy = startReaders(url, 1);
  const steady = STEADY_PACE ? startReaders(url, 1, "websocket", STEADY_PACE) : undefined;
  const readers = [healthy, ...(steady ? [steady] : [])];
  const publisher = createClient({ url: burstRedis!.url });
  try {
    await until(() => readers.every((r) => r.ids().length === 1) && stuck.ids().length === stuckCount, 30_000, "everyone connected");
    await publisher.connect();
    const emitter = new Emitter(publisher);
    stuck.freeze();
    await sleep(500);
    const workers = cluster.workerPids();
    const rss = () => workers.reduce((bytes, pid) => bytes + rssOf(pid), 0);
    const before = rss();
    let peak = before;
    const message = "x".repeat(SIZE!);
    const started = performance.now();
    // Back to back: node-redis pipelines every PUBLISH it is given at once.
    for (let i = 0; i < BURST!; i++) emitter.emit("chat message", message);
    let last = -1;
    let lastMoved = performance.now();
    const got = () => readers.reduce((sum, r) => sum + r.received(), 0);
    // Until the readers have everything, or have not moved for 5 s (cut, or lost some).
    while (got() < BURST! * readers.length && performance.now() - lastMoved < 5000 && performance.now() - started < 120_000) {
      peak = Math.max(peak, rss());
      if (got() !== last) [last, lastMoved] = [got(), performance.now()];
      await sleep(20);
    }
    const seconds = (performance.now() - started) / 1000;
    // The stuck readers may still hold the burst: the peak, and the cuts, until they are let go.
    for (const until = performance.now() + 3000; performance.now() < until; await sleep(20)) peak = Math.max(peak, rss());
    const cuts = server.stdout.filter((line) => CUT.test(line));
    const rules = new Map<string, number>();
    for (const line of cuts) {
      const rule = /rule "([^"]+)"/.exec(line)?.[1] ?? "over the limit for 2 s";
      rules.set(rule, (rules.get(rule) ?? 0) + 1);
    }
    console.log(`unpaced burst: ${BURST} x ${SIZE} B back to back, 2 workers, ${stuckCount} stuck readers, ${limitName(limit)}:`);
    console.log(`  healthy websocket reader: ${healthy.received()} of ${BURST} in ${seconds.toFixed(1)} s${healthy.ids().length > 1 ? " (it was cut and came back)" : ""}`);
    if (steady) console.log(`  steady reader (${STEADY_PACE} messages/s): ${steady.received()} of ${BURST}${steady.ids().length > 1 ? " (it was cut and came back)" : ""}`);
    console.log(`  workers' RSS together: ${(before / MB).toFixed(0)} MB before, ${(peak / MB).toFixed(0)} MB at the peak`);
    console.log(`  cuts: ${cuts.length}${cuts.length ? ` (${[...rules].map(([rule, n]) => `${rule}: ${n}`).join(", ")})` : ""}`);
    for (const line of cuts.slice(0, 2)) console.log(`    ${line}`);
    const subscriberCuts = server.stdout.concat(server.stderr).filter((line) => line.includes("Redis closed the subscriber connection")).length;
    if (subscriberCuts) console.log(`  Redis cut a worker's subscriber (client-output-buffer-limit pubsub): ${subscriberCuts} times`);
    return peak - before;
  } finally {
    await publisher.close().catch(() => {});
    await healthy.stop();
    await steady?.stop();
    await stuck.stop();
    await cluster.stop();
  }
}
