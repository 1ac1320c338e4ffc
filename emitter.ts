/**
 * emitter.ts: reaches the clients (or the servers) of index.ts without connecting to it. It only
 * writes to Redis; the server's Redis adapter acts on it as if a worker had sent it.
 *
 *   npx tsx emitter.ts                         everyone gets "message from outside"
 *   npx tsx emitter.ts <socket id>             only that socket gets "Hi guys from Emitter"
 *   npx tsx emitter.ts --room lobby --message "hi lobby"
 *   npx tsx emitter.ts --server-side           every worker logs it and relays it to its clients
 *   npx tsx emitter.ts --list                  every socket on every worker and host, its user and rooms
 *   npx tsx emitter.ts --online alice          "alice: 2 sockets" (exit 0) or "alice: offline" (exit 3)
 *   npx tsx emitter.ts --ack --user alice      "acknowledged by 2 of 2 clients" (exit 0; 1 if one did not)
 *   npx tsx emitter.ts --help                  every option (lib/emitter/command.ts)
 *   (also: npm run emit -- [args], bun emitter.ts, deno run -A emitter.ts)
 *
 * Environment: REDIS_URL (or REDIS_CLUSTER_URLS, or REDIS_SENTINEL_URLS + REDIS_SENTINEL_MASTER),
 * ADAPTER: the server's (docs/reference/configuration.md).
 */
import { Emitter } from "@socket.io/redis-emitter";
import { readRedisConfig } from "./lib/config.ts";
import { askServers, asksServers, type Report } from "./lib/emitter/answers.ts";
import { EMITTER_USAGE, readEmitterCommand } from "./lib/emitter/command.ts";
import { type NamespaceEmitter, shardedStreamsEmitter } from "./lib/emitter/sharded-streams.ts";
import { Failure, onUncaught } from "./lib/failures.ts";
import { redisFailure } from "./lib/redis/client.ts";
import { connectEmitterRedis } from "./lib/redis/connections.ts";
import { commandsInFlight } from "./lib/redis/shims.ts";

// One way out: a wrong command is one line and exit code 2, a failure one line and exit code 1.
onUncaught((failure) => {
  console.error(failure.line);
  process.exit(failure.code);
});

const command = readEmitterCommand(process.argv.slice(2));
if (command.operation === "help") {
  console.log(EMITTER_USAGE);
  process.exit(0);
}
const config = readRedisConfig();
// --list, --online and --ack ask the servers and wait for their answers, up to --timeout.
const asks = asksServers(command);
const answerTimeout = command.timeout ?? config.redisTimeout;
// Redis out of reach, or not answering within REDIS_TIMEOUT (plus the wait for answers): one line, exit 1.
const redisClient = await connectEmitterRedis(config, undefined, asks ? answerTimeout : 0);

if (asks) {
  let report: Report;
  try {
    report = await askServers(redisClient, config.adapter, command, answerTimeout);
  } catch (err) {
    throw new Failure(`Redis refused the question: ${redisFailure(err)}`);
  }
  await redisClient.close();
  // Exits once the lines are written: a long --list to a pipe may still be on its way.
  await new Promise((written) => process.stdout.write(`${report.lines.join("\n")}\n`, written));
  process.exit(report.code);
}

// The official emitter speaks the classic adapter's format; ours the sharded and streams adapters'.
const io: NamespaceEmitter =
  config.adapter === "classic" ? new Emitter(redisClient).of(command.nsp) : shardedStreamsEmitter(redisClient, config.adapter).of(command.nsp);

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
  // The official emitter does not return its PUBLISH: wait for it here, then close.
  await Promise.all(commandsInFlight(redisClient));
} catch (err) {
  // An ACL without PUBLISH, a master that died meanwhile.
  throw new Failure(`Redis refused the message: ${redisFailure(err)}`);
}
await redisClient.close();
