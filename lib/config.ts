/**
 * lib/config.ts: the environment variables (and client.ts's argument) the three scripts read,
 * checked before anything starts. A wrong value is a UsageError: one line and exit code 2 from
 * the script (lib/failures.ts), never a worker that restarts forever or a stack trace.
 * docs/reference/configuration.md lists every variable.
 */
import { availableParallelism } from "node:os";
import { userNameProblem } from "./chat.ts";
import { UsageError } from "./failures.ts";

/** The Redis adapters the kit can run on (ADAPTER=...), the first is the default. See docs/reference/adapters.md. */
export const ADAPTERS = ["classic", "sharded", "streams"] as const;
export type AdapterName = (typeof ADAPTERS)[number];

export function isAdapterName(value: string): value is AdapterName {
  return (ADAPTERS as readonly string[]).includes(value);
}

/**
 * Where Redis is: one node (REDIS_URL), a Redis Cluster (REDIS_CLUSTER_URLS, seed nodes) or a
 * Sentinel group (REDIS_SENTINEL_URLS, the sentinels, and REDIS_SENTINEL_MASTER, the master's name).
 * docs/reference/production.md says which suits which adapter.
 */
export type RedisTopology =
  | { kind: "single"; url: string }
  | { kind: "redis-cluster"; urls: string[] }
  | { kind: "sentinel"; urls: string[]; master: string };

/** What the server and the emitter must agree on. */
export interface RedisConfig {
  redis: RedisTopology;
  /** The topology in log lines, passwords masked. */
  redisName: string;
  adapter: AdapterName;
  /** Milliseconds a script waits for Redis to answer, and a running worker for a PING reply (lib/redis/deadline.ts, lib/redis/health.ts). */
  redisTimeout: number;
}

export interface ServerConfig extends RedisConfig {
  port: number;
  workers: number;
  /** Chat messages per second one client may send. */
  chatRateLimit: number;
  /** Origins besides the server's own whose pages may connect (lib/worker/origins.ts). */
  allowedOrigins: string[];
  /** Bytes that may wait for one client, reading or not, before it is let go; 0 turns the slow-reader check off (lib/worker/slow-readers.ts). */
  maxClientBacklog: number;
  /** Bytes that may wait for all of a worker's clients together before the slowest are let go (lib/worker/slow-readers.ts). */
  maxWorkerBacklog: number;
  /** Milliseconds a client with bytes waiting may take none of them before it is let go (lib/worker/slow-readers.ts). */
  slowReaderGrace: number;
  /** Milliseconds a peer has for its first bytes and for a whole request (lib/primary/sockets.ts). */
  requestTimeout: number;
  /** How a socket says who it is (lib/worker/identity.ts). */
  auth: AuthConfig;
  /** Where the primary serves Prometheus metrics, or undefined: off (lib/primary/metrics.ts). */
  metrics?: { port: number; host: string };
  /** Milliseconds over which a worker replaced by a reload lets its clients go (lib/primary/reload.ts). */
  reloadSpread: number;
  /** CORK_FRAMES: a client's frames flushed together go out in one write (lib/worker/corked-frames.ts). */
  corkFrames: boolean;
  /** TRANSPORTS: the Engine.IO transports the server accepts; websocket alone refuses long-polling, and the page follows. */
  transports: Transport[];
}

export type Transport = "polling" | "websocket";

/** TRANSPORTS, read alike by the server and client.ts: polling, websocket or both (the default). */
export function readTransports(env = process.env): Transport[] {
  const transports = (env.TRANSPORTS ?? "polling,websocket").split(",").map((name) => name.trim());
  if (transports.some((name) => name !== "polling" && name !== "websocket")) {
    configError(`TRANSPORTS must be polling, websocket or both (comma-separated), got "${env.TRANSPORTS}"`);
  }
  return [...new Set(transports)] as Transport[];
}

/**
 * Open mode (the post's): a client names itself, and is trusted. Auth mode: a client shows a JSON
 * Web Token in its handshake, signed with AUTH_SECRET (HS256) or by an identity provider whose
 * keys AUTH_JWKS_URL publishes (RS256, ES256); its `sub` is the user.
 */
export type AuthConfig =
  | { mode: "open" }
  | { mode: "secret"; secret: Uint8Array; issuer?: string; audience?: string }
  | { mode: "jwks"; jwksUrl: URL; jwksCooldown: number; issuer?: string; audience?: string };

/** HS256 needs a key at least as long as its hash (RFC 7518, 3.2): 32 bytes. */
export const MIN_SECRET_BYTES = 32;

/** AUTH_SECRET, for the server and `npm run token`: none, or at least MIN_SECRET_BYTES. */
export function readAuthSecret(env = process.env): Uint8Array | undefined {
  if (env.AUTH_SECRET === undefined || env.AUTH_SECRET === "") return undefined;
  const secret = new TextEncoder().encode(env.AUTH_SECRET);
  // The value itself never goes into the message: it may be a real secret, typed into the wrong variable.
  if (secret.length < MIN_SECRET_BYTES) configError(`AUTH_SECRET must be at least ${MIN_SECRET_BYTES} bytes long, got ${secret.length} (openssl rand -base64 48 makes one)`);
  return secret;
}

