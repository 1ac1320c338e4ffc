/**
 * support/sockets.ts: socket.io-client sockets as the tests and benchmarks watch them: what each
 * received and how often it lost its connection, a wait for its connection with a deadline, and
 * readers that stop reading (support/readers.ts in a process of its own, frozen with SIGSTOP).
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import type { ClientToServerEvents, ServerToClientEvents } from "../lib/chat.ts";
import { run, type Script } from "./scripts.ts";

export type ChatSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** A socket and what has happened to it so far. */
export interface Recorder {
  socket: ChatSocket;
  /** Each message's text ("event: text" for an event other than "chat message"), in arrival order. */
  received: string[];
  /** Messages received, also when their texts are not kept. */
  count: number;
  disconnects: number;
  disconnectReasons: string[];
  connectErrors: string[];
}

export interface RecordOptions {
  /** False for a flood: only `count` grows, the texts would fill memory. */
  keepTexts?: boolean;
}

/** A new connection to `url` (one per socket: forceNew) that records what it gets. */
export function record(url: string, options: Partial<ManagerOptions & SocketOptions> = {}, { keepTexts = true }: RecordOptions = {}): Recorder {
  const socket: ChatSocket = io(url, { forceNew: true, ...options });
  const recorder: Recorder = { socket, received: [], count: 0, disconnects: 0, disconnectReasons: [], connectErrors: [] };
  // With connection state recovery the server adds the stream offset as a last argument: not kept.
  socket.onAny((event: string, text: unknown) => {
    recorder.count++;
    if (keepTexts) recorder.received.push(event === "chat message" ? String(text) : `${event}: ${text}`);
  });
  socket.on("disconnect", (reason) => {
    recorder.disconnects++;
    recorder.disconnectReasons.push(reason);
  });
  socket.on("connect_error", (err) => recorder.connectErrors.push(err.message));
  return recorder;
}

/**
 * Resolves once `socket` is connected (at once when it already is); rejects after `ms`, and with
 * `firstTry` on its first connect_error too: a test that wants the first attempt to succeed, not a
 * reconnection to hide that it failed.
 */
export function connected(socket: Socket, ms = 15_000, { firstTry = false } = {}): Promise<void> {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connect within ${ms} ms (transport: ${socket.io.engine?.transport?.name})`)), ms);
    socket.once("connect", () => (clearTimeout(timer), resolve()));
    if (firstTry) socket.once("connect_error", (err) => (clearTimeout(timer), reject(err)));
  });
}

/** Clients in a process of their own that can stop reading all at once, as a frozen client would. */
export interface Readers {
  script: Script;
  /** The socket ids each connection printed, reconnections included. */
  ids(): string[];
  /** The messages they received together, as last printed (five times a second). */
  received(): number;
  /** SIGSTOP: nothing is read any more, the connections stay open. */
  freeze(): void;
  /** SIGCONT; nothing happens when they run or have gone. */
  thaw(): void;
  /** Thaws them, then ends the process. */
  stop(): Promise<void>;
}

/** `count` socket.io clients of support/readers.ts connected to `url`; `pace` > 0: messages per second they read. */
export function startReaders(url: string, count: number, transport: "websocket" | "polling" = "websocket", pace = 0): Readers {
  const script = run("support/readers.ts", [url, String(count), transport, String(pace)], {});
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(script.child.pid!, name);
    } catch {
      // gone already
    }
  };
  return {
    script,
    ids: () => script.stdout.filter((line) => line.startsWith("connected ")).map((line) => line.slice("connected ".length)),
    received: () => Number(script.stdout.findLast((line) => line.startsWith("received "))?.slice("received ".length) ?? 0),
    freeze: () => signal("SIGSTOP"),
    thaw: () => signal("SIGCONT"),
    async stop() {
      signal("SIGCONT");
      await script.stop();
    },
  };
}
