/**
 * support/conformance.ts: the conformance check of a publisher, any program that reaches the kit's
 * clients through Redis (`npm run conformance`, tools/conformance.ts; test/conformance.test.ts).
 * Emitters written in other languages break silently when an adapter's format moves
 * (rase-/socket.io-php-emitter#36, "not working for Socket.io 4"; socket.io-redis-emitter#127 for
 * the sharded and streams adapters): nothing fails, the clients just get nothing. Upstream offers
 * no way to check an emitter; this is one, for any language.
 *
 * A private Redis under MONITOR, index.ts with two workers on one adapter, and six socket.io-client
 * sockets placed on both workers and named in their handshake (open mode: `auth: { name }`). The
 * publisher's command runs once per case with the case's placeholders filled in. Then a sentinel
 * follows the adapter's own path through Redis (the kit's emitter) to both namespaces: once every
 * socket has it, whatever the case delivered has arrived, so each socket's share is judged without
 * a timer, the missing and the extra alike. docs/learn/any-language.md documents the cases.
 */
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import { CHAT_NAMESPACES, userRoom } from "../lib/chat.ts";
import type { AdapterName } from "../lib/config.ts";
import { shardedStreamsEmitter } from "../lib/emitter/sharded-streams.ts";
import { CHATTER, type Command, type Monitor, monitorRedis } from "./capture.ts";
import { type Cluster, startCluster, workerOf } from "./cluster.ts";
import { type RunningRedis, startPrivateRedis } from "./redis.ts";
import { runCommandToEnd, shellLine, until } from "./scripts.ts";
import { connected, type Recorder, record } from "./sockets.ts";

/** What a command may hold; each case fills some of them (`{nsp}` and `{message}` always). */
export const PLACEHOLDERS = ["message", "nsp", "socket", "room", "user", "except", "target"] as const;
type Placeholder = (typeof PLACEHOLDERS)[number];
type Values = Partial<Record<Placeholder, string>>;

export const CASE_NAMES = ["broadcast", "socket", "room", "except", "namespace", "user"] as const;
export type CaseName = (typeof CASE_NAMES)[number];

/**
 * The arguments that emitter.ts, publishers/publish.py, publishers/publish.php and the 2017 emitter
 * of test/fixtures/ take: emitter.ts's options, one placeholder each.
 */
export const PUBLISHER_ARGUMENTS = ["--nsp={nsp}", "--room={socket}", "--room={room}", "--user={user}", "--except={except}", "--message={message}"];

/** A program to check: its command line with placeholders, and the cases it says it lacks. */
export interface Publisher {
  command: string[];
  unsupported?: CaseName[];
}

/** One of the six sockets: who it is, where it landed, and every event it received, in order. */
export interface Client {
  /** user@worker: `alice@1`. */
  name: string;
  user: string;
  nsp: string;
  rooms: string[];
  id: string;
  worker: string;
  recorder: Recorder;
  arrivals: { event: string; text: unknown }[];
}

const ROOM = "lobby";
const USER = "alice";
const LOUNGE = "/lounge";

/** The sockets, in the order they connect; slot 0 is the first one's worker, slot 1 the other. */
const ROLES = [
  { user: USER, nsp: "/", slot: 0, rooms: [ROOM] },
  { user: "carol", nsp: "/", slot: 1, rooms: [ROOM] },
  { user: "bob", nsp: "/", slot: 0, rooms: [] },
  { user: USER, nsp: "/", slot: 1, rooms: [] },
  { user: "dave", nsp: LOUNGE, slot: 0, rooms: [] },
  { user: "erin", nsp: LOUNGE, slot: 1, rooms: [] },
];
/** The socket the socket-id case targets. */
const TARGET_USER = "carol";

interface Case {
  name: CaseName;
  /** What the case asks for, as the table says it. */
  about: string;
  /** The text the publisher must deliver: one per case, so that a late or stray arrival is told apart. */
  message: string;
  values(socketId: string): Values;
  reaches(client: Client): boolean;
}

