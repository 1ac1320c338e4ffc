/**
 * test/handoff-race.ts: the read race of a socket handoff, made certain instead of rare, for
 * sticky-handoff.test.ts. A cluster primary reads the first chunk of a connection and hands the
 * socket to its one worker the way @socket.io/sticky does, while the worker is kept busy for
 * BUSY_MS (so its acknowledgement of the socket is late, as under load). The client sends a
 * second chunk in that window; the worker echoes everything it reads. Without the guard the
 * primary reads the second chunk and it is lost; with it, the worker gets it.
 *
 *   npx tsx test/handoff-race.ts guarded      (or: unguarded; also bun ..., deno run -A ...)
 *
 * Prints "echo: <what the worker read, JSON>" and exits 0, or a one-line error and exits 1.
 */
import cluster from "node:cluster";
import { connect, createServer, type Socket } from "node:net";
import { answerHandoffBarriers, guardStickyHandoffs } from "../sticky-handoff.ts";
import { forkBusyableWorker, onBusyOrder } from "./busy-worker.ts";

const BUSY_MS = 1000;
const guarded = process.argv[2] === "guarded";

if (cluster.isPrimary) {
  cluster.setupPrimary({ serialization: "advanced" });
  if (guarded) guardStickyHandoffs();
  const { worker, makeBusy } = await forkBusyableWorker(); // the order goes over TCP, not IPC

  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.once("data", (chunk) => {
      makeBusy(); // the worker cannot acknowledge the socket for BUSY_MS
      setTimeout(() => worker.send({ type: "sticky:connection", data: chunk }, socket), 50);
    });
  });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as { port: number };

  const client = connect(port, "127.0.0.1");
  let echo = "";
  client.setEncoding("utf8").on("data", (text: string) => (echo += text));
  client.write("first\n");
  setTimeout(() => client.end("second\n"), 250); // the socket is on its way to the busy worker
  const timer = setTimeout(() => finish(`no end of echo within 5 s, got ${JSON.stringify(echo)}`), 5000);
  client.on("end", () => finish());

  function finish(error?: string) {
    clearTimeout(timer);
    if (error) console.error(error);
    else console.log(`echo: ${JSON.stringify(echo)}`);
    worker.process.kill();
    process.exit(error ? 1 : 0);
  }
} else {
  answerHandoffBarriers();
  onBusyOrder(() => {
    const until = Date.now() + BUSY_MS;
    while (Date.now() < until); // blocks the event loop, hence the IPC acknowledgement
  });
  process.on("message", (message: { type: string; data?: Buffer }, socket?: Socket) => {
    if (message.type === "sticky:connection" && socket) {
      let received = Buffer.from(message.data!).toString();
      socket.setEncoding("utf8").on("data", (text: string) => (received += text));
      socket.on("end", () => socket.end(received));
    }
  });
}
