// chat.js: the chat page's script, the browser's client.ts. It speaks the same events: "chat
// message" (user, text) up and (text) down, "join" and "leave" with an answer, and shows any other
// event by name, as client.ts does for emitter.ts --event. What others send is only ever put in
// the page as text (textContent), never as HTML.
"use strict";

// The page talks to the server that served it. ?server=URL points it elsewhere, for a copy of the
// page hosted on another origin (which the server must list in ALLOWED_ORIGINS); a path in the URL
// names the namespace, as in client.ts's SERVER_URL (?server=/lounge is this server's /lounge).
const server = new URLSearchParams(location.search).get("server");
const serverUrl = new URL(server ?? "/", location.href);

const element = (id) => document.getElementById(id);
const MAX_LINES = 500;

/** Adds a line to the conversation: kind is received, own, event or info. */
function show(kind, text) {
  const line = document.createElement("li");
  line.dataset.kind = kind;
  line.textContent = text;
  const list = element("messages");
  list.append(line);
  while (list.childElementCount > MAX_LINES) list.firstElementChild.remove();
  line.scrollIntoView({ block: "end" });
}

function setStatus(state, text) {
  const status = element("status");
  status.dataset.state = state;
  status.textContent = text;
}

/** Sets a fact in the panel at the top, and the same value as a data attribute for tests. */
function setFact(id, text, value = text) {
  element(id).textContent = text;
  element(id).dataset.value = value;
}

// The worker that served the page wrote its id into it; a copy served elsewhere has none.
const servedBy = document.querySelector('meta[name="served-by"]').content;
if (/^\d+$/.test(servedBy)) setFact("page-worker", `worker ${servedBy}`, servedBy);
else setFact("page-worker", `${location.origin} (not the cluster)`, "");

// The Socket.IO client comes from the server it talks to, which serves it at /socket.io/socket.io.js.
const clientScript = document.createElement("script");
clientScript.src = new URL("/socket.io/socket.io.js", serverUrl).href;
clientScript.addEventListener("load", start);
clientScript.addEventListener("error", () => setStatus("refused", `cannot load ${clientScript.src}`));
document.head.append(clientScript);

function start() {
  // Default transports, as client.ts: HTTP long-polling first, then the upgrade to WebSocket.
  const socket = server === null ? io() : io(server);
  const rooms = new Set();
  const showRooms = () => setFact("rooms", rooms.size === 0 ? "-" : [...rooms].join(" "));

  // The transport is recorded when the connection opens and when it upgrades: by the time
  // "connect" fires the upgrade may already be done. Each reconnection opens a new one.
  socket.io.on("open", () => {
    const engine = socket.io.engine;
    const used = [engine.transport.name];
    setFact("transport", used.join(" → "), used.join(" "));
    engine.on("upgrade", (transport) => {
      used.push(transport.name);
      setFact("transport", used.join(" → "), used.join(" "));
    });
  });

  socket.on("connect", () => {
    setStatus("connected", "connected");
    setFact("socket-id", socket.id);
    // Rooms live on the server's side of a socket: a new socket is in none (ADAPTER=streams may
    // recover the old one, rooms included).
    if (!socket.recovered) rooms.clear();
    showRooms();
    // Which worker holds this socket: only the socket's own worker can answer over it.
    setFact("socket-worker", "asking", "");
    socket.timeout(5000).emit("worker", (err, id) => {
      if (err || !Number.isInteger(id)) setFact("socket-worker", "unknown (no answer)", "");
      else setFact("socket-worker", `worker ${id}`, String(id));
      show("info", `${socket.recovered ? "reconnected, missed messages follow" : "connected"}, id: ${socket.id}`);
    });
  });

  socket.on("disconnect", (reason) => {
    show("info", "disconnected");
    setFact("socket-worker", "-", "");
    // "io server disconnect" (emitter.ts --disconnect): the server let go on purpose, and the
    // client does not come back on its own after that.
    if (reason === "io server disconnect") setStatus("disconnected", "disconnected by the server: reload to come back");
    else setStatus("disconnected", `disconnected (${reason})`);
  });

  socket.io.on("reconnect_attempt", (attempt) => setStatus("reconnecting", `reconnecting (attempt ${attempt})`));

  socket.on("connect_error", (err) => {
    if (socket.active) setStatus("reconnecting", `cannot connect (${err.message}), retrying`);
    else setStatus("refused", `refused by the server (${err.message})`);
  });

  socket.on("chat message", (text) => show("received", String(text)));

  // Any other event (emitter.ts --event NAME) is shown with its name.
  socket.onAny((event, ...args) => {
    if (event === "chat message") return;
    const values = args.map((value) => (typeof value === "string" ? value : JSON.stringify(value)));
    show("event", `${event}: ${values.join(", ")}`);
  });

  element("send").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const name = element("name").value.trim();
    const input = element("text");
    const line = input.value;
    if (!name) return element("name").focus();
    input.value = "";

    const command = /^\/(join|leave)(?:\s+(.*))?$/.exec(line);
    if (!command) {
      if (line.trim() === "") return; // the server would ignore it
      socket.emit("chat message", name, line);
      show("own", `${line} from ${name}`); // what the others see; the server sends nobody's own lines back
      return;
    }
    const verb = command[1];
    const room = (command[2] ?? "").trim();
    if (!room) return show("info", `usage: /${verb} ROOM`);
    // The server checks the name and answers with an error, or null.
    socket.emit(verb, room, (error) => {
      if (error) return show("info", `cannot ${verb} ${room}: ${error}`);
      if (verb === "join") rooms.add(room);
      else rooms.delete(room);
      showRooms();
      show("info", `${verb === "join" ? "joined" : "left"} ${room}`);
    });
  });
}
