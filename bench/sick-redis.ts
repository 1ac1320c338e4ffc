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
import { io as connect, type Socket } from "socket.io-client";
import { shardedStreamsEmitter } from "../lib/emitter/sharded-streams.ts";
import { ADAPTERS, type AdapterName } from "../lib/config.ts";
import { EXIT_USAGE } from "../lib/failures.ts";
import { run, sleep, until } from "../support/scripts.ts";
import { freePort, startRedisServer } from "../support/redis.ts";
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
const port = await freePort();
const env = { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, PORT: String(port), WORKERS: "2", ADAPTER };
const server = run("index.ts", [], { ...env, ...(process.env.REDIS_TIMEOUT ? { REDIS_TIMEOUT: process.env.REDIS_TIMEOUT } : {}) });
const publisher = createClient({ url: redis.url });
const clients: { socket: Socket; received: { n: number; at: number }[] }[] = [];
let ticker: NodeJS.Timeout | undefined;
try {
  await server.waitFor("listening on port", 60_000);
  for (let i = 0; i < 2; i++) {
    const socket = connect(`http://127.0.0.1:${port}`, { forceNew: true, transports: ["websocket"] });
    const c = { socket, received: [] as { n: number; at: number }[] };
    socket.on("chat message", (text: string) => text.startsWith("n ") && c.received.push({ n: Number(text.slice(2)), at: performance.now() }));
    await until(() => socket.connected, 10_000, "connected");
    await server.waitFor(new RegExp(`connected, id: ${socket.id}$`), 10_000);
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
      const got = c.received.filter((r) => r.n >= firstN && r.n <= lastN);
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
  await server.stop();
  await proxy.close();
  await redis.stop();
}
