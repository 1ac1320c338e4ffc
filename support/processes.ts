/**
 * support/processes.ts: processes, their CPU time and memory, read from Linux's /proc: which pids
 * are a cluster's workers (to kill or freeze one), what they hold in memory and how much CPU they
 * used. The tests that use it and the benchmarks are Linux only.
 */
import { readdirSync, readFileSync } from "node:fs";

/** USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on Linux. */
const TICKS_PER_SECOND = 100;

/**
 * The processes under rootPid that run `script`. workersOnly: those whose parent runs it too, i.e.
 * the workers of a cluster without their primary (also when a runtime's launcher sits on top).
 */
export function serverProcesses(rootPid: number, script: string, workersOnly: boolean): number[] {
  const tree = processTree(rootPid);
  const running = tree.filter((p) => p.cmdline.includes(script.replace(/^\.\//, "")));
  if (!workersOnly) return running.map((p) => p.pid);
  const ids = new Set(running.map((p) => p.pid));
  return running.filter((p) => ids.has(p.ppid)).map((p) => p.pid);
}

/** The workers of the cluster whose primary (or its runtime's launcher) is `rootPid` */
export function workerPids(rootPid: number, script = "index.ts"): number[] {
  return serverProcesses(rootPid, script, true);
}

/** rootPid and all its descendants, with their parent, command line and CPU time so far. */
export function processTree(rootPid: number) {
  const all = readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " ");
        return [{ pid: Number(name), ppid: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND, cmdline }];
      } catch {
        return []; // gone meanwhile
      }
    });
  const inTree = new Set([rootPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) if (!inTree.has(p.pid) && inTree.has(p.ppid)) grew = inTree.add(p.pid) !== undefined;
  }
  return all.filter((p) => inTree.has(p.pid));
}

/** Resident set size of a process, in bytes (0 when it has gone). */
export function rssOf(pid: number): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
