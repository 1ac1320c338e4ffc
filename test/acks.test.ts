/**
 * lib/worker/acks.ts against a real socket.io server and real clients: an acknowledgement a client
 * never sends is dropped after the limit; one it sends is dropped at once, its timer with it.
 * Without the module the silent client's entries stay until it disconnects (socketio/socket.io#4984).
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { Server, type Socket } from "socket.io";
import { io as connect } from "socket.io-client";
import { expireUnansweredAcks } from "../lib/worker/acks.ts";
import { sleep, until } from "../support/scripts.ts";

const pending = (socket: Socket) => (socket as unknown as { acks: Map<number, unknown> }).acks.size;

test("an acknowledgement never sent costs nothing after the limit; one sent is dropped at once", async (t) => {
  const http = createServer();
  const io = new Server(http);
  io.on("connection", (socket) => expireUnansweredAcks(socket, 500));
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const answering = connect(url, { transports: ["websocket"] });
  const silent = connect(url, { transports: ["websocket"] });
  t.after(() => {
    answering.close();
    silent.close();
    io.close();
  });
  answering.on("ask", (answer?: (text: string) => void) => answer?.("yes"));
  silent.on("ask", () => {});
  await until(() => answering.connected && silent.connected && io.sockets.sockets.size === 2, 10_000, "both connected");
  const byClient = new Map([...io.sockets.sockets.values()].map((socket) => [socket.id, socket]));
  const [fromAnswering, fromSilent] = [byClient.get(answering.id!)!, byClient.get(silent.id!)!];

  let answers = 0;
  io.timeout(5000).emit("ask", () => {}); // a broadcast: socket.io-adapter's broadcastWithAck
  for (const socket of [fromAnswering, fromSilent]) socket.emit("ask", () => answers++);
  await until(() => answers === 1, 5000, "the answering client's answer");
  await sleep(100);
  assert.equal(pending(fromAnswering), 0, "answered: nothing kept");
  assert.equal(pending(fromSilent), 2, "not answered yet: both kept");
  await until(() => pending(fromSilent) === 0, 5000, "the silent client's entries dropped after the limit");
});
