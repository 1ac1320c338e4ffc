/**
 * lib/chat.ts: what the server, client.ts and emitter.ts agree on: the events, the namespaces the
 * chat runs on, what counts as chat text and as a room name, and how text is made safe to print.
 * The event maps give socket.io and socket.io-client their types; they are a promise the other
 * side may break, so every handler still checks what it receives.
 */

/** Events the server (or the emitter, on its behalf) sends to clients. */
export interface ServerToClientEvents {
  "chat message": (text: string) => void;
  /** Auth mode: the token's time is up; the server lets the socket go right after. */
  "token expired": () => void;
}

/** Events a client sends to the server. */
export interface ClientToServerEvents {
  "chat message": (user: string, message: string) => void;
  /** Enter or leave a room; the answer is an error text, or null when it worked. */
  join: (room: string, answer: (error: string | null) => void) => void;
  leave: (room: string, answer: (error: string | null) => void) => void;
  /** Which worker holds this socket: the chat page asks (lib/worker/page.ts). */
  worker: (answer: (workerId: number) => void) => void;
  /** Open mode: the page names its user once typed (client.ts names it at the handshake); the answer is an error text, or null. */
  name: (user: string, answer: (error: string | null) => void) => void;
}

/** Events the workers send to one another (emitter.ts --server-side sends them too). */
export interface InterServerEvents {
  "chat message": (text: string) => void;
}

/**
 * What a worker keeps about each socket (socket.data): what emitter.ts --list prints, since the
 * workers' answers to fetchSockets carry it over Redis. Never a secret.
 */
export interface SocketData {
  /** Who the socket is: a token's sub (auth mode), or the name the client claims (open mode). */
  user?: string;
  /** True when `user` comes from a checked token. */
  verified?: boolean;
  /** When the token expires, in ms since the epoch (auth mode). */
  expiresAt?: number;
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

/** Longest user name: it names a room, "user:<name>". */
export const MAX_USER_NAME_LENGTH = 100;

/** Why this cannot be a user's name (client.ts's argument, the page's field, a token's sub), or null. */
export function userNameProblem(name: unknown): string | null {
  if (typeof name !== "string" || name.length === 0 || name.length > MAX_USER_NAME_LENGTH) return `a user name has 1 to ${MAX_USER_NAME_LENGTH} characters`;
  if (/\p{Cc}/u.test(name)) return "a user name has no control characters";
  return null;
}

/** The room of every socket of one user, on every worker and host. */
export function userRoom(user: string): string {
  return `${USER_ROOM_PREFIX}${user}`;
}

/** Rooms whose name starts so are the server's: no client may enter one. */
const USER_ROOM_PREFIX = "user:";

export function isUserRoom(room: string): boolean {
  return room.startsWith(USER_ROOM_PREFIX);
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
  if (isUserRoom(room)) return `a name that starts with "${USER_ROOM_PREFIX}" is a user's room, which the server alone fills`;
  return null;
}

/** Socket.IO names sockets with 15 random bytes in URL-safe base64: 20 characters. */
export function looksLikeSocketId(room: string): boolean {
  return /^[A-Za-z0-9_-]{20}$/.test(room);
}
