/**
 * lib/chat-events.ts: the events the server, client.ts and emitter.ts agree on, and where the
 * chat runs. The maps give socket.io and socket.io-client their types; they are a promise the
 * other side may break, so every handler still checks what it receives.
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
  /** Which worker holds this socket: the chat page asks (lib/chat-page.ts). */
  worker: (answer: (workerId: number) => void) => void;
}

/** Events the workers send to one another (emitter.ts --server-side sends them too). */
export interface InterServerEvents {
  "chat message": (text: string) => void;
}

/** The namespaces that serve the chat: "/" and a second one, to try emitter.ts --nsp /lounge. */
export const CHAT_NAMESPACES = ["/", "/lounge"];
