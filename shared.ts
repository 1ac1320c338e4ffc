/**
 * shared.ts: what the server, the client and the emitter agree on.
 *
 * The event maps give socket.io and socket.io-client their types; the text rules keep what
 * one person types from harming another person's terminal or the server.
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
}

/** Events the workers send to one another (emitter.ts --server-side sends them too). */
export interface InterServerEvents {
  "chat message": (text: string) => void;
}

/** The Redis adapters the kit can run on (ADAPTER=...), the first is the default. See docs/adapters.md. */
export const ADAPTERS = ["classic", "sharded", "streams"] as const;
export type AdapterName = (typeof ADAPTERS)[number];

export function isAdapterName(value: string): value is AdapterName {
  return (ADAPTERS as readonly string[]).includes(value);
}

/** The namespaces that serve the chat: "/" and a second one, to try emitter.ts --nsp /lounge. */
export const CHAT_NAMESPACES = ["/", "/lounge"];

/** Longest room name, and most rooms one socket may be in besides its own id room. */
export const MAX_ROOM_NAME_LENGTH = 50;
export const MAX_ROOMS_PER_SOCKET = 20;

/**
 * Why a client may not use this room name, or null when it may. Every socket sits in a room named
 * after its id (20 characters of A-Z a-z 0-9 _ -), which is how one socket is reached: a name of
 * that shape is refused, so no client can enter another socket's room and read its private messages.
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

/** Longest user name or message, in characters, that the server accepts. */
export const MAX_TEXT_LENGTH = 1000;

/** True for a string of 1 to MAX_TEXT_LENGTH characters: anything else is not chat. */
export function isChatText(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_TEXT_LENGTH;
}

/**
 * Removes control characters (ESC, CR, LF, BEL, DEL, C1...) before text reaches a terminal, so
 * that a peer can neither move the cursor, recolour the screen nor fake extra lines.
 */
export function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, "");
}

/** A Redis URL fit for a log line: the password, if any, is masked. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, "//***@"); // not a URL, but it may still hold a password
  }
}

/** Why a Redis connection failed, in words that say what to change where Redis's own are cryptic. */
export function redisFailure(err: unknown): string {
  const message = err instanceof Error ? err.message || err.name : String(err);
  const code = (err as { code?: unknown }).code;
  if (message.startsWith("NOAUTH")) return "Redis requires a password: put it in REDIS_URL (redis://:password@host:port)";
  if (message.startsWith("WRONGPASS")) return "wrong user name or password in REDIS_URL";
  if (typeof code === "string" && /CERT|UNABLE_TO_VERIFY/.test(code)) {
    return `${message.split(";")[0]} (a private CA: point NODE_EXTRA_CA_CERTS at its certificate)`;
  }
  return message;
}
