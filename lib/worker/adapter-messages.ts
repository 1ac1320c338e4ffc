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
 * "Could not parse" from notepack in onmessage).
 *
 * The sharded and streams adapters catch their own decoding errors in onRawMessage and drop the
 * message with a debug() line only: silently, unless DEBUG is set. A raw message that returns
 * from onRawMessage without reaching onMessage (or the sharded adapter's onResponse) is such a
 * drop, and is counted and logged as the others are. Not seen: the streams adapter's volatile
 * messages, which it decodes in a closure of its own.
 */
import { countedLog } from "../log.ts";
import type { AdapterName } from "../config.ts";
import { countMalformedRedisMessage, redisMessageCounter } from "./metrics.ts";

/** Classic: onmessage (broadcasts), onrequest (requests, responses); sharded and streams: onRawMessage. */
const ENTRY_POINTS = ["onmessage", "onrequest", "onRawMessage"] as const;

/** Where a decoded message goes on (the ClusterAdapter's onMessage, the sharded adapter's onResponse). */
const DECODED = ["onMessage", "onResponse"] as const;

/** One log line per worker for all its namespaces. */
const dropped = countedLog("ignored a message from Redis that the adapter could not handle");

/** The one place a message from Redis is dropped (and counted, where a metric is wanted). */
function drop(reason: unknown): void {
  countMalformedRedisMessage();
  dropped(reason instanceof Error ? reason.message || reason.name : String(reason));
}

/** Guards the adapter's entry points, and counts each message Redis hands it (METRICS_PORT). */
export function guardAdapterMessages<T extends object>(adapter: T, name: AdapterName): T {
  const counted = redisMessageCounter(name);
  const entries = adapter as unknown as Record<string, unknown>;
  // The adapters look these up on `this` at each message, so an own property takes over.
  let decoded = false;
  for (const entry of DECODED) {
    const original = entries[entry];
    if (typeof original !== "function") continue;
    entries[entry] = function (this: unknown, ...args: unknown[]) {
      decoded = true;
      return original.apply(this, args);
    };
  }
  for (const entry of ENTRY_POINTS) {
    const original = entries[entry];
    if (typeof original !== "function") continue;
    entries[entry] = function (this: unknown, ...args: unknown[]) {
      counted();
      decoded = false;
      try {
        const result = original.apply(this, args);
        if (entry === "onRawMessage" && !decoded) drop("the adapter could not decode it");
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
