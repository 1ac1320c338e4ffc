/**
 * client.ts: a terminal chat client. Each line you type goes to everyone else in the chat;
 * what they (or emitter.ts) send is printed as it arrives. `/join ROOM` and `/leave ROOM` enter
 * and leave a room, which emitter.ts --room can then reach; emitter.ts --user reaches you by name.
 *
 *   npx tsx client.ts A       (or: npm run client -- A)
 *   bun client.ts A
 *   deno run -A client.ts A
 *   SERVER_URL=http://localhost:3000/lounge npx tsx client.ts A     the chat in the /lounge namespace
 *
 * Environment: SERVER_URL (http://localhost:3000; a path names the namespace), TRANSPORTS
 * (polling,websocket; "websocket" alone for a balancer without stickiness), WITH_CREDENTIALS
 * (1 keeps cookies, which a cookie-sticky balancer such as HAProxy's needs; see
 * docs/reference/production.md), AUTH_TOKEN (a token for a server in auth mode, which then names
 * you; npm run token -- NAME makes one: docs/learn/users.md).
 */
import { createInterface } from "node:readline";
import { io, type Socket } from "socket.io-client";
import { type ClientToServerEvents, MAX_TEXT_LENGTH, printable, type ServerToClientEvents } from "./lib/chat.ts";
import { readClientConfig } from "./lib/config.ts";
import { EXIT_FAILURE, onUncaught } from "./lib/failures.ts";

// One way out: a wrong argument or environment is one line and exit code 2.
onUncaught((failure) => {
  console.error(failure.line);
  process.exit(failure.code);
});

const { user, token, serverUrl, transports, withCredentials } = readClientConfig(process.argv.slice(2));

// Default transports: HTTP long-polling first, then the upgrade to WebSocket. withCredentials makes
// socket.io-client keep the cookies the server (or a balancer in front of it) sets, as a browser does.
// The handshake names the user (open mode) or shows the token that does (auth mode).
const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(serverUrl, {
  transports,
  withCredentials,
  auth: token === undefined ? { name: user } : { name: user, token },
});
let connectedOnce = false;
let reportedOutage = false;

const rl = createInterface({ input: process.stdin });

rl.on("line", (line) => {
  const command = /^\/(join|leave)(?:\s+(.*))?$/.exec(line);
  if (!command) {
    // The server would ignore these; say so here instead of sending them.
    if (line.trim() === "") return;
    if (line.length > MAX_TEXT_LENGTH) console.error(`Error: not sent, a line has at most ${MAX_TEXT_LENGTH} characters`);
    else socket.emit("chat message", user, line);
    return;
  }
  const verb = command[1] as "join" | "leave";
  const room = (command[2] ?? "").trim();
  if (!room) {
    console.log(`usage: /${verb} ROOM`);
    return;
  }
  // The server checks the name and answers with an error, or null.
  socket.emit(verb, room, (error) => {
    console.log(error ? `cannot ${verb} ${printable(room)}: ${error}` : `${verb === "join" ? "joined" : "left"} ${printable(room)}`);
  });
});

// End of input: let the lines already typed go out, then leave; while the server is away, wait
// for it a few seconds, not forever.
rl.on("close", () => {
  if (socket.connected) return socket.disconnect();
  socket.once("connect", () => socket.disconnect());
  setTimeout(() => {
    console.error("Error: the server did not come back, lines typed since were not sent");
    process.exit(EXIT_FAILURE);
  }, 5000).unref();
});

socket.on("connect", () => {
  connectedOnce = true;
  reportedOutage = false;
  // With ADAPTER=streams the server replays what was missed during a short outage.
  console.log(socket.recovered ? `reconnected, id: ${socket.id}, missed messages follow` : `connected, id: ${socket.id}`);
});

// A sender that asks for an acknowledgement (emitter.ts --ack) gets one once the line is shown: the
// socket.io client passes the ack callback as the last argument.
function acknowledge(args: unknown[]): void {
  const ack = args.at(-1);
  if (typeof ack === "function") ack();
}

socket.on("chat message", (data, ...rest: unknown[]) => {
  console.log(printable(String(data)));
  acknowledge(rest);
});

// Any other event (emitter.ts --event NAME) is printed with its name.
socket.onAny((event: string, data: unknown, ...rest: unknown[]) => {
  if (event === "chat message" || event === "token expired") return;
  console.log(printable(`${event}: ${String(data)}`));
  acknowledge(rest);
});

// Auth mode: the token's time is up, and the server lets this socket go: a new token is needed.
socket.on("token expired", () => {
  console.error("Error: the token expired, start again with a new AUTH_TOKEN");
  process.exit(EXIT_FAILURE);
});

/** How long to wait before asking a server again that could not check the token (its identity provider is away). */
const RETRY_CHECK_MS = 2000;

socket.on("connect_error", (err) => {
  // The server is there but cannot check tokens right now: asking again later may work
  // (socket.io-client does not retry a refusal by itself).
  if ((err as Error & { data?: { retry?: unknown } }).data?.retry === true) {
    if (!reportedOutage) console.error(`Error: ${err.message}, retrying`);
    reportedOutage = true;
    setTimeout(() => socket.connect(), RETRY_CHECK_MS);
    return;
  }
  // Refused by the server, not out of reach: retrying with the same token cannot help.
  if (err.message.startsWith("unauthorized:")) {
    console.error(`Error: ${serverUrl} refused the connection: ${err.message}`);
    process.exit(EXIT_FAILURE);
  }
  if (!connectedOnce) {
    // Never reached the server: retrying would only hide a wrong URL or a stopped server.
    console.error(`Error: cannot connect to ${serverUrl}: ${err.message}`);
    process.exit(EXIT_FAILURE);
  }
  // The server went away after we were connected: the client retries on its own, say it once.
  if (!reportedOutage) {
    reportedOutage = true;
    console.error(`Error: ${err.message}, retrying`);
  }
});

socket.on("disconnect", (reason) => {
  console.log("disconnected");
  // "io server disconnect": the server let go of this socket on purpose (emitter.ts --disconnect),
  // and a client does not reconnect after that. "io client disconnect" is ours, at the end of
  // input: the process ends by itself once the connection has written what was typed (over
  // long-polling that takes one more request; an exit here would lose it).
  if (reason === "io server disconnect") process.exit(0);
});
