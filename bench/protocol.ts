/**
 * bench/protocol.ts: what the benchmarks' processes say to each other, the one IPC protocol of
 * bench/: bench.ts and load.ts fork client processes (bench/clients.ts), give them orders and
 * collect their answers with the functions below. Also the pacing of the publishers (the emitter
 * in bench.ts and the in-memory baseline in baseline.ts publish alike) and the message format.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes. */
export const now = () => performance.timeOrigin + performance.now();

/** The text of benchmark message `seq` of a phase: "<phase> <seq> <sent at>". */
export const formatMessage = (phase: number, seq: number) => `${phase} ${seq} ${now().toFixed(3)}`;

export function parseMessage(text: string): { phase: number; seq: number; sentAt: number } | undefined {
  const [phase, seq, sentAt] = text.split(" ").map(Number);
  if (!Number.isInteger(phase) || !Number.isInteger(seq) || !Number.isFinite(sentAt)) return undefined;
  return { phase: phase!, seq: seq!, sentAt: sentAt! };
}

/**
 * Sends `count` messages through `send`. rate > 0: that many per second on a fixed schedule
 * (late messages are sent at once, not skipped). rate = 0: as fast as the publisher goes, in
 * batches that give its event loop a turn so that it can write what it has queued.
 */
export async function publish(phase: number, count: number, rate: number, send: (text: string) => void) {
  const BATCH = 100;
  const started = now();
  for (let seq = 0; seq < count; ) {
    if (rate === 0) {
      for (const end = Math.min(seq + BATCH, count); seq < end; seq++) send(formatMessage(phase, seq));
      await new Promise((resolve) => setImmediate(resolve));
    } else {
      for (; seq < count && started + (seq * 1000) / rate <= now(); seq++) send(formatMessage(phase, seq));
      const wait = started + (seq * 1000) / rate - now();
      if (seq < count) await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
    }
  }
}

/** Orders from bench.ts or load.ts to a client process. */
export type ToClients =
  | { type: "connect"; url: string; count: number; transports: string[]; timeoutMs: number; tokens?: string[] }
  | { type: "phase"; phase: number; messages: number }
  | { type: "progress" }
  | { type: "report" }
  | { type: "close" };

export interface PhaseReport {
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  /** When the last message arrived (now()). */
  lastAt: number;
  /** Sockets that disconnected after they had connected, and why (socket.io-client's reasons). */
  disconnects: number;
  disconnectReasons: Record<string, number>;
  /** Publish-to-receive latency of every message that arrived, in ms. */
  latencies: Float64Array;
}

/** Answers from a client process. */
export type FromClients =
  | { type: "connected"; ok: number; failed: number; reasons: string[]; ms: number; ids: string[] }
  | { type: "phase-ready" }
  /** lowest: the next message the slowest socket waits for (load.ts publishes at most a window ahead of it). */
  | { type: "progress"; received: number; lowest: number }
  | { type: "report"; report: PhaseReport };

/** Forks `count` client processes on this process's loader (tsx); `flags` are more Node flags (--cpu-prof). */
export function forkClients(count: number, flags: string[] = []): ChildProcess[] {
  return Array.from({ length: count }, () =>
    fork(fileURLToPath(new URL("clients.ts", import.meta.url)), [], {
      serialization: "advanced", // PhaseReport's Float64Array
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      execArgv: [...process.execArgv, ...flags],
    }),
  );
}

/** Sends one order (the same, or one per process) to each client process and collects their answers of type `answer`. */
export function ask<T extends FromClients["type"]>(clients: ChildProcess[], orders: ToClients | ToClients[], answer: T): Promise<Extract<FromClients, { type: T }>[]> {
  return Promise.all(
    clients.map(
      (child, i) =>
        new Promise<Extract<FromClients, { type: T }>>((resolve, reject) => {
          const onMessage = (message: FromClients) => {
            if (message.type !== answer) return;
            child.off("message", onMessage).off("exit", onExit);
            resolve(message as Extract<FromClients, { type: T }>);
          };
          const onExit = (code: number | null) => reject(new Error(`client process ${i + 1} exited (code ${code})`));
          child.on("message", onMessage).once("exit", onExit);
          child.send(Array.isArray(orders) ? orders[i]! : orders);
        }),
    ),
  );
}

/** Closes every socket of the client processes and resolves once the processes have exited. */
export async function closeClients(clients: ChildProcess[]): Promise<void> {
  await Promise.all(
    clients.map((child) => {
      const exited = new Promise((resolve) => (child.exitCode === null ? child.once("exit", resolve) : resolve(null)));
      child.send({ type: "close" } satisfies ToClients);
      return exited;
    }),
  );
}

/** How many of `total` clients process `index` of `processes` opens: an even split, the first ones one more. */
export function shareOf(total: number, processes: number, index: number): number {
  return Math.floor(total / processes) + (index < total % processes ? 1 : 0);
}
