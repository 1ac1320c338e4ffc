/**
 * test/deno-ipc-repro.ts: a minimal reproduction of the Deno IPC bug sticky-handoff.ts works
 * around, with node:child_process only (no Socket.IO, no cluster). The parent sends ROUNDS pairs
 * of messages to a child: one without a handle, then one with a socket, while the child is busy,
 * so that the child reads each pair in one go. Node and Bun deliver every socket with its
 * message; Deno 2.9 attaches the socket to the message before it, and loses it.
 *
 *   deno run -A test/deno-ipc-repro.ts      (also: npx tsx test/deno-ipc-repro.ts, bun test/deno-ipc-repro.ts)
 *
 * Prints how many socket messages arrived and how many of them carried their socket; exits 0
 * when all ROUNDS did, else 1. (On Deno the parent then waits forever for the child's receipt of
 * the lost socket and sends nothing more: that is how a sticky worker stops getting connections.)
 */
import { fork } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import { fileURLToPath } from "node:url";

const ROUNDS = 10;

if (process.argv[2] !== "child") {
  const child = fork(fileURLToPath(import.meta.url), ["child"], { serialization: "advanced" });
  await new Promise((resolve) => child.once("message", resolve)); // the child is listening

  // Sockets to hand over: the server side of ROUNDS local connections.
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as { port: number };
  const sockets: Socket[] = [];
  server.on("connection", (socket) => sockets.push(socket));
  const clients = Array.from({ length: ROUNDS }, () => connect(port, "127.0.0.1"));
  while (sockets.length < ROUNDS) await new Promise((resolve) => setTimeout(resolve, 10));

  child.send({ type: "busy", ms: 300 });
  for (let i = 0; i < ROUNDS; i++) {
    child.send({ type: "plain", i });
    child.send({ type: "socket", i }, sockets[i]);
  }
  const { seen, withSocket } = await new Promise<{ seen: number; withSocket: number }>((resolve) => child.once("message", resolve));
  console.log(`socket messages received: ${seen}/${ROUNDS}, with their socket: ${withSocket}/${ROUNDS}`);
  for (const client of clients) client.destroy();
  child.kill();
  process.exit(withSocket === ROUNDS ? 0 : 1);
} else {
  let withSocket = 0;
  let seen = 0;
  process.on("message", (message: { type: string; ms?: number }, socket?: Socket) => {
    if (message.type === "busy") {
      const until = Date.now() + message.ms!;
      while (Date.now() < until); // lets the parent's messages pile up in the pipe
      setTimeout(() => process.send!({ seen, withSocket }), 1000); // what arrived by then
    } else if (message.type === "socket") {
      seen++;
      if (socket) withSocket++;
      socket?.destroy();
    }
  });
  process.send!("ready");
}
