/**
 * test/handoff-barrier.ts: the barrier of sticky-handoff.ts against the Deno IPC bug, for
 * sticky-handoff.test.ts. Like test/deno-ipc-repro.ts, but through the guard and the way sticky
 * talks: while the one worker is busy, the primary sends it ROUNDS pairs of a socket-less
 * "sticky:http-chunk" and a "sticky:connection" with a socket. The worker counts the sockets.
 *
 *   deno run -A test/handoff-barrier.ts guarded     (or: unguarded; also npx tsx ..., bun ...)
 *
 * Prints "sockets received: N/ROUNDS" and exits 0 when N = ROUNDS, else 1.
 */
import cluster from "node:cluster";
import { connect, createServer, type Socket } from "node:net";
import { answerHandoffBarriers, guardStickyHandoffs } from "../sticky-handoff.ts";
import { forkBusyableWorker, onBusyOrder } from "./busy-worker.ts";

const ROUNDS = 10;
const guarded = process.argv[2] === "guarded";

if (cluster.isPrimary) {
  cluster.setupPrimary({ serialization: "advanced" });
  if (guarded) guardStickyHandoffs();
  const { worker, makeBusy } = await forkBusyableWorker(); // the order goes over TCP, not IPC

  // Sockets to hand over: the server side of ROUNDS local connections.
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as { port: number };
  const sockets: Socket[] = [];
  server.on("connection", (socket) => sockets.push(socket));
  const clients = Array.from({ length: ROUNDS }, () => connect(port, "127.0.0.1"));
  while (sockets.length < ROUNDS) await new Promise((resolve) => setTimeout(resolve, 10));

  makeBusy();
  await new Promise((resolve) => setTimeout(resolve, 50)); // the worker is busy now
  for (let i = 0; i < ROUNDS; i++) {
    worker.send({ type: "sticky:http-chunk", data: Buffer.from("body"), connectionId: `c${i}` });
    worker.send({ type: "sticky:connection", data: Buffer.from("GET / HTTP/1.1\r\n\r\n") }, sockets[i]);
  }
  const received = await new Promise<number>((resolve) => worker.on("message", (m) => typeof m === "number" && resolve(m)));
  console.log(`sockets received: ${received}/${ROUNDS}`);
  for (const client of clients) client.destroy();
  worker.process.kill();
  process.exit(received === ROUNDS ? 0 : 1);
} else {
  answerHandoffBarriers();
  let received = 0;
  onBusyOrder(() => {
    const until = Date.now() + 300;
    while (Date.now() < until); // lets the primary's messages pile up in the pipe
    setTimeout(() => process.send!(received), 2000); // what arrived by then
  });
  process.on("message", (message: { type: string }, socket?: Socket) => {
    if (message.type === "sticky:connection" && socket) {
      received++;
      socket.destroy();
    }
  });
}
