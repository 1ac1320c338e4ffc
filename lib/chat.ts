/**
 * lib/chat.ts: what the server, client.ts and emitter.ts agree on: the events, the namespaces the
 * chat runs on, what counts as chat text and as a room name, and how text is made safe to print.
 * The event maps give socket.io and socket.io-client their types; they are a promise the other
 * side may break, so every handler still checks what it receives.
 */

/** Events the server (or the emitter, on its behalf) sends to clients. */
export interface ServerToClientEvents {
  "chat message": (text: string) => void;
}

/** Events a client sends to the server. */
export interface ClientToServerEvents {
  "chat message": (user: string, message: string) => void;
  /** Enter or leave a room; the answer is an error text, or null when it worked. */
  join: (room: string, answer: (error: string | null) => void) => void;
  leave: (room: string, answer: (error: string | null) => void) => void;
  /** Which worker holds this socket: the chat page asks (lib/worker/page.ts). */
  worker: (answer: (workerId: number) => void) => void;
}

/** Events the workers send to one another (emitter.ts --server-side sends them too). */
export interface InterServerEvents {
  "chat message": (text: string) => void;
}

/** The namespaces that serve the chat: "/" and a second one, to try emitter.ts --nsp /lounge. */
export const CHAT_NAMESPACES = ["/", "/lounge"];

/** Longest user name or message, in characters, that the server accepts. */
export const MAX_TEXT_LENGTH = 1000;

/** True for a string of 1 to MAX_TEXT_LENGTH characters: anything else is not chat. */
export function isChatText(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_TEXT_LENGTH;
}

/**
 * Removes control characters (ESC, CR, LF, BEL, DEL, C1...) before text reaches a terminal or a
 * log, so that a peer can neither move the cursor, recolour the screen nor fake extra lines.
 */
export function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, "");
}

/** Longest room name a client may use. */
const MAX_ROOM_NAME_LENGTH = 50;

/**
 * Why a client may not use this room name, or null when it may. A name shaped like a socket id
 * is refused, so that no client can enter another socket's room and read its private messages.
 */
export function roomNameProblem(room: unknown): string | null {
  if (typeof room !== "string" || !/^[\p{L}\p{N}\p{P}\p{S}]+$/u.test(room)) {
    return "a room name is letters, digits and punctuation, without spaces";
  }
  if (room.length > MAX_ROOM_NAME_LENGTH) return `a room name has at most ${MAX_ROOM_NAME_LENGTH} characters`;
  if (looksLikeSocketId(room)) return "a name shaped like a socket id (20 characters of A-Z a-z 0-9 _ -) is reserved";
  return null;
}

/** Socket.IO names sockets with 15 random bytes in URL-safe base64: 20 characters. */
export function looksLikeSocketId(room: string): boolean {
  return /^[A-Za-z0-9_-]{20}$/.test(room);
}
