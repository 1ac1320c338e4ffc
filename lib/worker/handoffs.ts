/**
 * lib/worker/handoffs.ts: the worker's half of lib/primary/handoffs.ts. The primary may hold a
 * socket until this worker has echoed a barrier: the echo tells it that every message sent before
 * the socket has been read (a Deno IPC bug; other runtimes never get a barrier).
 */
import { BARRIER } from "../ipc.ts";

export function answerHandoffBarriers(): void {
  process.on("message", (message: { type?: unknown }) => {
    if (message?.type === BARRIER) process.send!(message);
  });
}
