/**
 * lib/emitter/answers.ts: emitter.ts's questions (--list, --online, --ack) asked of the servers
 * (lib/emitter/requests.ts), what it prints of their answers, and the exit code a shell script
 * tests (docs/reference/exit-codes.md): 0 when the question got its whole answer, 1 when a server
 * did not answer in time or a client did not acknowledge, 3 for `--online` when the user has no
 * socket on any server.
 *
 * --list prints a socket's id, its user and its rooms, nothing of its handshake: the workers keep
 * no secret there (lib/worker/identity.ts), and a terminal or a log is no place for headers anyway.
 */
import { printable } from "../chat.ts";
import type { AdapterName } from "../config.ts";
import { EXIT_FAILURE, EXIT_OFFLINE } from "../failures.ts";
import type { RedisClient } from "../redis/client.ts";
import type { EmitterCommand } from "./command.ts";
import { type Acknowledgements, type Census, emitWithAck, listSockets, type SocketList } from "./requests.ts";

export interface Report {
  lines: string[];
  code: number;
}

/** Whether the command asks the servers rather than tells them. */
export function asksServers(command: EmitterCommand): boolean {
  return command.operation === "list" || command.operation === "online" || command.ack;
}

/**
 * Asks the question of `command`, waiting at most `timeoutMs` for the answers, which come on a
 * second connection (a subscriber) that is closed before this returns.
 */
export async function askServers(redis: RedisClient, adapter: AdapterName, command: EmitterCommand, timeoutMs: number): Promise<Report> {
  const listener = redis.duplicate();
  listener.on("error", () => {}); // connect() and the commands report failures
  try {
    await listener.connect();
    const targets = { nsp: command.nsp, rooms: command.rooms, except: command.except };
    if (command.operation === "online") return onlineReport(await listSockets(redis, listener, adapter, targets, timeoutMs), command.user, command.nsp);
    if (command.operation === "list") return listReport(await listSockets(redis, listener, adapter, targets, timeoutMs), command.nsp);
    return ackReport(await emitWithAck(redis, listener, adapter, targets, command.event, command.message, timeoutMs), command.nsp);
  } finally {
    await listener.close().catch(() => {});
  }
}

/** "2 of 2 servers answered", or why there was nobody to ask. */
function serversLine({ servers, answered }: Census, nsp: string): string {
  if (servers === 0) return `no server serves namespace ${nsp}`;
  return `${answered} of ${servers} server${servers === 1 ? "" : "s"} answered`;
}

function whole(census: Census): boolean {
  return census.servers > 0 && census.answered === census.servers;
}

/** One line per socket, then "N sockets, A of S servers answered". */
export function listReport(list: SocketList, nsp: string): Report {
  const sorted = [...list.sockets].sort((a, b) => (a.user ?? "").localeCompare(b.user ?? "") || a.id.localeCompare(b.id));
  const lines = sorted.map((socket) => `${printable(socket.id)}  user=${socket.user === undefined ? "-" : printable(socket.user)}  rooms=${socket.rooms.map(printable).join(",") || "-"}`);
  const count = `${list.sockets.length} socket${list.sockets.length === 1 ? "" : "s"}`;
  lines.push(`${count}, ${serversLine(list, nsp)}`);
  return { lines, code: whole(list) ? 0 : EXIT_FAILURE };
}

/**
 * "alice: 2 sockets" (exit 0), "alice: offline" (exit 3). When a server did not answer, the user
 * may be on it: a user seen elsewhere is still online, but "offline" cannot be said (exit 1).
 */
export function onlineReport(list: SocketList, user: string, nsp: string): Report {
  const name = printable(user);
  const count = list.sockets.length;
  const partial = whole(list) ? "" : ` (${serversLine(list, nsp)})`;
  if (count > 0) return { lines: [`${name}: ${count} socket${count === 1 ? "" : "s"}${partial}`], code: 0 };
  if (whole(list)) return { lines: [`${name}: offline`], code: EXIT_OFFLINE };
  return { lines: [`${name}: not seen, but ${serversLine(list, nsp)}`], code: EXIT_FAILURE };
}

/** "acknowledged by N of M clients", exit 0 when every client reached did and every server answered. */
export function ackReport(acks: Acknowledgements, nsp: string): Report {
  const line = `acknowledged by ${acks.acknowledged} of ${acks.reached} client${acks.reached === 1 ? "" : "s"}, ${serversLine(acks, nsp)}`;
  return { lines: [line], code: whole(acks) && acks.acknowledged === acks.reached ? 0 : EXIT_FAILURE };
}
