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
import { type ClientToServerEvents, MAX_TEXT_LENGTH, printable, type ServerToClientEvents } from "./lib/chat.ts";
import { readClientConfig } from "./lib/config.ts";
import { EXIT_FAILURE, onUncaught } from "./lib/failures.ts";

// One way out: a wrong argument or environment is one line and exit code 2.
onUncaught((failure) => {
  console.error(failure.line);
  process.exit(failure.code);
});

const { user, serverUrl, transports, withCredentials } = readClientConfig(process.argv.slice(2));

// Default transports: HTTP long-polling first, then the upgrade to WebSocket. withCredentials makes
// socket.io-client keep the cookies the server (or a balancer in front of it) sets, as a browser does.
const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(serverUrl, { transports, withCredentials });
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
  // and a client does not reconnect after that.
  if (reason === "io client disconnect" || reason === "io server disconnect") process.exit(0);
});
