/**
 * support/topology/namespaces.ts: hosts on one machine as Linux network namespaces, each with an
 * address of its own on a private bridge (10.77.N.0/24), and the long-running processes started in
 * them (Redis, the balancers). Whatever a network creates, remove() takes away again, and so does
 * the process's exit when nobody called it (a test that failed, a Ctrl-C): no namespace, bridge,
 * process or scratch folder outlives the run. Needs root and iproute2.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, signalGroup, stopGroup } from "../scripts.ts";

export interface Namespace {
  name: string; // h1, c1, redis, lb
  netns: string; // kit-N-h1
  ip: string;
}

/** The subnet the files in hosts/ are written for. */
export const FILE_SUBNET = "10.77.0";

/** Whether this machine can create network namespaces (root, iproute2) and run the topology's servers: the reason when not. */
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

export interface NetworkOptions {
  /** Third octet of 10.77.x.0/24; the first free one from here on is taken. */
  subnet?: number;
  /** Print what starts and each process's output (`npm run hosts`). */
  verbose?: boolean;
  /** On SIGINT/SIGTERM remove everything and exit (default); false when the caller handles them. */
  exitOnSignal?: boolean;
}

export type Network = ReturnType<typeof createNetwork>;

/** A bridge on a free subnet with a scratch folder; namespaces are added to it with add(). */
export function createNetwork(options: NetworkOptions = {}) {
  const octet = freeSubnet(options.subnet ?? 0);
  const subnet = `10.77.${octet}`;
  const bridge = `kit-br${octet}`;
  const dir = mkdtempSync(join(tmpdir(), `kit-hosts-${octet}-`));
  const children = new Set<ChildProcess>();
  const namespaces: Namespace[] = [];
  const log = (line: string) => void (options.verbose && console.log(line));
  let files = 0;

  // Synchronous, so that it also runs on "exit", when no promise is awaited any more.
  let removed = false;
  const removeNow = () => {
    if (removed) return;
    removed = true;
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
  try {
    log(`creating bridge ${bridge} (${subnet}.0/24) and namespaces`);
    ip("link", "add", bridge, "type", "bridge");
    ip("addr", "add", `${subnet}.1/24`, "dev", bridge);
    ip("link", "set", bridge, "up");
  } catch (err) {
    removeNow();
    throw err;
  }

  const stopProcesses = (graceMs = 3000) => Promise.all([...children].map((child) => stopGroup(child, graceMs)));
  const track = (child: ChildProcess) => {
    children.add(child);
    child.once("exit", () => children.delete(child));
  };
  const write = (name: string, text: string) => {
    const path = join(dir, `${++files}-${name}`);
    writeFileSync(path, text);
    return path;
  };

  return {
    subnet,
    bridge,
    dir,
    log,
    /** A namespace named `name` at <subnet>.<lastOctet>, linked to the bridge. */
    add(name: string, lastOctet: number): Namespace {
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
    },
    /** A process that remove() kills with the rest (a host's index.ts, started with run()). */
    track,
    /** A long-running process inside `ns`, in the scratch folder; resolves once it printed `ready` (if given). */
    start: (ns: Namespace, label: string, command: string, args: string[], ready?: RegExp): Promise<ChildProcess> =>
      startDaemon({ label, command, args, netns: ns.netns, cwd: dir, ready, log, adopt: track }),
    /** Writes `text` to a new file of the scratch folder: its path. */
    write,
    /** A copy of hosts/<name> for this subnet, with `replace` applied (first match of each): its path. */
    copy(name: string, replace: Record<string, string> = {}): string {
      let text = hostsFile(name).replaceAll(`${FILE_SUBNET}.`, `${subnet}.`);
      for (const [from, to] of Object.entries(replace)) text = text.replace(from, to);
      return write(name, text);
    },
    /** Stops every process (SIGTERM, then SIGKILL), then removes the namespaces, the bridge and the folder. */
    async remove() {
      await stopProcesses();
      process.off("exit", removeNow);
      for (const signal of ["SIGINT", "SIGTERM"] as const) process.off(signal, onSignal);
      removeNow();
    },
  };
}

/** The text of a file of hosts/, the configuration the docs show. */
export function hostsFile(name: string): string {
  return readFileSync(join(ROOT, "hosts", name), "utf8");
}

export interface DaemonOptions {
  label: string;
  command: string;
  args: string[];
  /** The namespace to run in; none: this one. */
  netns?: string;
  cwd: string;
  /** Resolves once the output matched it; without it, once the process is spawned. */
  ready?: RegExp;
  /** Where each line of output goes, labelled. */
  log?: (line: string) => void;
  /** Called with the process as soon as it exists, so that a caller can clean it up even if it never gets ready. */
  adopt?: (child: ChildProcess) => void;
}

/** A long-running process (redis-server, nginx, haproxy) in a process group of its own. */
export async function startDaemon(options: DaemonOptions): Promise<ChildProcess> {
  const { label, command, args, netns, cwd, ready, log = () => {} } = options;
  const [file, ...rest] = netns ? ["ip", "netns", "exec", netns, command, ...args] : [command, ...args];
  const child = spawn(file!, rest, { cwd, stdio: ["ignore", "pipe", "pipe"], detached: true });
  options.adopt?.(child);
  let output = "";
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    output = (output + text).slice(-4000);
    for (const line of text.split("\n")) if (line.trim()) log(`[${label}] ${line}`);
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} not ready within 10 s:\n${output}`)), 10_000);
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.stdout!.off("data", check);
      child.stderr!.off("data", check);
      if (err) reject(err);
      else resolve();
    };
    const check = () => ready?.test(output) && done();
    child.stdout!.on("data", check);
    child.stderr!.on("data", check);
    child.once("error", (err) => done(new Error(`${label}: ${err.message}`)));
    child.once("exit", (code) => done(new Error(`${label} exited (${code}):\n${output}`)));
    if (!ready) child.once("spawn", () => done());
  });
  return child;
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
