/**
 * bench/sick-redis.ts: how a running cluster copes with a Redis that stops answering, in figures.
 *
 * index.ts (2 workers) reaches Redis through support/tcp-proxy.ts; the bench publishes numbered
 * messages straight to Redis at --rate a second, to one websocket client per worker, and then:
 *   freeze     Redis under SIGSTOP for --freeze seconds (it accepts TCP, answers nothing)
 *   half-open  the proxy forwards nothing on the connections it carries, without closing them,
 *              and holds new ones, for --outage seconds; then new connections go through
 * For each it prints when the workers noticed, what was delivered during the fault and after,
 * how long until delivery came back, and how many messages were lost. REDIS_TIMEOUT is the
 * kit's default unless given.
 *
 *   npx tsx bench/sick-redis.ts
 *   npx tsx bench/sick-redis.ts --adapter streams --freeze 8 --outage 10 --rate 100
 */
import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { ADAPTERS, type AdapterName } from "../lib/config.ts";
import { shardedStreamsEmitter } from "../lib/emitter/sharded-streams.ts";
import { EXIT_USAGE } from "../lib/failures.ts";
import { type Cluster, startCluster, workerOf } from "../support/cluster.ts";
import { freePort, startRedisServer } from "../support/redis.ts";
import { sleep } from "../support/scripts.ts";
import { connected, type Recorder, record } from "../support/sockets.ts";
import { startTcpProxy } from "../support/tcp-proxy.ts";

const { values } = parseArgs({
  options: {
    adapter: { type: "string", default: "classic" },
    freeze: { type: "string", default: "8" },
    outage: { type: "string", default: "10" },
    rate: { type: "string", default: "100" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log("usage: npx tsx bench/sick-redis.ts [--adapter classic|sharded|streams] [--freeze S] [--outage S] [--rate PER_SECOND]");
  process.exit(0);
}
const ADAPTER = values.adapter as AdapterName;
const [FREEZE, OUTAGE, RATE] = [values.freeze, values.outage, values.rate].map(Number) as [number, number, number];
if (!ADAPTERS.includes(ADAPTER) || ![FREEZE, OUTAGE, RATE].every((n) => n > 0)) {
  console.error("--adapter takes classic, sharded or streams; --freeze, --outage and --rate numbers > 0");
  process.exit(EXIT_USAGE);
}

const redis = await startRedisServer(await freePort());
const proxy = await startTcpProxy(Number(new URL(redis.url).port));
const publisher = createClient({ url: redis.url });
/** Each client with when each numbered message arrived. */
const clients: (Recorder & { arrivals: { n: number; at: number }[] })[] = [];
let cluster: Cluster | undefined;
let ticker: NodeJS.Timeout | undefined;
try {
  // REDIS_TIMEOUT, when given, reaches index.ts through the environment it inherits.
  cluster = await startCluster({ redis: { url: `redis://127.0.0.1:${proxy.port}` }, adapter: ADAPTER });
  const { server } = cluster;
  for (let i = 0; i < 2; i++) {
    const c = Object.assign(record(cluster.url, { transports: ["websocket"] }, { keepTexts: false }), { arrivals: [] as { n: number; at: number }[] });
    c.socket.on("chat message", (text: string) => void (text.startsWith("n ") && c.arrivals.push({ n: Number(text.slice(2)), at: performance.now() })));
    await connected(c.socket, 10_000);
    await workerOf(server, c.socket.id!, 10_000);
    clients.push(c);
  }
  await publisher.connect();
  const emitter = ADAPTER === "classic" ? new Emitter(publisher).of("/") : shardedStreamsEmitter(publisher, ADAPTER).of("/").to([]);
  let n = 0;
  ticker = setInterval(() => emitter.emit("chat message", `n ${n++}`), 1000 / RATE);
  await sleep(2000);
  console.log(`ADAPTER=${ADAPTER}, REDIS_TIMEOUT=${process.env.REDIS_TIMEOUT ?? "5000 (default)"}, ${RATE} messages/s to one client per worker`);

  // When each worker line of this phase arrived, read every 10 ms.
  const watchLines = (from: number) => {
    const seen: { line: string; at: number }[] = [];
    const timer = setInterval(() => {
      for (const line of server.stderr.slice(from + seen.length)) seen.push({ line, at: performance.now() });
    }, 10);
    return { seen, stop: () => clearInterval(timer) };
  };
  const report = (name: string, faultAt: number, endAt: number, firstN: number, lines: { line: string; at: number }[]) => {
    const lastN = n - 1 - RATE; // the last second's messages may still be on their way
    const noticed = lines.find((l) => /has not answered/.test(l.line));
    console.log(`${name}:`);
    console.log(`  first worker line ${noticed ? `${((noticed.at - faultAt) / 1000).toFixed(1)} s after the fault` : "never"}`);
    for (const [i, c] of clients.entries()) {
      const got = c.arrivals.filter((r) => r.n >= firstN && r.n <= lastN);
      const during = got.filter((r) => r.at < endAt).length;
      const afterFirst = got.find((r) => r.at >= endAt);
      const resumed = afterFirst ? `${((afterFirst.at - endAt) / 1000).toFixed(1)} s after the fault ended` : "never";
      const unique = new Set(got.map((r) => r.n)).size;
      console.log(
        `  client ${i + 1}: ${during} delivered during the fault, delivery back ${resumed}, ` +
          `${unique} of ${lastN - firstN + 1} delivered in all (${lastN - firstN + 1 - unique} lost, ${got.length - unique} twice)`,
      );
    }
    for (const l of lines) console.log(`    +${((l.at - faultAt) / 1000).toFixed(1)} s ${l.line}`);
  };

  // Freeze.
  {
    const firstN = n;
    const lines = watchLines(server.stderr.length);
    process.kill(redis.pid!, "SIGSTOP");
    const faultAt = performance.now();
    await sleep(FREEZE * 1000);
    process.kill(redis.pid!, "SIGCONT");
    const endAt = performance.now();
    await sleep(4000);
    lines.stop();
    report(`Redis frozen (SIGSTOP) for ${FREEZE} s`, faultAt, endAt, firstN, lines.seen);
  }
  // Half-open path.
  {
    const firstN = n;
    const lines = watchLines(server.stderr.length);
    proxy.holdNew(true);
    proxy.blackholeExisting();
    const faultAt = performance.now();
    await sleep(OUTAGE * 1000);
    proxy.holdNew(false);
    const endAt = performance.now();
    await sleep(8000);
    lines.stop();
    report(`half-open path for ${OUTAGE} s, then a new path`, faultAt, endAt, firstN, lines.seen);
  }
} finally {
  clearInterval(ticker);
  for (const c of clients) c.socket.disconnect();
  await publisher.close().catch(() => {});
  await cluster?.stop();
  await proxy.close();
  await redis.stop();
}
