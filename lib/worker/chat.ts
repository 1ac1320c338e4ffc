/**
 * lib/worker/chat.ts: the chat's handlers besides the post's own. guardChatMessage() stands between
 * a client's "chat message" and the broadcast: each message is sent on to every other client, so
 * one client's flood would cost everyone, and the event's types are only a promise the client may
 * break. setupChat() adds, around the post's handler, who each socket is and what the kit's chat
 * answers besides: rooms, the page's question, and a server-side chat message.
 */
import type { Namespace, Socket } from "socket.io";
import { isChatText, type SocketData } from "../chat.ts";
import type { ServerConfig } from "../config.ts";
import { countedLog, log } from "../log.ts";
import { expireUnansweredAcks } from "./acks.ts";
import { identifyUsers } from "./identity.ts";
import { countChatMessage } from "./metrics.ts";
import { answerWorkerQuestion } from "./page.ts";
import { rateLimiter } from "./rate-limit.ts";
import { relayServerSideChat } from "./relay.ts";
import { answerRoomRequests } from "./rooms.ts";

/**
 * Who each socket is (open or auth mode, lib/worker/identity.ts); /join and /leave (for emitter.ts
 * --room); the page's "worker" question; emitter.ts --server-side; and acknowledgements that never
 * come dropped in time (lib/worker/acks.ts).
 */
export function setupChat(nsp: Namespace, config: Pick<ServerConfig, "adapter" | "auth">): void {
  identifyUsers(nsp, config.auth);
  nsp.on("connection", (socket) => {
    expireUnansweredAcks(socket);
    answerRoomRequests(socket);
    answerWorkerQuestion(socket);
  });
  relayServerSideChat(nsp, config.adapter);
}

/** A flood is drops less than this far apart: the sender is told once per flood. */
const FLOOD_QUIET_MS = 10_000;

/** One line per worker for every flooder, however many there are. */
const flooding = countedLog("dropping chat messages over CHAT_RATE_LIMIT", FLOOD_QUIET_MS, log);

/**
 * Wraps the chat handler: over `perSecond` messages a second a client's messages are dropped,
 * and a user or text that is not a string of chat length is ignored, each with a log line. A
 * socket whose user a token proves speaks as that user, whatever name it writes (auth mode).
 */
export function guardChatMessage(
  socket: Socket,
  perSecond: number,
  deliver: (user: string, message: string) => void,
): (user: unknown, message: unknown) => void {
  const withinLimit = rateLimiter(perSecond);
  let lastDrop = -Infinity;
  return (user, message) => {
    if (!withinLimit()) {
      const now = performance.now();
      if (now - lastDrop > FLOOD_QUIET_MS) {
        flooding(`from ${socket.id}, over ${perSecond} per second`);
        socket.emit("chat message", `server: too many messages, yours are dropped until you send at most ${perSecond} per second`);
      }
      lastDrop = now;
      return;
    }
    if (!isChatText(user) || !isChatText(message)) {
      log(`ignored a malformed chat message from ${socket.id}`);
      return;
    }
    const { user: proven, verified } = socket.data as SocketData;
    countChatMessage();
    deliver(verified ? proven! : user, message);
  };
}
