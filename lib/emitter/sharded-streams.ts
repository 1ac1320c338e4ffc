/**
 * lib/emitter/sharded-streams.ts: an emitter for the sharded and the streams Redis adapters, which the official
 * @socket.io/redis-emitter does not serve: its messages go to the classic adapter's channels in the
 * classic format, so under these adapters nothing arrives and nothing fails (upstream
 * https://github.com/socket.io/socket.io-redis-emitter/issues/127, open; the streams emitter that
 * would fill the gap, @socket.io/redis-streams-emitter, is not on the npm registry).
 *
 * Both adapters extend socket.io-adapter's ClusterAdapter class, so they accept the same messages,
 * { uid, nsp, type, data }, from a sender whose uid is not a server's; "emitter" is the uid the
 * official emitter uses. They differ in transport, as their sources show
 * (node_modules/@socket.io/redis-adapter/dist/sharded-adapter.js,
 * node_modules/@socket.io/redis-streams-adapter/dist/adapter.js):
 * - sharded: SPUBLISH of the JSON message to "socket.io#<nsp>#", or to "socket.io#<nsp>#<room>#" for
 *   a broadcast to exactly one room whose name is not 20 characters long (a socket id is 20).
 * - streams: XADD to the "socket.io" stream with the fields uid, nsp, type and data (JSON), except
 *   for a server-side emit, which is not kept: a PUBLISH of the msgpack-encoded message to
 *   "socket.io#<nsp>#".
 * Defaults assumed: channel prefix and stream name "socket.io", one stream, MAXLEN ~ 10000, the
 * sharded adapter's "dynamic" subscription mode. Arguments are text: binary payloads are not handled.
 *
 * Its shape follows the official emitter's, so emitter.ts drives both the same way.
 */
import { encode } from "@msgpack/msgpack";

/** The commands used, which a node-redis client has. */
interface Publisher {
  sPublish(channel: string, message: string): Promise<unknown>;
  publish(channel: string, message: Buffer): Promise<unknown>;
  xAdd(key: string, id: string, fields: Record<string, string>, options: { TRIM: StreamTrim }): Promise<unknown>;
}
type StreamTrim = { strategy: "MAXLEN"; strategyModifier: "~"; threshold: number };

/** What emitter.ts uses: the official Emitter.of(nsp) has the same methods. */
export interface NamespaceEmitter {
  to(rooms: string[]): Targets;
  serverSideEmit(event: string, ...args: string[]): unknown;
}

/** The sockets an operation applies to: in any of `rooms` (all when empty) and in none of `except`. */
export interface Targets {
  except(rooms: string[]): Targets;
  emit(event: string, ...args: string[]): unknown;
  socketsJoin(room: string): unknown;
  socketsLeave(room: string): unknown;
  disconnectSockets(): unknown;
}

/** socket.io-adapter's MessageType numbers for what an emitter sends. */
const BROADCAST = 3;
const SOCKETS_JOIN = 4;
const SOCKETS_LEAVE = 5;
const DISCONNECT_SOCKETS = 6;
const SERVER_SIDE_EMIT = 9;
/** socket.io-parser's packet type of an event. */
const EVENT = 2;

const UID = "emitter";
const PREFIX = "socket.io";
const STREAM = "socket.io";
const STREAM_MAX_LENGTH = 10_000;

type Options = { rooms: string[]; except: string[]; flags: Record<string, never> };
type AdapterMessage = { uid: string; nsp: string; type: number; data: unknown };

export function shardedStreamsEmitter(redis: Publisher, adapter: "sharded" | "streams") {
  const send = adapter === "sharded" ? (m: AdapterMessage) => sendSharded(redis, m) : (m: AdapterMessage) => sendStreams(redis, m);

  return {
    of(nsp: string): NamespaceEmitter {
      const targets = (rooms: string[], except: string[]): Targets => {
        const opts: Options = { rooms, except, flags: {} };
        return {
          except: (more) => targets(rooms, [...except, ...more]),
          emit: (event, ...args) =>
            send({ uid: UID, nsp, type: BROADCAST, data: { packet: { type: EVENT, data: [event, ...args], nsp }, opts } }),
          socketsJoin: (room) => send({ uid: UID, nsp, type: SOCKETS_JOIN, data: { opts, rooms: [room] } }),
          socketsLeave: (room) => send({ uid: UID, nsp, type: SOCKETS_LEAVE, data: { opts, rooms: [room] } }),
          disconnectSockets: () => send({ uid: UID, nsp, type: DISCONNECT_SOCKETS, data: { opts, close: false } }),
        };
      };
      return {
        to: (rooms) => targets(rooms, []),
        serverSideEmit: (event, ...args) => send({ uid: UID, nsp, type: SERVER_SIDE_EMIT, data: { packet: [event, ...args] } }),
      };
    },
  };
}

function sendSharded(redis: Publisher, message: AdapterMessage) {
  const channel = `${PREFIX}#${message.nsp}#`;
  // The adapter's "dynamic" mode: a worker listens on a room's own channel while it has sockets in it.
  const rooms = message.type === BROADCAST ? (message.data as { opts: Options }).opts.rooms : [];
  const roomChannel = rooms.length === 1 && rooms[0]!.length !== 20 ? `${channel}${rooms[0]}#` : undefined;
  return redis.sPublish(roomChannel ?? channel, JSON.stringify(message));
}

function sendStreams(redis: Publisher, message: AdapterMessage) {
  if (message.type === SERVER_SIDE_EMIT) {
    return redis.publish(`${PREFIX}#${message.nsp}#`, Buffer.from(encode(message)));
  }
  const fields = { uid: message.uid, nsp: message.nsp, type: String(message.type), data: JSON.stringify(message.data) };
  return redis.xAdd(STREAM, "*", fields, { TRIM: { strategy: "MAXLEN", strategyModifier: "~", threshold: STREAM_MAX_LENGTH } });
}
