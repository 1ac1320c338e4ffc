/**
 * support/topology/balancers.ts: the load balancers of hosts/ as the tests run them: nginx with
 * address hashing (hosts/nginx.conf), HAProxy with a cookie (hosts/haproxy.cfg) and nginx round
 * robin (hosts/nginx-round-robin.conf), each rendered from its file with the servers it fronts in
 * place of the two hosts the file names. In a namespace in front of the topology's hosts, or on
 * loopback in front of one server (test/browser.test.ts): the configuration exists once, in hosts/.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../redis.ts";
import { sleep, stopGroup } from "../scripts.ts";
import { FILE_SUBNET, hostsFile, type Namespace, type Network, startDaemon } from "./namespaces.ts";

export const BALANCER_PORTS = { nginx: 8080, haproxy: 8081, roundRobin: 8082 } as const;
export type BalancerName = keyof typeof BALANCER_PORTS;

const FILES: Record<BalancerName, string> = { nginx: "nginx.conf", haproxy: "haproxy.cfg", roundRobin: "nginx-round-robin.conf" };

export interface BalancerConfigOptions {
  /** The address to listen on instead of the file's port (nginx `listen`, HAProxy `bind`). */
  listen?: string;
  /** Text to change (the first match of each), for a test about one setting. */
  replace?: Record<string, string>;
}

/**
 * The text of a balancer file of hosts/ in front of `upstreams` (host:port each): host 1's server
 * line once per upstream (h1 renamed h2, h3... for HAProxy's cookie), host 2's line dropped.
 */
export function balancerConfig(file: string, upstreams: string[], options: BalancerConfigOptions = {}): string {
  const first = `${FILE_SUBNET}.11:`;
  let text = hostsFile(file)
    .split("\n")
    .flatMap((line) =>
      line.includes(first)
        ? upstreams.map((upstream, i) => line.replace(new RegExp(`${first.replaceAll(".", "\\.")}\\d+`), upstream).replace(/\bh1\b/g, `h${i + 1}`))
        : line.includes(`${FILE_SUBNET}.12:`)
          ? []
          : [line],
    )
    .join("\n");
  if (options.listen) text = text.replace(/^(\s*listen) \d+;$/m, `$1 ${options.listen};`).replace(/^(\s*bind) :\d+$/m, `$1 ${options.listen}`);
  for (const [from, to] of Object.entries(options.replace ?? {})) text = text.replace(from, to);
  return text;
}

/** The three balancers in `ns` in front of `upstreams`; resolves with their URLs once each accepts connections. */
export async function startBalancers(network: Network, ns: Namespace, upstreams: string[]): Promise<Record<BalancerName, string>> {
  const config = (name: BalancerName) => network.write(FILES[name], balancerConfig(FILES[name], upstreams));
  // nginx prints nothing when it has started: the ports tell.
  await network.start(ns, "nginx", "nginx", ["-p", nginxPrefix(network.dir, "nginx"), "-c", config("nginx")]);
  await network.start(ns, "nginx round robin", "nginx", ["-p", nginxPrefix(network.dir, "nginx-rr"), "-c", config("roundRobin")]);
  await network.start(ns, "haproxy", "haproxy", ["-db", "-f", config("haproxy")]);
  for (const port of Object.values(BALANCER_PORTS)) await waitForPort(ns.ip, port);
  return {
    nginx: `http://${ns.ip}:${BALANCER_PORTS.nginx}`,
    haproxy: `http://${ns.ip}:${BALANCER_PORTS.haproxy}`,
    roundRobin: `http://${ns.ip}:${BALANCER_PORTS.roundRobin}`,
  };
}

/** HAProxy marks a host up after its first health check: waits until every one of `hosts` answers through it. */
export async function waitBalancersSeeHosts(haproxyUrl: string, hosts: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const seen = new Set<string>();
    for (let i = 0; i < hosts * 2; i++) {
      const answer = await fetch(`${haproxyUrl}/`).catch(() => undefined);
      const cookie = answer?.headers.get("set-cookie");
      await answer?.text();
      if (answer?.ok && cookie) seen.add(cookie.split(";")[0]!);
    }
    if (seen.size === hosts) return;
    if (Date.now() > deadline) throw new Error(`HAProxy sees ${seen.size} of ${hosts} hosts after ${ms} ms`);
    await sleep(200);
  }
}

export interface LoopbackNginx {
  port: number;
  stop(): Promise<void>;
}

/** nginx from hosts/nginx.conf on 127.0.0.1, in front of the server on `upstreamPort`, without namespaces. */
export async function startLoopbackNginx(upstreamPort: number, replace: Record<string, string> = {}): Promise<LoopbackNginx> {
  const dir = mkdtempSync(join(tmpdir(), "kit-nginx-"));
  chmodSync(dir, 0o755); // nginx's workers do not run as root
  const port = await freePort();
  const file = join(dir, "nginx.conf");
  writeFileSync(file, balancerConfig(FILES.nginx, [`127.0.0.1:${upstreamPort}`], { listen: `127.0.0.1:${port}`, replace }));
  const child = await startDaemon({ label: "nginx", command: "nginx", args: ["-p", `${dir}/`, "-c", file], cwd: dir });
  const stop = async () => {
    await stopGroup(child, 3000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort("127.0.0.1", port);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, stop };
}

/** A folder for one nginx's pid file (nginx -p), inside `dir`. */
function nginxPrefix(dir: string, name: string): string {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  return `${path}/`;
}

/**
 * Waits until something accepts TCP connections on host:port (a plain connect: an HTTP request
 * through a balancer whose hosts are not up yet would make it mark them down for a while).
 */
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