/** Every case: receivers on both workers, or one socket that the other worker must leave alone. */
export const CASES: Case[] = [
  { name: "broadcast", about: "every socket of /", message: "to everyone ✓", values: () => ({}), reaches: (c) => c.nsp === "/" },
  {
    name: "socket",
    about: `one socket id (${TARGET_USER}'s)`,
    message: "to one socket",
    values: (id) => ({ socket: id, target: id }),
    reaches: (c) => c.user === TARGET_USER,
  },
  { name: "room", about: `room ${ROOM}`, message: "to the lobby", values: () => ({ room: ROOM, target: ROOM }), reaches: (c) => c.rooms.includes(ROOM) },
  {
    name: "except",
    about: `every socket of / but room ${ROOM}`,
    message: "to all but the lobby",
    values: () => ({ except: ROOM }),
    reaches: (c) => c.nsp === "/" && !c.rooms.includes(ROOM),
  },
  { name: "namespace", about: `every socket of ${LOUNGE}`, message: "to the lounge", values: () => ({ nsp: LOUNGE }), reaches: (c) => c.nsp === LOUNGE },
  {
    name: "user",
    about: `user ${USER} (room ${userRoom(USER)})`,
    message: `to ${USER}`,
    values: () => ({ user: USER, target: userRoom(USER) }),
    reaches: (c) => c.nsp === "/" && c.user === USER,
  },
];

export interface CaseResult {
  name: CaseName;
  about: string;
  /** The command as it ran, placeholders filled in. */
  command: string[];
  /** The placeholders this case filled, but {message} (and {nsp} when it is "/"). */
  values: Values;
  expected: string[];
  /** Each socket that received something, with what when it is not exactly the case's text once. */
  got: string[];
  outcome: "pass" | "fail" | "not supported";
  /** The publisher said it cannot do this case (--unsupported). */
  declaredUnsupported: boolean;
  /** Why the command itself failed, if it did. */
  commandProblem?: string;
  /** What the command sent to Redis, as MONITOR showed it (connection chatter left out). */
  sent: Command[];
}

export interface Report {
  command: string[];
  adapter: AdapterName;
  redisVersion: string;
  clients: string[];
  results: CaseResult[];
  /** No case failed: each passed, or failed while declared not supported. */
  passed: boolean;
}

/** How long a publisher's command may take for one case, and a sentinel to reach every socket. */
const COMMAND_MS = 20_000;
const SENTINEL_MS = 10_000;
/** Connections tried for one socket before giving up on placing it on its worker. */
const PLACEMENT_TRIES = 6;

const PLACEHOLDER = /(?<!\$)\{([a-z]+)\}/g;
const SENTINEL = "conformance sentinel";
/** Characters of a command the table's notes show (--sent shows all). */
const SHOWN_COMMAND = 160;

/** Why this command cannot be checked (an unknown placeholder, no {message}), or null. */
export function placeholderProblem(command: string[]): string | null {
  const used = command.flatMap((arg) => [...arg.matchAll(PLACEHOLDER)].map((match) => match[1]!));
  const unknown = used.find((name) => !(PLACEHOLDERS as readonly string[]).includes(name));
  if (unknown) return `unknown placeholder {${unknown}}: the placeholders are ${PLACEHOLDERS.map((name) => `{${name}}`).join(" ")}`;
  if (!used.includes("message")) return "the command must pass {message} on: each case sends its own text";
  return null;
}

/**
 * The command for one case: each placeholder replaced by its value, inside the argument that holds
 * it; an argument whose placeholders this case leaves unset is left out (`--room={room}` only
 * appears in the room case). No shell: a value is always one argument, whatever it holds.
 */
export function fillPlaceholders(command: string[], values: Values): string[] {
  const filled: Values = { nsp: "/", ...values };
  return command.flatMap((arg) => {
    const used = [...arg.matchAll(PLACEHOLDER)].map((match) => match[1] as Placeholder);
    if (used.length > 0 && used.every((name) => !filled[name])) return [];
    return [arg.replace(PLACEHOLDER, (_, name: Placeholder) => filled[name] ?? "")];
  });
}

export interface Rig {
  /** Runs every case with this publisher. */
  check(publisher: Publisher): Promise<Report>;
  stop(): Promise<void>;
}

