/**
 * tools/start.ts: `npm start`. Finds a Redis (REDIS_URL, else localhost:6379, else a private one it
 * starts and stops), then runs index.ts with REDIS_URL pointing at it.
 *
 *   npm start
 *   PORT=3001 WORKERS=2 npm start
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { findOrStartRedis } from "../support/redis.ts";

// A Redis Cluster or a Sentinel group is named, not found: index.ts reads those variables itself.
const topologyGiven = Boolean(process.env.REDIS_CLUSTER_URLS || process.env.REDIS_SENTINEL_URLS);
let redis;
try {
  redis = topologyGiven ? { url: process.env.REDIS_URL ?? "", origin: "", stop: async () => {} } : await findOrStartRedis();
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
if (!topologyGiven) console.log(`using ${redis.origin}: ${redis.url}`);

// Same runtime and loader as this script (tsx on Node), so index.ts runs as `npx tsx index.ts` would.
const server = spawn(process.execPath, [...process.execArgv, fileURLToPath(new URL("../index.ts", import.meta.url))], {
  env: topologyGiven ? process.env : { ...process.env, REDIS_URL: redis.url },
  stdio: "inherit",
});

// Passed on, so that `kill` on this process stops the server too (index.ts ignores a second
// signal, as when Ctrl-C reaches both through the terminal); Redis is stopped once it has exited.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => server.kill(signal));

server.on("exit", async (code, signal) => {
  await redis.stop();
  process.exit(code ?? (signal ? 1 : 0));
});
