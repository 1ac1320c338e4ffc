/**
 * test/redis-server.ts: a redis-server child on a port the test chooses, so that a test can stop
 * Redis and start it again on the same address (startPrivateRedis picks a new port every time),
 * or give it TLS files that only exist on this machine.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";

export interface RedisProcess {
  readonly child: ChildProcess;
  /** Stops Redis (SIGTERM: it shuts down at once, as `redis-cli shutdown nosave` would). */
  stop(): Promise<void>;
}

export async function startRedisServer(port: number, extraArgs: string[] = []): Promise<RedisProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extraArgs], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  await new Promise<void>((resolve, reject) => {
    child.once("error", reject);
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk;
      if (output.includes("Ready to accept connections")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`redis-server exited with code ${code}: ${output.trim().split("\n").pop()}`)));
  });
  child.stdout!.resume();
  return {
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}
