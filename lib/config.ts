/**
 * lib/config.ts: the environment variables index.ts and emitter.ts read, checked before anything
 * starts, and the kit's exit-code rule. A wrong value is one line and exit code 2, never a worker
 * that restarts forever or a stack trace. docs/reference/configuration.md lists every variable.
 */
import { availableParallelism } from "node:os";

/** The kit's exit-code rule, for all three scripts. */
export const EXIT_FAILURE = 1; // something at run time failed: Redis, the server, a refused message
export const EXIT_USAGE = 2; // the command line or the environment is wrong: nothing was tried

/** The Redis adapters the kit can run on (ADAPTER=...), the first is the default. See docs/reference/adapters.md. */
export const ADAPTERS = ["classic", "sharded", "streams"] as const;
export type AdapterName = (typeof ADAPTERS)[number];

export function isAdapterName(value: string): value is AdapterName {
  return (ADAPTERS as readonly string[]).includes(value);
}

/** What the server and the emitter must agree on. */
export interface RedisConfig {
  redisUrl: string;
  adapter: AdapterName;
  /** Milliseconds a script waits for Redis to answer, and a running worker for a PING reply (lib/redis-deadline.ts). */
  redisTimeout: number;
}

export interface ServerConfig extends RedisConfig {
  port: number;
  workers: number;
  /** Chat messages per second one client may send. */
  chatRateLimit: number;
  /** Bytes that may wait for one client before it is let go, 0 for no limit (lib/slow-readers.ts). */
  maxClientBacklog: number;
  /** Milliseconds a peer has for its first bytes and for a whole request (lib/primary-sockets.ts). */
  requestTimeout: number;
}

export function readRedisConfig(env = process.env): RedisConfig {
  const redisUrl = env.REDIS_URL ?? "redis://localhost:6379";
  if (!URL.canParse(redisUrl) || !/^rediss?:$/.test(new URL(redisUrl).protocol)) {
    configError(`REDIS_URL must be a redis:// or rediss:// URL, got "${redactUrl(redisUrl)}"`);
  }
  const adapter = env.ADAPTER ?? "classic";
  if (!isAdapterName(adapter)) configError(`ADAPTER must be one of ${ADAPTERS.join(", ")}, got "${adapter}"`);
  const redisTimeout = Number(env.REDIS_TIMEOUT ?? 5000);
  if (!Number.isInteger(redisTimeout) || redisTimeout < 100) configError(`REDIS_TIMEOUT must be a whole number of milliseconds >= 100, got "${env.REDIS_TIMEOUT}"`);
  return { redisUrl, adapter, redisTimeout };
}

export function readServerConfig(env = process.env): ServerConfig {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) configError(`PORT must be a port number, got "${env.PORT}"`);
  const workers = Number(env.WORKERS ?? availableParallelism());
  if (!Number.isInteger(workers) || workers < 1) configError(`WORKERS must be a whole number >= 1, got "${env.WORKERS}"`);
  const chatRateLimit = Number(env.CHAT_RATE_LIMIT ?? 5);
  if (!(chatRateLimit > 0)) configError(`CHAT_RATE_LIMIT must be a number of messages per second > 0, got "${env.CHAT_RATE_LIMIT}"`);
  const maxClientBacklog = Number(env.MAX_CLIENT_BACKLOG ?? 10 * 2 ** 20);
  if (!Number.isInteger(maxClientBacklog) || maxClientBacklog < 0) {
    configError(`MAX_CLIENT_BACKLOG must be a whole number of bytes (0: no limit), got "${env.MAX_CLIENT_BACKLOG}"`);
  }
  const requestTimeout = Number(env.REQUEST_TIMEOUT ?? 30_000);
  if (!Number.isInteger(requestTimeout) || requestTimeout < 100) configError(`REQUEST_TIMEOUT must be a whole number of milliseconds >= 100, got "${env.REQUEST_TIMEOUT}"`);
  return { ...readRedisConfig(env), port, workers, chatRateLimit, maxClientBacklog, requestTimeout };
}

/** One line on stderr and exit code 2. */
export function configError(problem: string): never {
  console.error(problem);
  process.exit(EXIT_USAGE);
}

/** A Redis URL fit for a log line: the password, if any, is masked. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, "//***@"); // not a URL, but it may still hold a password
  }
}
