/**
 * support/topology/hosts.ts: several hosts on one machine, for `npm run hosts` (tools/hosts.ts) and
 * the tests: a network of namespaces (namespaces.ts) with Redis in one (redis.ts), the balancers in
 * another (balancers.ts), index.ts with its workers on each host, and client namespaces that give
 * clients source addresses of their own.
 *
 *   root namespace   10.77.N.1    the bridge kit-brN: emitter.ts and client.ts can run here too
 *   kit-N-redis      10.77.N.2    single 6379, cluster 7001-7006, sentinel group 7101-7102 + 26381-26383
 *   kit-N-lb         10.77.N.3    nginx hash :8080, HAProxy cookie :8081, nginx round robin :8082
 *   kit-N-h1, h2...  10.77.N.11+  index.ts on :3000 with its workers
 *   kit-N-c1, c2...  10.77.N.101+ clients, one source address each
 *
 * Needs root (ip netns), nginx, haproxy, redis-server and redis-cli. Everything it starts is
 * stopped and everything it creates is removed by down(), and on process exit.
 */
import { run, type Script, sleep } from "../scripts.ts";
import { type BalancerName, startBalancers, waitBalancersSeeHosts } from "./balancers.ts";
import { createNetwork, type Namespace, type NetworkOptions } from "./namespaces.ts";
import { type RedisChoice, type RedisNodes, startRedisNodes } from "./redis.ts";

export const HOST_PORT = 3000;

export interface TopologyOptions extends NetworkOptions, RedisChoice {
  hosts?: number; // 2
  clients?: number; // 0
  balancers?: boolean; // nginx, HAProxy, round robin
}

export type Topology = Awaited<ReturnType<typeof up>>;

export async function up(options: TopologyOptions = {}) {
  const { hosts: hostCount = 2, clients: clientCount = 0 } = options;
  const network = createNetwork(options);
  const hosts: Namespace[] = [];
  const clients: Namespace[] = [];
  /** The hosts' index.ts, started by startHosts(). */
  const scripts = new Set<Script>();
  let redis: RedisNodes;
  let balancers: Record<BalancerName, string> | undefined;
  try {
    const redisNs = network.add("redis", 2);
    const lbNs = options.balancers ? network.add("lb", 3) : undefined;
    for (let i = 1; i <= hostCount; i++) hosts.push(network.add(`h${i}`, 10 + i));
    for (let i = 1; i <= clientCount; i++) clients.push(network.add(`c${i}`, 100 + i));
    redis = await startRedisNodes(network, redisNs, options);
    if (lbNs) balancers = await startBalancers(network, lbNs, hosts.map((host) => `${host.ip}:${HOST_PORT}`));
  } catch (err) {
    await network.remove();
    throw err;
  }

  const stopHosts = async (graceMs = 5000) => {
    for (const script of scripts) await script.stop(graceMs);
    scripts.clear();
  };

  return {
    subnet: network.subnet,
    bridge: network.bridge,
    hosts,
    clients,
    /** The balancers' URLs, when they run. */
    balancers,
    redis,
    /** index.ts on every host, with these variables; resolves when all listen (and HAProxy sees them all). */
    async startHosts(env: Record<string, string>, workers = 2): Promise<Script[]> {
      // In a namespace each: run() directly, as support/cluster.ts does on loopback.
      const started = hosts.map((host) => {
        const script = run("index.ts", [], { PORT: String(HOST_PORT), WORKERS: String(workers), ...env }, "node", { netns: host.netns });
        scripts.add(script);
        network.track(script.child);
        return script;
      });
      await Promise.all(started.map((script) => script.waitFor("listening on port", 30_000)));
      if (balancers) await waitBalancersSeeHosts(balancers.haproxy, hosts.length);
      return started;
    },
    stopHosts,
    /**
     * Which host a socket id connected to, from the hosts' logs ("connected, id: X"). The client
     * may print its id before the host's line has been read: waited for, up to 5 s.
     */
    async hostOf(scriptsByHost: Script[], socketId: string): Promise<number> {
      const find = () => scriptsByHost.findIndex((script) => script.stdout.some((line) => line.endsWith(`connected, id: ${socketId}`)));
      for (const deadline = Date.now() + 5000; find() < 0 && Date.now() < deadline; ) await sleep(20);
      return find();
    },
    async down() {
      await stopHosts(3000);
      await network.remove();
    },
  };
}
