/**
 * lib/chat-guards.ts: what stands between a client's "chat message" and the broadcast. Each
 * message is sent on to every other client, so one client's flood would cost everyone, and the
 * event's types are only a promise the client may break.
 */
import type { Socket } from "socket.io";
import { rateLimiter } from "./rate-limit.ts";
import { isChatText } from "./text.ts";

/** A flood is drops less than this far apart: the sender is told (and the log says) once per flood. */
const FLOOD_QUIET_MS = 10_000;

/**
 * Wraps the chat handler: over `perSecond` messages a second a client's messages are dropped,
 * and a user or text that is not a string of chat length is ignored, each with a log line.
 */
export function guardChatMessage(
  socket: Socket,
  workerId: number,
  perSecond: number,
  deliver: (user: string, message: string) => void,
): (user: unknown, message: unknown) => void {
  const withinLimit = rateLimiter(perSecond);
  let lastDrop = -Infinity;
  return (user, message) => {
    if (!withinLimit()) {
      const now = performance.now();
      if (now - lastDrop > FLOOD_QUIET_MS) {
        console.log(`worker: ${workerId}, dropping messages from ${socket.id}: over ${perSecond} per second`);
        socket.emit("chat message", `server: too many messages, yours are dropped until you send at most ${perSecond} per second`);
      }
      lastDrop = now;
      return;
    }
    if (!isChatText(user) || !isChatText(message)) {
      console.log(`worker: ${workerId}, ignored a malformed chat message from ${socket.id}`);
      return;
    }
    deliver(user, message);
  };
}
