/**
 * lib/emitter/requests.ts: emitter.ts asks the servers a question through Redis and collects their
 * answers, as a worker's adapter does for fetchSockets() and for a broadcast with acknowledgements,
 * without being a server. Upstream's emitter only publishes and learns nothing: "is this user
 * online?" (socket.io-redis-emitter#54) and "did anyone get it?" (socket.io-redis-emitter#132,
 * #50) are open there.
 *
 * Each adapter already answers a requester whose uid is not a server's, to a channel named after
 * that uid; what differs is where the request goes and how the requester knows how many servers
 * to wait for (read from node_modules/@socket.io/redis-adapter/dist/index.js and sharded-adapter.js,
 * node_modules/socket.io-adapter/dist/cluster-adapter.js,
 * node_modules/@socket.io/redis-streams-adapter/dist/adapter.js):
 *
 *   adapter  request                                   answers to                     servers
 *   classic  PUBLISH socket.io-request#<nsp>#, JSON    socket.io-response#<nsp>#<uid># PUBSUB NUMSUB of the request channel
 *   sharded  SPUBLISH socket.io#<nsp>#, JSON           socket.io#<nsp>#<uid>#          PUBSUB SHARDNUMSUB socket.io#<nsp>#
 *   streams  PUBLISH socket.io#<nsp>#, msgpack         socket.io#<nsp>#<uid>#          PUBSUB NUMSUB socket.io#<nsp>#
 *
 * The classic adapter answers on the uid's own channel because the workers run with
 * publishOnSpecificResponseChannel (lib/worker/adapters.ts). Every server subscribes once per
 * namespace to the channel counted, so the count is the number of servers, on every host; the
 * emitter subscribes to its own answer channel only and is not counted. The streams adapter's
 * questions are not kept in the stream: they travel by PUBLISH, as the adapter's own do.
 *
 * The wait is bounded: after `timeoutMs` the answer is what came, with how many servers answered.
 * An answer that is not one (undecodable, another request's, a socket without an id) is dropped
 * alone. On a Redis Cluster a PUBSUB count is one node's: node-redis puts a client's subscriptions
 * on a random node, replicas included, so the counts of every master and replica are added (the
 * adapters' own serverCount() adds the masters' only).
 */
import { randomBytes } from "node:crypto";
import { decode, encode } from "@msgpack/msgpack";
import type { AdapterName } from "../config.ts";

/** The commands used, which a node-redis client has. */
export interface AskingRedis {
  sendCommand(args: string[]): Promise<unknown>;
  publish(channel: string, message: string | Buffer): Promise<unknown>;
  sPublish(channel: string, message: string): Promise<unknown>;
}

/** A second connection, in subscriber mode, for the answers. */
export interface AnswerListener {
  subscribe(channel: string, listener: (message: Buffer) => void, bufferMode: true): Promise<unknown>;
  sSubscribe(channel: string, listener: (message: Buffer) => void, bufferMode: true): Promise<unknown>;
}

/** The sockets asked about: in any of `rooms` (all when empty) and in none of `except`. */
export interface Targets {
  nsp: string;
  rooms: string[];
  except: string[];
}

/** What --list prints of a socket. The rest of a fetchSockets answer (the handshake) is not kept. */
export interface SocketSummary {
  id: string;
  user?: string;
  /** Its rooms, without the room of its own id. */
  rooms: string[];
}

export interface Census {
  /** Servers subscribed when asked, and how many of them answered in time. */
  servers: number;
  answered: number;
}

export interface SocketList extends Census {
  sockets: SocketSummary[];
}

export interface Acknowledgements extends Census {
  /** Clients the servers that answered sent the event to, and how many of those acknowledged. */
  reached: number;
  acknowledged: number;
}

/** A decoded answer, whichever adapter sent it. `server` is the answering server's uid when the adapter says it. */
type Answer =
  | { kind: "sockets"; requestId: string; server?: string; sockets: unknown }
  | { kind: "count"; requestId: string; server?: string; count: number }
  | { kind: "ack"; requestId: string };

// The classic adapter's RequestType and socket.io-adapter's MessageType numbers used here.
const CLASSIC = { REMOTE_FETCH: 5, BROADCAST: 7, BROADCAST_CLIENT_COUNT: 8, BROADCAST_ACK: 9 } as const;
const CLUSTER = { BROADCAST: 3, FETCH_SOCKETS: 7, FETCH_SOCKETS_RESPONSE: 8, BROADCAST_CLIENT_COUNT: 11, BROADCAST_ACK: 12 } as const;
/** socket.io-parser's packet type of an event. */
const EVENT = 2;
const PREFIX = "socket.io";

