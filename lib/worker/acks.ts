/**
 * lib/worker/acks.ts: an acknowledgement a client never sends stops costing its worker memory after
 * ACK_LIMIT_MS, instead of for the connection's whole life.
 *
 * A broadcast that asks for acknowledgements (emitter.ts --ack through the adapters, or a server's
 * io.timeout(ms).emit) leaves a callback in socket.acks of every socket it reached, and socket.io
 * removes it only when that client answers: the asker's timeout runs in the asking process, and
 * socket.io-adapter's broadcastWithAck sets none on the sockets (socketio/socket.io#4984, open;
 * the fix proposed upstream is socketio/socket.io#5452). A client that never answers (an old
 * cached page, a bench client, a peer that means harm) kept one entry per --ack until it left.
 */
import type { Socket } from "socket.io";

/** The longest wait any asker here may have: emitter.ts --timeout is at most 600 s. */
const ACK_LIMIT_MS = 600_000;

export function expireUnansweredAcks(socket: Socket, limitMs = ACK_LIMIT_MS): void {
  const acks = (socket as unknown as { acks: Map<number, unknown> }).acks;
  const timers = new Map<number, ReturnType<typeof setTimeout>>();
  const set = acks.set.bind(acks);
  const remove = acks.delete.bind(acks);
  acks.set = (id, ack) => {
    clearTimeout(timers.get(id));
    // An answer that comes later finds no entry, and socket.io ignores it.
    const timer = setTimeout(() => acks.delete(id), limitMs);
    timer.unref();
    timers.set(id, timer);
    return set(id, ack);
  };
  // socket.io deletes an entry once answered: its timer goes with it, not 10 minutes later.
  acks.delete = (id) => {
    clearTimeout(timers.get(id));
    timers.delete(id);
    return remove(id);
  };
  socket.once("disconnect", () => {
    for (const timer of timers.values()) clearTimeout(timer);
    timers.clear();
  });
}
