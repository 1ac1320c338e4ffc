/**
 * lib/counted-log.ts: one log line for a kind of trouble that may come by the thousand.
 *
 * A hostile peer can cause an error per connection, and a bad publisher an error per message; a
 * line for each would flood the log and cost more than the trouble itself. The first occurrence
 * is logged at once (so that a test, or an operator, sees it), later ones are counted and
 * summed up in one line at most once per `everyMs`.
 */
export type CountedLog = (kind: string) => void;

export function countedLog(prefix: string, everyMs = 60_000, print: (line: string) => void = console.error): CountedLog {
  let counts = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    timer = undefined;
    if (counts.size === 0) return;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    print(`${prefix}: ${total} in the last ${everyMs / 1000} s (${[...counts].map(([kind, n]) => `${kind} ${n}`).join(", ")})`);
    counts = new Map();
    timer = setTimeout(flush, everyMs);
    timer.unref?.();
  };
  return (kind) => {
    if (timer === undefined) {
      // Quiet until now: say it at once, then count for a while.
      print(`${prefix}: ${kind} (more are counted and reported at most once every ${everyMs / 1000} s)`);
      timer = setTimeout(flush, everyMs);
      timer.unref?.();
      return;
    }
    // A hostile peer could make every kind different: a few are named, the rest are "other".
    const name = kind.slice(0, 100);
    const key = counts.has(name) || counts.size < 5 ? name : "other";
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };
}
