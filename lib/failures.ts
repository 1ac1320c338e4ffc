/**
 * lib/failures.ts: the kit's one way out. Library code throws; each of the three scripts catches
 * what nobody else did, once, at its top, and ends with one line and the exit code of this rule
 * (docs/reference/exit-codes.md):
 *   0  done
 *   1  something failed at run time: Redis, the server, a refused message, a port taken
 *   2  the command line or the environment is wrong: nothing was tried
 *   3  emitter.ts --online: the user has no socket on any server (a plain answer, not a failure)
 */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_OFFLINE = 3;

/** A wrong command line or environment. Its message is the whole line the user sees. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A failure at run time. Its message is the whole line the user sees: no stack is printed. */
export class Failure extends Error {
  override name = "Failure";
}

export interface ExitReport {
  line: string;
  code: number;
}

/**
 * The line to print and the exit code for anything thrown. The kit's own errors are their message;
 * anything else is a bug or a library's surprise, and keeps its stack for whoever must fix it.
 */
export function exitReport(err: unknown): ExitReport {
  if (err instanceof UsageError) return { line: err.message, code: EXIT_USAGE };
  if (err instanceof Failure) return { line: err.message, code: EXIT_FAILURE };
  return { line: err instanceof Error ? (err.stack ?? err.message) : `unexpected failure: ${String(err)}`, code: EXIT_FAILURE };
}

/**
 * Hands whatever was thrown and not caught, synchronously or in a promise, to `exit` as a line and
 * an exit code, once. Both events are needed: Bun does not turn an unhandled rejection into an
 * uncaught exception, and Deno reports a rejected top-level await as an unhandled rejection.
 */
export function onUncaught(exit: (report: ExitReport) => void): void {
  // The first failure decides: a second one while the process is on its way out adds nothing.
  let reported = false;
  const handle = (err: unknown) => {
    if (reported) return;
    reported = true;
    exit(exitReport(err));
  };
  process.on("uncaughtException", handle);
  process.on("unhandledRejection", handle);
}
