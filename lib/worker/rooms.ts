/**
 * lib/worker/rooms.ts: clients entering and leaving rooms (client.ts /join and /leave), which
 * emitter.ts --room can then reach. Three things are guarded: a client may not enter another
 * socket's private room (every socket sits in a room named after its id), may not hold rooms
 * without bound, and may not change rooms in a tight loop: with the sharded adapter a room's
 * first join and last leave each cost a Redis SSUBSCRIBE or SUNSUBSCRIBE.
 */
import type { Socket } from "socket.io";
import { isUserRoom, roomNameProblem } from "../chat.ts";
import { rateLimiter } from "./rate-limit.ts";

/** Most rooms one socket may be in besides its own id room and its user's room. */
const MAX_ROOMS_PER_SOCKET = 20;
/** Joins and leaves one client may make per second, after a burst of twice that. */
const ROOM_CHANGES_PER_SECOND = 20;

/** Answers a socket's "join" and "leave" requests with an error text, or null when done. */
export function answerRoomRequests(socket: Socket): void {
  const withinLimit = rateLimiter(ROOM_CHANGES_PER_SECOND);
  const tooFast = "too many room changes, slow down";
  socket.on("join", (room: unknown, answer: unknown) => {
    // The socket's id room and its user's room are the server's: only the client's own count.
    const own = [...socket.rooms].filter((name) => name !== socket.id && !isUserRoom(name)).length;
    const full = !socket.rooms.has(room as string) && own >= MAX_ROOMS_PER_SOCKET;
    const problem = roomNameProblem(room) ?? (full ? `at most ${MAX_ROOMS_PER_SOCKET} rooms per client` : null) ?? (withinLimit() ? null : tooFast);
    if (!problem) socket.join(room as string);
    if (typeof answer === "function") answer(problem);
  });
  socket.on("leave", (room: unknown, answer: unknown) => {
    const problem = roomNameProblem(room) ?? (withinLimit() ? null : tooFast);
    if (!problem) socket.leave(room as string);
    if (typeof answer === "function") answer(problem);
  });
}
