/**
 * support/capture.ts: what Redis sees while a scenario runs, step by step, and the annotated text
 * docs/ shows. `npm run trace` (tools/trace.ts) prints it, `-- --write` writes it to docs/captures/; test/trace.test.ts
 * captures the post's scenario again and compares it with the trace blocks in docs/.
 *
 * Two scenarios share one way of capturing:
 * - the post's (captureTrace): index.ts with two workers on the classic adapter, client.ts A and B,
 *   emitter.ts; docs/learn/traces.md and docs/learn/then-and-now.md show it;
 * - the adapter tour (captureAdapterTour): every emitter.ts option, rooms, and for the streams
 *   adapter a client that drops and recovers, on one adapter; docs/reference/adapters.md shows it.
 *
 * The trace is real: a private Redis, `MONITOR` on a connection of its own, real processes. Each
 * step ends with an ECHO on another connection, so every command MONITOR printed before that ECHO
 * belongs to the step. Payloads are decoded with notepack.io, the MessagePack library the Redis
 * adapter itself uses.
 */
import { decode, encode } from "notepack.io";
import { createClient } from "redis";
import { io as connect, type Socket } from "socket.io-client";
import type { AdapterName } from "../lib/config.ts";
import { startCluster, workerOf } from "./cluster.ts";
import { freePort, startPrivateRedis } from "./redis.ts";
import { run, runToEnd, type Script, shellLine, sleep } from "./scripts.ts";
import { connected } from "./sockets.ts";
import type { Report } from "./conformance.ts";

/** One command as MONITOR printed it: the connection that sent it and its arguments. */
export interface Command {
  connection: string;
  /** The arguments exactly as MONITOR quotes them, e.g. `"PUBLISH" "socket.io#/#" "\x93..."`. */
  args: string;
}

export interface Step {
  title: string;
  /** What a reader types to do the same. */
  shell: string;
  /** What the kit's processes printed during the step, e.g. `B: Hello from A`. */
  printed: string[];
  commands: Command[];
}

export interface Trace {
  adapter: AdapterName;
  redisVersion: string;
  steps: Step[];
  /** Socket id → the name the rendering shows instead (`<A>`); empty for the post's scenario. */
  socketNames: Map<string, string>;
}

/** The steps of the post's scenario, in order. Their titles name the trace blocks in docs/. */
export const POST_STEP_TITLES = [
  "server start",
  "client A connects",
  "client B connects",
  "A chats",
  "emitter broadcast",
  "emitter to A's id",
  "server-side emit",
] as const;

/** The post's steps (docs/learn/traces.md), then the kit's own (docs/learn/users.md, docs/learn/asking.md). */
export const STEP_TITLES = [...POST_STEP_TITLES, "emitter to user A", "emitter lists user A", "emitter asks user A for acks"] as const;

/** How long to let late commands arrive before closing a step (no assertion depends on it). */
const SETTLE_MS = 500;
/** A tour step whose action has not finished by then fails the capture. */
const STEP_TIMEOUT_MS = 20_000;
const MARK = "trace: end of step";
const SERVER_SIDE_TEXT = "hello workers";
const USER_TEXT = "your order shipped";
const ACK_TEXT = "did you get it";

/** What printed lines during a step: a running script, or one that ran to its end. */
type Printer = Pick<Script, "stdout">;

/** What a scenario gets to drive the kit's processes and cut the capture into steps. */
interface Session {
  env: Record<string, string>;
  port: number;
  /** Starts one of the kit's scripts with the session's environment; stopped at the end. */
  start(script: string, args: string[], extra?: Record<string, string>): Script;
  /** Starts index.ts with 2 workers on the session's port and Redis; resolves once it listens. */
  startServer(): Promise<Script>;
  /** Closes a step: the commands MONITOR showed since the last one, and what `named` printed. */
  endStep(title: string, shell: string, named?: Record<string, Printer>): Promise<void>;
  socketNames: Map<string, string>;
}

/** What Redis runs, read step by step under `MONITOR`. */
export interface Monitor {
  redisVersion: string;
  /** The commands Redis ran since the last call (since MONITOR started, the first time), the workers' health checks left out. */
  next(): Promise<Command[]>;
  close(): Promise<void>;
}

/**
 * MONITOR on a connection of its own. A step ends with an ECHO on another connection: once MONITOR
 * has shown it, every command Redis ran before it has been seen.
 */
