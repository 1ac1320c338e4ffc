/**
 * Users, not sockets (lib/worker/identity.ts): in auth mode a token is checked at the handshake and
 * its `sub` is the user; emitter.ts --user reaches every socket of a user on every worker, under
 * every adapter; in open mode the name a client claims does the same, unverified. Real Redis, the
 * real index.ts (2 workers), real clients, tokens signed with jose as an identity provider would,
 * and a JWKS served on loopback. docs/learn/users.md shows what each test shows.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server as HttpServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { createAdapter } from "@socket.io/redis-adapter";
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT, UnsecuredJWT } from "jose";
import { createClient } from "redis";
import { Server } from "socket.io";
import type { SocketData } from "../lib/chat.ts";
import { ADAPTERS } from "../lib/config.ts";
import { type Cluster, startCluster, workerOf } from "../support/cluster.ts";
import { freePort } from "../support/redis.ts";
import { run, runToEnd, type Runtime, sleep, stopAll, until } from "../support/scripts.ts";
import { connected, type Recorder, record } from "../support/sockets.ts";

const SECRET = "a test secret that is long enough for HS256, 48 bytes";
const key = new TextEncoder().encode(SECRET);

/** An HS256 token signed with SECRET (or `with`), `sub` and `exp` in seconds from now unless told. */
async function mint(sub: unknown, { ttl = 3600, exp = 0, with: signingKey = key, alg = "HS256", claims = {} as Record<string, unknown> } = {}): Promise<string> {
  const jwt = new SignJWT({ ...claims, ...(sub === undefined ? {} : { sub }) } as JWTPayload).setProtectedHeader({ alg });
  if (exp !== 0) jwt.setExpirationTime(exp);
  else if (ttl !== 0) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + ttl);
  return jwt.sign(signingKey);
}

/** The next `event` of a socket.io-client socket, with its arguments. */
function next(socket: Recorder["socket"], event: string): Promise<unknown[]> {
  return new Promise((resolve) => (socket as unknown as { once(event: string, listener: (...args: unknown[]) => void): void }).once(event, (...args) => resolve(args)));
}

/** A socket that shows `auth` at its handshake, on one transport, without retries. */
function withAuth(url: string, auth: Record<string, unknown>, transport: "polling" | "websocket" = "websocket"): Recorder {
  return record(url, { auth, transports: [transport], reconnection: false });
}

/** The connect_error message a handshake with `auth` gets, or "connected". */
async function answerTo(url: string, auth: Record<string, unknown>, transport: "polling" | "websocket"): Promise<string> {
  const client = withAuth(url, auth, transport);
  try {
    const outcome = await Promise.race([
      next(client.socket, "connect").then(() => "connected"),
      next(client.socket, "connect_error").then(([err]) => (err as Error).message),
      // A refusal closes the connection too, sometimes first: the refusal's message wins if it follows.
      next(client.socket.io as unknown as Recorder["socket"], "close").then(async ([reason]) => (await sleep(200), `connection closed: ${reason}`)),
      sleep(15_000).then(() => "no answer within 15 s"),
    ]);
    return outcome;
  } finally {
    client.socket.disconnect();
  }
}

/** Sockets of named users, and the worker each landed on. */
interface UserSocket extends Recorder {
  id: string;
  worker: string;
}

async function connectAs(cluster: Cluster, token: string, transport: "polling" | "websocket" = "websocket"): Promise<UserSocket> {
  const client = withAuth(cluster.url, { token }, transport);
  await connected(client.socket, 15_000, { firstTry: true });
  const id = client.socket.id!;
  return Object.assign(client, { id, worker: await workerOf(cluster.server, id) });
}

/**
 * Runs emitter.ts, then a sentinel broadcast through Redis, and returns what each socket received
 * in between: a missing message and an extra one both show.
 */
let sentinels = 0;
async function emitAndSettle(cluster: Cluster, args: string[], sockets: Record<string, Recorder>): Promise<Record<string, string[]>> {
  const marks = Object.fromEntries(Object.entries(sockets).map(([name, s]) => [name, s.received.length]));
  const result = await runToEnd("emitter.ts", args, cluster.env);
  assert.equal(result.code, 0, `emitter.ts ${args.join(" ")}: ${result.stderr.join("\n")}`);
  const sentinel = `sentinel ${++sentinels}`;
  assert.equal((await runToEnd("emitter.ts", ["--message", sentinel], cluster.env)).code, 0);
  const live = Object.entries(sockets).filter(([, s]) => s.socket.connected);
  await until(() => live.every(([, s]) => s.received.includes(sentinel)), 15_000, `every socket gets ${sentinel}`);
  return Object.fromEntries(Object.entries(sockets).map(([name, s]) => [name, s.received.slice(marks[name]).filter((text) => text !== sentinel)]));
}

