/**
 * tools/topology.ts: several hosts on one machine, for `npm run hosts` (tools/hosts.ts) and the tests.
 *
 * Each host is a Linux network namespace with its own address on a private bridge, so that the
 * load balancers see separate machines and the clients separate source addresses. Redis (a single
 * node, a Redis Cluster of 3 masters + 3 replicas, a Sentinel group of 1 master + 1 replica +
 * 3 sentinels) lives in a namespace of its own, the balancers (nginx with address hashing, HAProxy
 * with a cookie, nginx round robin) in another. Their configuration is read from hosts/*.conf,
 * the files the docs show, with the subnet swapped in and one server line per host.
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
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT, run, type Script, sleep } from "../support/scripts.ts";

const execFileAsync = promisify(execFile);

export interface Namespace {
  name: string; // h1, c1, redis, lb
  netns: string; // kit-N-h1
  ip: string;
}

export interface TopologyOptions {
  hosts?: number; // 2
  clients?: number; // 0
  single?: boolean; // a plain Redis node on 6379 (REDIS_URL)
  cluster?: boolean; // Redis Cluster 3 + 3 on 7001-7006
  sentinel?: boolean; // Sentinel group on 7101-7102, sentinels 26381-26383
  balancers?: boolean; // nginx, HAProxy, round robin
  /** Third octet of 10.77.x.0/24; the first free one from here on is taken. */
  subnet?: number;
  /** Print what starts and each process's log lines (`npm run hosts`). */
  verbose?: boolean;
  /** On SIGINT/SIGTERM remove everything and exit (default); false when the caller handles them. */
  exitOnSignal?: boolean;
}

export const CLUSTER_PORTS = [7001, 7002, 7003, 7004, 7005, 7006];
export const SENTINEL_NODE_PORTS = [7101, 7102];
export const SENTINEL_PORTS = [26381, 26382, 26383];
export const SENTINEL_MASTER = "kit";
export const SINGLE_PORT = 6379;
export const HOST_PORT = 3000;
export const BALANCER_PORTS = { nginx: 8080, haproxy: 8081, roundRobin: 8082 } as const;
export type BalancerName = keyof typeof BALANCER_PORTS;

/** The subnet the files in hosts/ are written for. */
const FILE_SUBNET = "10.77.0";

export type Topology = Awaited<ReturnType<typeof up>>;

