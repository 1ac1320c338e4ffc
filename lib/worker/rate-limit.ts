/**
 * lib/worker/rate-limit.ts: a token bucket. Whatever one client sends is passed on to many others (a chat
 * line to everyone, a room join to Redis), so each client gets a budget. Twelve lines of our own
 * rather than a dependency: nothing here needs more than one counter per connection.
 */

/**
 * True while the caller keeps to `perSecond` calls a second on average, after a first burst of
 * two seconds' worth (a few pasted lines go through).
 */
export function rateLimiter(perSecond: number): () => boolean {
  const burst = Math.max(1, 2 * perSecond);
  let tokens = burst;
  let last = performance.now();
  return () => {
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - last) / 1000) * perSecond);
    last = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  };
}
