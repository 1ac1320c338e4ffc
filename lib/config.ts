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
}

export interface ServerConfig extends RedisConfig {
  port: number;
  workers: number;
  /** Chat messages per second one client may send. */
  chatRateLimit: number;
  /** Origins besides the server's own whose pages may connect (lib/allowed-origins.ts). */
  allowedOrigins: string[];
}

export function readRedisConfig(): RedisConfig {
  const env = process.env;
  const redisUrl = env.REDIS_URL ?? "redis://localhost:6379";
  if (!URL.canParse(redisUrl) || !/^rediss?:$/.test(new URL(redisUrl).protocol)) {
    configError(`REDIS_URL must be a redis:// or rediss:// URL, got "${redactUrl(redisUrl)}"`);
  }
  const adapter = env.ADAPTER ?? "classic";
  if (!isAdapterName(adapter)) configError(`ADAPTER must be one of ${ADAPTERS.join(", ")}, got "${adapter}"`);
  return { redisUrl, adapter };
}

export function readServerConfig(): ServerConfig {
  const env = process.env;
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) configError(`PORT must be a port number, got "${env.PORT}"`);
  const workers = Number(env.WORKERS ?? availableParallelism());
  if (!Number.isInteger(workers) || workers < 1) configError(`WORKERS must be a whole number >= 1, got "${env.WORKERS}"`);
  const chatRateLimit = Number(env.CHAT_RATE_LIMIT ?? 5);
  if (!(chatRateLimit > 0)) configError(`CHAT_RATE_LIMIT must be a number of messages per second > 0, got "${env.CHAT_RATE_LIMIT}"`);
  const allowedOrigins = parseOrigins(env.ALLOWED_ORIGINS ?? "");
  return { ...readRedisConfig(), port, workers, chatRateLimit, allowedOrigins };
}

/**
 * ALLOWED_ORIGINS: comma-separated origins (scheme://host[:port], nothing after it), returned as a
 * browser writes them in its Origin header: lower case, without the scheme's default port.
 */
function parseOrigins(text: string): string[] {
  const origins: string[] = [];
  for (const item of text.split(",").map((part) => part.trim()).filter((part) => part !== "")) {
    const url = URL.canParse(item) ? new URL(item) : undefined;
    const bare = url && /^https?:$/.test(url.protocol) && !url.username && !url.password && url.pathname === "/" && !url.search && !url.hash;
    if (!bare) configError(`ALLOWED_ORIGINS takes origins such as https://chat.example.com or http://localhost:8080, comma-separated, got "${item}"`);
    origins.push(url.origin);
  }
  return origins;
}

/** One line on stderr and exit code 2. */
function configError(problem: string): never {
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
