/**
 * lib/log.ts: the process's log lines, with the prefix that says which process speaks, made once.
 *
 * A worker's lines start with "worker: N, ", the form of the post's own connection line; the
 * primary's and the scripts' have none. Trouble that may come by the thousand (a hostile peer
 * can cause an error per connection, a bad publisher one per message) goes through countedLog():
 * the first occurrence at once, so that a test or an operator sees it, the rest summed up in one
 * line at most once per period, so that the log never costs more than the trouble itself.
 */
import cluster from "node:cluster";

const PREFIX = cluster.isWorker ? `worker: ${cluster.worker!.id}, ` : "";

/** A line on stdout, with the process's prefix. */
export function log(line: string): void {
  console.log(PREFIX + line);
}

/** A line on stderr, with the process's prefix. */
export function logError(line: string): void {
  console.error(PREFIX + line);
}

/** Counts one occurrence of a kind of trouble (a short word or phrase: an error code, a reason). */
export type CountedLog = (kind: string) => void;

/** Kinds named in a summary; a hostile peer could make each one different: the rest are "other". */
const NAMED_KINDS = 5;

export function countedLog(what: string, everyMs = 60_000, print: (line: string) => void = logError): CountedLog {
  let counts = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const rest = () => {
    timer = setTimeout(flush, everyMs);
    timer.unref?.();
  };
  const flush = () => {
    timer = undefined;
    if (counts.size === 0) return;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    print(`${what}: ${total} in the last ${everyMs / 1000} s (${[...counts].map(([kind, n]) => `${kind} ${n}`).join(", ")})`);
    counts = new Map();
    rest();
  };
  return (kind) => {
    if (timer === undefined) {
      print(`${what}: ${kind} (more are counted and reported at most once every ${everyMs / 1000} s)`);
      return rest();
    }
    const name = kind.length > 200 ? `${kind.slice(0, 199)}…` : kind;
    const key = counts.has(name) || counts.size < NAMED_KINDS ? name : "other";
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };
}
