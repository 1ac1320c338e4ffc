/**
 * bench/report.ts: what one run of a configuration measured, and the table that compares them.
 */
import { availableParallelism } from "node:os";
import type { PhaseReport } from "./protocol.ts";

/** CPU of each group of processes: seconds, or a figure derived from them. */
export interface Cpu {
  server: number;
  clients: number;
  redis: number;
  publisher: number;
}

export interface Result {
  deliveredPerSecond: number;
  p50: number;
  p95: number;
  p99: number;
  lost: number;
  duplicated: number;
  reordered: number;
  failedToConnect: number;
  /** Why clients failed to connect (a few of them). */
  failures: string[];
  disconnects: number;
  connectSeconds: number;
  /** Growth of the server's RSS (the workers' for a cluster) while the clients connected, per client. */
  kibPerConnection: number;
  /** CPU seconds per 1,000 deliveries in the throughput phase, by process group. */
  cpu: Cpu;
  /** Cores kept busy during the latency phase (CPU seconds per second), by process group. */
  latencyCores: Cpu;
}

/** Every latency of every client process, in one sorted array. */
export function sortedLatencies(reports: PhaseReport[]) {
  const all = new Float64Array(sum(reports.map((r) => r.latencies.length)));
  let offset = 0;
  for (const r of reports) {
    all.set(r.latencies, offset);
    offset += r.latencies.length;
  }
  return all.sort();
}

export function percentile(sorted: Float64Array, p: number) {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** One column per configuration, one row per figure: each cell is median [min-max] over the repetitions. */
export function printTable(results: Map<string, Result[]>, rate: number) {
  const names = [...results.keys()];
  const baseline = results.get("baseline")!;
  const row = (label: string, pick: (r: Result, repetition: number) => number, digits: number, skipBaseline = false) => [
    label,
    ...names.map((name) => (skipBaseline && name === "baseline" ? "" : summary(results.get(name)!.map(pick), digits))),
  ];
  const cpu = (c: Cpu) => c.server + c.clients + c.redis + c.publisher;
  const rows = [
    row("delivered/s", (r) => r.deliveredPerSecond, 0),
    row("  ratio to baseline", (r, i) => r.deliveredPerSecond / baseline[i]!.deliveredPerSecond, 2, true),
    row(`p50 ms at ${rate}/s`, (r) => r.p50, 1),
    row(`p95 ms at ${rate}/s`, (r) => r.p95, 1),
    row(`p99 ms at ${rate}/s`, (r) => r.p99, 1),
    row("  p99 ratio to baseline", (r, i) => r.p99 / baseline[i]!.p99, 2, true),
    row("lost messages", (r) => r.lost, 0),
    row("duplicated messages", (r) => r.duplicated, 0),
    row("reordered messages", (r) => r.reordered, 0),
    row("clients not connected", (r) => r.failedToConnect, 0),
    row("disconnected during run", (r) => r.disconnects, 0),
    row("seconds to connect all", (r) => r.connectSeconds, 1),
    row("server KiB per connection", (r) => r.kibPerConnection, 1),
    ["CPU ms per 1,000 deliveries (throughput phase)"],
    row("  server", (r) => r.cpu.server * 1000, 2),
    row("  clients", (r) => r.cpu.clients * 1000, 2),
    row("  redis", (r) => r.cpu.redis * 1000, 2),
    row("  publisher (this process)", (r) => r.cpu.publisher * 1000, 2),
    row("  all", (r) => cpu(r.cpu) * 1000, 2),
    [`cores busy in the latency phase (of ${availableParallelism()})`],
    row("  server", (r) => r.latencyCores.server, 2),
    row("  clients", (r) => r.latencyCores.clients, 2),
    row("  all", (r) => cpu(r.latencyCores), 2),
  ];
  printRows(["", ...names], rows);
  for (const [name, runs] of results) {
    const reasons = [...new Set(runs.flatMap((r) => r.failures))];
    if (reasons.length > 0) console.log(`${name}: clients failed to connect: ${reasons.join("; ")}`);
  }
}

/** "median [min-max]" of the repetitions, or the single value. */
export function summary(values: number[], digits: number) {
  const sorted = [...values].sort((a, b) => a - b);
  const format = (v: number) => v.toFixed(digits);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  return sorted.length === 1 ? format(median) : `${format(median)} [${format(sorted[0]!)}-${format(sorted.at(-1)!)}]`;
}

function printRows(header: string[], rows: string[][]) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length > 1).map((r) => r[i]!.length)));
  const line = (cells: string[]) => (cells.length === 1 ? cells[0]! : cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("   "));
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

export function sum(values: number[]) {
  return values.reduce((a, b) => a + b, 0);
}
