/**
 * lib/primary/session-owners.ts: a request that names a Socket.IO session the sticky primary has not heard
 * of yet waits, briefly, to hear which worker holds it.
 *
 * @socket.io/sticky 2.0.1 routes a request with a session id (`sid=` in its first line) to the
 * worker that told the primary, over IPC, that it holds that session; a worker says so when it
 * answers the handshake. The client sends its next requests as soon as it has that answer, on new
 * connections, and under load the primary may read such a connection before the worker's IPC
 * message (both are ready in the same poll, in no set order). Sticky then picks a worker by
 * load, and another worker answers 400 "Session ID unknown": the client gives up with
 * "xhr post error" (docs/reference/sticky-sessions.md says how often). No upstream
 * issue names it; the mapping is sticky's own (sessionIdToWorker in its index.js).
 *
 * The primary here learns the same mapping from the same messages; a first chunk with a session
 * id it does not know is held (the chunks after it queue behind it) until the owner is known, for
 * at most SESSION_WAIT_MS, then given to sticky as it came. A session that is really gone (its
 * worker died) costs that wait once, then gets the 400 it would have got anyway.
 * test/fixtures/session-race.ts makes the race certain; test/sticky-handoff.test.ts runs it.
 */
import cluster, { type Worker } from "node:cluster";
import type { Server, Socket } from "node:net";

const SESSION_WAIT_MS = 500;
const SESSION_ID = /[?&]sid=([\w-]{20})/;

type Handler = (chunk: Buffer) => void;

/** In the primary, after setupMaster(server): sticky's own "data" listener is wrapped. */
export function waitForSessionOwners(server: Server): void {
  const owners = new Map<string, number>(); // session id -> worker id, as sticky keeps it
  const waiting = new Map<string, Set<() => void>>();
  cluster.on("message", (worker: Worker, message: { type?: unknown; data?: unknown }) => {
    if (typeof message?.data !== "string") return;
    if (message.type === "sticky:connection") {
      owners.set(message.data, worker.id);
      for (const wake of waiting.get(message.data) ?? []) wake();
    } else if (message.type === "sticky:disconnection") {
      owners.delete(message.data);
    }
  });
  cluster.on("exit", (worker) => {
    for (const [session, owner] of owners) if (owner === worker.id) owners.delete(session);
  });

  server.on("connection", (socket: Socket) => {
    const sticky = socket.listeners("data")[0] as Handler | undefined; // added by sticky's own "connection" listener
    if (!sticky) return;
    socket.off("data", sticky);
    let first = true;
    let held: Buffer[] | undefined;
    socket.on("data", (chunk: Buffer) => {
      if (held) return void held.push(chunk);
      if (!first) return sticky.call(socket, chunk);
      first = false;
      const head = chunk.subarray(0, chunk.indexOf("\n")).toString("latin1");
      const session = SESSION_ID.exec(head)?.[1];
      if (session === undefined || owners.has(session)) return sticky.call(socket, chunk);
      held = [chunk];
      const release = () => {
        clearTimeout(timer);
        waiting.get(session)?.delete(release);
        if (waiting.get(session)?.size === 0) waiting.delete(session);
        const chunks = held!;
        held = undefined;
        if (!socket.destroyed) for (const queued of chunks) sticky.call(socket, queued);
      };
      const timer = setTimeout(release, SESSION_WAIT_MS);
      if (!waiting.has(session)) waiting.set(session, new Set());
      waiting.get(session)!.add(release);
    });
  });
}
