/**
 * emitter.ts's command line: --help, and every kind of bad or conflicting option rejected with one
 * line and exit code 2 before Redis is touched (REDIS_URL points nowhere: had the emitter gone on,
 * it would have failed to connect, with exit code 1). What the options deliver is in adapters.test.ts.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createClient } from "redis";
import { freePort, startPrivateRedis } from "../support/redis.ts";
import { runToEnd, stopAll } from "../support/scripts.ts";

after(stopAll);

test("--help prints every option and exits 0", async () => {
  const result = await runToEnd("emitter.ts", ["--help"], {});
  assert.equal(result.code, 0);
  assert.equal(result.stderr.length, 0);
  const usage = result.stdout.join("\n");
  for (const option of ["--room", "--except", "--nsp", "--event", "--message", "--server-side", "--join", "--leave", "--disconnect", "--help", "ADAPTER"]) {
    assert.ok(usage.includes(option), `--help does not mention ${option}`);
  }
});

test("bad or conflicting options: one line, exit code 2, nothing sent", async () => {
  const env = { REDIS_URL: `redis://127.0.0.1:${await freePort()}` };
  const cases: [string[], RegExp, Record<string, string>?][] = [
    [["--bogus"], /Unknown option '--bogus'/],
    [["--room"], /argument missing/],
    [["--help=yes"], /does not take an argument/],
    [["id1", "id2"], /one socket id at most/],
    [["--join", "a", "--leave", "b"], /--join and --leave do not go together/],
    [["--disconnect", "--server-side"], /--server-side and --disconnect do not go together/],
    [["--join", "a", "--message", "hi"], /--event and --message go with an emit, not with --join/],
    [["--disconnect", "--event", "news"], /not with --disconnect/],
    [["--server-side", "--room", "lobby"], /--server-side reaches every worker/],
    [["--server-side", "--except", "lobby"], /--server-side reaches every worker/],
    [["--server-side", "--event", "news"], /--server-side sends "chat message"/],
    [["--nsp", "lounge"], /--nsp takes a namespace/],
    [["--event", "disconnect"], /--event cannot be "disconnect"/],
    [["--message="], /--message takes 1 to 1000 characters/],
    [["--message", "x".repeat(1001)], /--message takes 1 to 1000 characters/],
    [["--room", ""], /is not a room name or socket id/],
    [["--join", "two words"], /cannot use room "two words"/],
    [["--leave", "ABCDEFGHIJKLMNOPQRST"], /shaped like a socket id/],
  ];
  const results = await Promise.all(cases.map(([args, , extra]) => runToEnd("emitter.ts", args, { ...env, ...extra })));
  results.forEach((result, i) => {
    const [args, line] = cases[i]!;
    const what = `emitter.ts ${args.join(" ").slice(0, 60)}`;
    assert.equal(result.code, 2, `${what}: exit code ${result.code}; stderr: ${result.stderr.join("\n")}`);
    assert.equal(result.stderr.length, 1, `${what} printed ${JSON.stringify(result.stderr)}`);
    assert.match(result.stderr[0]!, /^emitter\.ts: .* \(see --help\)$/, what);
    assert.match(result.stderr[0]!, line, what);
  });
});

test("index.ts and emitter.ts refuse a bad environment the same way: one line, exit code 2", async () => {
  const nowhere = `redis://127.0.0.1:${await freePort()}`;
  const cases: [Record<string, string>, string][] = [
    [{ ADAPTER: "cluster" }, 'ADAPTER must be one of classic, sharded, streams, got "cluster"'],
    [{ REDIS_URL: "localhost:6379" }, 'REDIS_URL must be a redis:// or rediss:// URL, got "localhost:6379"'],
    [{ REDIS_URL: "redis://:s3cret@host:port" }, 'REDIS_URL must be a redis:// or rediss:// URL, got "redis://***@host:port"'],
  ];
  for (const [env, line] of cases) {
    for (const script of ["index.ts", "emitter.ts"]) {
      const result = await runToEnd(script, [], { REDIS_URL: nowhere, PORT: "0", WORKERS: "1", ...env });
      assert.equal(result.code, 2, `${script} ${JSON.stringify(env)}: ${result.stderr.join("\n")}`);
      assert.deepEqual(result.stderr, [line], `${script} ${JSON.stringify(env)}`);
    }
  }
  const badServer = await runToEnd("index.ts", [], { REDIS_URL: nowhere, PORT: "99999" });
  assert.equal(badServer.code, 2);
  assert.deepEqual(badServer.stderr, ['PORT must be a port number, got "99999"']);
});

test("a bare socket id that starts with '-' is a socket id, not options", async () => {
  // Redis points nowhere: exit code 1 (cannot connect) shows the command line was accepted.
  const env = { REDIS_URL: `redis://127.0.0.1:${await freePort()}` };
  for (const args of [["-6ps_aSoWBoOcggAAAAx"], ["-6ps_aSoWBoOcggAAAAx", "--message", "hi"]]) {
    const result = await runToEnd("emitter.ts", args, env);
    assert.equal(result.code, 1, `emitter.ts ${args.join(" ")}: ${result.stderr.join("\n")}`);
    assert.match(result.stderr[0]!, /^cannot connect to Redis/);
  }
});

test("a PUBLISH that Redis refuses: one line, exit code 1, with every adapter", async () => {
  const redis = await startPrivateRedis();
  try {
    const admin = createClient({ url: redis.url });
    await admin.connect();
    // A user who may do everything but publish (also SPUBLISH and XADD for the other adapters).
    await admin.sendCommand(["ACL", "SETUSER", "nopub", "on", ">pw", "~*", "&*", "+@all", "-publish", "-spublish", "-xadd"]);
    await admin.close();
    const url = redis.url.replace("redis://", "redis://nopub:pw@");
    for (const adapter of ["classic", "sharded", "streams"]) {
      const result = await runToEnd("emitter.ts", [], { REDIS_URL: url, ADAPTER: adapter });
      assert.equal(result.code, 1, `${adapter}: ${result.stderr.join("\n")}`);
      assert.equal(result.stderr.length, 1, `${adapter} printed ${JSON.stringify(result.stderr)}`);
      assert.match(result.stderr[0]!, /^Redis refused the message: NOPERM/);
    }
  } finally {
    await redis.stop();
  }
});