for (const adapter of ADAPTERS) {
  describe(`auth mode, ADAPTER=${adapter}: emitter.ts --user on every worker`, () => {
    let cluster: Cluster;
    let alice1: UserSocket, alice2: UserSocket, bob: UserSocket;

    before(async () => {
      cluster = await startCluster({ adapter, env: { AUTH_SECRET: SECRET } });
    });
    after(async () => {
      for (const s of [alice1, alice2, bob]) s?.socket.disconnect();
      await stopAll();
      await cluster?.stop();
    });

    test("two sockets of alice on two workers get --user alice; bob does not", async () => {
      // least-connection alternates the workers: a few tries put alice on both.
      const alices: UserSocket[] = [];
      for (let i = 0; i < 6 && new Set(alices.map((a) => a.worker)).size < 2; i++) alices.push(await connectAs(cluster, await mint("alice")));
      alice1 = alices[0]!;
      alice2 = alices.find((a) => a.worker !== alice1.worker)!;
      assert.ok(alice2, "alice's sockets all landed on one worker");
      for (const extra of alices.filter((a) => a !== alice1 && a !== alice2)) extra.socket.disconnect();
      bob = await connectAs(cluster, await mint("bob"));
      const sockets = { alice1, alice2, bob };

      assert.deepEqual(await emitAndSettle(cluster, ["--user", "alice", "--message", "your order shipped"], sockets), {
        alice1: ["your order shipped"],
        alice2: ["your order shipped"],
        bob: [],
      });
      assert.deepEqual(await emitAndSettle(cluster, ["--user", "alice", "--user", "bob", "--message", "both"], sockets), {
        alice1: ["both"],
        alice2: ["both"],
        bob: ["both"],
      });
      assert.deepEqual(await emitAndSettle(cluster, ["--user", "alice", `--except=${alice1.id}`, "--message", "one tab"], sockets), {
        alice1: [],
        alice2: ["one tab"],
        bob: [],
      });
      // --join with --user: bob's sockets enter a room, wherever they are.
      assert.equal((await runToEnd("emitter.ts", ["--user", "bob", "--join", "vip"], cluster.env)).code, 0);
      assert.deepEqual(await emitAndSettle(cluster, ["--room", "vip", "--message", "to vip"], sockets), { alice1: [], alice2: [], bob: ["to vip"] });
    });

    test("--user alice --disconnect logs alice out on every worker; bob stays", async () => {
      const reasons = [alice1, alice2].map((a) => next(a.socket, "disconnect").then(([reason]) => reason));
      assert.equal((await runToEnd("emitter.ts", ["--user", "alice", "--disconnect"], cluster.env)).code, 0);
      assert.deepEqual(await Promise.all(reasons), ["io server disconnect", "io server disconnect"]);
      assert.deepEqual(await emitAndSettle(cluster, ["--message", "who is left"], { bob }), { bob: ["who is left"] });
      assert.ok(bob.socket.connected);
    });
  });
}

