/**
 * lib/text.ts: what counts as chat text, and how it is made safe to print. One person's typing
 * must harm neither another person's terminal nor the server's log.
 */

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