/** Whether this machine can create network namespaces (root, iproute2): the reason when not. */
export function cannotCreateNamespaces(): string | null {
  const name = `kit-probe-${process.pid}`;
  const added = spawnSync("ip", ["netns", "add", name], { encoding: "utf8" });
  if (added.error) return `ip is not installed (${added.error.message})`;
  if (added.status !== 0) return `ip netns add failed: ${added.stderr.trim()}`;
  spawnSync("ip", ["netns", "del", name]);
  for (const tool of ["nginx", "haproxy", "redis-server", "redis-cli"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return null;
}

export async function up(options: TopologyOptions = {}) {
  const { hosts: hostCount = 2, clients: clientCount = 0, verbose = false } = options;
  const octet = freeSubnet(options.subnet ?? 0);
  const subnet = `10.77.${octet}`;
  const bridge = `kit-br${octet}`;
  const dir = mkdtempSync(join(tmpdir(), `kit-hosts-${octet}-`));
  const children = new Set<ChildProcess>();
  const scripts = new Set<Script>();
  const namespaces: Namespace[] = [];
  const log = (line: string) => verbose && console.log(line);

  // Removes what exists so far, also when the process exits without calling down().
  let downDone = false;
  const removeNow = () => {
    if (downDone) return;
    downDone = true;
    for (const script of scripts) signalGroup(script.child, "SIGKILL");
    for (const child of children) signalGroup(child, "SIGKILL");
    for (const ns of namespaces) spawnSync("ip", ["netns", "del", ns.netns]);
    spawnSync("ip", ["link", "del", bridge]);
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", removeNow);
  const onSignal = (signal: NodeJS.Signals) => {
    removeNow();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  if (options.exitOnSignal !== false) for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, onSignal);
  // Namespaces of this subnet left by a run that was killed (its bridge, which holds the subnet's
  // address, is gone, so no running topology uses them).
  for (const line of spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout.split("\n")) {
    const name = line.split(" ")[0]!;
    if (name.startsWith(`kit-${octet}-`)) spawnSync("ip", ["netns", "del", name]);
  }

  const namespace = (name: string, lastOctet: number): Namespace => {
    const ns = { name, netns: `kit-${octet}-${name}`, ip: `${subnet}.${lastOctet}` };
    namespaces.push(ns);
    const veth = ns.netns; // the root side of the pair, at most 15 characters
    ip("netns", "add", ns.netns);
    // The kernel removes a deleted namespace's links a moment later: one of a run that just ended
    // may still be there.
    spawnSync("ip", ["link", "del", veth]);
    ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns.netns);
    ip("link", "set", veth, "master", bridge, "up");
    ip("-n", ns.netns, "addr", "add", `${ns.ip}/24`, "dev", "eth0");
    ip("-n", ns.netns, "link", "set", "eth0", "up");
    ip("-n", ns.netns, "link", "set", "lo", "up");
    return ns;
  };

  /** A long-running process inside a namespace; resolves once it printed `ready` (if given). */
  const start = async (ns: Namespace, label: string, command: string, args: string[], ready?: RegExp) => {
    const child = spawn("ip", ["netns", "exec", ns.netns, command, ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], detached: true });
    children.add(child);
    child.once("exit", () => children.delete(child));
    let output = "";
    const onData = (chunk: Buffer) => {
      const text = chunk.toString();
      output = (output + text).slice(-4000);
      for (const line of text.split("\n")) if (line.trim()) log(`[${label}] ${line}`);
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    if (ready) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${label} not ready within 10 s:\n${output}`)), 10_000);
        const check = () => ready.test(output) && (clearTimeout(timer), child.stdout!.off("data", check), resolve());
        child.stdout!.on("data", check);
        child.stderr!.on("data", check);
        child.once("exit", (code) => (clearTimeout(timer), reject(new Error(`${label} exited (${code}):\n${output}`))));
      });
    }
    return child;
  };

  /** A file of hosts/ with this topology's subnet, and its host-1 lines repeated once per host. */
  const config = (file: string, replace: Record<string, string> = {}) => {
    let text = readFileSync(join(ROOT, "hosts", file), "utf8").replaceAll(`${FILE_SUBNET}.`, `${subnet}.`);
    text = text
      .split("\n")
      .flatMap((line) =>
        line.includes(`${subnet}.11:`)
          ? hosts.map((host, i) => line.replaceAll(`${subnet}.11:`, `${host.ip}:`).replace(/\bh1\b/g, `h${i + 1}`))
          : line.includes(`${subnet}.12:`)
            ? []
            : [line],
      )
      .join("\n");
    for (const [from, to] of Object.entries(replace)) text = text.replace(from, to);
    const path = join(dir, `${++configs}-${file}`);
    writeFileSync(path, text);
    return path;
  };

  let configs = 0;
  const hosts: Namespace[] = [];
  const clients: Namespace[] = [];
  /** Redis processes by port, with how to start each again after a kill. */
  const redisProcesses = new Map<number, { child: ChildProcess; restart: () => Promise<ChildProcess> }>();
  let redisNs: Namespace;
  let lbNs: Namespace | undefined;

  try {
    log(`creating bridge ${bridge} (${subnet}.0/24) and namespaces`);
    ip("link", "add", bridge, "type", "bridge");
    ip("addr", "add", `${subnet}.1/24`, "dev", bridge);
    ip("link", "set", bridge, "up");
    redisNs = namespace("redis", 2);
    if (options.balancers) lbNs = namespace("lb", 3);
    for (let i = 1; i <= hostCount; i++) hosts.push(namespace(`h${i}`, 10 + i));
    for (let i = 1; i <= clientCount; i++) clients.push(namespace(`c${i}`, 100 + i));

    const startRedis = async (port: number, args: string[]) => {
      const launch = () => start(redisNs, `redis ${port}`, "redis-server", args, /Ready to accept connections|monitor master/);
      redisProcesses.set(port, { child: await launch(), restart: launch });
    };
    // Each node gets its own copy: Sentinel makes the nodes it reconfigures rewrite their file.
    const nodeConf = () => config("redis-node.conf");
    const startups: Promise<unknown>[] = [];
    if (options.single) startups.push(startRedis(SINGLE_PORT, [nodeConf(), "--port", String(SINGLE_PORT)]));
    if (options.cluster) {
      for (const port of CLUSTER_PORTS) {
        startups.push(
          startRedis(port, [
            config("redis-cluster-node.conf"),
            ...["--port", String(port), "--cluster-port", String(port + 10000), "--cluster-announce-ip", redisNs.ip],
            ...["--cluster-config-file", join(dir, `nodes-${port}.conf`)],
          ]),
        );
      }
    }
    if (options.sentinel) {
      const [masterPort, replicaPort] = SENTINEL_NODE_PORTS as [number, number];
      startups.push(
        startRedis(masterPort, [nodeConf(), "--port", String(masterPort)]).then(() =>
          startRedis(replicaPort, [nodeConf(), "--port", String(replicaPort), "--replicaof", redisNs.ip, String(masterPort)]),
        ),
      );
    }
    await Promise.all(startups);

    if (options.cluster) {
      log("creating the Redis Cluster (3 masters, 3 replicas)");
      await execFileAsync("ip", [
        ...["netns", "exec", redisNs.netns, "redis-cli", "--cluster", "create"],
        ...CLUSTER_PORTS.map((port) => `${redisNs.ip}:${port}`),
        ...["--cluster-replicas", "1", "--cluster-yes"],
      ]);
    }
    if (options.sentinel) {
      for (const port of SENTINEL_PORTS) {
        const file = config("sentinel.conf", { "port 26379": `port ${port}` });
        await startRedis(port, [file, "--sentinel"]);
      }
    }

    if (lbNs) {
      const nginxDir = (name: string) => {
        const prefix = join(dir, name);
        spawnSync("mkdir", ["-p", prefix]);
        return `${prefix}/`;
      };
      // nginx prints nothing when it has started: wait for its port instead.
      await start(lbNs, "nginx", "nginx", ["-p", nginxDir("nginx"), "-c", config("nginx.conf")]);
      await start(lbNs, "nginx round robin", "nginx", ["-p", nginxDir("nginx-rr"), "-c", config("nginx-round-robin.conf")]);
      await start(lbNs, "haproxy", "haproxy", ["-db", "-f", config("haproxy.cfg")]);
      for (const port of Object.values(BALANCER_PORTS)) await waitForPort(lbNs.ip, port);
    }
  } catch (err) {
    await stopChildren();
    removeNow();
    throw err;
  }

  async function stopChildren() {
    for (const script of scripts) await script.stop(3000);
    await Promise.all(
      [...children].map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, "exit");
        signalGroup(child, "SIGTERM");
        const timer = setTimeout(() => signalGroup(child, "SIGKILL"), 3000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  const redis = {
    ip: redisNs.ip,
    single: options.single ? { REDIS_URL: `redis://${redisNs.ip}:${SINGLE_PORT}` } : undefined,
    cluster: options.cluster ? { REDIS_CLUSTER_URLS: CLUSTER_PORTS.slice(0, 3).map((p) => `redis://${redisNs.ip}:${p}`).join(",") } : undefined,
    sentinel: options.sentinel
      ? { REDIS_SENTINEL_URLS: SENTINEL_PORTS.map((p) => `redis://${redisNs.ip}:${p}`).join(","), REDIS_SENTINEL_MASTER: SENTINEL_MASTER }
      : undefined,
  };

  /** redis-cli against one port of the Redis namespace (from the root namespace, over the bridge). */
  const cli = async (port: number, ...args: string[]) =>
    (await execFileAsync("redis-cli", ["-h", redisNs.ip, "-p", String(port), ...args], { timeout: 5000 })).stdout;

  /** Waits until every Redis node that runs answers, the cluster is ok and every replica is linked. */
  const waitHealthy = async (ms = 30_000) => {
    const deadline = Date.now() + ms;
    const nodePorts = [...redisProcesses.keys()].filter((port) => !SENTINEL_PORTS.includes(port));
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
      if (options.cluster) {
        const masters = (await cli(CLUSTER_PORTS[0]!, "cluster", "nodes").catch(() => "")).split("\n").filter((l) => /\bmaster\b/.test(l.split(" ")[2] ?? "") && !/fail/.test(l.split(" ")[2] ?? ""));
        if (masters.length !== 3) problems.push(`${masters.length} live cluster masters`);
      }
      if (options.sentinel) {
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

  /** The port of the cluster master that owns `key` (or a channel name: same hash slot). */
  const clusterMasterOf = async (key: string) => {
    const slot = Number((await cli(CLUSTER_PORTS[0]!, "cluster", "keyslot", key)).trim());
    for (const line of (await cli(CLUSTER_PORTS[0]!, "cluster", "nodes")).split("\n")) {
      const fields = line.split(" ");
      if (!fields[2]?.includes("master") || fields[2].includes("fail")) continue;
      for (const range of fields.slice(8)) {
        const [from, to = from] = range.split("-").map(Number) as [number, number?];
        if (slot >= from && slot <= to!) return Number(fields[1]!.split(":")[1]!.split("@")[0]);
      }
    }
    throw new Error(`no live master owns slot ${slot}`);
  };

  /**
   * The cluster master that holds most of the classic adapter's pattern subscriptions: PUBLISH
   * reaches every node, so for the classic adapter the node that matters is the one its
   * subscriber connections sit on (node-redis picks one per client).
   */
  const clusterMasterOfSubscribers = async (fromIp = "") => {
    let best = { port: 0, count: -1 };
    for (const line of (await cli(CLUSTER_PORTS[0]!, "cluster", "nodes")).split("\n")) {
      const fields = line.split(" ");
      if (!fields[2]?.includes("master") || fields[2].includes("fail")) continue;
      const port = Number(fields[1]!.split(":")[1]!.split("@")[0]);
      const count = (await cli(port, "client", "list")).split("\n").filter((client) => /\bpsub=[1-9]/.test(client) && client.includes(` addr=${fromIp}`)).length;
      if (count > best.count) best = { port, count };
    }
    return best.port;
  };

  /** The port of the Sentinel group's current master, as the first sentinel sees it. */
  const sentinelMasterPort = async () => {
    const [, port] = (await cli(SENTINEL_PORTS[0]!, "sentinel", "get-master-addr-by-name", SENTINEL_MASTER)).trim().split("\n");
    if (!port) throw new Error("no master");
    return Number(port);
  };

  /** kill -9 the Redis process on `port` (a crash, not a shutdown). */
  const killRedis = async (port: number) => {
    const entry = redisProcesses.get(port);
    if (!entry) throw new Error(`no Redis of this topology on port ${port}`);
    if (entry.child.exitCode !== null || entry.child.signalCode !== null) return;
    const exited = once(entry.child, "exit");
    signalGroup(entry.child, "SIGKILL");
    await exited;
  };

  /** Starts the Redis process on `port` again with its first arguments (a killed master comes back as a replica). */
  const restartRedis = async (port: number) => {
    const entry = redisProcesses.get(port);
    if (!entry) throw new Error(`no Redis of this topology on port ${port}`);
    if (entry.child.exitCode === null && entry.child.signalCode === null) return;
    entry.child = await entry.restart();
  };

  /** index.ts on every host, with these variables; resolves when all listen. */
  const startHosts = async (env: Record<string, string>, workers = 2) => {
    const started = hosts.map((host) => {
      const script = run("index.ts", [], { PORT: String(HOST_PORT), WORKERS: String(workers), ...env }, "node", { netns: host.netns });
      scripts.add(script);
      return script;
    });
    await Promise.all(started.map((script) => script.waitFor("listening on port", 30_000)));
    if (lbNs) await waitBalancersSeeHosts();
    return started;
  };

  const stopHosts = async () => {
    for (const script of scripts) await script.stop();
    scripts.clear();
  };

  /** HAProxy marks a host up after its first health check: wait until every host answers through it. */
  const waitBalancersSeeHosts = async (ms = 10_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const seen = new Set<string>();
      for (let i = 0; i < hosts.length * 2; i++) {
        const answer = await fetch(`${balancers.haproxy}/`).catch(() => undefined);
        const cookie = answer?.headers.get("set-cookie");
        await answer?.text();
        if (answer?.ok && cookie) seen.add(cookie.split(";")[0]!);
      }
      if (seen.size === hosts.length) return;
      if (Date.now() > deadline) throw new Error(`HAProxy sees ${seen.size} of ${hosts.length} hosts after ${ms} ms`);
      await sleep(200);
    }
  };

  const balancers = {
    nginx: `http://${lbNs?.ip}:${BALANCER_PORTS.nginx}`,
    haproxy: `http://${lbNs?.ip}:${BALANCER_PORTS.haproxy}`,
    roundRobin: `http://${lbNs?.ip}:${BALANCER_PORTS.roundRobin}`,
  };

  if (options.cluster || options.sentinel || options.single) await waitHealthy();

  return {
    subnet,
    bridge,
    hosts,
    clients,
    balancers,
    redis,
    cli,
    waitHealthy,
    clusterMasterOf,
    clusterMasterOfSubscribers,
    sentinelMasterPort,
    killRedis,
    restartRedis,
    startHosts,
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
      await stopChildren();
      process.off("exit", removeNow);
      for (const signal of ["SIGINT", "SIGTERM"] as const) process.off(signal, onSignal);
      removeNow();
    },
  };
}

/** `ip` with arguments; throws with its error text. */
function ip(...args: string[]) {
  const result = spawnSync("ip", args, { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`ip ${args.join(" ")}: ${result.stderr.trim() || result.error?.message}`);
}

/** The first third octet from `from` on whose 10.77.x.0/24 no interface of this machine uses. */
function freeSubnet(from: number): number {
  const used = spawnSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" }).stdout;
  for (let octet = from; octet < 255; octet++) if (!used.includes(` 10.77.${octet}.`)) return octet;
  throw new Error("no free 10.77.x.0/24 subnet");
}

/** Waits until something accepts TCP connections on host:port (a plain connect: an HTTP request
 * through a balancer whose hosts are not up yet would make it mark them down for a while). */
async function waitForPort(host: string, port: number, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host, () => (socket.destroy(), resolve(true)));
      socket.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answers on ${host}:${port} after ${ms} ms`);
    await sleep(100);
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals) {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // gone already
  }
}
