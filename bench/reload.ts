/**
 * bench/reload.ts: the storm of a rolling reload (SIGHUP to the primary, lib/primary/reload.ts),
 * measured. For each adapter and each RELOAD_SPREAD_MS: a private Redis, the 2-worker cluster,
 * N clients (WebSocket) that receive a numbered message every 100 ms from our emitter, then
 * SIGHUP; printed: the time from SIGHUP until the reload is done and every client is connected
 * again (and then receiving), the peak CPU of the server's processes (primary and workers, sampled every 200 ms
 * from /proc), how many clients disconnected, and the messages lost and repeated, counted per
 * client by sequence. Not part of `npm test`: it prints figures and asserts nothing.
 *
 *   npx tsx bench/reload.ts                                  1,000 clients, 3 adapters, spread 0 and 5000
 *   npx tsx bench/reload.ts --clients 200 --adapters streams --spreads 0,2000,5000
 */
import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { ADAPTERS, type AdapterName, isAdapterName } from "../lib/config.ts";
import { shardedStreamsEmitter } from "../lib/emitter/sharded-streams.ts";
import { EXIT_USAGE } from "../lib/failures.ts";
import { startCluster } from "../support/cluster.ts";
import { processTree } from "../support/processes.ts";
import { sleep, stopAll, until } from "../support/scripts.ts";
import { record, type Recorder } from "../support/sockets.ts";

const options = (() => {
  try {
    return parseArgs({
      options: {
        clients: { type: "string", default: "1000" },
        adapters: { type: "string", default: ADAPTERS.join(",") },
        spreads: { type: "string", default: "0,5000" },
      },
    }).values;
  } catch (err) {
    return fail((err as Error).message);
  }
})();
const CLIENTS = Number(options.clients);
const ADAPTER_LIST = options.adapters!.split(",");
const SPREADS = options.spreads!.split(",").map(Number);
if (!Number.isInteger(CLIENTS) || CLIENTS < 1 || CLIENTS > 5000) fail(`--clients takes a whole number from 1 to 5000, got "${options.clients}"`);
if (!ADAPTER_LIST.every(isAdapterName)) fail(`--adapters takes ${ADAPTERS.join(", ")}, comma-separated, got "${options.adapters}"`);
if (!SPREADS.every((ms) => Number.isInteger(ms) && ms >= 0 && ms <= 60_000)) fail(`--spreads takes milliseconds from 0 to 60000, comma-separated, got "${options.spreads}"`);

/** Every wait has an end: a trial that does not settle is reported as such. */
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 120_000);

interface Row {
  adapter: AdapterName;
  spread: number;
  backMs: number | string;
  peakCpu: number;
  disconnected: number;
  lost: number;
  repeated: number;
  recovered: number;
}

async function trial(adapter: AdapterName, spread: number): Promise<Row> {
  const cluster = await startCluster({ adapter, env: { RELOAD_SPREAD_MS: String(spread) } });
  const publisher = createClient({ url: cluster.redis.url });
  const clients: Recorder[] = [];
  let ticker: NodeJS.Timeout | undefined;
  try {
    await publisher.connect();
    const emit = adapter === "classic" ? (text: string) => new Emitter(publisher).emit("chat message", text) : ((e) => (text: string) => e.emit("chat message", text))(shardedStreamsEmitter(publisher, adapter).of("/").to([]));
    for (let i = 0; i < CLIENTS; i++) {
      clients.push(record(cluster.url, { transports: ["websocket"] }));
      if (i % 100 === 99) await until(() => clients.every((c) => c.socket.connected), 60_000, "clients connected");
    }
    await until(() => clients.every((c) => c.socket.connected), 60_000, "clients connected");
    let sequence = 0;
    ticker = setInterval(() => void emit(`seq ${sequence++}`), 100);
    const seqs = (c: Recorder) => c.received.filter((text) => text.startsWith("seq ")).map((text) => Number(text.slice(4)));
    await until(() => clients.every((c) => seqs(c).length >= 2), 60_000, "messages flow");

    const root = cluster.server.child.pid!;
    const cpu = () => processTree(root).reduce((total, p) => total + p.cpuSeconds, 0);
    let peakCpu = 0;
    let last = { at: performance.now(), cpu: cpu() };
    const sampler = setInterval(() => {
      const now = { at: performance.now(), cpu: cpu() };
      peakCpu = Math.max(peakCpu, (100 * (now.cpu - last.cpu)) / ((now.at - last.at) / 1000));
      last = now;
    }, 200);
    const from = cluster.server.stdout.length;
    const started = performance.now();
    process.kill(root, "SIGHUP");
    let backMs: number | string;
    try {
      await cluster.server.waitFor(/^reload done/, SETTLE_MS, from);
      // Every client has been let go by now: once all are connected again, they are back.
      await until(() => clients.every((c) => c.socket.connected), SETTLE_MS, "every client back");
      backMs = Math.round(performance.now() - started);
      const after = sequence + 3;
      await until(() => clients.every((c) => seqs(c).includes(after)), SETTLE_MS, "every client receiving");
    } catch (err) {
      const stuck = clients.filter((c) => !(c.socket.connected && seqs(c).includes(sequence - 1))).length;
      backMs = `not settled: ${stuck} clients not back after ${SETTLE_MS / 1000} s`;
      console.error([...cluster.server.stdout.slice(from).filter((l) => !/connected, id|disconnected, id/.test(l)), ...cluster.server.stderr].join("\n"));
    } finally {
      clearInterval(sampler);
    }
    let lost = 0;
    let repeated = 0;
    for (const c of clients) {
      const got = seqs(c);
      const seen = new Set(got);
      repeated += got.length - seen.size;
      for (let n = got[0]!; n <= Math.max(...got); n++) if (!seen.has(n)) lost++;
    }
    const disconnected = clients.filter((c) => c.disconnects > 0).length;
    const recovered = clients.filter((c) => c.disconnects > 0 && c.socket.recovered).length;
    return { adapter, spread, backMs, peakCpu: Math.round(peakCpu), disconnected, lost, repeated, recovered };
  } finally {
    clearInterval(ticker);
    for (const c of clients) c.socket.disconnect();
    await publisher.close().catch(() => {});
    await stopAll();
    await cluster.stop();
  }
}

console.log(`bench/reload.ts, ${new Date().toISOString().slice(0, 10)}: ${CLIENTS} clients (WebSocket) on 2 workers, a message every 100 ms, SIGHUP`);
const rows: Row[] = [];
for (const adapter of ADAPTER_LIST as AdapterName[]) {
  for (const spread of SPREADS) {
    rows.push(await trial(adapter, spread));
    await sleep(500);
  }
}
console.log("| adapter | RELOAD_SPREAD_MS | all back after | peak CPU (server) | clients let go | recovered | messages lost | repeated |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows) {
  const back = typeof r.backMs === "number" ? `${(r.backMs / 1000).toFixed(1)} s` : r.backMs;
  console.log(`| ${r.adapter} | ${r.spread} | ${back} | ${r.peakCpu} % | ${r.disconnected} | ${r.recovered} | ${r.lost} | ${r.repeated} |`);
}
process.exit(0);

function fail(line: string): never {
  console.error(line);
  process.exit(EXIT_USAGE);
}
