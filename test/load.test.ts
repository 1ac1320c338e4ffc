/**
 * bench/load.ts, scaled down to a few seconds: every client gets every emitter message, in order,
 * once, and the script says so. The full run (1,000 clients x 10,000 messages) is in docs/reference/guarantees.md.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runToEnd } from "../support/scripts.ts";

test("bench/load.ts: 50 clients x 200 messages over 2 workers, all delivered in order, none twice", async () => {
  const result = await runToEnd("bench/load.ts", [], { CLIENTS: "50", MESSAGES: "200", ROUNDS: "1", CLIENT_PROCESSES: "2" }, "node", 120_000);
  const output = result.stdout.join("\n");
  assert.equal(result.code, 0, `${output}\n${result.stderr.join("\n")}`);
  assert.match(output, /^round 1: 50\/50 clients connected /m); // how they spread over the workers varies
  assert.match(output, /^round 1: delivered 10000\/10000, out of order 0, duplicates 0, disconnected 0 \{\}; /m);
  assert.match(output, /^round 1: worker memory: .*heap after a full GC once they left \d+ \/ \d+ MB$/m);
});
