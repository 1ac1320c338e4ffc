/**
 * lib/redis/deadline.ts: whatever talks to Redis is bounded in time, even when Redis never answers.
 *
 * A Redis that accepts TCP but does not answer (frozen, overloaded, behind a proxy whose Redis is
 * gone) or another service on REDIS_URL's port makes node-redis wait forever, silently:
 * `connectTimeout` bounds the TCP connect only, `commandOptions.timeout` only the wait to be
 * written, and `socketTimeout` is an idle timer that traffic in either direction resets (node-redis
 * 6.3.1; redis/node-redis#2175 asks for a reply timeout). A plain deadline, started before the
 * first command and cleared once Redis has answered, gives one line and an exit code instead.
 */
import { Failure } from "../failures.ts";

/** Any node-redis client: only connect(), ping() and its events are used. */
interface Connectable {
  connect(): Promise<{ ping(): Promise<unknown> }>;
  on(event: "error", listener: (err: Error) => void): unknown;
  off(event: "error", listener: (err: Error) => void): unknown;
}

/** What a deadline says: how long it waited, and the last error node-redis reported meanwhile. */
export function noAnswer(ms: number, lastError?: string): string {
  return `no answer within ${ms / 1000} s${lastError ? ` (last error: ${lastError})` : ""}: a frozen or overloaded Redis, or not a Redis at that address`;
}

/**
 * Connects `clients` and checks with a PING that Redis answers on each, or rejects after `ms`
 * with noAnswer(). Errors node-redis reports meanwhile are kept for the message, not logged.
 */
export async function connectWithin(clients: Connectable[], ms: number): Promise<void> {
  let lastError: string | undefined;
  const keep = (err: Error) => void (lastError = err.message || err.name);
  for (const client of clients) client.on("error", keep);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(noAnswer(ms, lastError))), ms);
  });
  try {
    await Promise.race([Promise.all(clients.map(async (client) => (await client.connect()).ping())), deadline]);
  } finally {
    clearTimeout(timer);
    for (const client of clients) client.off("error", keep);
  }
}

/**
 * For a one-shot script, from before its first command to its end: after `ms`, throws a Failure
 * saying `line(noAnswer(...))`, which the script's one way out turns into that line and exit
 * code 1. The timer does not keep the process alive: a script that is done exits as it would
 * without it.
 */
export function failIfRedisHangs(client: Connectable, ms: number, line: (reason: string) => string): void {
  let lastError: string | undefined;
  client.on("error", (err: Error) => void (lastError = err.message || err.name));
  const timer = setTimeout(() => {
    throw new Failure(line(noAnswer(ms, lastError)));
  }, ms);
  timer.unref();
}