/** How one adapter is asked: where questions go, where answers come, how servers are counted. */
interface Route {
  countCommand: string[];
  answerChannel: string;
  sharded: boolean;
  send(message: Record<string, unknown>): Promise<unknown>;
  fetchRequest(requestId: string, targets: Targets): Record<string, unknown>;
  ackRequest(requestId: string, targets: Targets, event: string, message: string): Record<string, unknown>;
  readAnswer(raw: Buffer): Answer | null;
}

function route(redis: AskingRedis, adapter: AdapterName, nsp: string, uid: string): Route {
  const opts = (targets: Targets) => ({ rooms: targets.rooms, except: targets.except, flags: {} });
  const packet = (event: string, message: string) => ({ type: EVENT, data: [event, message], nsp });
  if (adapter === "classic") {
    const requestChannel = `${PREFIX}-request#${nsp}#`;
    return {
      countCommand: ["PUBSUB", "NUMSUB", requestChannel],
      answerChannel: `${PREFIX}-response#${nsp}#${uid}#`,
      sharded: false,
      send: (message) => redis.publish(requestChannel, JSON.stringify(message)),
      fetchRequest: (requestId, targets) => ({ uid, requestId, type: CLASSIC.REMOTE_FETCH, opts: opts(targets) }),
      ackRequest: (requestId, targets, event, message) => ({ uid, requestId, type: CLASSIC.BROADCAST, packet: packet(event, message), opts: opts(targets) }),
      readAnswer: (raw) => {
        const answer = decodeAnswer(raw);
        if (!isRecord(answer) || typeof answer.requestId !== "string") return null;
        const { requestId } = answer;
        // A fetchSockets answer has no type; the two answers to a broadcast have theirs.
        if (answer.type === undefined && "sockets" in answer) return { kind: "sockets", requestId, sockets: answer.sockets };
        if (answer.type === CLASSIC.BROADCAST_CLIENT_COUNT && isCount(answer.clientCount)) return { kind: "count", requestId, count: answer.clientCount };
        if (answer.type === CLASSIC.BROADCAST_ACK) return { kind: "ack", requestId };
        return null;
      },
    };
  }
  const channel = `${PREFIX}#${nsp}#`;
  return {
    countCommand: ["PUBSUB", adapter === "sharded" ? "SHARDNUMSUB" : "NUMSUB", channel],
    answerChannel: `${channel}${uid}#`,
    sharded: adapter === "sharded",
    send: (message) => (adapter === "sharded" ? redis.sPublish(channel, JSON.stringify(message)) : redis.publish(channel, Buffer.from(encode(message)))),
    fetchRequest: (requestId, targets) => ({ uid, nsp, type: CLUSTER.FETCH_SOCKETS, data: { opts: opts(targets), requestId } }),
    ackRequest: (requestId, targets, event, message) => ({
      uid,
      nsp,
      type: CLUSTER.BROADCAST,
      data: { packet: packet(event, message), requestId, opts: opts(targets) },
    }),
    readAnswer: (raw) => {
      const answer = decodeAnswer(raw);
      if (!isRecord(answer) || !isRecord(answer.data) || typeof answer.data.requestId !== "string" || answer.nsp !== nsp) return null;
      const { data } = answer;
      const requestId = data.requestId as string;
      const server = typeof answer.uid === "string" ? answer.uid : undefined;
      if (answer.type === CLUSTER.FETCH_SOCKETS_RESPONSE) return { kind: "sockets", requestId, server, sockets: data.sockets };
      if (answer.type === CLUSTER.BROADCAST_CLIENT_COUNT && isCount(data.clientCount)) return { kind: "count", requestId, server, count: data.clientCount };
      if (answer.type === CLUSTER.BROADCAST_ACK) return { kind: "ack", requestId };
      return null;
    },
  };
}

