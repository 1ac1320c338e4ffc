/**
 * lib/ipc.ts: what the primary and its workers say to each other, besides @socket.io/sticky's own
 * messages ("sticky:connection" and the rest), in one place so that both sides read the same words.
 */
import type { ExitReport } from "./failures.ts";

/** What a worker tells the primary. */
export type WorkerReport =
  /** It serves: the primary listens once every worker has said so. */
  | { type: "kit:ready" }
  /** It is about to exit with this line and code (lib/failures.ts); the primary prints the line. */
  | ({ type: "kit:failed" } & ExitReport);

/**
 * What the primary tells a worker: a reload has a fresh worker ready in its place, so it stops
 * taking new sessions (readiness 503), lets its clients go over RELOAD_SPREAD_MS and exits.
 */
export const RELOAD_DRAIN = "kit:reload-drain";

export function isReloadDrain(message: unknown): boolean {
  return (message as { type?: unknown } | null)?.type === RELOAD_DRAIN;
}

/** The primary asks a serving worker for its metrics (lib/primary/metrics.ts); it answers with the same id. */
export const METRICS_REQUEST = "kit:metrics";

export function isMetricsRequest(message: unknown): message is { type: typeof METRICS_REQUEST; id: number } {
  const m = message as { type?: unknown; id?: unknown; metrics?: unknown } | null;
  return m?.type === METRICS_REQUEST && typeof m.id === "number" && m.metrics === undefined;
}

export function isMetricsAnswer(message: unknown): message is { type: typeof METRICS_REQUEST; id: number; metrics: unknown[] } {
  const m = message as { type?: unknown; id?: unknown; metrics?: unknown } | null;
  return m?.type === METRICS_REQUEST && typeof m.id === "number" && Array.isArray(m.metrics);
}

/**
 * The handoff barrier (lib/primary/handoffs.ts): sent by the primary, echoed as it is by the
 * worker once it has read everything sent before it.
 */
export const BARRIER = "sticky-handoff:barrier";

export function isWorkerReport(message: unknown): message is WorkerReport {
  const type = (message as { type?: unknown } | null)?.type;
  return type === "kit:ready" || type === "kit:failed";
}

/**
 * How long the primary waits for its workers to stop: one stuck on a dead Redis must not keep the
 * cluster up. A worker that drains stays within it.
 */
export const WORKER_STOP_LIMIT_MS = 10_000;

/** Set by the primary at each fork: "1" in a worker that takes the place of one that died. */
const REPLACEMENT_VARIABLE = "KIT_REPLACEMENT_WORKER";

/** The environment a worker is forked with. Always set, so that a value in the primary's own cannot leak into a first worker. */
export function forkEnvironment(replacement: boolean): Record<string, string> {
  return { [REPLACEMENT_VARIABLE]: replacement ? "1" : "0" };
}

/** In a worker: whether it replaces one that died (it then waits for Redis instead of giving up). */
export function isReplacement(): boolean {
  return process.env[REPLACEMENT_VARIABLE] === "1";
}

/** In a worker: tells the primary. */
export function tellPrimary(report: WorkerReport): void {
  process.send!(report);
}
