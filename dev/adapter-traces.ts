/**
 * dev/adapter-traces.ts: what each Redis adapter (and its emitter) sends to Redis, step by step,
 * as Redis MONITOR sees it. The traces in docs/adapters.md come from here.
 *
 *   npx tsx dev/adapter-traces.ts                  classic, sharded and streams
 *   npx tsx dev/adapter-traces.ts streams          one of them
 *
 * Per adapter it starts a private Redis and a 2-worker index.ts on free ports, connects two
 * sockets A and B, and runs the steps below. Socket ids, server uids and session ids are replaced
 * by <A>, <B>, <uid> and <pid>; binary (msgpack) payloads are followed by their decoded form.
 * Not part of the kit's runtime, and not a test: it prints, it does not check.
 */
import { decode } from "@msgpack/msgpack";
import { createClient } from "redis";
import { io as connect, type Socket } from "socket.io-client";
import { ADAPTERS, isAdapterName } from "../shared.ts";
import { run, runToEnd, stopAll } from "../test/harness.ts";
import { freePort, startPrivateRedis } from "./redis.ts";

const chosen = process.argv.slice(2);
const bad = chosen.find((name) => !isAdapterName(name));
if (bad) {
  console.error(`usage: adapter-traces.ts [${ADAPTERS.join(" | ")}]...; got "${bad}"`);
  process.exit(2);
}
/** Commands that are connection chatter, not the adapter's protocol. */
const NOISE = /^"(PING|HELLO|CLIENT|INFO|SELECT|SETNAME)"/i;
const SETTLE_MS = 500;
const STEP_TIMEOUT_MS = 20_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const adapter of chosen.length > 0 ? chosen : ADAPTERS) {
  const redis = await startPrivateRedis();
  const monitor = createClient({ url: redis.url });
  await monitor.connect();
  const lines: string[] = [];
  await monitor.monitor((line) => lines.push(String(line).replace(/^[\d.]+ \[[^\]]*\] /, "")));

  const port = await freePort();
  const env = { REDIS_URL: redis.url, ADAPTER: adapter };
  const names = new Map<string, string>();
  let shown = 0;
  const step = async (title: string, action: () => Promise<unknown>, keepReads = false) => {
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`step "${title}" did not finish`)), STEP_TIMEOUT_MS);
    });
    await Promise.race([action(), stuck]).finally(() => clearTimeout(timer));
    await sleep(SETTLE_MS);
    console.log(`\n# ${title}`);
    for (const line of lines.slice(shown)) {
      if (NOISE.test(line) || (!keepReads && /^"XREAD"/i.test(line))) continue;
      console.log(describe(line, names));
    }
    shown = lines.length;
  };

  console.log(`\n======== ADAPTER=${adapter} ========`);
  try {
    await traceSteps(adapter, port, env, names, step);
  } finally {
    await stopAll(); // also on a failed step: no server left behind
    await monitor.close();
    await redis.stop();
  }
}

type Step = (title: string, action: () => Promise<unknown>, keepReads?: boolean) => Promise<void>;

async function traceSteps(adapter: string, port: number, env: Record<string, string>, names: Map<string, string>, step: Step) {
  const server = run("index.ts", [], { ...env, PORT: String(port), WORKERS: "2" });
  await step("server start (2 workers)", () => server.waitFor("listening on port", 20_000), true);

  const a = await open(`http://127.0.0.1:${port}`);
  names.set(a.id!, "<A>");
  await step("socket A connects", async () => {});
  const b = await open(`http://127.0.0.1:${port}`);
  names.set(b.id!, "<B>");
  await step("socket B connects", async () => {});
  await step("A joins lobby (client.ts: /join lobby)", () => a.emitWithAck("join", "lobby"));
  await step('A sends a chat message "Hello"', async () => {
    const arrived = new Promise((resolve) => b.once("chat message", resolve));
    a.emit("chat message", "A", "Hello");
    await arrived;
  });
  const emitter = (...args: string[]) => () => runToEnd("emitter.ts", args, env);
  await step("emitter.ts", emitter());
  await step("emitter.ts <id of A>", emitter("--", a.id!));
  await step("emitter.ts --room lobby --message hi", emitter("--room", "lobby", "--message", "hi"));
  await step("emitter.ts --server-side --message note", emitter("--server-side", "--message", "note"));
  await step("emitter.ts --room lobby --join vip", emitter("--room", "lobby", "--join", "vip"));
  if (adapter === "streams") {
    b.io.reconnection(false); // it comes back when the script says so
    await step("B loses its connection; emitter.ts while it is away", async () => {
      b.io.engine.close();
      await sleep(SETTLE_MS);
      await emitter("--message", "while you were away")();
    });
    await step("B comes back and recovers what it missed", async () => {
      const back = new Promise<void>((resolve) => b.once("connect", () => resolve()));
      b.connect();
      await back;
    });
  }
  await step("emitter.ts --room vip --disconnect", emitter("--room", "vip", "--disconnect"));

  a.disconnect();
  b.disconnect();
}

async function open(url: string): Promise<Socket> {
  const socket = connect(url, { forceNew: true, transports: ["websocket"] });
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("connect_error", reject));
  return socket;
}

/** A MONITOR line with ids named, and the decoded form of a msgpack payload after it. */
function describe(line: string, names: Map<string, string>): string {
  let text = line;
  for (const [id, name] of names) text = text.replaceAll(id, name);
  text = text
    // Server uids: 16 hex digits (sharded, streams), 6 URL-safe characters (classic).
    .replace(/\b[0-9a-f]{16}\b|(?<=#)[\w-]{6}(?=#)|(?<=\\x93\\xa6)[\w-]{6}/g, "<uid>")
    .replace(/sio:session:[A-Za-z0-9_-]{20}/g, "sio:session:<pid>");
  const binary = [...line.matchAll(/"((?:[^"\\]|\\.)*\\x[0-9a-f]{2}(?:[^"\\]|\\.)*)"/g)].at(-1)?.[1];
  if (!binary || line.startsWith('"SET"')) return text;
  try {
    let decoded = JSON.stringify(decode(unescape(binary)));
    for (const [id, name] of names) decoded = decoded.replaceAll(id, name);
    return `${text}\n    = msgpack ${decoded.replace(/\b[0-9a-f]{16}\b|^\["[\w-]{6}"/g, (uid) => (uid.startsWith("[") ? '["<uid>"' : "<uid>"))}`;
  } catch {
    return text;
  }
}

/** Bytes from Redis's quoted notation (\xHH, \n, \", \\ ...). */
function unescape(quoted: string): Uint8Array {
  const bytes: number[] = [];
  const simple: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8, '"': 34, "\\": 92 };
  for (let i = 0; i < quoted.length; i++) {
    if (quoted[i] !== "\\") bytes.push(...Buffer.from(quoted[i]!));
    else if (quoted[i + 1] === "x") bytes.push(parseInt(quoted.slice(i + 2, (i += 3) + 1), 16));
    else bytes.push(simple[quoted[++i]!] ?? 0);
  }
  return Uint8Array.from(bytes);
}
