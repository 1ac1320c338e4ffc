/**
 * lib/worker/relay.ts: what a worker does with a server-side "chat message"
 * (emitter.ts --server-side). Unlike an emit to the clients, which no server handler sees, a
 * server-side emit reaches this handler on every worker; each worker relays it to its own clients.
 */
import type { Namespace } from "socket.io";
import { isChatText, printable } from "../chat.ts";
import type { AdapterName } from "../config.ts";
import { log } from "../log.ts";

export function relayServerSideChat(nsp: Namespace, adapter: AdapterName): void {
  nsp.on("chat message", (text: unknown) => {
    if (!isChatText(text)) {
      log("ignored a malformed server-side chat message");
      return;
    }
    log(`server-side chat message on ${nsp.name}: ${printable(text)}`);
    if (adapter !== "streams") {
      nsp.local.emit("chat message", text);
      return;
    }
    // With connection state recovery a client keeps the last string argument of each event as its
    // offset in the stream (socket.io-client's _lastOffset); a local emit carries no offset, so the
    // text would become the offset and the next recovery would fail (upstream socket.io#5539, the
    // same trap with volatile emits). Sent through the adapter instead, to this worker's own
    // sockets by id, the relay gets a real offset. No local socket: nothing to send (an empty
    // list would mean everyone).
    const ownSockets = [...nsp.sockets.keys()];
    if (ownSockets.length > 0) nsp.to(ownSockets).emit("chat message", text);
  });
}
