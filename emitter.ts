/**
 * emitter.ts: reaches the clients (or the servers) of index.ts without connecting to it. It only
 * writes to Redis; the server's Redis adapter acts on it as if a worker had sent it.
 *
 *   npx tsx emitter.ts                         everyone gets "message from outside"
 *   npx tsx emitter.ts <socket id>             only that socket gets "Hi guys from Emitter"
 *   npx tsx emitter.ts --room lobby --message "hi lobby"
 *   npx tsx emitter.ts --server-side           every worker logs it and relays it to its clients
 *   npx tsx emitter.ts --help                  every option (lib/emitter-command.ts)
 *   (also: npm run emit -- [args], bun emitter.ts, deno run -A emitter.ts)
 *
 * Environment: REDIS_URL (or REDIS_CLUSTER_URLS, or REDIS_SENTINEL_URLS + REDIS_SENTINEL_MASTER),
 * ADAPTER: the server's (docs/reference/configuration.md).
 */
import { Emitter } from "@socket.io/redis-emitter";
import { clusterEmitter, type NamespaceEmitter } from "./lib/cluster-emitter.ts";
import { EXIT_FAILURE, readRedisConfig } from "./lib/config.ts";
import { readEmitterCommand } from "./lib/emitter-command.ts";
import { connectWithoutRetries, redisFailure } from "./lib/redis-connections.ts";
import { publishesInFlight } from "./lib/redis-shims.ts";

const command = readEmitterCommand(process.argv.slice(2)); // a wrong command: one line, exit code 2
const config = readRedisConfig();
// Redis out of reach or not answering: one line, exit code 1. So is a PUBLISH refused later: the official emitter
// does not return it, so it cannot be awaited below (an ACL without PUBLISH, a master that died).
const redisClient = await connectWithoutRetries(config, refused);

// The official emitter speaks the classic adapter's format; ours the sharded and streams adapters'.
const io: NamespaceEmitter =
  config.adapter === "classic" ? new Emitter(redisClient).of(command.nsp) : clusterEmitter(redisClient, config.adapter).of(command.nsp);

try {
  const targets = io.to(command.rooms).except(command.except);
  // The post's two forms: `emitter.ts <socket id>` sends to that socket's room, `emitter.ts` to all
  // (an empty list of rooms); --room, --except, --event and --message only change the arguments.
  if (command.operation === "emit") await targets.emit(command.event, command.message);
  // The kit's other operations.
  else if (command.operation === "server-side") await io.serverSideEmit(command.event, command.message);
  else if (command.operation === "join") await targets.socketsJoin(command.room);
  else if (command.operation === "leave") await targets.socketsLeave(command.room);
  else await targets.disconnectSockets();
  // The official emitter does not wait for its PUBLISH: wait here, then close.
  await Promise.all(publishesInFlight(redisClient));
  await redisClient.close();
} catch (err) {
  refused(err);
}

function refused(err: unknown): never {
  console.error(`Redis refused the message: ${redisFailure(err)}`);
  process.exit(EXIT_FAILURE);
}