export async function monitorRedis(url: string): Promise<Monitor> {
  const monitor = createClient({ url });
  const marker = createClient({ url });
  const close = async () => void (await Promise.allSettled([monitor.close(), marker.close()]));
  try {
    await Promise.all([monitor.connect(), marker.connect()]);
    const redisVersion = /redis_version:(\S+)/.exec(await marker.info("server"))?.[1] ?? "unknown";
    const seen: string[] = [];
    const seenMarks: (() => void)[] = [];
    await monitor.monitor((line) => {
      seen.push(String(line));
      if (String(line).includes(MARK)) seenMarks.shift()?.();
    });
    return {
      redisVersion,
      async next() {
        const marked = new Promise<void>((resolve) => seenMarks.push(resolve));
        await marker.echo(MARK);
        await marked;
        // The workers' health checks (a PING on each connection once a while, lib/redis/health.ts;
        // INFO at start, the same module) come at times of their own: left out of every trace.
        return seen.splice(0).map(parseMonitorLine).filter((command) => !command.args.includes(MARK) && !HEALTH_CHECKS.test(command.args));
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Runs `scenario` against a fresh private Redis under MONITOR, and returns what it captured. */
async function capture(adapter: AdapterName, scenario: (session: Session) => Promise<void>): Promise<Trace> {
  const redis = await startPrivateRedis();
  let monitor: Monitor | undefined;
  const scripts: Script[] = [];
  try {
    monitor = await monitorRedis(redis.url);
    const { redisVersion } = monitor;
    const port = await freePort();
    const env = { REDIS_URL: redis.url, SERVER_URL: `http://127.0.0.1:${port}`, ADAPTER: adapter };
    const steps: Step[] = [];
    const printedFrom = new Map<Printer, number>();
    const session: Session = {
      env,
      port,
      socketNames: new Map(),
      start(script, args, extra = {}) {
        const started = run(script, args, { ...env, ...extra });
        scripts.push(started);
        return started;
      },
      async startServer() {
        const { server } = await startCluster({ redis, port, adapter, timeoutMs: 30_000 });
        scripts.push(server);
        return server;
      },
      async endStep(title, shell, named = {}) {
        await sleep(SETTLE_MS);
        const commands = await monitor!.next();
        const printed: string[] = [];
        for (const [name, script] of Object.entries(named)) {
          printed.push(...script.stdout.slice(printedFrom.get(script) ?? 0).map((line) => `${name}: ${line}`));
          printedFrom.set(script, script.stdout.length);
        }
        steps.push({ title, shell, printed, commands });
      },
    };
    await scenario(session);
    // A process that stopped during the scenario (a crash, a signal from outside) spoils the capture.
    const stopped = scripts.find((script) => script.child.exitCode !== null || script.child.signalCode !== null);
    if (stopped) throw new Error(`${stopped.child.spawnargs.join(" ")} stopped during the capture: ${stopped.stderr.join("\n")}`);
    return { adapter, redisVersion, steps, socketNames: session.socketNames };
  } finally {
    // MONITOR first, so that the shutdown's UNSUBSCRIBEs stay out of the trace.
    await monitor?.close();
    await Promise.allSettled(scripts.map((script) => script.stop()));
    await redis.stop();
  }
}

/** The post's scenario on the classic adapter, as docs/learn/traces.md shows it. */
export function captureTrace(): Promise<Trace> {
  return capture("classic", async ({ env, start, startServer, endStep }) => {
    const server = await startServer();
    await endStep("server start", "PORT=3000 WORKERS=2 npx tsx index.ts", { server });

    const a = start("client.ts", ["A"]);
    const idA = (await a.waitFor(/^connected, id: (\S+)$/, 15_000))[1]!;
    await workerOf(server, idA, 10_000);
    await endStep("client A connects", "npx tsx client.ts A", { server, A: a });

    const b = start("client.ts", ["B"]);
    const idB = (await b.waitFor(/^connected, id: (\S+)$/, 15_000))[1]!;
    await workerOf(server, idB, 10_000);
    await endStep("client B connects", "npx tsx client.ts B", { server, A: a, B: b });

    a.send("Hello");
    await b.waitFor(/^Hello from A$/);
    await endStep("A chats", "Hello          (typed in A's terminal)", { server, A: a, B: b });

    const fromB = b.stdout.length;
    mustSucceed(await runToEnd("emitter.ts", [], env));
    await a.waitFor(/^message from outside$/);
    await b.waitFor(/^message from outside$/, 10_000, fromB);
    await endStep("emitter broadcast", "npx tsx emitter.ts", { server, A: a, B: b });

    mustSucceed(await runToEnd("emitter.ts", [idA], env));
    await a.waitFor(/^Hi guys from Emitter$/);
    await endStep("emitter to A's id", `npx tsx emitter.ts ${idA}`, { server, A: a, B: b });

    // To the servers, not the clients: each worker's server-side "chat message" listener logs it
    // and relays it to its own clients.
    const before = [server, a, b].map((script) => script.stdout.length);
    mustSucceed(await runToEnd("emitter.ts", ["--server-side", "--message", SERVER_SIDE_TEXT], env));
    for (const worker of [1, 2]) await server.waitFor(`worker: ${worker}, server-side chat message on /: ${SERVER_SIDE_TEXT}`, 10_000, before[0]);
    await a.waitFor(new RegExp(`^${SERVER_SIDE_TEXT}$`), 10_000, before[1]);
    await b.waitFor(new RegExp(`^${SERVER_SIDE_TEXT}$`), 10_000, before[2]);
    await endStep("server-side emit", `npx tsx emitter.ts --server-side --message "${SERVER_SIDE_TEXT}"`, { server, A: a, B: b });

    // A user instead of a socket: client.ts A named its user A at its handshake (open mode).
    mustSucceed(await runToEnd("emitter.ts", ["--user", "A", "--message", USER_TEXT], env));
    await a.waitFor(new RegExp(`^${USER_TEXT}$`));
    await endStep("emitter to user A", `npx tsx emitter.ts --user A --message "${USER_TEXT}"`, { server, A: a, B: b });

    // Questions: the emitter asks every worker and waits for their answers (docs/learn/asking.md).
    const listed = mustSucceed(await runToEnd("emitter.ts", ["--list", "--user", "A"], env));
    await endStep("emitter lists user A", "npx tsx emitter.ts --list --user A", { server, A: a, B: b, emitter: listed });
    const acked = mustSucceed(await runToEnd("emitter.ts", ["--ack", "--user", "A", "--message", ACK_TEXT], env));
    await a.waitFor(new RegExp(`^${ACK_TEXT}$`));
    await endStep("emitter asks user A for acks", `npx tsx emitter.ts --ack --user A --message "${ACK_TEXT}"`, { server, A: a, B: b, emitter: acked });
  });
}

/**
 * Every emitter.ts option on one adapter, as docs/reference/adapters.md shows it: two workers, sockets A and B
 * (socket.io-client, so that the streams run can drop B's connection and bring it back).
 */
export function captureAdapterTour(adapter: AdapterName): Promise<Trace> {
  return capture(adapter, async ({ env, port, startServer, endStep, socketNames }) => {
    const step = async (title: string, action: () => Promise<unknown> = async () => {}) => {
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`step "${title}" did not finish`)), STEP_TIMEOUT_MS);
      });
      await Promise.race([action(), stuck]).finally(() => clearTimeout(timer));
      await endStep(title, "");
    };
    const emitter = (...args: string[]) => async () => mustSucceed(await runToEnd("emitter.ts", args, env));
    const sockets: Socket[] = [];
    const open = async (name: string) => {
      const socket = connect(`http://127.0.0.1:${port}`, { forceNew: true, transports: ["websocket"] });
      sockets.push(socket);
      await connected(socket, STEP_TIMEOUT_MS, { firstTry: true });
      socketNames.set(socket.id!, name);
      return socket;
    };

    try {
      await step("server start (2 workers)", startServer);
      const a = await open("<A>");
      await step("socket A connects");
      const b = await open("<B>");
      await step("socket B connects");
      await step("A joins lobby (client.ts: /join lobby)", () => a.emitWithAck("join", "lobby"));
      await step('A sends a chat message "Hello"', async () => {
        const arrived = new Promise((resolve) => b.once("chat message", resolve));
        a.emit("chat message", "A", "Hello");
        await arrived;
      });
      await step("emitter.ts", emitter());
      await step("emitter.ts <id of A>", emitter(a.id!));
      await step("emitter.ts --room lobby --message hi", emitter("--room", "lobby", "--message", "hi"));
      await step("emitter.ts --server-side --message note", emitter("--server-side", "--message", "note"));
      await step("emitter.ts --room lobby --join vip", emitter("--room", "lobby", "--join", "vip"));
      if (adapter === "streams") {
        b.io.reconnection(false); // it comes back when the tour says so
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
    } finally {
      for (const socket of sockets) socket.disconnect();
    }
  });
}

