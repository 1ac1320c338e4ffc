/**
 * support/scripts.ts: runs the kit's real scripts as child processes and reads what they print,
 * for the tests, the benchmarks and the npm scripts of tools/. Each runs in a process group of its
 * own, so that stopping it reaches whatever it started (cluster workers, tsx's child).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

export type Runtime = "node" | "bun" | "deno";

/** The command line that runs a top-level script of the kit on a runtime; `flags` go to Node itself. */
export function commandFor(runtime: Runtime, script: string, args: string[] = [], flags: string[] = []): string[] {
  switch (runtime) {
    case "node":
      return [process.execPath, "--import", "tsx", ...flags, script, ...args];
    case "bun":
      return [`${ROOT}node_modules/.bin/bun`, script, ...args];
    case "deno":
      return [`${ROOT}node_modules/.bin/deno`, "run", "-A", script, ...args];
  }
}

export interface Script {
  /** stdout and stderr lines so far, in arrival order per stream. */
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves with the first stdout line (from `from` on) that matches, or rejects after `ms`. */
  waitFor(pattern: RegExp | string, ms?: number, from?: number): Promise<RegExpMatchArray>;
  /** Writes one line to the script's stdin. */
  send(line: string): void;
  endInput(): void;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM to the process group, then SIGKILL if it is still there after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  readonly child: ChildProcess;
}

const running = new Set<Script>();

/**
 * Where and how a script runs: `netns` names a network namespace (support/topology/namespaces.ts),
 * entered with `ip netns exec`; `flags` are Node's own (`--trace-gc`), which NODE_OPTIONS refuses.
 */
export interface RunOptions {
  netns?: string;
  flags?: string[];
}

/** Starts `script` (a file in the kit's root) on a runtime with extra environment variables. */
export function run(script: string, args: string[], env: Record<string, string>, runtime: Runtime = "node", options: RunOptions = {}): Script {
  if (options.flags?.length && runtime !== "node") throw new Error(`flags are Node's: ${script} runs on ${runtime}`);
  const direct = commandFor(runtime, script, args, options.flags);
  const command = options.netns ? ["ip", "netns", "exec", options.netns, ...direct] : direct;
  const label = [options.netns ? `(${options.netns})` : "", runtime, ...(options.flags ?? []), script, ...args].join(" ").trim();
  return start(command, env, label);
}

/** Starts any program (a publisher written in another language, a shell), as run() starts the kit's scripts. */
export function runCommand(command: string[], env: Record<string, string>): Script {
  return start(command, env, command.join(" "));
}

/**
 * Scripts run in process groups of their own, and a private redis-server is a plain child: a
 * bench or test file that is itself killed (a timeout, Ctrl-C) would leave them running (a cluster
 * left by a bench a timeout killed was found). SIGINT and SIGTERM then run every stop handed to
 * stopOnSignal() (start() hands it stopAll) before this process ends.
 */
const stopsOnSignal = new Set<() => Promise<void>>();
let signalsHandled = false;

/** `stop` runs if this process is killed by SIGINT or SIGTERM; the function returned forgets it. */
export function stopOnSignal(stop: () => Promise<void>): () => void {
  if (!signalsHandled) {
    signalsHandled = true;
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        void Promise.allSettled([...stopsOnSignal].map((stopOne) => stopOne())).then(() => process.exit(128 + constants.signals[signal]));
      });
    }
  }
  stopsOnSignal.add(stop);
  return () => stopsOnSignal.delete(stop);
}

function start([command, ...commandArgs]: string[], env: Record<string, string>, label: string): Script {
  stopOnSignal(stopAll);
  const child = spawn(command!, commandArgs, {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["pipe", "pipe", "pipe"],
    detached: true, // its own process group: stop() reaches cluster workers and tsx's child too
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  const collect = (stream: NodeJS.ReadableStream, lines: string[]) => {
    let rest = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      for (const wake of waiters) wake();
    });
    stream.on("end", () => rest && lines.push(rest));
  };
  collect(child.stdout!, stdout);
  collect(child.stderr!, stderr);
  const exited = once(child, "exit").then(([code, signal]) => ({ code, signal }));
  child.stdin!.on("error", () => {}); // a script that exited early closes its stdin

  const handle: Script = {
    stdout,
    stderr,
    child,
    exited,
    waitFor(pattern, ms = 10_000, from = 0) {
      const matcher = typeof pattern === "string" ? new RegExp(escape(pattern)) : pattern;
      return new Promise((resolve, reject) => {
        let index = from;
        const check = () => {
          for (; index < stdout.length; index++) {
            const match = stdout[index]!.match(matcher);
            if (match) {
              done();
              return resolve(match);
            }
          }
        };
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${label} did not print ${matcher} within ${ms} ms; stdout:\n${stdout.join("\n")}\nstderr:\n${stderr.join("\n")}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    send(line) {
      child.stdin!.write(`${line}\n`);
    },
    endInput() {
      child.stdin!.end();
    },
    async stop(graceMs = 5000) {
      running.delete(handle);
      await stopGroup(child, graceMs);
    },
  };
  running.add(handle);
  return handle;
}

/** Stops every script still running: call it in an `after` hook. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((script) => script.stop()));
}

/** Runs a script to its end with a deadline; for the one-shot commands. */
export async function runToEnd(script: string, args: string[], env: Record<string, string>, runtime: Runtime = "node", ms = 15_000, options: RunOptions = {}) {
  return toEnd(run(script, args, env, runtime, options), ms);
}

/** Runs any program to its end with a deadline; `timedOut` when it had to be stopped. */
export async function runCommandToEnd(command: string[], env: Record<string, string>, ms = 15_000) {
  return toEnd(runCommand(command, env), ms);
}

async function toEnd(process: Script, ms: number) {
  const started = Date.now();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    process.stop();
  }, ms);
  // It may not start at all (no such program): spawn's error is its last line.
  const { code } = await process.exited.catch((err: Error) => (process.stderr.push(err.message), { code: null }));
  clearTimeout(timer);
  await process.stop();
  return { code, stdout: process.stdout, stderr: process.stderr.filter((line) => line !== ""), ms: Date.now() - started, timedOut };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `condition()` holds, checking every 20 ms; rejects after `ms`, naming `what`. */
export async function until(condition: () => boolean, ms = 10_000, what = String(condition)): Promise<void> {
  for (const deadline = Date.now() + ms; !condition(); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
  }
}

/** `signal` to the process group that `child` leads (started with `detached: true`). */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // the group is gone already
  }
}

/** SIGTERM to the group of `child`, SIGKILL if it is still there after `graceMs`; resolves once it has exited. */
export async function stopGroup(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return; // ended, or never started
  const exited = new Promise((resolve) => child.once("exit", resolve));
  signalGroup(child, "SIGTERM");
  const timer = setTimeout(() => signalGroup(child, "SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
  signalGroup(child, "SIGKILL"); // anything the process group left behind
}

/** A command line as a reader would type it into a shell: arguments quoted where a shell needs it. */
export function shellLine(command: string[]): string {
  return command.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`)).join(" ");
}

/** `text` as a literal inside a RegExp. */
export function escape(text: string) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
