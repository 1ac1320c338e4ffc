/**
 * lib/worker/recovery.ts: what a recovered session missed waits until the handshake's checks pass.
 *
 * With connection state recovery (ADAPTER=streams), socket.io 4.8 rebuilds a returning socket from
 * its session before the namespace's middlewares run: its Socket constructor joins the session's
 * rooms and writes the packets the client missed at once. A client whose token expired while it was
 * away, or that comes back with another user's token, would so get what was sent to the old user's
 * rooms before lib/worker/identity.ts refuses or re-identifies it. No upstream issue names it
 * (socket.io's docs present `skipMiddlewares: false` as running the checks "on recovery").
 *
 * holdMissedPackets() wraps a namespace's adapter: its restoreSession() hands socket.io the session
 * without its missed packets and without its user: rooms, and keeps the packets aside.
 * releaseMissedPackets() runs once the checks have let the socket in: it replays them when the
 * socket is still the user it was, and otherwise lets the socket start anew (no replay, none of the
 * old rooms). A session whose handshake is refused is dropped with forgetMissedPackets().
 */
import type { Socket } from "socket.io";
import { isUserRoom, type SocketData } from "../chat.ts";

/** socket.io-parser's packet type of an event. */
const EVENT = 2;
/** A held session whose handshake never ends (a client that gave up) is dropped after this. */
const HOLD_LIMIT_MS = 30_000;

interface Session {
  sid: string;
  rooms: string[];
  data: SocketData;
  missedPackets: unknown[][];
}

interface Held {
  user: string | undefined;
  packets: unknown[][];
  timer: ReturnType<typeof setTimeout>;
}

/** By socket id (a recovered socket keeps its id). */
const held = new Map<string, Held>();

export function holdMissedPackets<T extends object>(adapter: T): T {
  const target = adapter as unknown as { restoreSession?: (pid: string, offset: string) => Promise<Session | null | undefined> };
  const restore = target.restoreSession?.bind(adapter);
  if (!restore) return adapter;
  target.restoreSession = async (pid, offset) => {
    const session = await restore(pid, offset);
    if (!session) return session;
    forgetMissedPackets(session.sid);
    const timer = setTimeout(() => held.delete(session.sid), HOLD_LIMIT_MS);
    timer.unref?.();
    held.set(session.sid, { user: session.data?.user, packets: session.missedPackets, timer });
    return { ...session, rooms: session.rooms.filter((room) => !isUserRoom(room)), missedPackets: [] };
  };
  return adapter;
}

/** Once the socket is let in: the missed packets if it is still the same user; a fresh start if not. */
export function releaseMissedPackets(socket: Socket): void {
  const entry = held.get(socket.id);
  forgetMissedPackets(socket.id);
  if (!entry || !socket.recovered) return;
  if (entry.user !== (socket.data as SocketData).user) {
    for (const room of [...socket.rooms]) if (room !== socket.id) socket.leave(room);
    return;
  }
  // Socket.packet() is what socket.io's constructor would have called with them.
  const send = socket as unknown as { packet(packet: { type: number; data: unknown[] }): void };
  for (const data of entry.packets) send.packet({ type: EVENT, data });
}

export function forgetMissedPackets(socketId: string): void {
  clearTimeout(held.get(socketId)?.timer);
  held.delete(socketId);
}
