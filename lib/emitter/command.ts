/**
 * lib/emitter/command.ts: emitter.ts's command line, checked whole before Redis is touched, so
 * that a wrong command sends nothing (a UsageError: one line, exit code 2). The post's two forms
 * stay as they were (`emitter.ts` and `emitter.ts <socket id>`); the options reach users, rooms,
 * namespaces, other events and the servers. --list, --online and --ack ask the servers and wait
 * for their answers (lib/emitter/requests.ts), at most --timeout milliseconds.
 */
import { parseArgs } from "node:util";
import { isChatText, looksLikeSocketId, MAX_TEXT_LENGTH, roomNameProblem, userNameProblem, userRoom } from "../chat.ts";
import { ADAPTERS } from "../config.ts";
import { UsageError } from "../failures.ts";

export const EMITTER_USAGE = `usage: emitter.ts [socket id] [options]
  --user NAME     every socket of user NAME, on every worker and host (the room user:NAME); repeatable
  --room R        only the sockets in room R (a socket id is a room of one socket); repeatable
  --except R      none of the sockets in room R (user:NAME for a user's); repeatable
  --nsp /NAME     the namespace (default "/"; the kit's chat also runs on "/lounge")
  --event NAME    the event (default "chat message")
  --message TEXT  the text (default "message from outside", or "Hi guys from Emitter" with a socket id)
  --server-side   send to the servers instead: every worker logs it and relays it to its clients
  --join ROOM     make the targeted sockets join ROOM, on every worker
  --leave ROOM    make the targeted sockets leave ROOM, on every worker
  --disconnect    disconnect the targeted sockets, on every worker (with --user: every socket of that user)
  --list          list the targeted sockets on every worker and host: id, user, rooms; exit 1 if a server did not answer
  --online NAME   "NAME: 2 sockets" (exit 0) or "NAME: offline" (exit 3)
  --ack           with an emit: ask each client for an acknowledgement; exit 0 when all acknowledged, 1 otherwise
  --timeout MS    how long --list, --online and --ack wait for answers (default REDIS_TIMEOUT, 5000)
  --help          this text
A socket id may start with "-": the bare form takes it as it is; write --room=ID and --except=ID.
Environment: REDIS_URL (redis://localhost:6379), ADAPTER (${ADAPTERS.join(" | ")}, as the server's; default classic)`;

export interface EmitterCommand {
  /** "help": print EMITTER_USAGE, nothing else. */
  operation: "help" | "emit" | "server-side" | "join" | "leave" | "disconnect" | "list" | "online";
  /** The targeted sockets: in any of `rooms` (everyone when empty; --user adds user:NAME) and in none of `except`. */
  rooms: string[];
  except: string[];
  nsp: string;
  event: string;
  message: string;
  /** The room of --join or --leave. */
  room: string;
  /** --ack: the emit asks each client for an acknowledgement. */
  ack: boolean;
  /** --online: the user asked about. */
  user: string;
  /** --timeout: how long to wait for the servers' answers; undefined means REDIS_TIMEOUT. */
  timeout?: number;
}

/** The longest --timeout: an answer that takes longer is not one a script waits for. */
const MAX_TIMEOUT_MS = 600_000;

