/**
 * support/redis.ts: finds a Redis for `npm start` and starts a private one for the tests.
 *
 * Not part of the kit's runtime: index.ts, client.ts and emitter.ts only read REDIS_URL. This is
 * what lets `npm start` and `npm test` work on a fresh machine without setting anything up.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { encode as msgpack } from "notepack.io";
import { createClient } from "redis";
import { stopOnSignal } from "./scripts.ts";

export interface RunningRedis {
  url: string;
  /** Where it comes from, for a log line. */
  origin: string;
  stop(): Promise<void>;
  /** The redis-server process, when it is a child of this one (tests freeze it with SIGSTOP). */
  pid?: number;
}

const HOW_TO_GET_REDIS =
  "no Redis found: set REDIS_URL, start one on localhost:6379, install redis-server " +
  "(apt-get install redis-server, brew install redis) or start Docker";

/**
 * The Redis `npm start` uses: REDIS_URL when set, else the one on localhost:6379 when it
 * answers, else a private one (see startPrivateRedis).
 */
export async function findOrStartRedis(): Promise<RunningRedis> {
  const given = process.env.REDIS_URL;
  if (given) return { url: given, origin: "REDIS_URL", stop: async () => {} };
  const local = "redis://localhost:6379";
  if (await answers(local)) return { url: local, origin: "the Redis on localhost:6379", stop: async () => {} };
  return startPrivateRedis();
}

/**
 * A throwaway Redis that nothing else uses: a container when a container runtime answers,
 * else a `redis-server` child process on a free port. Extra arguments go to redis-server
 * (for instance ["--requirepass", "secret"]).
 */
export async function startPrivateRedis(extraArgs: string[] = []): Promise<RunningRedis> {
  return (await startContainer(extraArgs)) ?? (await startRedisServer(await freePort(), extraArgs));
}

async function startContainer(extraArgs: string[]): Promise<RunningRedis | undefined> {
  let testcontainers: typeof import("testcontainers");
  try {
    testcontainers = await import("testcontainers");
    await testcontainers.getContainerRuntimeClient(); // throws in a few ms when there is none
  } catch {
    return undefined;
  }
  const container = await new testcontainers.GenericContainer("redis:7-alpine")
    .withCommand(["redis-server", "--save", "", "--appendonly", "no", ...extraArgs])
    .withExposedPorts(6379)
    .withWaitStrategy(testcontainers.Wait.forLogMessage("Ready to accept connections"))
    .start();
  return {
    url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
    origin: "a Redis container (testcontainers)",
    stop: async () => void (await container.stop()),
  };
}

/**
 * A `redis-server` child process on `port` (tests that restart Redis need the same address again).
 * Throws the how-to-get-Redis message when there is no redis-server on PATH.
 */
export async function startRedisServer(port: number, extraArgs: string[] = []): Promise<RunningRedis> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extraArgs], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  // events.once() rejects on "error": ENOENT here means there is no redis-server on PATH.
  const started = await once(child, "spawn").then(() => true, () => false);
  if (!started) throw new Error(HOW_TO_GET_REDIS);

  // redis-server prints "Ready to accept connections" once it serves.
  let output = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk;
      if (output.includes("Ready to accept connections")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`redis-server exited with code ${code}: ${output.trim().split("\n").pop()}`)));
  });
  child.stdout!.resume();

  // SIGTERM: Redis shuts down at once, as `redis-cli shutdown nosave` would (nothing is saved);
  // SIGCONT first, for a test that froze it.
  const stop = async () => {
    forget();
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGCONT");
    child.kill("SIGTERM");
    await once(child, "exit");
  };
  const forget = stopOnSignal(stop);
  return { url: `redis://127.0.0.1:${port}`, origin: `redis-server on port ${port}`, pid: child.pid, stop };
}

/** True when a Redis answers PING at this URL within a second. */
export async function answers(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.ping();
    await client.close();
    return true;
  } catch {
    return false;
  }
}

/** A TCP port that is free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

/**
 * The Redis command that broadcasts the chat line `text` on "/" in each adapter's own format, as
 * an emitter would send it: the valid neighbour of the malformed messages the tests publish.
 */
export function rawBroadcast(adapter: "classic" | "sharded" | "streams", text: string): (string | Buffer)[] {
  const packet = { type: 2, data: ["chat message", text], nsp: "/" };
  const opts = { rooms: [], except: [], flags: {} };
  if (adapter === "classic") return ["PUBLISH", "socket.io#/#", msgpack(["emitter", packet, opts])];
  if (adapter === "sharded") return ["SPUBLISH", "socket.io#/#", JSON.stringify({ uid: "emitter", nsp: "/", type: 3, data: { packet, opts } })];
  return ["XADD", "socket.io", "*", "uid", "emitter", "nsp", "/", "type", "3", "data", JSON.stringify({ packet, opts })];
}
