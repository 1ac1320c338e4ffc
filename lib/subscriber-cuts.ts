/**
 * lib/subscriber-cuts.ts: Redis cutting a subscriber that fell behind, told as what it is.
 *
 * Redis closes a pub/sub connection whose output buffer passes `client-output-buffer-limit pubsub`
 * (32 MB at once, or 8 MB for 60 s, by default) and throws away what it held for it. A worker
 * frozen 8 s under 10 KB x 1,000 messages/s was cut after 3.7 s: it logged "lost Redis" and
 * "Redis is back" 2 ms apart, which reads like a Redis restart, subscribed again, and its clients
 * got 12,389 of 20,000 messages. Redis says nothing to the client it cuts (its own log says
 * "scheduled to be closed ASAP for overcoming of output buffer limits").
 *
 * When the subscriber alone loses its connection while the publisher stays connected to the same
 * Redis (same run_id: no restart), whyCut() says so, with the limit in force; Redis 7.2 and later
 * also count such cuts (INFO stats client_output_buffer_limit_disconnections), which confirms it.
 * How many messages were lost the pub/sub adapters cannot tell: Redis does not count what it
 * threw away, and nothing numbers the messages. Under ADAPTER=streams the broadcasts do not go
 * through pub/sub at all: the reader catches up from its offset in the stream.
 */

/** Enough of a node-redis client to ask Redis about itself. */
interface InfoClient {
  info(section: string): Promise<string>;
  configGet(name: string): Promise<Record<string, string>>;
}

export interface RedisIdentity {
  runId: string;
  /** client_output_buffer_limit_disconnections, on Redis 7.2 and later. */
  cuts?: number;
}

export async function redisIdentity(client: InfoClient, ms: number): Promise<RedisIdentity | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("no answer")), ms)));
  try {
    const info = await Promise.race([Promise.all([client.info("server"), client.info("stats")]).then((parts) => parts.join("")), deadline]);
    const runId = info.match(/^run_id:(\w+)/m)?.[1];
    const cuts = info.match(/^client_output_buffer_limit_disconnections:(\d+)/m)?.[1];
    return runId ? { runId, cuts: cuts === undefined ? undefined : Number(cuts) } : undefined;
  } catch {
    return undefined; // an ACL without INFO, or no answer: the loss is reported as a plain one
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Why the subscriber's connection closed while the publisher's did not: a sentence when Redis
 * stayed up (it most likely cut the subscriber for falling behind), undefined when it did not
 * or cannot be asked (then it is an ordinary loss of Redis).
 */
export async function whyCut(publisher: InfoClient, before: RedisIdentity | undefined, ms: number): Promise<string | undefined> {
  const now = before && (await redisIdentity(publisher, ms));
  if (!now || now.runId !== before!.runId) return undefined;
  const confirmed = now.cuts !== undefined && before!.cuts !== undefined && now.cuts > before!.cuts;
  const limit = await Promise.race([publisher.configGet("client-output-buffer-limit"), new Promise<never>((_, reject) => setTimeout(reject, ms))]).then(
    (reply) => reply["client-output-buffer-limit"]?.match(/pubsub (\d+) (\d+) (\d+)/)?.slice(1),
    () => undefined,
  );
  return (
    `Redis closed the subscriber connection while it stayed up: ${confirmed ? "it" : "most likely it"} fell behind past ` +
    `client-output-buffer-limit pubsub${limit ? ` (${limit[0]} bytes at once, or ${limit[1]} bytes for ${limit[2]} s)` : ""}; ` +
    "what was published until it subscribes again is lost for this worker's clients; subscribing again"
  );
}