function mustSucceed<T extends { code: number | null; stderr: string[] }>(result: T): T {
  if (result.code !== 0) throw new Error(`emitter.ts exited with ${result.code}: ${result.stderr.join("\n")}`);
  return result;
}

/** `1795631381.3093 [0 127.0.0.1:34746] "HELLO" "3"` → connection and arguments. */
export function parseMonitorLine(line: string): Command {
  const match = /^\d+\.\d+ \[\d+ (\S+)\] (.*)$/s.exec(line);
  if (!match) throw new Error(`not a MONITOR line: ${line}`);
  return { connection: match[1]!, args: match[2]! };
}

/**
 * The bytes of each argument of a MONITOR line. Redis quotes every argument and escapes what is
 * not printable ASCII (\xHH, \n, \r, \t, \a, \b, \\ and \"): this undoes that quoting.
 */
export function argumentBytes(args: string): Buffer[] {
  const result: Buffer[] = [];
  const named: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8 };
  let i = 0;
  while (i < args.length) {
    if (args[i] === " ") {
      i++;
      continue;
    }
    if (args[i] !== '"') throw new Error(`not a quoted argument at ${i}: ${args}`);
    const bytes: number[] = [];
    for (i++; args[i] !== '"'; i++) {
      if (i >= args.length) throw new Error(`unterminated argument: ${args}`);
      if (args[i] !== "\\") {
        bytes.push(args.charCodeAt(i));
      } else if (args[++i] === "x") {
        bytes.push(parseInt(args.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        bytes.push(named[args[i]!] ?? args.charCodeAt(i));
      }
    }
    i++;
    result.push(Buffer.from(bytes));
  }
  return result;
}

/** The message of a PUBLISH-like command, decoded: MessagePack, or JSON when it starts with `{`. */
export function decodedMessage(args: string): { format: "msgpack" | "json"; value: unknown } | undefined {
  const [name, , message] = argumentBytes(args);
  if (!name || !/^S?PUBLISH$/i.test(name.toString()) || !message) return undefined;
  if (message[0] === 0x7b) return { format: "json", value: JSON.parse(message.toString()) };
  return { format: "msgpack", value: decode(message) };
}

/**
 * Names each connection after what it does: `sub-N` subscribes (a worker's subscriber),
 * `pub-N` is another connection of the server (a worker's publisher), `emitter-N` appeared after
 * the server had started. N counts in order of first appearance.
 */
export function connectionNames(trace: Trace): Map<string, string> {
  const [startStep, ...later] = trace.steps;
  const subscribers = new Set<string>();
  for (const step of trace.steps) {
    for (const command of step.commands) {
      if (/^"(p|s)?subscribe"/i.test(command.args)) subscribers.add(command.connection);
    }
  }
  const names = new Map<string, string>();
  const counts = new Map<string, number>();
  const name = (connection: string, role: string) => {
    if (names.has(connection)) return;
    const n = (counts.get(role) ?? 0) + 1;
    counts.set(role, n);
    names.set(connection, `${role}-${n}`);
  };
  for (const command of startStep?.commands ?? []) name(command.connection, subscribers.has(command.connection) ? "sub" : "pub");
  for (const step of later) for (const command of step.commands) name(command.connection, "emitter");
  return names;
}

/** A step as a fenced `trace` block of docs/: the commands, each message decoded below it. */
export function renderStep(step: Step, names: Map<string, string>): string {
  const lines = ["```trace", `# ${step.title}`, `# $ ${step.shell}`];
  for (const printed of step.printed) lines.push(`#   ${printed}`);
  if (step.commands.length === 0) lines.push("# (no Redis command)");
  for (const command of step.commands) {
    lines.push(`${(names.get(command.connection) ?? "other").padEnd(10)} ${command.args}`);
    const message = decodedMessage(command.args);
    if (message?.format === "msgpack") lines.push(`           msgpack: ${JSON.stringify(message.value)}`);
  }
  lines.push("```");
  return lines.join("\n");
}

/** The whole capture as a Markdown page. */
export function renderTrace(trace: Trace): string {
  const names = connectionNames(trace);
  return [
    `# Trace: the post's scenario, ${trace.adapter} adapter`,
    "",
    `Written by \`npm run trace -- --write\` (tools/trace.ts) against Redis ${trace.redisVersion}: index.ts with two workers,`,
    "client.ts A and B, emitter.ts. Each block is one step of the scenario: the command a reader runs,",
    "what the processes printed (`#   ...`), then every command Redis received (but the workers' health checks, PING and INFO), as `MONITOR` showed it",
    "with its timestamp and client address replaced by the connection's role: `pub-N` and `sub-N`",
    "are the workers' publishing and subscribing connections, `emitter-N` the emitters' (N in order",
    "of appearance). Below each MessagePack message, its value decoded with notepack.io.",
    "",
    ...trace.steps.flatMap((step) => [renderStep(step, names), ""]),
    "## The chat message, byte by byte",
    "",
    "The PUBLISH of the step \"A chats\", cut into its MessagePack parts by notepack.io:",
    "",
    renderByteTable(byteTable(chatPayload(trace))),
    "",
  ].join("\n");
}

/** The kit's own health checks, not the adapter's protocol nor node-redis's: left out of every capture. */
const HEALTH_CHECKS = /^"(PING|INFO)"/i;

/** Commands that are connection chatter, not the adapter's protocol: left out of the tour and of what a publisher sent. */
export const CHATTER = /^"(PING|HELLO|CLIENT|INFO|SELECT)"/i;

/**
 * An adapter tour as a Markdown page with one block, as docs/reference/adapters.md shows it: each step's
 * commands without the connection, chatter left out (and the streams adapter's blocking XREAD loop,
 * after the first step); ids replaced by placeholders, MessagePack decoded below its line.
 */
export function renderTour(trace: Trace): string {
  const lines: string[] = [];
  trace.steps.forEach((step, index) => {
    lines.push(...(index === 0 ? [] : [""]), `# ${step.title}`);
    for (const { args } of step.commands) {
      if (CHATTER.test(args) || (index > 0 && /^"XREAD"/i.test(args))) continue;
      lines.push(withPlaceholders(args, trace.socketNames));
      const message = decodedMessage(args);
      if (message?.format === "msgpack") lines.push(`    = msgpack ${withPlaceholders(JSON.stringify(message.value), trace.socketNames)}`);
    }
  });
  return [
    `# Trace: the adapter tour, ${trace.adapter} adapter`,
    "",
    `Written by \`npm run trace -- ${trace.adapter} --write\` (tools/trace.ts) against Redis ${trace.redisVersion}: index.ts with two`,
    "workers on `ADAPTER=" + trace.adapter + "`, two socket.io-client sockets A and B, emitter.ts with each of its options.",
    "Every command Redis received, as `MONITOR` showed it, without timestamp and client address, and",
    "without connection chatter (HELLO, CLIENT, PING...) or, after the start, the streams adapter's",
    "XREAD loop. Socket ids, server uids and session ids are replaced by `<A>`, `<B>`, `<uid>` and",
    "`<pid>`; below each MessagePack message, its value decoded with notepack.io. docs/reference/adapters.md",
    "explains each adapter and links here.",
    "",
    "```",
    ...lines,
    "```",
    "",
  ].join("\n");
}

/** Socket ids by name; server uids (16 hex digits: sharded, streams; 6 characters: classic) and session ids as placeholders. */
function withPlaceholders(text: string, socketNames: Map<string, string>): string {
  let named = text;
  for (const [id, name] of socketNames) named = named.replaceAll(id, name);
  return named
    .replace(/\b[0-9a-f]{16}\b|(?<=#)[\w-]{6}(?=#)|(?<=\\x93\\xa6)[\w-]{6}|(?<=^\[")[\w-]{6}(?=")/g, "<uid>")
    .replace(/sio:session:[\w-]{20}/g, "sio:session:<pid>");
}

/** The message the worker published when A chatted. */
export function chatPayload(trace: Trace): Buffer {
  const chat = trace.steps.find((step) => step.title === "A chats")?.commands.find((command) => decodedMessage(command.args)?.format === "msgpack");
  if (!chat) throw new Error('no MessagePack PUBLISH in the step "A chats"');
  return argumentBytes(chat.args)[2]!;
}

export interface ByteRow {
  bytes: string;
  element: string;
  value: string;
  meaning: string;
}

/** What each part of an adapter message is for, by its place in the message. */
const MEANINGS: Record<string, string> = {
  "array header": "fixarray (0x90 + count): [uid, packet, options]",
  uid: "fixstr (0xa0 + length): the sender's id; a worker drops messages carrying its own",
  "packet: map header": "fixmap (0x80 + count): the Socket.IO packet",
  "packet key": "fixstr: a key of the map",
  "packet.type": "2 = EVENT in the Socket.IO protocol",
  "packet.data": "fixarray: event name, then the arguments",
  "packet.nsp": "the namespace",
  "options: map header": "fixmap: who gets the packet",
  "options key": "fixstr: a key of the map",
  "options.rooms": "fixarray: only sockets in these rooms (empty: everyone)",
  "options.except": "fixarray: never these sockets (here: the sender)",
  "options.flags": "fixmap: volatile, compress, local... (none here)",
};

/** A byte table as Markdown. */
export function renderByteTable(rows: ByteRow[]): string {
  return [
    "| bytes | part | value | meaning |",
    "| --- | --- | --- | --- |",
    ...rows.map((row) => `| \`${row.bytes}\` | ${row.element} | \`${row.value}\` | ${row.meaning} |`),
  ].join("\n");
}

/**
 * One row per MessagePack element of a payload, derived with notepack.io: the top-level array's
 * header, then each element re-encoded on its own (each map key and value separately). The rows
 * must add up to the exact payload, or this throws.
 */
export function byteTable(payload: Buffer): ByteRow[] {
  const value = decode(payload) as unknown[];
  if (!Array.isArray(value)) throw new Error("the payload is not a MessagePack array");
  const hex = (bytes: Buffer) => [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join(" ");
  const rows: ByteRow[] = [];
  const parts: Buffer[] = [];
  const add = (bytes: Buffer, element: string, shown: string) => {
    parts.push(bytes);
    rows.push({ bytes: hex(bytes), element, value: shown, meaning: MEANINGS[element] ?? "" });
  };
  /** The header notepack writes for an array or map of `count` elements: 1 byte under 16, else 3. */
  const headerOf = (count: number, kind: "array" | "map") => {
    const sample = kind === "array" ? new Array(count).fill(0) : Object.fromEntries(Array.from({ length: count }, (_, i) => [i, 0]));
    return Buffer.from(encode(sample)).subarray(0, count < 16 ? 1 : 3);
  };
  const labels = ["uid", "packet", "options"];
  add(headerOf(value.length, "array"), "array header", `${value.length} elements: ${labels.slice(0, value.length).join(", ")}`);
  value.forEach((element, index) => {
    const label = labels[index] ?? `element ${index}`;
    if (element && typeof element === "object" && !Array.isArray(element)) {
      const entries = Object.entries(element);
      add(headerOf(entries.length, "map"), `${label}: map header`, `${entries.length} entries`);
      for (const [key, entry] of entries) {
        add(Buffer.from(encode(key)), `${label} key`, JSON.stringify(key));
        add(Buffer.from(encode(entry)), `${label}.${key}`, JSON.stringify(entry));
      }
    } else {
      add(Buffer.from(encode(element)), label, JSON.stringify(element));
    }
  });
  if (!Buffer.concat(parts).equals(payload)) throw new Error("the rows do not add up to the payload");
  return rows;
}

/**
 * What a publisher sent for each case of the conformance check (support/conformance.ts), as the
 * ```sent blocks of docs/learn/any-language.md show it: each case's command, then what Redis ran
 * for it, as MONITOR quotes it, each message decoded below its line. `npm run conformance -- --sent`
 * prints it; test/trace.test.ts compares the page's blocks with a live run.
 */
export function renderSent(report: Report): string {
  const lines = ["```sent", `# ADAPTER=${report.adapter}: what the publisher sent to Redis for each case of npm run conformance`];
  for (const result of report.results) {
    lines.push(`# ${result.name}: ${result.about}`, `# $ ADAPTER=${report.adapter} ${shellLine(result.command)}`);
    if (result.sent.length === 0) lines.push("# (no Redis command)");
    for (const { args } of result.sent) {
      lines.push(args);
      const decoded = decodedPayload(args);
      if (decoded) lines.push(`    ${decoded.format}: ${JSON.stringify(decoded.value)}`);
    }
  }
  return [...lines, "```"].join("\n");
}

/** A PUBLISH's or SPUBLISH's message (decodedMessage), or an XADD's fields with the JSON of its data field parsed. */
function decodedPayload(args: string): { format: string; value: unknown } | undefined {
  const message = decodedMessage(args);
  if (message) return message;
  const [name, ...rest] = argumentBytes(args).map((arg) => arg.toString());
  const id = rest.indexOf("*");
  if (name?.toUpperCase() !== "XADD" || id === -1) return undefined;
  const fields = rest.slice(id + 1);
  const entry: Record<string, unknown> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i]!] = fields[i + 1]!.startsWith("{") ? JSON.parse(fields[i + 1]!) : fields[i + 1];
  return { format: "fields", value: entry };
}
