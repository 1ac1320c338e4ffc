/**
 * support/topology/redis.ts: Redis in a namespace of its own, as production.md describes it: a
 * single node (REDIS_URL), a Redis Cluster of 3 masters + 3 replicas, a Sentinel group of 1 master
 * + 1 replica + 3 sentinels; configured from hosts/redis-node.conf, hosts/redis-cluster-node.conf
 * and hosts/sentinel.conf. Each node can be killed (kill -9, a crash) and started again, and its
 * state read with redis-cli: which master owns a key, which holds the subscribers, which one the
 * sentinels name.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { signalGroup, sleep } from "../scripts.ts";
import type { Namespace, Network } from "./namespaces.ts";

const execFileAsync = promisify(execFile);

export const SINGLE_PORT = 6379;
export const CLUSTER_PORTS = [7001, 7002, 7003, 7004, 7005, 7006];
export const SENTINEL_NODE_PORTS = [7101, 7102];
export const SENTINEL_PORTS = [26381, 26382, 26383];
export const SENTINEL_MASTER = "kit";

/** Which Redis topologies to start; any mix. */
export interface RedisChoice {
  single?: boolean; // a plain node on 6379
  cluster?: boolean; // Redis Cluster on 7001-7006
  sentinel?: boolean; // master and replica on 7101-7102, sentinels on 26381-26383
}

export type RedisNodes = Awaited<ReturnType<typeof startRedisNodes>>;

