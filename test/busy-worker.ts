/**
 * test/busy-worker.ts: for the handoff fixtures (handoff-race.ts, handoff-barrier.ts), a cluster
 * worker that the primary can make busy. The order goes over its own TCP connection, not IPC: a
 * message before a socket would bring in sticky-handoff.ts's barrier, which is not what a
 * fixture about reads wants to measure, and would be one more message in the pipe under test.
 */
import cluster, { type Worker } from "node:cluster";
import { connect, createServer, type Socket } from "node:net";

/** In the primary: forks the one worker and returns it with a function that makes it busy. */
export async function forkBusyableWorker(): Promise<{ worker: Worker; makeBusy: () => void }> {
  const control = createServer();
  control.listen(0, "127.0.0.1");
  await new Promise((resolve) => control.once("listening", resolve));
  const controlled = new Promise<Socket>((resolve) => control.once("connection", resolve));
  const worker = cluster.fork({ CONTROL_PORT: String((control.address() as { port: number }).port) });
  const orders = await controlled;
  return { worker, makeBusy: () => orders.write("busy\n") };
}

/** In the worker: calls `busy` on each order from the primary. */
export function onBusyOrder(busy: () => void): void {
  connect(Number(process.env.CONTROL_PORT), "127.0.0.1").on("data", busy);
}
