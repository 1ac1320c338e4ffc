/**
 * tools/hosts.ts: `npm run hosts`. Several hosts on this machine, behind real load balancers, on a
 * Redis Cluster or a Sentinel group: what docs/reference/production.md describes, to try by hand.
 *
 *   sudo npm run hosts                              2 hosts, Redis Cluster, ADAPTER=classic
 *   sudo npm run hosts -- --redis sentinel --adapter sharded --hosts 3
 *
 * Each host is a network namespace running index.ts with its workers; two client namespaces give
 * two client.ts their own addresses. The configuration files are hosts/*.conf and hosts/haproxy.cfg.
 * It prints where to point client.ts and emitter.ts, and removes everything on Ctrl-C.
 * Needs root (ip netns), nginx, haproxy, redis-server (apt-get install nginx haproxy redis-server).
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { ADAPTERS, isAdapterName } from "../lib/config.ts";
import { EXIT_FAILURE, EXIT_USAGE } from "../lib/failures.ts";
import { up } from "../support/topology/hosts.ts";
import { cannotCreateNamespaces } from "../support/topology/namespaces.ts";
import { SENTINEL_MASTER } from "../support/topology/redis.ts";

const USAGE = `usage: npm run hosts -- [--redis cluster|sentinel] [--adapter ${ADAPTERS.join("|")}] [--hosts N] [--workers N]`;

let options;
try {
  options = parseArgs({
    options: {
      redis: { type: "string", default: "cluster" },
      adapter: { type: "string", default: process.env.ADAPTER ?? "classic" },
      hosts: { type: "string", default: "2" },
      workers: { type: "string", default: "2" },
      help: { type: "boolean", default: false },
    },
  }).values;
} catch (err) {
  usage((err as Error).message.split(". ")[0]!);
}
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}
const { redis, adapter } = options;
const hostCount = Number(options.hosts);
const workers = Number(options.workers);
if (redis !== "cluster" && redis !== "sentinel") usage(`--redis is cluster or sentinel, got "${redis}"`);
if (!isAdapterName(adapter)) usage(`--adapter is one of ${ADAPTERS.join(", ")}, got "${adapter}"`);
if (!Number.isInteger(hostCount) || hostCount < 2 || hostCount > 8) usage(`--hosts is 2 to 8, got "${options.hosts}"`);
if (!Number.isInteger(workers) || workers < 1 || workers > 8) usage(`--workers is 1 to 8, got "${options.workers}"`);

const unavailable = cannotCreateNamespaces();
if (unavailable) {
  console.error(`cannot start hosts here: ${unavailable} (run as root, with nginx, haproxy and redis-server installed)`);
  process.exit(EXIT_FAILURE);
}

console.log(`starting ${hostCount} hosts x ${workers} workers on ${redis === "cluster" ? "a Redis Cluster" : "a Sentinel group"}, ADAPTER=${adapter}...`);
const started = Date.now();
const topology = await up({ hosts: hostCount, clients: 2, cluster: redis === "cluster", sentinel: redis === "sentinel", balancers: true, exitOnSignal: false }).catch(
  (err: Error) => {
    console.error(`could not start the hosts: ${err.message}`);
    process.exit(EXIT_FAILURE);
  },
);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log("\nstopping: hosts, balancers, Redis, namespaces...");
  await topology.down();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);

const env = { ...(redis === "cluster" ? topology.redis.cluster! : topology.redis.sentinel!), ADAPTER: adapter };
const servers = await topology.startHosts(env, workers).catch(async (err: Error) => {
  console.error(`a host did not start: ${err.message}`);
  await topology.down();
  process.exit(EXIT_FAILURE);
});
// Each host's log, prefixed with its name.
servers.forEach((server, i) => {
  const name = topology.hosts[i]!.name;
  for (const [stream, lines] of [
    [server.child.stdout!, server.stdout],
    [server.child.stderr!, server.stderr],
  ] as const) {
    let printed = lines.length;
    stream.on("data", () => {
      for (; printed < lines.length; printed++) console.log(`[${name}] ${lines[printed]}`);
    });
  }
});

const redisEnv = Object.entries(env)
  .filter(([name]) => name !== "ADAPTER")
  .map(([name, value]) => `${name}=${value}`)
  .join(" ");
const [c1, c2] = topology.clients;
const { nginx, haproxy, roundRobin } = topology.balancers!;
console.log(`
up in ${((Date.now() - started) / 1000).toFixed(1)} s (subnet ${topology.subnet}.0/24 on bridge ${topology.bridge}):
  hosts        ${topology.hosts.map((h) => `${h.name} ${h.ip}:3000`).join(", ")}
  nginx        ${nginx}   hash $remote_addr consistent   (hosts/nginx.conf)
  HAProxy      ${haproxy}   cookie SERVERID               (hosts/haproxy.cfg)
  round robin  ${roundRobin}   no stickiness: websocket only (hosts/nginx-round-robin.conf)
  Redis        ${redis === "cluster" ? `Cluster ${topology.redis.ip}:7001-7006` : `Sentinel master "${SENTINEL_MASTER}", sentinels ${topology.redis.ip}:26381-26383`}

Two clients with their own addresses, in two more terminals (as root, from ${process.cwd()}):
  ip netns exec ${c1!.netns} env SERVER_URL=${nginx} npx tsx client.ts A
  ip netns exec ${c2!.netns} env SERVER_URL=${nginx} npx tsx client.ts B
Through HAProxy, a client keeps its cookie:     env SERVER_URL=${haproxy} WITH_CREDENTIALS=1 npx tsx client.ts A
Through round robin, websocket only:            env SERVER_URL=${roundRobin} TRANSPORTS=websocket npx tsx client.ts A
The emitter, from here:
  ${redisEnv} ADAPTER=${adapter} npx tsx emitter.ts
Type here: "masters" lists the Redis masters, "kill PORT" kills that Redis with kill -9 (a crash),
"start PORT" starts it again (it rejoins as a replica). Ctrl-C stops everything.`);

// A failover by hand: the Redis processes are this script's children, so it kills and restarts them.
createInterface({ input: process.stdin }).on("line", async (line) => {
  const [verb, arg] = line.trim().split(/\s+/);
  const port = Number(arg);
  try {
    if (verb === "masters") {
      const masters =
        redis === "cluster"
          ? (await topology.redis.cli(7001, "cluster", "nodes")).split("\n").filter((l) => / master /.test(` ${l.split(" ")[2]?.replace(/,/g, " ")} `))
          : [`${topology.redis.ip}:${await topology.redis.sentinelMasterPort()}`];
      console.log(masters.map((l) => l.split(" ").slice(1, 3).join(" ") || l).join("\n"));
    } else if (verb === "kill" && Number.isInteger(port)) {
      await topology.redis.kill(port);
      console.log(`killed the Redis on port ${port}`);
    } else if (verb === "start" && Number.isInteger(port)) {
      await topology.redis.restart(port);
      console.log(`started the Redis on port ${port} again`);
    } else if (verb) {
      console.log('commands: masters, kill PORT, start PORT');
    }
  } catch (err) {
    console.log(`${line.trim()}: ${(err as Error).message}`);
  }
});

function usage(problem: string): never {
  console.error(`hosts: ${problem}\n${USAGE}`);
  process.exit(EXIT_USAGE);
}