function readAuthConfig(env: NodeJS.ProcessEnv): AuthConfig {
  const secret = readAuthSecret(env);
  const jwks = env.AUTH_JWKS_URL || undefined;
  if (secret && jwks) configError("AUTH_SECRET and AUTH_JWKS_URL are both set: tokens are checked one way, choose one");
  const issuer = env.AUTH_ISSUER || undefined;
  const audience = env.AUTH_AUDIENCE || undefined;
  if (!secret && !jwks) {
    if (issuer || audience) configError("AUTH_ISSUER and AUTH_AUDIENCE go with AUTH_SECRET or AUTH_JWKS_URL, and neither is set");
    return { mode: "open" };
  }
  if (secret) return { mode: "secret", secret, issuer, audience };
  const url = URL.canParse(jwks!) ? new URL(jwks!) : undefined;
  // Keys fetched in the clear could be swapped on the way, and then anyone could be anyone.
  const loopback = url !== undefined && /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(url.hostname);
  if (!url || !(url.protocol === "https:" || (url.protocol === "http:" && loopback))) {
    configError(`AUTH_JWKS_URL must be an https:// URL (http:// only on this machine), got "${jwks}"`);
  }
  // A provider signs tokens for every application of the tenant: without both, any of them would do.
  if (!issuer || !audience) configError("AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE: the iss and aud your provider puts in this application's tokens");
  const jwksCooldown = Number(env.AUTH_JWKS_COOLDOWN ?? 30_000);
  if (!Number.isInteger(jwksCooldown) || jwksCooldown < 0) configError(`AUTH_JWKS_COOLDOWN must be a whole number of milliseconds, got "${env.AUTH_JWKS_COOLDOWN}"`);
  return { mode: "jwks", jwksUrl: url!, jwksCooldown, issuer, audience };
}

export function readRedisConfig(env = process.env): RedisConfig {
  const redis = readRedisTopology(env);
  const adapter = env.ADAPTER ?? "classic";
  if (!isAdapterName(adapter)) configError(`ADAPTER must be one of ${ADAPTERS.join(", ")}, got "${adapter}"`);
  const redisTimeout = Number(env.REDIS_TIMEOUT ?? 5000);
  if (!Number.isInteger(redisTimeout) || redisTimeout < 100) configError(`REDIS_TIMEOUT must be a whole number of milliseconds >= 100, got "${env.REDIS_TIMEOUT}"`);
  return { redis, redisName: describeTopology(redis), adapter, redisTimeout };
}

function readRedisTopology(env: NodeJS.ProcessEnv): RedisTopology {
  const { REDIS_URL: single, REDIS_CLUSTER_URLS: redisCluster, REDIS_SENTINEL_URLS: sentinel, REDIS_SENTINEL_MASTER: master } = env;
  const chosen = [single && "REDIS_URL", redisCluster && "REDIS_CLUSTER_URLS", sentinel && "REDIS_SENTINEL_URLS"].filter(Boolean);
  if (chosen.length > 1) configError(`${chosen.join(" and ")} are both set: choose one Redis topology`);
  if (master && !sentinel) configError("REDIS_SENTINEL_MASTER goes with REDIS_SENTINEL_URLS, which is not set");
  if (redisCluster) return { kind: "redis-cluster", urls: redisUrls("REDIS_CLUSTER_URLS", redisCluster) };
  if (sentinel) {
    const urls = redisUrls("REDIS_SENTINEL_URLS", sentinel);
    if (!master || !/^[\w.-]{1,100}$/.test(master)) {
      configError(`REDIS_SENTINEL_MASTER must name the master the sentinels watch (letters, digits, . _ -), got "${master ?? ""}"`);
    }
    return { kind: "sentinel", urls, master };
  }
  const url = single || "redis://localhost:6379";
  if (!isRedisUrl(url)) configError(`REDIS_URL must be a redis:// or rediss:// URL, got "${redactUrl(url)}"`);
  return { kind: "single", url };
}

/** A comma-separated list of redis:// (or all rediss://) URLs. */
function redisUrls(name: string, value: string): string[] {
  const urls = value.split(",").map((url) => url.trim());
  const bad = urls.find((url) => !isRedisUrl(url));
  if (bad !== undefined) configError(`${name} must be comma-separated redis:// or rediss:// URLs, got "${redactUrl(bad)}"`);
  if (new Set(urls.map((url) => new URL(url).protocol)).size > 1) configError(`${name} mixes redis:// and rediss://: use one`);
  return urls;
}

function isRedisUrl(url: string): boolean {
  return URL.canParse(url) && /^rediss?:$/.test(new URL(url).protocol) && new URL(url).hostname !== "";
}

function describeTopology(topology: RedisTopology): string {
  if (topology.kind === "single") return redactUrl(topology.url);
  const urls = topology.urls.map(redactUrl).join(", ");
  return topology.kind === "redis-cluster" ? `Redis Cluster (seeds ${urls})` : `Sentinel master "${topology.master}" (sentinels ${urls})`;
}

