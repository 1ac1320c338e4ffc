/**
 * emitter.ts: reaches the clients (or the servers) of index.ts without connecting to it. It only
 * writes to Redis; the server's Redis adapter acts on it as if a worker had sent it.
 *
 *   npx tsx emitter.ts                         everyone gets "message from outside"
 *   npx tsx emitter.ts <socket id>             only that socket gets "Hi guys from Emitter"
 *   npx tsx emitter.ts --room lobby --message "hi lobby"
 *   npx tsx emitter.ts --server-side           every worker logs it and relays it to its clients
 *   npx tsx emitter.ts --room lobby --disconnect
 *   npx tsx emitter.ts --help                  every option
 *   (also: npm run emit -- [args], bun emitter.ts, deno run -A emitter.ts)
 *
 * Environment: REDIS_URL (redis://localhost:6379), ADAPTER (classic | sharded | streams: the server's).
 */
import { parseArgs } from "node:util";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { clusterEmitter, type NamespaceEmitter } from "./cluster-emitter.ts";
import { ADAPTERS, isAdapterName, isChatText, looksLikeSocketId, MAX_TEXT_LENGTH, redactUrl, redisFailure, roomNameProblem } from "./shared.ts";

const REDIS_URL = process.env.REDIS_URL ?? "redis://localhost:6379";
const ADAPTER = process.env.ADAPTER ?? "classic";

const USAGE = `usage: emitter.ts [socket id] [options]
  --room R        only the sockets in room R (a socket id is a room of one socket); repeatable
  --except R      none of the sockets in room R; repeatable
  --nsp /NAME     the namespace (default "/"; the kit's chat also runs on "/lounge")
  --event NAME    the event (default "chat message")
  --message TEXT  the text (default "message from outside", or "Hi guys from Emitter" with a socket id)
  --server-side   send to the servers instead: every worker logs it and relays it to its clients
  --join ROOM     make the targeted sockets join ROOM, on every worker
  --leave ROOM    make the targeted sockets leave ROOM, on every worker
  --disconnect    disconnect the targeted sockets, on every worker
  --help          this text
A socket id may start with "-": the bare form takes it as it is; write --room=ID and --except=ID.
Environment: REDIS_URL (redis://localhost:6379), ADAPTER (${ADAPTERS.join(" | ")}, as the server's; default classic)`;

// Events the Socket.IO client keeps for itself: a socket cannot receive them as messages.
const RESERVED_EVENTS = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

// Socket ids are URL-safe base64 and 1 in 64 starts with "-": in the post's bare form
// (`emitter.ts <socket id>`) such an id would be read as options, so it is moved behind "--".
const argv = process.argv.slice(2);
if (argv[0]?.startsWith("-") && looksLikeSocketId(argv[0])) argv.push("--", argv.shift()!);

let args;
try {
  args = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      room: { type: "string", multiple: true, default: [] },
      except: { type: "string", multiple: true, default: [] },
      nsp: { type: "string", default: "/" },
      event: { type: "string" },
      message: { type: "string" },
      "server-side": { type: "boolean", default: false },
      join: { type: "string" },
      leave: { type: "string" },
      disconnect: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
} catch (err) {
  usageError((err as Error).message.split(". ")[0]!);
}
const { values: options, positionals } = args;

if (options.help) {
  console.log(USAGE);
  process.exit(0);
}

// Check everything before touching Redis: a wrong command line sends nothing.
const [socketId, ...extra] = positionals;
const rooms = socketId === undefined ? options.room : [socketId, ...options.room];
const operations = (["server-side", "join", "leave", "disconnect"] as const).filter((name) => options[name]);
const event = options.event ?? "chat message";
const message = options.message ?? (socketId === undefined ? "message from outside" : "Hi guys from Emitter");

if (!isAdapterName(ADAPTER)) usageError(`ADAPTER must be one of ${ADAPTERS.join(", ")}, got "${ADAPTER}"`);
if (extra.length > 0) usageError(`one socket id at most, got ${positionals.length} (use --room for more)`);
if (operations.length > 1) usageError(`--${operations.join(" and --")} do not go together: one operation per run`);
const operation = operations.length === 0 ? "emit" : operations[0]!;
if (operation !== "emit" && operation !== "server-side" && (options.event !== undefined || options.message !== undefined)) {
  usageError(`--event and --message go with an emit, not with --${operation}`);
}
if (operation === "server-side" && (rooms.length > 0 || options.except.length > 0)) {
  usageError("--server-side reaches every worker: it takes no socket id, --room or --except");
}
// socket.io servers have no catch-all for server-side events: the workers handle this one only.
if (operation === "server-side" && event !== "chat message") usageError(`--server-side sends "chat message", the event the workers handle`);
for (const room of [...rooms, ...options.except]) {
  if (!room || room.length > 100 || /\p{Cc}/u.test(room)) usageError(`"${room}" is not a room name or socket id`);
}
for (const room of [options.join, options.leave]) {
  const problem = room === undefined ? null : roomNameProblem(room);
  if (problem) usageError(`cannot use room "${room}": ${problem}`);
}
if (!/^\/[\p{L}\p{N}\p{P}\p{S}]{0,99}$/u.test(options.nsp)) usageError(`--nsp takes a namespace such as "/" or "/lounge", got "${options.nsp}"`);
if (!event || event.length > 100 || RESERVED_EVENTS.includes(event)) usageError(`--event cannot be "${event}"`);
if (!isChatText(message)) usageError(`--message takes 1 to ${MAX_TEXT_LENGTH} characters`);

let redisClient;
try {
  // No retries: a one-shot command should fail fast and say why.
  redisClient = createClient({ url: REDIS_URL, socket: { connectTimeout: 5000, reconnectStrategy: false } });
  redisClient.on("error", () => {}); // connect() below reports the failure
  await redisClient.connect();
} catch (err) {
  console.error(`cannot connect to Redis at ${redactUrl(REDIS_URL)}: ${redisFailure(err)}`);
  process.exit(1);
}

// The official emitter does not return its PUBLISH, so a refusal (an ACL without PUBLISH, say)
// cannot be awaited below: it surfaces as an unhandled rejection, reported here in one line.
process.on("unhandledRejection", (err) => {
  console.error(`Redis refused the message: ${redisFailure(err)}`);
  process.exit(1);
});

// The official emitter speaks the classic adapter's format; ours the sharded and streams adapters'.
const emitter: NamespaceEmitter =
  ADAPTER === "classic" ? new Emitter(redisClient).of(options.nsp) : clusterEmitter(redisClient, ADAPTER).of(options.nsp);
const targets = emitter.to(rooms).except(options.except);

try {
  if (operation === "server-side") await emitter.serverSideEmit(event, message);
  else if (operation === "join") await targets.socketsJoin(options.join!);
  else if (operation === "leave") await targets.socketsLeave(options.leave!);
  else if (operation === "disconnect") await targets.disconnectSockets();
  else await targets.emit(event, message);
  // The official emitter does not wait for its PUBLISH; close() sends what is queued, then ends.
  await redisClient.close();
} catch (err) {
  console.error(`Redis refused the message: ${redisFailure(err)}`);
  process.exit(1);
}

function usageError(problem: string): never {
  console.error(`emitter.ts: ${problem} (see --help)`);
  process.exit(2);
}