describe("auth mode, ADAPTER=streams: what a recovered session missed waits for the token's check", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster({ adapter: "streams", workers: 1, env: { AUTH_SECRET: SECRET } });
  });
  after(async () => {
    await stopAll();
    await cluster?.stop();
  });

  /** Connects alice with `token`, drops the connection as a network would, and publishes to her meanwhile. */
  async function awayWhile(token: string, text: string): Promise<UserSocket> {
    const alice = await connectAs(cluster, token);
    assert.deepEqual(await emitAndSettle(cluster, ["--user", "alice", "--message", "before"], { alice }), { alice: ["before"] }); // alice holds an offset
    const gone = next(alice.socket, "disconnect");
    alice.socket.io.engine.close(); // the server sees "transport close" and keeps the session
    await Promise.race([gone, sleep(10_000).then(() => assert.fail("alice's socket did not close"))]);
    await cluster.server.waitFor(`disconnected, id: ${alice.id}`);
    assert.equal((await runToEnd("emitter.ts", ["--user", "alice", "--message", text], cluster.env)).code, 0);
    return alice;
  }

  /** Reconnects with `token`: the connect, or the refusal's message. */
  async function comeBack(client: UserSocket, token: string): Promise<string> {
    client.socket.auth = { token };
    const outcome = Promise.race([
      next(client.socket, "connect").then(() => "connected"),
      next(client.socket, "connect_error").then(([err]) => (err as Error).message),
      sleep(15_000).then(() => `no answer within 15 s (connected: ${client.socket.connected}, active: ${client.socket.active})`),
    ]);
    client.socket.connect();
    return outcome;
  }

  test("the same user comes back: the session is recovered and what was missed arrives", async () => {
    const alice = await awayWhile(await mint("alice"), "missed while away");
    assert.equal(await comeBack(alice, await mint("alice")), "connected");
    assert.equal(alice.socket.recovered, true);
    await until(() => alice.received.includes("missed while away"), 10_000, "the missed message");
    alice.socket.disconnect();
  });

  test("a token that expired while away: refused, and nothing of what was missed arrives", async () => {
    // Long enough for alice to leave and be written to before her token expires, on a busy machine too.
    const exp = Math.floor(Date.now() / 1000) + 8;
    const alice = await awayWhile(await mint("alice", { exp }), "private, sent while away");
    assert.ok(Date.now() < exp * 1000, "the token expired before alice left: the machine was too slow for this test");
    await sleep(exp * 1000 - Date.now() + 200);
    // Every packet that reaches the client, also one socket.io-client would buffer until a connect.
    const packets: string[] = [];
    (alice.socket.io as unknown as { on(event: "packet", listener: (packet: { data?: unknown }) => void): void }).on("packet", (packet) => packets.push(JSON.stringify(packet.data)));
    assert.match(await comeBack(alice, await mint("alice", { exp })), /^unauthorized: token expired$/);
    await sleep(500);
    assert.ok(!packets.some((data) => data.includes("private, sent while away")), `the missed message reached a client whose token had expired: ${packets.join(" ")}`);
    alice.socket.disconnect();
  });

  test("another user's token on alice's session: a fresh start, none of alice's messages or rooms", async () => {
    const alice = await awayWhile(await mint("alice"), "for alice only");
    assert.equal(await comeBack(alice, await mint("bob")), "connected");
    const after = await emitAndSettle(cluster, ["--user", "alice", "--message", "alice again"], { bob: alice });
    assert.deepEqual(after, { bob: [] });
    assert.ok(!alice.received.includes("for alice only"), "bob got what alice missed");
    assert.deepEqual(await emitAndSettle(cluster, ["--user", "bob", "--message", "to bob"], { bob: alice }), { bob: ["to bob"] });
    alice.socket.disconnect();
  });
});

