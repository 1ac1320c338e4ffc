/**
 * bench/scale-clients.ts: one process of bench/scale.ts's light clients. A socket.io-client object
 * per connection costs the client side as much CPU as the server's side, and the clients of a
 * scale run share the machine's cores with the server; so each client here is a bare WebSocket
 * (the `ws` package) that speaks Engine.IO v4 and Socket.IO itself: open packet `0{...}` -> `40`,
 * the connect acknowledgement `40{...}`, ping `2` -> pong `3`, events `42[...]`. The bare ws floor
 * (bench/scale-floor.ts) speaks the same to them, so both servers get the same clients.
 *
 * Each process binds its connections to its own loopback source address (127.0.0.x): about
 * 28,000 ephemeral ports exist per source address, and each process stays under the 20,000 open
 * files a process may hold here. Forked by bench/scale.ts, which gives the orders below.
 */
import { WebSocket } from "ws";
import { now } from "./protocol.ts";

/** Orders from bench/scale.ts. */
export type ToScaleClients =
  /** Open connections until `total` are connected (counting those already open). */
  | { type: "connect"; url: string; total: number; localAddress: string; concurrency: number; timeoutMs: number; attempts: number }
  /** Report once every connected client has had broadcast `seq`, or after `timeoutMs`. */
  | { type: "expect"; seq: number; timeoutMs: number }
  | { type: "close" };

export type FromScaleClients =
  /** resets: handshakes that failed before the Socket.IO connect acknowledgement (retried), by reason. */
  | { type: "connected"; open: number; failed: number; resets: Record<string, number>; dropped: number }
  /** latencies: publish-to-receive ms of every client that got `seq`; missing: connected clients that did not. */
  | { type: "received"; seq: number; latencies: Float64Array; missing: number; dropped: number; skipped: number };

interface LightClient {
  ws: WebSocket;
  connected: boolean;
  /** Highest broadcast seq received, and when it arrived relative to its sending. */
  seq: number;
  latency: number;
}

const clients = new Set<LightClient>();
let dropped = 0; // connections closed after their Socket.IO connect, not by us
let skipped = 0; // broadcasts a client missed between two it got (a burst's middle)
let closing = false;
/** How many clients have had each broadcast seq (counted as it arrives, not by scanning them all). */
const receivedBy = new Map<number, number>();

/** Opens one client; resolves true once Socket.IO acknowledged it, or with why it failed. */
function open(url: string, localAddress: string, timeoutMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`, {
      localAddress,
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
    });
    const client: LightClient = { ws, connected: false, seq: -1, latency: NaN };
    let settled = false;
    const settle = (result: true | string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      ws.terminate();
      settle("no Socket.IO connect in time");
    }, timeoutMs);
    ws.on("message", (data: Buffer) => {
      const text = data.toString();
      switch (text[0]) {
        case "0":
          return ws.send("40");
        case "2":
          return ws.send("3");
        case "4":
          if (text.startsWith("40")) {
            client.connected = true;
            clients.add(client);
            return settle(true);
          }
          if (text.startsWith("42")) return received(client, text);
          if (text.startsWith("44")) return settle(`refused: ${text.slice(2, 120)}`);
      }
    });
    ws.on("error", (err: NodeJS.ErrnoException) => settle(err.code ?? err.message));
    ws.on("close", (code) => {
      settle(`closed before connect (${code})`);
      if (client.connected && !closing) dropped++;
      clients.delete(client);
    });
  });
}

/** `42["chat message","<seq> <sent at>"]`, from the kit and from the floor alike. */
function received(client: LightClient, text: string) {
  const body = JSON.parse(text.slice(2)) as [string, string];
  const [seq, sentAt] = body[1].split(" ").map(Number);
  if (seq! > client.seq) {
    if (client.seq >= 0) skipped += seq! - client.seq - 1;
    client.seq = seq!;
    client.latency = now() - sentAt!;
    receivedBy.set(seq!, (receivedBy.get(seq!) ?? 0) + 1);
  }
}

async function connect(order: Extract<ToScaleClients, { type: "connect" }>): Promise<FromScaleClients> {
  const resets: Record<string, number> = {};
  let failed = 0;
  const deadline = Date.now() + order.timeoutMs;
  let inFlight = 0;
  await new Promise<void>((done) => {
    const next = () => {
      if (clients.size + inFlight >= order.total || Date.now() > deadline) return inFlight === 0 && done();
      inFlight++;
      void (async () => {
        for (let attempt = 1; ; attempt++) {
          const result = await open(order.url, order.localAddress, Math.max(1000, deadline - Date.now()));
          if (result === true) break;
          resets[result] = (resets[result] ?? 0) + 1;
          if (attempt >= order.attempts || Date.now() > deadline) {
            failed++;
            break;
          }
          await new Promise((r) => setTimeout(r, 100 * attempt));
        }
        inFlight--;
        next();
      })();
    };
    for (let i = 0; i < order.concurrency; i++) next();
    if (order.total <= clients.size) done();
  });
  return { type: "connected", open: clients.size, failed, resets, dropped };
}

async function expect({ seq, timeoutMs }: Extract<ToScaleClients, { type: "expect" }>): Promise<FromScaleClients> {
  const deadline = Date.now() + timeoutMs;
  // Polled: the latencies were taken as each message arrived, this only decides when to answer.
  while ((receivedBy.get(seq) ?? 0) < clients.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const got = [...clients].filter((c) => c.seq >= seq);
  return { type: "received", seq, latencies: Float64Array.from(got, (c) => c.latency), missing: clients.size - got.length, dropped, skipped };
}

process.on("message", async (order: ToScaleClients) => {
  if (order.type === "connect") process.send!(await connect(order));
  else if (order.type === "expect") process.send!(await expect(order));
  else {
    closing = true;
    for (const c of clients) c.ws.terminate();
    process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));