/** JSON when it starts with "{" (as the adapters decide), msgpack otherwise; null when neither. */
function decodeAnswer(raw: Buffer): unknown {
  try {
    return raw[0] === 0x7b ? JSON.parse(raw.toString()) : decode(raw);
  } catch {
    return null;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** The part of a fetchSockets answer --list shows, or null when it is not a socket. */
function summary(socket: unknown): SocketSummary | null {
  if (!isRecord(socket) || typeof socket.id !== "string" || !Array.isArray(socket.rooms)) return null;
  const rooms = socket.rooms.filter((room): room is string => typeof room === "string" && room !== socket.id);
  const user = isRecord(socket.data) && typeof socket.data.user === "string" ? socket.data.user : undefined;
  return { id: socket.id, rooms, ...(user === undefined ? {} : { user }) };
}

/** A Redis Cluster client's nodes, as node-redis exposes them. */
interface ClusterNodes {
  masters: object[];
  replicas: object[];
  nodeClient(node: object): Promise<{ sendCommand(args: string[]): Promise<unknown> }>;
}

function isRedisCluster(redis: object): redis is ClusterNodes {
  return Array.isArray((redis as Partial<ClusterNodes>).masters) && Array.isArray((redis as Partial<ClusterNodes>).replicas);
}

/** How many servers serve `nsp` now, as the adapter counts them, on every node of a Redis Cluster. */
async function countServers(redis: AskingRedis, countCommand: string[]): Promise<number> {
  const count = (reply: unknown) => {
    const n = Array.isArray(reply) ? Number(reply[1]) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`unexpected answer to ${countCommand.join(" ")}: ${JSON.stringify(reply)}`);
    return n;
  };
  if (!isRedisCluster(redis)) return count(await redis.sendCommand(countCommand));
  const nodes = [...redis.masters, ...redis.replicas];
  const counts = await Promise.all(nodes.map(async (node) => count(await (await redis.nodeClient(node)).sendCommand(countCommand))));
  return counts.reduce((sum, n) => sum + n, 0);
}

/**
 * Subscribes to the answer channel, counts the servers, sends the request and hands each answer
 * to `take` until `done()` says enough or `timeoutMs` has passed.
 */
async function ask(
  redis: AskingRedis,
  listener: AnswerListener,
  r: Route,
  request: Record<string, unknown>,
  requestId: string,
  timeoutMs: number,
  take: (answer: Answer, servers: number) => void,
  done: (servers: number) => boolean,
): Promise<number> {
  let finish = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let servers = 0;
  const onAnswer = (raw: Buffer) => {
    const answer = r.readAnswer(raw);
    if (answer === null || answer.requestId !== requestId) return;
    take(answer, servers);
    if (done(servers)) finish();
  };
  // Subscribed before asking, so that no answer can come before the channel is heard.
  await (r.sharded ? listener.sSubscribe(r.answerChannel, onAnswer, true) : listener.subscribe(r.answerChannel, onAnswer, true));
  servers = await countServers(redis, r.countCommand);
  if (servers === 0) return 0;
  const timer = setTimeout(finish, timeoutMs);
  try {
    await r.send(request);
    await finished;
  } finally {
    clearTimeout(timer);
  }
  return servers;
}

/** A uid of the emitter's own for one run: the servers answer to it. Not 20 characters long, as a socket id is. */
export function requesterUid(): string {
  return `emitter-${randomBytes(8).toString("hex")}`;
}

/** The sockets of `targets` on every server, deduplicated by id, and how many servers answered. */
export async function listSockets(redis: AskingRedis, listener: AnswerListener, adapter: AdapterName, targets: Targets, timeoutMs: number): Promise<SocketList> {
  const r = route(redis, adapter, targets.nsp, requesterUid());
  const requestId = randomBytes(8).toString("hex");
  const sockets = new Map<string, SocketSummary>();
  const answeredBy = new Set<string>();
  let answered = 0;
  const servers = await ask(
    redis,
    listener,
    r,
    r.fetchRequest(requestId, targets),
    requestId,
    timeoutMs,
    (answer) => {
      if (answer.kind !== "sockets" || !Array.isArray(answer.sockets)) return;
      // A server's uid is known under the sharded and streams adapters: a repeated answer counts once.
      if (answer.server !== undefined) {
        if (answeredBy.has(answer.server)) return;
        answeredBy.add(answer.server);
      }
      answered++;
      for (const socket of answer.sockets.map(summary)) if (socket) sockets.set(socket.id, socket);
    },
    (servers) => answered >= servers,
  );
  return { servers, answered: Math.min(answered, servers), sockets: [...sockets.values()] };
}

/**
 * Sends `event` with `message` to `targets` asking each client for an acknowledgement, and counts
 * the clients reached (each server says how many it sent to) and the acknowledgements.
 */
export async function emitWithAck(
  redis: AskingRedis,
  listener: AnswerListener,
  adapter: AdapterName,
  targets: Targets,
  event: string,
  message: string,
  timeoutMs: number,
): Promise<Acknowledgements> {
  const r = route(redis, adapter, targets.nsp, requesterUid());
  const requestId = randomBytes(8).toString("hex");
  const countedBy = new Set<string>();
  let answered = 0;
  let reached = 0;
  let acknowledged = 0;
  const servers = await ask(
    redis,
    listener,
    r,
    r.ackRequest(requestId, targets, event, message),
    requestId,
    timeoutMs,
    (answer) => {
      if (answer.kind === "count") {
        if (answer.server !== undefined) {
          if (countedBy.has(answer.server)) return;
          countedBy.add(answer.server);
        }
        answered++;
        reached += answer.count;
      } else if (answer.kind === "ack") {
        // An ack may come before its server's count: on a Redis Cluster node-redis sends each
        // PUBLISH without a key to any node, and two nodes relay to the subscriber in either order.
        acknowledged++;
      }
    },
    (servers) => answered >= servers && acknowledged >= reached,
  );
  // More acks than clients counted are not all ours (a server that did not count in time, or a forgery).
  return { servers, answered: Math.min(answered, servers), reached, acknowledged: Math.min(acknowledged, reached) };
}