export function readServerConfig(env = process.env): ServerConfig {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) configError(`PORT must be a port number, got "${env.PORT}"`);
  const workers = Number(env.WORKERS ?? availableParallelism());
  if (!Number.isInteger(workers) || workers < 1) configError(`WORKERS must be a whole number >= 1, got "${env.WORKERS}"`);
  const chatRateLimit = Number(env.CHAT_RATE_LIMIT ?? 5);
  if (!(chatRateLimit > 0)) configError(`CHAT_RATE_LIMIT must be a number of messages per second > 0, got "${env.CHAT_RATE_LIMIT}"`);
  const maxClientBacklog = Number(env.MAX_CLIENT_BACKLOG ?? 64 * 2 ** 20);
  if (!Number.isInteger(maxClientBacklog) || maxClientBacklog < 0) {
    configError(`MAX_CLIENT_BACKLOG must be a whole number of bytes (0: no limit), got "${env.MAX_CLIENT_BACKLOG}"`);
  }
  const maxWorkerBacklog = Number(env.MAX_WORKER_BACKLOG ?? 256 * 2 ** 20);
  if (!Number.isInteger(maxWorkerBacklog) || maxWorkerBacklog < 1) {
    configError(`MAX_WORKER_BACKLOG must be a whole number of bytes > 0, got "${env.MAX_WORKER_BACKLOG}"`);
  }
  const slowReaderGrace = Number(env.SLOW_READER_GRACE ?? 500);
  if (!Number.isInteger(slowReaderGrace) || slowReaderGrace < 100) {
    configError(`SLOW_READER_GRACE must be a whole number of milliseconds >= 100, got "${env.SLOW_READER_GRACE}"`);
  }
  const requestTimeout = Number(env.REQUEST_TIMEOUT ?? 30_000);
  if (!Number.isInteger(requestTimeout) || requestTimeout < 100) configError(`REQUEST_TIMEOUT must be a whole number of milliseconds >= 100, got "${env.REQUEST_TIMEOUT}"`);
  const allowedOrigins = parseOrigins(env.ALLOWED_ORIGINS ?? "");
  const auth = readAuthConfig(env);
  const transports = readTransports(env);
  const corkFrames = env.CORK_FRAMES ?? "1";
  if (corkFrames !== "0" && corkFrames !== "1") configError(`CORK_FRAMES must be 0 or 1, got "${corkFrames}"`);
  const reloadSpread = Number(env.RELOAD_SPREAD_MS ?? 5000);
  if (!Number.isInteger(reloadSpread) || reloadSpread < 0 || reloadSpread > 600_000) {
    configError(`RELOAD_SPREAD_MS must be a whole number of milliseconds from 0 to 600000, got "${env.RELOAD_SPREAD_MS}"`);
  }
  return { ...readRedisConfig(env), port, workers, chatRateLimit, maxClientBacklog, maxWorkerBacklog, slowReaderGrace, requestTimeout, allowedOrigins, auth, metrics: readMetricsConfig(env), reloadSpread, transports, corkFrames: corkFrames === "1" };
}

/** METRICS_PORT (unset: no metrics; 0 picks a free port) and METRICS_HOST (loopback unless told). */
function readMetricsConfig(env: NodeJS.ProcessEnv): ServerConfig["metrics"] {
  const host = env.METRICS_HOST || "127.0.0.1";
  if (env.METRICS_PORT === undefined || env.METRICS_PORT === "") {
    if (env.METRICS_HOST) configError("METRICS_HOST goes with METRICS_PORT, which is not set");
    return undefined;
  }
  const port = Number(env.METRICS_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) configError(`METRICS_PORT must be a port number, got "${env.METRICS_PORT}"`);
  if (!/^[\w.:-]{1,253}$/.test(host)) configError(`METRICS_HOST must be an address or a host name, got "${env.METRICS_HOST}"`);
  return { port, host };
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

function configError(problem: string): never {
  throw new UsageError(problem);
}

/** What client.ts reads: its argument and its environment. */
export interface ClientConfig {
  user: string;
  /** AUTH_TOKEN: the token a server in auth mode asks for; the name then comes from it. */
  token?: string;
  serverUrl: string;
  transports: Transport[];
  withCredentials: boolean;
}

export function readClientConfig(argv: string[], env = process.env): ClientConfig {
  const user = argv[0];
  if (!user) configError("usage: client.ts <user name>");
  const problem = userNameProblem(user);
  if (problem) configError(`the user name: ${problem}`);
  const serverUrl = env.SERVER_URL ?? "http://localhost:3000";
  if (!URL.canParse(serverUrl) || !/^(http|https|ws|wss):$/.test(new URL(serverUrl).protocol)) {
    configError(`SERVER_URL must be an http(s) or ws(s) URL, got "${serverUrl}"`);
  }
  const transports = readTransports(env);
  const withCredentials = env.WITH_CREDENTIALS ?? "0";
  if (withCredentials !== "0" && withCredentials !== "1") configError(`WITH_CREDENTIALS must be 0 or 1, got "${withCredentials}"`);
  const token = env.AUTH_TOKEN || undefined;
  return { user, token, serverUrl, transports, withCredentials: withCredentials === "1" };
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