describe("auth mode: what is refused, and what a token gives", () => {
  let cluster: Cluster;
  const tokens: string[] = [];

  before(async () => {
    cluster = await startCluster({ env: { AUTH_SECRET: SECRET } });
  });
  after(async () => {
    await stopAll();
    await cluster?.stop();
  });

  test("every bad handshake is a connect_error that says why, on both transports", async () => {
    const { privateKey } = await generateKeyPair("RS256");
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["no token", {}, /^unauthorized: no token/],
      ["an empty token", { token: "" }, /^unauthorized: no token/],
      ["another secret", { token: await mint("alice", { with: new TextEncoder().encode("another secret, just as long as the right one") }) }, /^unauthorized: bad signature$/],
      ["alg none", { token: new UnsecuredJWT({ sub: "alice" }).setExpirationTime("1h").encode() }, /^unauthorized: signing algorithm not allowed$/],
      ["HS512", { token: await mint("alice", { alg: "HS512", with: new Uint8Array(64).fill(7) }) }, /^unauthorized: signing algorithm not allowed$/],
      ["RS256 against a secret", { token: await new SignJWT({ sub: "alice" }).setProtectedHeader({ alg: "RS256" }).setExpirationTime("1h").sign(privateKey) }, /^unauthorized: signing algorithm not allowed$/],
      ["expired", { token: await mint("alice", { ttl: -10 }) }, /^unauthorized: token expired$/],
      ["no sub", { token: await mint(undefined) }, /^unauthorized: token without "sub"$/],
      ["no exp", { token: await mint("alice", { ttl: 0 }) }, /^unauthorized: token without "exp"$/],
      ["a sub that names no user", { token: await mint("al\u001bice") }, /^unauthorized: the token's sub cannot name a user/],
      ["a number as sub", { token: await mint(42) }, /^unauthorized: the token's sub cannot name a user/],
      ["garbage", { token: "not.a.token" }, /^unauthorized: malformed token$/],
      ["100 KB of garbage", { token: "x".repeat(100_000) }, /^unauthorized: malformed token$/],
      ["an object", { token: { sub: "alice" } }, /^unauthorized: malformed token$/],
    ];
    for (const [, auth] of cases) if (typeof auth.token === "string") tokens.push(auth.token);
    for (const transport of ["polling", "websocket"] as const) {
      for (const [what, auth, expected] of cases) {
        assert.match(await answerTo(cluster.url, auth, transport), expected, `${what} over ${transport}`);
      }
    }
    // One line for the lot (more are counted), and no token in any line.
    const lines = cluster.server.stdout.filter((line) => line.includes("refused a handshake"));
    assert.ok(lines.length >= 1 && lines.length <= 2, lines.join("\n"));
    const output = [...cluster.server.stdout, ...cluster.server.stderr].join("\n");
    for (const token of tokens.filter((t) => (t.split(".")[2]?.length ?? 0) > 10)) {
      assert.ok(!output.includes(token.split(".")[2]!), `a token in the log: ${token}`);
    }
  });

  test("a 2 MB token is dropped with its connection, and the server is unharmed", async () => {
    // Over maxHttpBufferSize (1 MB): engine.io closes the connection before socket.io reads it.
    assert.match(await answerTo(cluster.url, { token: "y".repeat(2_000_000) }, "websocket"), /^connection closed: /);
    const alice = await connectAs(cluster, await mint("alice"));
    alice.socket.disconnect();
    assert.ok(!cluster.server.stdout.some((line) => /died/.test(line)), "a worker died");
  });

  test("the chat line names the token's user, whatever name the client writes", async () => {
    const alice = await connectAs(cluster, await mint("alice"));
    const bob = await connectAs(cluster, await mint("bob"), "polling");
    try {
      alice.socket.emit("chat message", "bob", "I am bob, really");
      await until(() => bob.received.includes("I am bob, really from alice"), 10_000, "bob sees alice's line as alice's");
      assert.ok(!bob.received.some((text) => text.endsWith("from bob")));
    } finally {
      alice.socket.disconnect();
      bob.socket.disconnect();
    }
  });

  test("no client enters a user: room; the emitter's --join refuses one too", async () => {
    const mallory = await connectAs(cluster, await mint("mallory"));
    try {
      assert.match((await mallory.socket.emitWithAck("join", "user:alice"))!, /is a user's room/);
      assert.match((await mallory.socket.emitWithAck("name", "alice"))!, /the token names this socket's user/);
    } finally {
      mallory.socket.disconnect();
    }
    const join = await runToEnd("emitter.ts", ["--room", "lobby", "--join", "user:alice"], cluster.env);
    assert.equal(join.code, 2);
    assert.match(join.stderr[0]!, /cannot use room "user:alice": a name that starts with "user:" is a user's room/);
  });

  test("the token leaves the handshake: fetchSockets answers carry the user, not the token", async () => {
    const token = await mint("alice");
    const alice = await connectAs(cluster, token);
    // Another server on the same Redis, as a worker of another host would be, asks every worker.
    const pub = createClient({ url: cluster.redis.url });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    const io = new Server({ adapter: createAdapter(pub, sub, { publishOnSpecificResponseChannel: true }) });
    try {
      const sockets = await io.fetchSockets();
      const found = sockets.find((s) => s.id === alice.id)!;
      assert.ok(found, "alice's socket was not listed");
      assert.deepEqual({ user: (found.data as SocketData).user, verified: (found.data as SocketData).verified }, { user: "alice", verified: true });
      assert.ok(found.rooms.has("user:alice"));
      assert.ok(!JSON.stringify(sockets.map((s) => s.handshake)).includes(token.split(".").at(-1)!), "the token crossed Redis");
    } finally {
      alice.socket.disconnect();
      await io.of("/").adapter.close();
      await Promise.allSettled([pub.close(), sub.close()]);
    }
  });

  test("at exp the server lets the socket go, within a second or two, and the same token is refused after", async () => {
    const exp = Math.floor(Date.now() / 1000) + 5;
    const expiresAt = exp * 1000;
    const token = await mint("shortlived", { exp });
    const client = await connectAs(cluster, token, "polling");
    const told = next(client.socket, "token expired").then(() => Date.now());
    const [reason] = await next(client.socket, "disconnect");
    const goneAt = Date.now();
    assert.equal(reason, "io server disconnect");
    const toldAt = await told;
    assert.ok(toldAt >= expiresAt - 50 && goneAt - expiresAt <= 2500, `told ${toldAt - expiresAt} ms and gone ${goneAt - expiresAt} ms after exp`);
    assert.match(await answerTo(cluster.url, { token }, "websocket"), /^unauthorized: token expired$/);
  });

  test("client.ts: a good token names the user; a bad one is one line and exit code 1; an expiry too", async () => {
    const watcher = await connectAs(cluster, await mint("watcher"));
    const alice = run("client.ts", ["mallory"], { ...cluster.env, AUTH_TOKEN: await mint("alice") });
    await alice.waitFor(/^connected, id: /);
    alice.send("typed in client.ts");
    await until(() => watcher.received.includes("typed in client.ts from alice"), 10_000, "the line is alice's");
    const reached = await runToEnd("emitter.ts", ["--user", "alice", "--message", "found you"], cluster.env);
    assert.equal(reached.code, 0);
    await alice.waitFor(/^found you$/);
    watcher.socket.disconnect();

    const bad = await runToEnd("client.ts", ["eve"], { ...cluster.env, AUTH_TOKEN: await mint("eve", { with: new TextEncoder().encode("x".repeat(40)) }) });
    assert.equal(bad.code, 1);
    assert.deepEqual(bad.stderr, [`Error: ${cluster.url} refused the connection: unauthorized: bad signature`]);

    const short = run("client.ts", ["brief"], { ...cluster.env, AUTH_TOKEN: await mint("brief", { ttl: 2 }) });
    await short.waitFor(/^connected, id: /);
    assert.equal((await short.exited).code, 1);
    assert.ok(short.stderr.includes("Error: the token expired, start again with a new AUTH_TOKEN"), short.stderr.join("\n"));
  });
});

describe("auth mode with AUTH_JWKS_URL: keys from an identity provider, rotated", () => {
  let cluster: Cluster;
  let jwks: HttpServer;
  let published: JWK[] = [];
  let fetches = 0;
  let failing = true; // until the first test has seen a worker that cannot fetch any key
  const ISSUER = "https://issuer.test/";
  const AUDIENCE = "chat-kit";
  const keys: Record<string, CryptoKey> = {};

  async function signed(sub: string, kid: string, alg: "RS256" | "ES256", claims: Record<string, unknown> = {}): Promise<string> {
    return new SignJWT({ sub, ...claims })
      .setProtectedHeader({ alg, kid })
      .setIssuer((claims.iss as string) ?? ISSUER)
      .setAudience((claims.aud as string) ?? AUDIENCE)
      .setExpirationTime("1h")
      .sign(keys[kid]!);
  }

  async function newKey(kid: string, alg: "RS256" | "ES256"): Promise<JWK> {
    const pair = await generateKeyPair(alg, { extractable: true });
    keys[kid] = pair.privateKey;
    return { ...(await exportJWK(pair.publicKey)), kid, alg, use: "sig" };
  }

  before(async () => {
    published = [await newKey("rsa-1", "RS256"), await newKey("ec-1", "ES256")];
    jwks = createServer((req, res) => {
      fetches++;
      if (failing) return res.writeHead(503).end();
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ keys: published }));
    });
    const port = await freePort();
    jwks.listen(port, "127.0.0.1");
    await once(jwks, "listening");
    cluster = await startCluster({
      workers: 1,
      env: { AUTH_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`, AUTH_JWKS_COOLDOWN: "300", AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE },
    });
  });
  after(async () => {
    await stopAll();
    await cluster?.stop();
    jwks?.close();
  });

  test("the provider out of reach before any key was fetched: refused as the server's trouble, worth a retry", async () => {
    const client = withAuth(cluster.url, { token: await signed("gus", "rsa-1", "RS256") });
    const [err] = (await next(client.socket, "connect_error")) as [Error & { data?: { retry?: boolean } }];
    client.socket.disconnect();
    assert.equal(err.message, "the server cannot check tokens right now: try again");
    assert.equal(err.data?.retry, true);
    await until(() => cluster.server.stderr.some((line) => line.includes("cannot fetch the signing keys at http://127.0.0.1:")), 5000, "the log line");
    failing = false;
  });

  test("RS256 and ES256 tokens of the provider connect; --user reaches them", async () => {
    const rsa = await connectAs(cluster, await signed("carol", "rsa-1", "RS256"));
    const ec = await connectAs(cluster, await signed("dave", "ec-1", "ES256"));
    assert.deepEqual(await emitAndSettle(cluster, ["--user", "dave", "--message", "to dave"], { rsa, ec }), { rsa: [], ec: ["to dave"] });
    rsa.socket.disconnect();
    ec.socket.disconnect();
  });

  test("a rotated key: a token with the new key id is accepted once the provider publishes it", async () => {
    const unpublished = await newKey("rsa-2", "RS256");
    assert.match(await answerTo(cluster.url, { token: await signed("erin", "rsa-2", "RS256") }, "websocket"), /^unauthorized: signed with a key the server does not know$/);
    published = [unpublished, published[1]!]; // rsa-1 retired, rsa-2 published
    const before = fetches;
    await sleep(400); // AUTH_JWKS_COOLDOWN: an unknown key id fetches again at most that often
    const erin = await connectAs(cluster, await signed("erin", "rsa-2", "RS256"));
    assert.ok(fetches > before, "the key set was not fetched again");
    erin.socket.disconnect();
  });

  test("wrong issuer, wrong audience, a secret-signed token: refused", async () => {
    assert.match(await answerTo(cluster.url, { token: await signed("x", "rsa-2", "RS256", { iss: "https://elsewhere.test/" }) }, "polling"), /^unauthorized: token not meant for this server \(iss\)$/);
    assert.match(await answerTo(cluster.url, { token: await signed("x", "rsa-2", "RS256", { aud: "another-app" }) }, "polling"), /^unauthorized: token not meant for this server \(aud\)$/);
    const hs = await new SignJWT({ sub: "x" }).setProtectedHeader({ alg: "HS256", kid: "rsa-2" }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime("1h").sign(new Uint8Array(32));
    assert.match(await answerTo(cluster.url, { token: hs }, "polling"), /^unauthorized: signing algorithm not allowed$/);
  });

  test("the provider out of reach after a fetch: the keys fetched before still check tokens", async () => {
    failing = true;
    await newKey("rsa-3", "RS256"); // not published: asking for it makes the worker fetch, and fail
    await sleep(400);
    const before = fetches;
    assert.match(await answerTo(cluster.url, { token: await signed("frank", "rsa-3", "RS256") }, "websocket"), /^unauthorized: signed with a key the server does not know$/);
    assert.ok(fetches > before, "the worker did not try the provider");
    const known = await connectAs(cluster, await signed("hal", "rsa-2", "RS256"));
    known.socket.disconnect();
    failing = false;
  });
});

describe("open mode: the name a client claims names its user, unverified", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(async () => {
    await stopAll();
    await cluster?.stop();
  });

  test("emitter.ts --user A reaches the client.ts started as A, not B; a page-like socket names itself later", async () => {
    const a = run("client.ts", ["A"], cluster.env);
    const b = run("client.ts", ["B"], cluster.env);
    await Promise.all([a.waitFor(/^connected, id: /), b.waitFor(/^connected, id: /)]);
    const nameless = record(cluster.url, { transports: ["websocket"] });
    await connected(nameless.socket);
    assert.equal(await nameless.socket.emitWithAck("name", "C"), null);
    assert.match((await nameless.socket.emitWithAck("name", "x".repeat(101)))!, /1 to 100 characters/);
    assert.equal((await runToEnd("emitter.ts", ["--user", "A", "--user", "C", "--message", "to A and C"], cluster.env)).code, 0);
    await a.waitFor(/^to A and C$/);
    await until(() => nameless.received.includes("to A and C"), 10_000, "C gets it");
    assert.equal((await runToEnd("emitter.ts", ["--message", "to all"], cluster.env)).code, 0);
    await b.waitFor(/^to all$/);
    assert.ok(!b.stdout.includes("to A and C"), "B got A's message");
    nameless.socket.disconnect();
  });
});

describe("AUTH_* settings and npm run token: bad values are one line and exit code 2", () => {
  test("the server and the token tool refuse what cannot work", async () => {
    const cases: [string, string[], Record<string, string>, RegExp][] = [
      ["index.ts", [], { AUTH_SECRET: "too short" }, /^AUTH_SECRET must be at least 32 bytes long, got 9/],
      ["index.ts", [], { AUTH_SECRET: SECRET, AUTH_JWKS_URL: "https://idp.example/jwks.json" }, /^AUTH_SECRET and AUTH_JWKS_URL are both set/],
      ["index.ts", [], { AUTH_JWKS_URL: "ftp://idp.example/jwks" }, /^AUTH_JWKS_URL must be an https:\/\/ URL \(http:\/\/ only on this machine\)/],
      ["index.ts", [], { AUTH_JWKS_URL: "http://idp.example/jwks", AUTH_ISSUER: "i", AUTH_AUDIENCE: "a" }, /^AUTH_JWKS_URL must be an https:\/\/ URL/],
      ["index.ts", [], { AUTH_JWKS_URL: "https://idp.example/jwks", AUTH_ISSUER: "https://idp.example/" }, /^AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE/],
      ["index.ts", [], { AUTH_AUDIENCE: "chat" }, /^AUTH_ISSUER and AUTH_AUDIENCE go with AUTH_SECRET or AUTH_JWKS_URL/],
      ["tools/token.ts", ["alice"], { AUTH_SECRET: "" }, /^AUTH_SECRET is not set/],
      ["tools/token.ts", ["alice", "--ttl", "soon"], { AUTH_SECRET: SECRET }, /^--ttl takes a duration such as 30s/],
      ["tools/token.ts", [], { AUTH_SECRET: SECRET }, /^usage: npm run token -- NAME/],
      ["emitter.ts", ["--user", "a\u0007b"], {}, /^emitter\.ts: --user "a\u0007b": a user name has no control characters/],
    ];
    for (const [script, args, env, line] of cases) {
      const result = await runToEnd(script, args, { PORT: "0", WORKERS: "1", REDIS_URL: "redis://127.0.0.1:9", ...env });
      assert.equal(result.code, 2, `${script} ${JSON.stringify(env)}: ${result.stderr.join("\n")}`);
      assert.equal(result.stderr.length, 1, result.stderr.join("\n"));
      assert.match(result.stderr[0]!, line);
      assert.ok(!result.stderr[0]!.includes(SECRET), "the secret in the output");
    }
    const minted = await runToEnd("tools/token.ts", ["alice", "--ttl", "5m"], { AUTH_SECRET: SECRET });
    assert.equal(minted.code, 0);
    const [, payload] = minted.stdout[0]!.split(".");
    const claims = JSON.parse(Buffer.from(payload!, "base64url").toString());
    assert.equal(claims.sub, "alice");
    assert.ok(Math.abs(claims.exp - Date.now() / 1000 - 300) < 10);
  });
});

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`auth mode on ${runtime}: the server, client.ts and emitter.ts`, () => {
    let cluster: Cluster;
    before(async () => {
      cluster = await startCluster({ runtime, env: { AUTH_SECRET: SECRET } });
    });
    after(async () => {
      await stopAll();
      await cluster?.stop();
    });

    test("a good token connects and is reached by --user; a bad one and an expired one are refused", async () => {
      const alice = run("client.ts", ["alice"], { ...cluster.env, AUTH_TOKEN: await mint("alice") }, runtime);
      await alice.waitFor(/^connected, id: /, 20_000);
      const reached = await runToEnd("emitter.ts", ["--user", "alice", "--message", `hello from ${runtime}`], cluster.env, runtime);
      assert.equal(reached.code, 0, reached.stderr.join("\n"));
      await alice.waitFor(new RegExp(`^hello from ${runtime}$`));
      for (const transport of ["polling", "websocket"] as const) {
        assert.match(await answerTo(cluster.url, { token: await mint("eve", { with: new TextEncoder().encode("y".repeat(40)) }) }, transport), /^unauthorized: bad signature$/);
        assert.match(await answerTo(cluster.url, { token: await mint("eve", { ttl: -5 }) }, transport), /^unauthorized: token expired$/);
      }
    });
  });
}