/** Starts the chosen topologies in `ns` and resolves once every node is healthy. */
export async function startRedisNodes(network: Network, ns: Namespace, choice: RedisChoice) {
  /** Redis processes by port, with how to start each again after a kill. */
  const processes = new Map<number, { child: ChildProcess; restart: () => Promise<ChildProcess> }>();
  const startNode = async (port: number, args: string[]) => {
    const launch = () => network.start(ns, `redis ${port}`, "redis-server", args, /Ready to accept connections|monitor master/);
    processes.set(port, { child: await launch(), restart: launch });
  };
  // Each node gets its own copy: Sentinel makes the nodes it reconfigures rewrite their file.
  const nodeConf = () => network.copy("redis-node.conf");
  const startups: Promise<unknown>[] = [];
  if (choice.single) startups.push(startNode(SINGLE_PORT, [nodeConf(), "--port", String(SINGLE_PORT)]));
  if (choice.cluster) {
    for (const port of CLUSTER_PORTS) {
      startups.push(
        startNode(port, [
          network.copy("redis-cluster-node.conf"),
          ...["--port", String(port), "--cluster-port", String(port + 10000), "--cluster-announce-ip", ns.ip],
          ...["--cluster-config-file", join(network.dir, `nodes-${port}.conf`)],
        ]),
      );
    }
  }
  if (choice.sentinel) {
    const [masterPort, replicaPort] = SENTINEL_NODE_PORTS as [number, number];
    startups.push(
      startNode(masterPort, [nodeConf(), "--port", String(masterPort)]).then(() =>
        startNode(replicaPort, [nodeConf(), "--port", String(replicaPort), "--replicaof", ns.ip, String(masterPort)]),
      ),
    );
  }
  await Promise.all(startups);

  if (choice.cluster) {
    network.log("creating the Redis Cluster (3 masters, 3 replicas)");
    await execFileAsync("ip", [
      ...["netns", "exec", ns.netns, "redis-cli", "--cluster", "create"],
      ...CLUSTER_PORTS.map((port) => `${ns.ip}:${port}`),
      ...["--cluster-replicas", "1", "--cluster-yes"],
    ]);
  }
  if (choice.sentinel) {
    for (const port of SENTINEL_PORTS) await startNode(port, [network.copy("sentinel.conf", { "port 26379": `port ${port}` }), "--sentinel"]);
  }

  /** redis-cli against one port of the Redis namespace (from the root namespace, over the bridge). */
  const cli = async (port: number, ...args: string[]) => (await execFileAsync("redis-cli", ["-h", ns.ip, "-p", String(port), ...args], { timeout: 5000 })).stdout;

  /** The port of the Sentinel group's current master, as the first sentinel sees it. */
  const sentinelMasterPort = async () => {
    const [, port] = (await cli(SENTINEL_PORTS[0]!, "sentinel", "get-master-addr-by-name", SENTINEL_MASTER)).trim().split("\n");
    if (!port) throw new Error("no master");
    return Number(port);
  };

  /** The live cluster masters, as `cluster nodes` lists them: port, and the slot ranges they own. */
  const clusterMasters = async () =>
    (await cli(CLUSTER_PORTS[0]!, "cluster", "nodes"))
      .split("\n")
      .map((line) => line.split(" "))
      .filter((fields) => fields[2]?.includes("master") && !fields[2].includes("fail"))
      .map((fields) => ({ port: Number(fields[1]!.split(":")[1]!.split("@")[0]), ranges: fields.slice(8) }));

  /** Waits until every Redis node that runs answers, the cluster is ok and every replica is linked. */
  const waitHealthy = async (ms = 30_000) => {
    const deadline = Date.now() + ms;
    const nodePorts = [...processes.keys()].filter((port) => !SENTINEL_PORTS.includes(port));
    for (;;) {
      const problems: string[] = [];
      for (const port of nodePorts) {
        const info = await cli(port, "info", "replication").catch((err: Error) => `error ${err.message}`);
        if (info.startsWith("error")) problems.push(`${port}: ${info}`);
        else if (/role:slave/.test(info) && !/master_link_status:up/.test(info)) problems.push(`${port}: replica not linked`);
        if (CLUSTER_PORTS.includes(port) && !/cluster_state:ok/.test(await cli(port, "cluster", "info").catch(() => ""))) {
          problems.push(`${port}: cluster not ok`);
        }
      }
      if (choice.cluster) {
        const masters = await clusterMasters().catch(() => []);
        if (masters.length !== 3) problems.push(`${masters.length} live cluster masters`);
      }
      if (choice.sentinel) {
        const master = await sentinelMasterPort().catch(() => undefined);
        if (master === undefined) problems.push("sentinels name no master");
        for (const port of SENTINEL_PORTS) {
          const info = await cli(port, "sentinel", "master", SENTINEL_MASTER).catch(() => "");
          if (!/num-slaves\s+1/.test(info.replace(/\n/g, " "))) problems.push(`sentinel ${port}: replica not known`);
        }
      }
      if (problems.length === 0) return;
      if (Date.now() > deadline) throw new Error(`Redis not healthy within ${ms} ms: ${problems.join("; ")}`);
      await sleep(250);
    }
  };

  const entry = (port: number) => {
    const found = processes.get(port);
    if (!found) throw new Error(`no Redis of this topology on port ${port}`);
    return found;
  };

  if (choice.single || choice.cluster || choice.sentinel) await waitHealthy();

  return {
    ip: ns.ip,
    /** The variables index.ts and emitter.ts need for each topology that runs. */
    single: choice.single ? { REDIS_URL: `redis://${ns.ip}:${SINGLE_PORT}` } : undefined,
    cluster: choice.cluster ? { REDIS_CLUSTER_URLS: CLUSTER_PORTS.slice(0, 3).map((p) => `redis://${ns.ip}:${p}`).join(",") } : undefined,
    sentinel: choice.sentinel
      ? { REDIS_SENTINEL_URLS: SENTINEL_PORTS.map((p) => `redis://${ns.ip}:${p}`).join(","), REDIS_SENTINEL_MASTER: SENTINEL_MASTER }
      : undefined,
    cli,
    waitHealthy,
    sentinelMasterPort,
    /** The port of the cluster master that owns `key` (or a channel name: same hash slot). */
    async clusterMasterOf(key: string) {
      const slot = Number((await cli(CLUSTER_PORTS[0]!, "cluster", "keyslot", key)).trim());
      for (const { port, ranges } of await clusterMasters()) {
        for (const range of ranges) {
          const [from, to = from] = range.split("-").map(Number) as [number, number?];
          if (slot >= from && slot <= to!) return port;
        }
      }
      throw new Error(`no live master owns slot ${slot}`);
    },
    /**
     * The cluster master that holds most of the classic adapter's pattern subscriptions from
     * `fromIp`: PUBLISH reaches every node, so for the classic adapter the node that matters is the
     * one its subscriber connections sit on (node-redis picks one per client).
     */
    async clusterMasterOfSubscribers(fromIp = "") {
      let best = { port: 0, count: -1 };
      for (const { port } of await clusterMasters()) {
        const count = (await cli(port, "client", "list")).split("\n").filter((client) => /\bpsub=[1-9]/.test(client) && client.includes(` addr=${fromIp}`)).length;
        if (count > best.count) best = { port, count };
      }
      return best.port;
    },
    /** kill -9 the Redis process on `port` (a crash, not a shutdown). */
    async kill(port: number) {
      const { child } = entry(port);
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      signalGroup(child, "SIGKILL");
      await exited;
    },
    /** Starts the Redis process on `port` again with its first arguments (a killed master comes back as a replica). */
    async restart(port: number) {
      const node = entry(port);
      if (node.child.exitCode === null && node.child.signalCode === null) return;
      node.child = await node.restart();
    },
  };
}
