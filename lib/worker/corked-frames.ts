/**
 * lib/worker/corked-frames.ts: one system call per client for the frames engine.io sends together.
 *
 * engine.io's WebSocket transport hands `ws` one frame at a time, and `ws` writes each frame (its
 * header and payload corked together) with a writev of its own: a client owed ten messages costs
 * ten system calls. When several broadcasts reach a worker in one tick (a burst), engine.io sends
 * the first at once and keeps the rest in the socket's write buffer until that write completes,
 * then hands them over in one `transport.send(packets)`. Corking the client's TCP socket around
 * that one call makes them one writev. The bytes, their order and the send callbacks (still called
 * when the write completes) are unchanged, so are the backpressure signals engine.io and the kit's
 * slow-reader check read (its write buffer, ws's bufferedAmount). A send of one packet, which is
 * all a single broadcast makes, is left as it is.
 *
 * Upstream: websockets/ws#2214 (cork the socket for a microtask inside ws) was closed unmerged, and
 * engine.io's transport has no option for it; this is the kit's small piece until one of them does.
 * CORK_FRAMES=0 turns it off (docs/reference/configuration.md).
 */
import type { Server } from "socket.io";

/** The parts of engine.io's WebSocket transport this reads: `socket` is ws's WebSocket, `_socket` its net.Socket. */
interface WebSocketTransport {
  name: string;
  socket?: { _socket?: { cork(): void; uncork(): void; writableCorked: number } };
  send(packets: unknown[]): void;
}

interface EngineSocket {
  transport: WebSocketTransport;
  once(event: "upgrade", listener: (transport: WebSocketTransport) => void): void;
}

const corked = new WeakSet<object>();

/** Corks the frames of each multi-packet send of io's WebSocket transport (its class, once). */
export function corkFrames(io: Server): void {
  // The class is not exported by a path every runtime resolves: it is taken from the first
  // WebSocket transport seen, a connection's own or the one a long-polling connection upgrades to.
  io.engine.on("connection", (socket: EngineSocket) => {
    if (socket.transport.name === "websocket") corkClass(socket.transport);
    else socket.once("upgrade", corkClass);
  });
}

function corkClass(transport: WebSocketTransport): void {
  const proto = Object.getPrototypeOf(transport) as WebSocketTransport;
  if (transport.name !== "websocket" || corked.has(proto)) return;
  corked.add(proto);
  const send = proto.send;
  proto.send = function (this: WebSocketTransport, packets: unknown[]) {
    const tcp = this.socket?._socket;
    if (packets.length < 2 || !tcp || typeof tcp.cork !== "function") return send.call(this, packets);
    tcp.cork();
    try {
      send.call(this, packets);
    } finally {
      tcp.uncork();
    }
  };
}
