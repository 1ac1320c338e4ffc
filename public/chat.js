// chat.js: the chat page's script, the browser's client.ts. It speaks the same events: "chat
// message" (user, text) up and (text) down, "join" and "leave" with an answer, and shows any other
// event by name, as client.ts does for emitter.ts --event. What others send is only ever put in
// the page as text (textContent), never as HTML. Open mode: the name typed names the user (the
// "name" event). Auth mode: the page shows a token, from #token=... in its address (read, then
// wiped from the address bar and history) or pasted when the server asks for one; it lives in this
// page's memory only, never in a query string that would land in access logs.
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
// The transports the server accepts, in its order: "websocket" alone when it refuses long-polling.
// A copy of the page not served by the kit (the mark left as it is) takes Socket.IO's default.
const servedTransports = document.querySelector('meta[name="transports"]').content;
const transports = /^(polling|websocket)(,(polling|websocket))*$/.test(servedTransports) ? servedTransports.split(",") : ["polling", "websocket"];
if (/^\d+$/.test(servedBy)) setFact("page-worker", `worker ${servedBy}`, servedBy);
else setFact("page-worker", `${location.origin} (not the cluster)`, "");

// The Socket.IO client comes from the server it talks to, which serves it at /socket.io/socket.io.js.
const clientScript = document.createElement("script");
clientScript.src = new URL("/socket.io/socket.io.js", serverUrl).href;
clientScript.addEventListener("load", start);
clientScript.addEventListener("error", () => setStatus("refused", `cannot load ${clientScript.src}`));
document.head.append(clientScript);

// A token given in the fragment, which browsers never send to a server.
let token = new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
if (location.hash) history.replaceState(null, "", location.pathname + location.search);

/** The user a token names (its sub), for this page's own display only: the server checks the token. */
function tokenUser(jwt) {
  try {
    const payload = JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.sub === "string" ? payload.sub : "";
  } catch {
    return "";
  }
}

/** With a token, the name field shows the token's user and cannot be changed. */
function showIdentity() {
  const name = element("name");
  name.readOnly = token !== "";
  if (token) name.value = tokenUser(token);
}

function askForToken(why) {
  element("auth").hidden = false;
  element("auth-why").textContent = why;
  element("token").focus();
}

function start() {
  // The server's transports, as client.ts: by default HTTP long-polling first, then the upgrade to
  // WebSocket; WebSocket alone when the server was started with TRANSPORTS=websocket. The handshake's auth is asked again at each connection: a token pasted later is used then.
  // Open mode: a name already typed goes with the handshake (after a reconnection, say).
  let claimedName = "";
  let handshakeName = "";
  const options = {
    transports,
    auth: (send) => {
      handshakeName = token ? "" : element("name").value.trim();
      send(token ? { token } : handshakeName ? { name: handshakeName } : {});
    },
  };
  const socket = server === null ? io(options) : io(server, options);
  showIdentity();
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
    expired = false;
    element("auth").hidden = true;
    // A recovered socket keeps its user; a new one has the name its handshake carried, if any.
    if (!socket.recovered) claimedName = handshakeName;
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

  let expired = false;
  socket.on("disconnect", (reason) => {
    show("info", "disconnected");
    setFact("socket-worker", "-", "");
    // "io server disconnect" (emitter.ts --disconnect, or the token's expiry): the server let go
    // on purpose, and the client does not come back on its own after that.
    if (expired) setStatus("refused", "the token expired: show a new one to come back");
    else if (reason === "io server disconnect") setStatus("disconnected", "disconnected by the server: reload to come back");
    else setStatus("disconnected", `disconnected (${reason})`);
  });

  socket.io.on("reconnect_attempt", (attempt) => setStatus("reconnecting", `reconnecting (attempt ${attempt})`));

  socket.on("connect_error", (err) => {
    if (socket.active) return setStatus("reconnecting", `cannot connect (${err.message}), retrying`);
    // The server cannot check tokens right now (its identity provider is away): ask again shortly.
    if (err.data?.retry === true) {
      setStatus("reconnecting", `${err.message}, retrying`);
      return setTimeout(() => socket.connect(), 2000);
    }
    setStatus("refused", `refused by the server (${err.message})`);
    if (err.message.startsWith("unauthorized:")) askForToken(err.message);
  });

  // Auth mode: the token's time is up; the server lets the socket go right after.
  socket.on("token expired", () => {
    expired = true;
    show("info", "the token expired");
    token = "";
    showIdentity();
    askForToken("the token expired");
  });

  element("auth").addEventListener("submit", (submit) => {
    submit.preventDefault();
    token = element("token").value.trim();
    element("token").value = "";
    showIdentity();
    socket.connect();
  });

  // A sender that asks for an acknowledgement (emitter.ts --ack) gets one once the text is shown:
  // socket.io passes the ack callback as the last argument.
  const acknowledge = (args) => {
    const ack = args[args.length - 1];
    if (typeof ack === "function") ack();
  };

  socket.on("chat message", (text, ...rest) => {
    show("received", String(text));
    acknowledge(rest);
  });

  // Any other event (emitter.ts --event NAME) is shown with its name.
  socket.onAny((event, ...args) => {
    if (event === "chat message" || event === "token expired") return;
    const values = args.filter((value) => typeof value !== "function").map((value) => (typeof value === "string" ? value : JSON.stringify(value)));
    show("event", `${event}: ${values.join(", ")}`);
    acknowledge(args);
  });

  element("send").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const name = element("name").value.trim();
    const input = element("text");
    const line = input.value;
    if (!name) return element("name").focus();
    input.value = "";

    // Open mode: the name typed is this socket's user, for emitter.ts --user.
    if (!token && name !== claimedName) {
      claimedName = name;
      socket.emit("name", name, (error) => error && show("info", `cannot use the name ${name}: ${error}`));
    }

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
