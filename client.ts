/**
 * client.ts: a terminal chat client. Each line you type goes to everyone else in the chat;
 * what they (or emitter.ts) send is printed as it arrives. `/join ROOM` and `/leave ROOM` enter
 * and leave a room, which emitter.ts --room can then reach.
 *
 *   npx tsx client.ts A       (or: npm run client -- A)
 *   bun client.ts A
 *   deno run -A client.ts A
 *   SERVER_URL=http://localhost:3000/lounge npx tsx client.ts A     the chat in the /lounge namespace
 *
 * Environment: SERVER_URL (http://localhost:3000; a path names the namespace), TRANSPORTS
 * (polling,websocket; "websocket" alone for a balancer without stickiness), WITH_CREDENTIALS
 * (1 keeps cookies, which a cookie-sticky balancer such as HAProxy's needs). See
 * docs/reference/production.md.
 */
import { createInterface } from "node:readline";
import { io, type Socket } from "socket.io-client";
import type { ClientToServerEvents, ServerToClientEvents } from "./lib/chat-events.ts";
import { EXIT_FAILURE, EXIT_USAGE } from "./lib/config.ts";
import { isChatText, MAX_TEXT_LENGTH, printable } from "./lib/text.ts";

const SERVER_URL = process.env.SERVER_URL ?? "http://localhost:3000";
const TRANSPORTS = (process.env.TRANSPORTS ?? "polling,websocket").split(",").map((name) => name.trim());
const WITH_CREDENTIALS = process.env.WITH_CREDENTIALS ?? "0";
const user = process.argv[2];

if (!user) {
  console.error("usage: client.ts <user name>");
  process.exit(EXIT_USAGE);
}
if (!isChatText(user)) {
  console.error(`the user name must be 1 to ${MAX_TEXT_LENGTH} characters`);
  process.exit(EXIT_USAGE);
}
if (!URL.canParse(SERVER_URL) || !/^(http|https|ws|wss):$/.test(new URL(SERVER_URL).protocol)) {
  console.error(`SERVER_URL must be an http(s) or ws(s) URL, got "${SERVER_URL}"`);
  process.exit(EXIT_USAGE);
}

if (TRANSPORTS.length === 0 || TRANSPORTS.some((name) => name !== "polling" && name !== "websocket")) {
  console.error(`TRANSPORTS must be polling, websocket or both (comma-separated), got "${process.env.TRANSPORTS}"`);
  process.exit(2);
}
if (WITH_CREDENTIALS !== "0" && WITH_CREDENTIALS !== "1") {
  console.error(`WITH_CREDENTIALS must be 0 or 1, got "${WITH_CREDENTIALS}"`);
  process.exit(2);
}

// Default transports: HTTP long-polling first, then the upgrade to WebSocket. withCredentials makes
// socket.io-client keep the cookies the server (or a balancer in front of it) sets, as a browser does.
const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(SERVER_URL, {
  transports: TRANSPORTS as ("polling" | "websocket")[],
  withCredentials: WITH_CREDENTIALS === "1",
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

socket.on("chat message", (data) => {
  console.log(printable(String(data)));
});

// Any other event (emitter.ts --event NAME) is printed with its name.
socket.onAny((event: string, data: unknown) => {
  if (event !== "chat message") console.log(printable(`${event}: ${String(data)}`));
});

socket.on("connect_error", (err) => {
  if (!connectedOnce) {
    // Never reached the server: retrying would only hide a wrong URL or a stopped server.
    console.error(`Error: cannot connect to ${SERVER_URL}: ${err.message}`);
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
  // and a client does not reconnect after that.
  if (reason === "io client disconnect" || reason === "io server disconnect") process.exit(0);
});
