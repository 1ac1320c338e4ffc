/**
 * bench/load-clients.ts: a share of bench/load.ts's clients, in a process of its own so that the
 * clients do not compete with the script that publishes. Started by bench/load.ts through IPC.
 *
 * Each socket expects "load 0", "load 1", ... in that order; anything else is counted.
 */
import { io, type Socket } from "socket.io-client";
import type { ServerToClientEvents } from "../lib/chat.ts";

type Command = { type: "connect"; url: string; count: number } | { type: "progress" } | { type: "leave" };

interface Tracked {
  socket: Socket<ServerToClientEvents>;
  next: number; // the number of the next message it expects
  received: number;
  duplicates: number;
  outOfOrder: number;
}

const tracked: Tracked[] = [];
const disconnectReasons: Record<string, number> = {};
const send = (message: object) => process.send!(message);

process.on("message", async (command: Command) => {
  if (command.type === "connect") {
    // A few at a time, as real clients would arrive, rather than all in one burst.
    let failed = 0;
    for (let i = 0; i < command.count; i += 25) {
      const batch = Array.from({ length: Math.min(25, command.count - i) }, () => track(command.url));
      const ok = await Promise.all(batch.map(connectWithin20s));
      failed += ok.filter((connected) => !connected).length;
    }
    // A client that never connected is left out of the figures and counted apart.
    for (const t of tracked.filter((t) => !t.socket.connected)) tracked.splice(tracked.indexOf(t), 1);
    send({ type: "connected", ids: tracked.map((t) => t.socket.id), failed });
  } else if (command.type === "progress") {
    send({
      type: "progress",
      lowest: Math.min(...tracked.map((t) => t.next)),
      delivered: tracked.reduce((sum, t) => sum + t.received, 0),
      duplicates: tracked.reduce((sum, t) => sum + t.duplicates, 0),
      outOfOrder: tracked.reduce((sum, t) => sum + t.outOfOrder, 0),
      disconnected: tracked.filter((t) => !t.socket.connected).length,
      disconnectReasons,
    });
  } else if (command.type === "leave") {
    for (const t of tracked) t.socket.disconnect();
    send({ type: "left" });
    process.disconnect();
  }
});

/** Socket.IO's connect acknowledgement has no timeout of its own: a client can wait forever. */
function connectWithin20s(t: Tracked): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      t.socket.disconnect();
      resolve(false);
    }, 20_000);
    t.socket.once("connect", () => {
      clearTimeout(timer);
      resolve(true);
    });
    t.socket.once("connect_error", () => {
      clearTimeout(timer);
      t.socket.disconnect();
      resolve(false);
    });
  });
}

function track(url: string): Tracked {
  // WebSocket only: 1,000 long-polling clients would measure HTTP request handling, not delivery.
  const socket: Socket<ServerToClientEvents> = io(url, { forceNew: true, transports: ["websocket"], reconnection: false });
  const t: Tracked = { socket, next: 0, received: 0, duplicates: 0, outOfOrder: 0 };
  socket.on("disconnect", (reason) => (disconnectReasons[reason] = (disconnectReasons[reason] ?? 0) + 1));
  socket.on("chat message", (text) => {
    t.received++;
    const n = Number(text.slice("load ".length));
    if (n === t.next) t.next++;
    else if (n < t.next) t.duplicates++;
    else {
      t.outOfOrder++; // a gap: something before it is missing or late
      t.next = n + 1;
    }
  });
  tracked.push(t);
  return t;
}