// Events the Socket.IO client keeps for itself: a socket cannot receive them as messages.
const RESERVED_EVENTS = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/** Parses emitter.ts's arguments; throws a UsageError for anything wrong. */
export function readEmitterCommand(argv: string[]): EmitterCommand {
  // Socket ids are URL-safe base64 and 1 in 64 starts with "-": in the post's bare form such an
  // id would be read as options, so it is moved behind "--".
  argv = [...argv];
  if (argv[0]?.startsWith("-") && looksLikeSocketId(argv[0])) argv.push("--", argv.shift()!);

  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        user: { type: "string", multiple: true, default: [] },
        room: { type: "string", multiple: true, default: [] },
        except: { type: "string", multiple: true, default: [] },
        nsp: { type: "string", default: "/" },
        event: { type: "string" },
        message: { type: "string" },
        "server-side": { type: "boolean", default: false },
        join: { type: "string" },
        leave: { type: "string" },
        disconnect: { type: "boolean", default: false },
        list: { type: "boolean", default: false },
        online: { type: "string" },
        ack: { type: "boolean", default: false },
        timeout: { type: "string" },
        help: { type: "boolean", default: false },
      },
    });
  } catch (err) {
    usageError((err as Error).message.split(". ")[0]!);
  }
  const { values: options, positionals } = args;
  if (options.help) return { operation: "help", rooms: [], except: [], nsp: "/", event: "", message: "", room: "", ack: false, user: "" };

  const [socketId, ...extra] = positionals;
  const named = socketId === undefined ? options.room : [socketId, ...options.room];
  const operations = (["server-side", "join", "leave", "disconnect", "list", "online"] as const).filter((name) => options[name]);
  const event = options.event ?? "chat message";
  const message = options.message ?? (socketId === undefined ? "message from outside" : "Hi guys from Emitter");

  if (extra.length > 0) usageError(`one socket id at most, got ${positionals.length} (use --room for more)`);
  if (operations.length > 1) usageError(`--${operations.join(" and --")} do not go together: one operation per run`);
  const operation: EmitterCommand["operation"] = operations.length === 0 ? "emit" : operations[0]!;
  if (options.online !== undefined) {
    const problem = userNameProblem(options.online);
    if (problem) usageError(`--online "${options.online}": ${problem}`);
  }
  if (operation !== "emit" && operation !== "server-side" && (options.event !== undefined || options.message !== undefined)) {
    usageError(`--event and --message go with an emit, not with --${operation}`);
  }
  if (options.ack && operation !== "emit") usageError(`--ack goes with an emit, not with --${operation}`);
  if (options.timeout !== undefined && operation !== "list" && operation !== "online" && !options.ack) {
    usageError("--timeout goes with --list, --online or --ack");
  }
  const timeout = options.timeout === undefined ? undefined : Number(options.timeout);
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_MS)) {
    usageError(`--timeout takes a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, got "${options.timeout}"`);
  }
  if (operation === "online" && (named.length > 0 || options.user.length > 0 || options.except.length > 0)) {
    usageError("--online NAME asks about one user: it takes no socket id, --user, --room or --except");
  }
  if (operation === "server-side" && (named.length > 0 || options.user.length > 0 || options.except.length > 0)) {
    usageError("--server-side reaches every worker: it takes no socket id, --user, --room or --except");
  }
  // socket.io servers have no catch-all for server-side events: the workers handle this one only.
  if (operation === "server-side" && event !== "chat message") usageError(`--server-side sends "chat message", the event the workers handle`);
  for (const room of [...named, ...options.except]) {
    if (!room || room.length > 120 || /\p{Cc}/u.test(room)) usageError(`"${room}" is not a room name or socket id`);
  }
  for (const user of options.user) {
    const problem = userNameProblem(user);
    if (problem) usageError(`--user "${user}": ${problem}`);
  }
  const rooms = operation === "online" ? [userRoom(options.online!)] : [...named, ...options.user.map(userRoom)];
  for (const room of [options.join, options.leave]) {
    const problem = room === undefined ? null : roomNameProblem(room);
    if (problem) usageError(`cannot use room "${room}": ${problem}`);
  }
  if (!/^\/[\p{L}\p{N}\p{P}\p{S}]{0,99}$/u.test(options.nsp)) usageError(`--nsp takes a namespace such as "/" or "/lounge", got "${options.nsp}"`);
  if (!event || event.length > 100 || RESERVED_EVENTS.includes(event)) usageError(`--event cannot be "${event}"`);
  if (!isChatText(message)) usageError(`--message takes 1 to ${MAX_TEXT_LENGTH} characters`);

  return {
    operation,
    rooms,
    except: options.except,
    nsp: options.nsp,
    event,
    message,
    room: options.join ?? options.leave ?? "",
    ack: options.ack,
    user: options.online ?? "",
    ...(timeout === undefined ? {} : { timeout }),
  };
}

function usageError(problem: string): never {
  throw new UsageError(`emitter.ts: ${problem} (see --help)`);
}
