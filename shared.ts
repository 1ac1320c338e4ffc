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
    return url;
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