/** A private Redis under MONITOR, the cluster on `adapter`, and the six sockets, placed and proven to receive. */
export async function startRig(adapter: AdapterName): Promise<Rig> {
  const clients: Client[] = [];
  const spares: Recorder[] = [];
  let redis: RunningRedis | undefined;
  let monitor: Monitor | undefined;
  let cluster: Cluster | undefined;
  let sender: ReturnType<typeof createClient> | undefined;
  const stop = async () => {
    for (const { socket } of [...clients.map((client) => client.recorder), ...spares]) socket.disconnect();
    await monitor?.close();
    await sender?.close().catch(() => {});
    await cluster?.stop();
    await redis?.stop();
  };
  try {
    redis = await startPrivateRedis();
    monitor = await monitorRedis(redis.url);
    cluster = await startCluster({ redis, adapter });
    await placeClients(cluster, clients, spares);
    sender = createClient({ url: redis.url });
    await sender.connect();
    const settle = sentinels(adapter, sender, clients);
    await settle("before the first case");
    // Every connection seen so far is the workers' or the sentinels': what comes from another is the publisher's.
    const known = new Set((await monitor.next()).map((command) => command.connection));
    const env = { REDIS_URL: redis.url, ADAPTER: adapter };
    const { redisVersion } = monitor;
    const watching = monitor;
    return {
      stop,
      async check(publisher) {
        const results: CaseResult[] = [];
        for (const kase of CASES) {
          const from = clients.map((c) => c.arrivals.length);
          const values = kase.values(clients.find((c) => c.user === TARGET_USER)!.id);
          const command = fillPlaceholders(publisher.command, { ...values, message: kase.message });
          // Another Redis topology in the caller's environment would win over REDIS_URL.
          const ran = await runCommandToEnd(command, { ...env, REDIS_CLUSTER_URLS: "", REDIS_SENTINEL_URLS: "", REDIS_SENTINEL_MASTER: "" }, COMMAND_MS);
          await settle(`after the case "${kase.name}"`);
          const sent = (await watching.next()).filter((c) => !known.has(c.connection) && !CHATTER.test(c.args) && !/^"QUIT"/i.test(c.args));
          results.push(judge(kase, publisher, clients, from, command, values, ran, sent));
        }
        return {
          command: publisher.command,
          adapter,
          redisVersion,
          clients: clients.map((c) => `${c.name} (${[c.nsp === "/" ? `user ${c.user}` : c.nsp, ...c.rooms.map((room) => `in ${room}`)].join(", ")})`),
          results,
          passed: results.every((result) => result.outcome !== "fail"),
        };
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * A function that sends a sentinel to both namespaces the adapter's own way (the official emitter
 * for classic, the kit's for sharded and streams) and resolves once every socket has it.
 */
function sentinels(adapter: AdapterName, redis: ReturnType<typeof createClient>, clients: Client[]) {
  const emitterOf = (nsp: string) => (adapter === "classic" ? new Emitter(redis).of(nsp) : shardedStreamsEmitter(redis, adapter).of(nsp));
  let round = 0;
  return async (after: string) => {
    const text = `${SENTINEL} ${++round}`;
    await Promise.all(CHAT_NAMESPACES.map((nsp) => emitterOf(nsp).to([]).emit("chat message", text)));
    const missing = () => clients.filter((c) => !c.arrivals.some((arrival) => arrival.text === text));
    await until(() => missing().length === 0, SENTINEL_MS).catch(() => {
      const names = missing().map((c) => `${c.name}${c.recorder.disconnectReasons.length > 0 ? ` (disconnected: ${c.recorder.disconnectReasons.join(", ")})` : ""}`);
      throw new Error(`${after}, a sentinel sent through Redis did not reach ${names.join(", ")} within ${SENTINEL_MS / 1000} s`);
    });
  };
}

/** One case's verdict: each socket got the case's text exactly once if the case reaches it, nothing otherwise. */
function judge(
  kase: Case,
  publisher: Publisher,
  clients: Client[],
  from: number[],
  command: string[],
  values: Values,
  ran: { code: number | null; stderr: string[]; timedOut: boolean },
  sent: Command[],
): CaseResult {
  const shares = clients.map((client, i) => ({ client, arrivals: client.arrivals.slice(from[i]).filter((a) => !String(a.text).startsWith(SENTINEL)) }));
  const once = (arrivals: Client["arrivals"]) => arrivals.length === 1 && arrivals[0]!.event === "chat message" && arrivals[0]!.text === kase.message;
  const delivered = shares.every(({ client, arrivals }) => (kase.reaches(client) ? once(arrivals) : arrivals.length === 0));
  const commandProblem = ran.timedOut ? `did not end within ${COMMAND_MS / 1000} s` : ran.code !== 0 ? `exit ${ran.code}: ${ran.stderr.at(-1) ?? "(nothing on stderr)"}` : undefined;
  const passed = delivered && commandProblem === undefined;
  const declaredUnsupported = publisher.unsupported?.includes(kase.name) ?? false;
  return {
    name: kase.name,
    about: kase.about,
    command,
    values,
    expected: clients.filter(kase.reaches).map((c) => c.name),
    got: shares.filter(({ arrivals }) => arrivals.length > 0).map(({ client, arrivals }) => describeShare(client.name, arrivals, kase.message)),
    outcome: passed ? "pass" : declaredUnsupported ? "not supported" : "fail",
    declaredUnsupported,
    commandProblem,
    sent,
  };
}

/**
 * Connects the six sockets, each until it lands on its slot's worker (sticky's least-connection
 * alternates, so it rarely takes a second try); a socket that landed elsewhere is kept open until
 * all are placed, so that it weighs on the count, then closed.
 */
async function placeClients({ url, server }: Cluster, clients: Client[], spares: Recorder[]): Promise<void> {
  const slots: string[] = [];
  for (const role of ROLES) {
    for (let attempt = 1; ; attempt++) {
      const recorder = record(role.nsp === "/" ? url : `${url}${role.nsp}`, { transports: ["websocket"], reconnection: false, auth: { name: role.user } });
      const arrivals: Client["arrivals"] = [];
      recorder.socket.onAny((event: string, text: unknown) => arrivals.push({ event, text }));
      await connected(recorder.socket, 15_000, { firstTry: true });
      const id = recorder.socket.id!;
      const worker = await workerOf(server, id, 10_000);
      if (slots[role.slot] === undefined && !slots.includes(worker)) slots[role.slot] = worker;
      if (slots[role.slot] === worker) {
        for (const room of role.rooms) {
          const refused = await recorder.socket.emitWithAck("join", room);
          if (refused) throw new Error(`${role.user} could not join ${room}: ${refused}`);
        }
        clients.push({ name: `${role.user}@${worker}`, user: role.user, nsp: role.nsp, rooms: role.rooms, id, worker, recorder, arrivals });
        break;
      }
      spares.push(recorder);
      if (attempt === PLACEMENT_TRIES) throw new Error(`no socket landed on a second worker in ${PLACEMENT_TRIES} tries`);
    }
  }
  // Listed by namespace, then by worker: alice@1 bob@1 carol@2 alice@2 dave@1 erin@2.
  const order = (c: Client) => (c.nsp === "/" ? 0 : 2) + (c.worker === slots[0] ? 0 : 1);
  clients.sort((a, b) => order(a) - order(b));
  for (const spare of spares.splice(0)) {
    const id = spare.socket.id!;
    spare.socket.disconnect();
    await server.waitFor(`disconnected, id: ${id}`);
  }
}

/** `bob@1`, or `bob@1 (2 times)`, `bob@1 ("news": "to the lobby")`, `bob@1 (a Buffer)` for anything but the text once. */
function describeShare(name: string, arrivals: Client["arrivals"], message: string): string {
  if (arrivals.every((a) => a.event === "chat message" && a.text === message)) return arrivals.length === 1 ? name : `${name} (${arrivals.length} times)`;
  const shown = arrivals.map(({ event, text }) => {
    const what = typeof text === "string" ? JSON.stringify(text) : `a ${text?.constructor?.name ?? typeof text}`;
    return event === "chat message" ? what : `${JSON.stringify(event)}: ${what}`;
  });
  return `${name} (${shown.join(", ")})`;
}

/** The report as the check prints it: the setting, a Markdown table, one line per case that did not pass. */
export function renderReport(report: Report): string {
  const shownValues = (values: Values) =>
    Object.entries(values)
      .map(([name, value]) => `{${name}}=${value}`)
      .join(" ");
  const counts = CASE_NAMES.length;
  const passed = report.results.filter((result) => result.outcome === "pass").length;
  const unsupported = report.results.filter((result) => result.outcome === "not supported").length;
  const lines = [
    `command: ${shellLine(report.command)}`,
    `ADAPTER=${report.adapter}, index.ts with 2 workers, Redis ${report.redisVersion}; sockets: ${report.clients.join(", ")}`,
    "",
    "| case | placeholders | expected | got | result |",
    "| --- | --- | --- | --- | --- |",
    ...report.results.map(
      (r) => `| ${r.name}: ${r.about} | ${shownValues(r.values) || "(none)"} | ${r.expected.join(" ")} | ${r.got.join(" ") || "nobody"} | ${r.outcome === "not supported" ? "not supported by this publisher" : r.outcome} |`,
    ),
    "",
    `${passed} of ${counts} cases pass${unsupported > 0 ? `, ${unsupported} not supported by this publisher` : ""}${passed + unsupported < counts ? `, ${counts - passed - unsupported} fail` : ""}.`,
  ];
  for (const result of report.results.filter((r) => r.outcome === "pass" && r.declaredUnsupported)) {
    lines.push(`${result.name}: passes, though --unsupported names it`);
  }
  for (const result of report.results.filter((r) => r.outcome !== "pass")) {
    const sent = result.sent.map(({ args }) => (args.length > SHOWN_COMMAND ? `${args.slice(0, SHOWN_COMMAND)}...` : args));
    lines.push(`${result.name}: ${result.commandProblem ?? "exit 0"}; sent ${sent.length === 0 ? "nothing to Redis" : `to Redis: ${sent.join(" ; ")}`}`);
  }
  return lines.join("\n");
}
