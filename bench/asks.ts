/**
 * bench/asks.ts: `npm run bench:asks`. What emitter.ts --list and --ack cost as the sockets grow,
 * under each adapter, side by side in one run (docs/reference/performance.md#asking-the-servers):
 *
 * - --list: the time from the question to the last server's answer (lib/emitter/requests.ts
 *   called in this process, so Node's start-up is not in it), the median of a few runs, and the
 *   bytes the answers carried;
 * - --ack: the same time until every client acknowledged, and the messages Redis carried for it
 *   (PUBLISH and SPUBLISH under MONITOR): the question, one client count per server, one answer
 *   per client.
 *
 * Each adapter gets its own private Redis and index.ts with 2 workers; the clients are
 * socket.io-client sockets in this process that acknowledge what they receive.
 *
 *   npm run bench:asks                      100 and 1000 sockets
 *   npm run bench:asks -- 10 100 1000       other counts (each from 1 to 5000)
 */
import { io, type Socket } from "socket.io-client";
import { createClient } from "redis";
import { ADAPTERS } from "../lib/config.ts";
import { EXIT_USAGE } from "../lib/failures.ts";
import { emitWithAck, listSockets } from "../lib/emitter/requests.ts";
import { monitorRedis } from "../support/capture.ts";
import { startCluster } from "../support/cluster.ts";

const counts = process.argv.slice(2).map(Number);
if (counts.some((n) => !Number.isInteger(n) || n < 1 || n > 5000)) {
  console.error("usage: bench/asks.ts [socket counts, each 1 to 5000]");
  process.exit(EXIT_USAGE);
}
const SOCKET_COUNTS = counts.length > 0 ? counts : [100, 1000];
const RUNS = 5;
const TIMEOUT_MS = 30_000;
/** Connections opened at once: thousands in one burst would measure the kernel's backlog. */
const CONNECTING_AT_ONCE = 50;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function connectSockets(url: string, count: number, from: number): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i += CONNECTING_AT_ONCE) {
    const batch = Array.from({ length: Math.min(CONNECTING_AT_ONCE, count - i) }, (_, j) => {
      const socket = io(url, { forceNew: true, transports: ["websocket"], reconnection: false, auth: { name: `user-${(from + i + j) % 50}` } });
      socket.onAny((...args: unknown[]) => {
        const ack = args.at(-1);
        if (typeof ack === "function") ack();
      });
      return new Promise<Socket>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("a socket did not connect within 20 s")), 20_000);
        socket.once("connect", () => (clearTimeout(timer), resolve(socket)));
      });
    });
    sockets.push(...(await Promise.all(batch)));
  }
  return sockets;
}

console.log(`bench/asks.ts, ${new Date().toISOString().slice(0, 10)}: index.ts with 2 workers per adapter, sockets in one process, ${RUNS} runs each`);
console.log("adapter  sockets  list ms (median)  list answer bytes  ack ms (median)  acked  messages per ack");
for (const adapter of ADAPTERS) {
  const cluster = await startCluster({ adapter });
  const sockets: Socket[] = [];
  const redis = createClient({ url: cluster.redis.url });
  const answers = redis.duplicate();
  await Promise.all([redis.connect(), answers.connect()]);
  try {
    for (const count of SOCKET_COUNTS) {
      sockets.push(...(await connectSockets(cluster.url, count - sockets.length, sockets.length)));
      const targets = { nsp: "/", rooms: [], except: [] };
      const listTimes: number[] = [];
      const ackTimes: number[] = [];
      let acked = "";
      for (let run = 0; run < RUNS; run++) {
        const listStart = performance.now();
        const list = await listSockets(redis, answers, adapter, targets, TIMEOUT_MS);
        listTimes.push(performance.now() - listStart);
        if (list.sockets.length !== count || list.answered !== list.servers) throw new Error(`--list saw ${list.sockets.length} of ${count}, ${list.answered} of ${list.servers} servers`);
        const ackStart = performance.now();
        const acks = await emitWithAck(redis, answers, adapter, targets, "chat message", `bench ${run}`, TIMEOUT_MS);
        ackTimes.push(performance.now() - ackStart);
        acked = `${acks.acknowledged}/${acks.reached}`;
      }
      // One more of each under MONITOR, for what crossed Redis (MONITOR slows Redis: not timed).
      const monitor = await monitorRedis(cluster.redis.url);
      await monitor.next();
      await listSockets(redis, answers, adapter, targets, TIMEOUT_MS);
      const listCommands = await monitor.next();
      await emitWithAck(redis, answers, adapter, targets, "chat message", "bench monitored", TIMEOUT_MS);
      const ackCommands = await monitor.next();
      await monitor.close();
      const published = (commands: { args: string }[]) => commands.filter((command) => /^"S?PUBLISH"/i.test(command.args));
      const listBytes = published(listCommands).reduce((sum, command) => sum + command.args.length, 0);
      console.log(
        [
          adapter.padEnd(7),
          String(count).padStart(7),
          median(listTimes).toFixed(1).padStart(17),
          String(listBytes).padStart(18),
          median(ackTimes).toFixed(1).padStart(16),
          acked.padStart(6),
          String(published(ackCommands).length).padStart(18),
        ].join("  "),
      );
    }
  } finally {
    for (const socket of sockets) socket.disconnect();
    await Promise.allSettled([redis.close(), answers.close()]);
    await cluster.stop();
  }
}
process.exit(0);
