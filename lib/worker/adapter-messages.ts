/**
 * lib/worker/adapter-messages.ts: a malformed message on Redis costs that message only.
 *
 * Anyone who can PUBLISH to Redis can send a worker a payload its adapter cannot decode or act
 * on (docs/learn/any-language.md invites readers to publish by hand). The adapters decode some
 * messages without a try/catch (the classic adapter's onmessage; the ClusterAdapter's
 * onMessage behind the sharded and streams adapters' onRawMessage), so the exception is thrown
 * inside node-redis's data handler: node-redis resets its RESP parser in the middle of a chunk
 * and every other message of that chunk is lost, silently (the figures:
 * docs/reference/faults.md#a-malformed-message-on-redis). Under
 * the streams adapter the exception stops the read loop before it moves its offset on, and the
 * same entry fails again and again: nothing more is delivered by that worker.
 *
 * guardAdapterMessages() wraps the entry points of each namespace's adapter as it is created
 * (lib/worker/adapters.ts), whichever of them it has, so that a message that throws is dropped alone, with one rate-limited log line. The
 * classic adapter's undecodable message is an old report (socketio/socket.io-redis-adapter#278,
 * "Could not parse" from notepack in onmessage); the other adapters catch decoding errors only.
 */
import { countedLog } from "../log.ts";
import { countMalformedRedisMessage } from "./metrics.ts";

/** Classic: onmessage (broadcasts), onrequest (requests, responses); sharded and streams: onRawMessage. */
const ENTRY_POINTS = ["onmessage", "onrequest", "onRawMessage"] as const;

/** One log line per worker for all its namespaces. */
const dropped = countedLog("ignored a message from Redis that the adapter could not handle");

export function guardAdapterMessages<T extends object>(adapter: T): T {
  const drop = (err: unknown) => {
    countMalformedRedisMessage();
    dropped(err instanceof Error ? err.message || err.name : String(err));
  };
  const entries = adapter as unknown as Record<string, unknown>;
  for (const name of ENTRY_POINTS) {
    const original = entries[name];
    if (typeof original !== "function") continue;
    // The adapters look these up on `this` at each message, so an own property takes over.
    entries[name] = function (this: unknown, ...args: unknown[]) {
      try {
        const result = original.apply(this, args);
        // onrequest is async: its failures are rejections, which would otherwise go unhandled.
        if (result instanceof Promise) return result.catch(drop);
        return result;
      } catch (err) {
        drop(err);
      }
    };
  }
  return adapter;
}
