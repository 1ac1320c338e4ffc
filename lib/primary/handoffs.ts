/**
 * lib/primary/handoffs.ts: the primary hands every socket to a worker whole, on every runtime.
 * Two gaps of @socket.io/sticky 2.0.1, closed from outside the library
 * (docs/reference/sticky-sessions.md tells the whole story, with figures):
 *
 * 1. Every runtime: the primary stops reading a socket before it is sent to a worker.
 *    Sticky reads the first chunk of a connection in the primary, then passes the socket to a
 *    worker without stopping reads. Until the worker acknowledges the handle (a few ms), both
 *    processes poll the same file descriptor, and whatever the primary reads in that window is
 *    lost: a client whose Socket.IO connect frame ("40") is lost waits forever after the
 *    Engine.IO handshake. Node's docs warn that data the parent has read is not passed on, and
 *    nodejs/node#8353 suggests the undocumented socket._handle.readStop().
 *    This relies on Node internals (socket._handle, socket._read), which Deno imitates; Bun has
 *    no such window (its sockets lack _handle.readStop). test/sticky-handoff.test.ts checks that
 *    it still works on each runtime (test/fixtures/handoff-race.ts).
 *
 * 2. Deno only: a barrier before a socket that follows socket-less messages to the same worker.
 *    Deno 2.9 attaches a received socket to the wrong message when one read of the IPC pipe
 *    returns an earlier socket-less message together with the socket's message (sticky forwards
 *    long-polling request bodies without a socket). The socket is lost and that worker gets
 *    nothing more (a socket message without its socket is never acknowledged; denoland/deno#35968).
 *    Waiting until the worker has echoed a barrier (lib/worker/handoffs.ts) means it has read
 *    everything sent before the socket; one barrier serves every socket that queued while it waited.
 *    test/fixtures/deno-ipc-repro.ts reproduces the bug without Socket.IO.
 */
import cluster, { type Worker } from "node:cluster";
import type { Socket } from "node:net";
import { BARRIER } from "../ipc.ts";

/** Deno's IPC bug is the only reason for barriers; other runtimes skip the round trip. */
const NEEDS_BARRIERS = "Deno" in globalThis;
/**
 * A barrier not echoed within this time is reported, and still waited for. Sending the sockets
 * anyway was tried: on Deno it loses one for sure, and the worker then takes no more messages at
 * all (docs/reference/sticky-sessions.md#the-deno-ipc-barrier says when it happened). A worker
 * that exits fails what waits (below).
 */
const BARRIER_SLOW_MS = 10_000;

type Callback = (error: Error | null) => void;
interface QueuedSend {
  message: { type?: unknown };
  handle: Socket | undefined;
  callback: Callback | undefined;
}

/** In the primary, before any fork: guards the sends to every worker, replacements included. */
export function guardHandoffs(): void {
  if (NEEDS_BARRIERS) {
    console.log("Deno: each socket handed to a worker waits for a barrier (Deno IPC bug, see docs/reference/sticky-sessions.md)");
  }
  cluster.on("fork", guardWorker);
}

function guardWorker(worker: Worker): void {
  const send = worker.send.bind(worker) as (message: unknown, handle?: unknown, callback?: Callback) => boolean;
  // While a barrier waits, sends wait too: sockets in one queue, the rest in another.
  const heldSockets: QueuedSend[] = [];
  const heldOthers: QueuedSend[] = [];
  let socketlessSent = false; // since the last barrier was echoed
  let barrier: { id: number; timer: NodeJS.Timeout } | undefined;
  let barriers = 0;

  // Sticky calls send(message, callback?) and send(message, socket, callback?).
  worker.send = ((message: QueuedSend["message"], handleOrCallback?: Socket | Callback, callback?: Callback) => {
    const handle = typeof handleOrCallback === "function" ? undefined : handleOrCallback;
    if (typeof handleOrCallback === "function") callback = handleOrCallback;
    if (handle && message.type === "sticky:connection") stopReading(handle);
    if (!NEEDS_BARRIERS) return send(message, handle, callback);
    if (barrier) {
      (handle ? heldSockets : heldOthers).push({ message, handle, callback });
    } else if (handle && socketlessSent) {
      heldSockets.push({ message, handle, callback });
      raiseBarrier();
    } else {
      send(message, handle, callback);
      socketlessSent ||= !handle;
    }
    return true;
  }) as Worker["send"];

  function raiseBarrier() {
    const id = ++barriers;
    const timer = setTimeout(() => {
      console.error(`worker: ${worker.id} has not echoed a handoff barrier for ${BARRIER_SLOW_MS} ms, ${heldSockets.length} sockets wait`);
    }, BARRIER_SLOW_MS);
    barrier = { id, timer };
    send({ type: BARRIER, id });
  }

  // The worker has read all that came before: the sockets held go first, each alone in the pipe
  // (the runtime holds later messages until the worker acknowledges a socket). Messages of
  // different connections need no order between them; each queue keeps its own.
  function passBarrier(id: number) {
    if (barrier?.id !== id) return;
    clearTimeout(barrier.timer);
    barrier = undefined;
    for (const { message, handle, callback } of heldSockets.splice(0)) send(message, handle, callback);
    const others = heldOthers.splice(0);
    for (const { message, handle, callback } of others) send(message, handle, callback);
    socketlessSent = others.length > 0;
  }

  worker.on("message", (message: { type?: unknown; id?: number }) => {
    if (message?.type === BARRIER && typeof message.id === "number") passBarrier(message.id);
  });
  // A worker that died cannot echo: fail what waits, as a send to a dead worker would.
  worker.on("exit", () => {
    if (barrier) clearTimeout(barrier.timer);
    for (const { handle, callback } of [...heldSockets.splice(0), ...heldOthers.splice(0)]) {
      handle?.destroy();
      callback?.(new Error(`worker ${worker.id} exited`));
    }
  });
}

/**
 * Stops the primary from reading a socket it is about to hand over. pause() alone is not enough:
 * it stops "data" events, not reads. readStop() stops reads, but the stream machinery may call
 * _read() (and restart reads) while the socket waits in the IPC queue, hence the no-op _read.
 */
function stopReading(socket: Socket): void {
  socket.pause();
  const internals = socket as Socket & { _handle?: { readStop?: () => unknown }; _read: (size: number) => void };
  internals._handle?.readStop?.();
  internals._read = () => {};
}
