/**
 * bench/protocol.ts: what the benchmark's processes say to each other, and the pacing of the
 * publishers (the emitter in bench.ts and the in-memory baseline in baseline.ts publish alike).
 */

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

/** Orders from bench.ts to a client process. */
export type ToClients =
  | { type: "connect"; url: string; count: number; transports: string[]; timeoutMs: number }
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
  /** Sockets that disconnected after they had connected. */
  disconnects: number;
  /** Publish-to-receive latency of every message that arrived, in ms. */
  latencies: Float64Array;
}

/** Answers from a client process. */
export type FromClients =
  | { type: "connected"; ok: number; failed: number; reasons: string[]; ms: number }
  | { type: "phase-ready" }
  | { type: "progress"; received: number }
  | { type: "report"; report: PhaseReport };
