/**
 * The publisher sees what happened (lib/emitter/requests.ts, lib/emitter/answers.ts): emitter.ts
 * --list, --online and --ack ask the servers through Redis, under each adapter, and say how many
 * servers answered. Real Redis, the real index.ts (2 workers), real clients in open mode (each
 * names its user at the handshake); one worker frozen with SIGSTOP, garbage on the answer channel,
 * a MONITOR capture that must not show a client's cookie or token; client.ts and the chat page in
 * Chromium acknowledge. docs/learn/asking.md shows it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import { ADAPTERS, type AdapterName } from "../lib/config.ts";
import { EXIT_OFFLINE } from "../lib/failures.ts";
import { type Cluster, startCluster, workerOf } from "../support/cluster.ts";
import type { Browser } from "playwright-core";
import { launchBrowser, missingBrowser } from "../support/browser.ts";
import { monitorRedis } from "../support/capture.ts";
import { freePort } from "../support/redis.ts";
import { run, runToEnd, type Runtime, sleep, stopAll } from "../support/scripts.ts";
import { connected, type Recorder, record } from "../support/sockets.ts";

/** A client of user `name`; `acks` false: it shows messages but never acknowledges them. */
interface UserSocket extends Recorder {
  id: string;
  worker: string;
  user: string;
}

async function connectAs(cluster: Cluster, name: string, { acks = true, headers = {} as Record<string, string>, token = "" } = {}): Promise<UserSocket> {
  const client = record(cluster.url, {
    auth: token ? { name, token } : { name },
    transports: ["websocket"],
    reconnection: false,
    extraHeaders: headers,
  });
  if (acks) {
    // What client.ts and the page do: the ack callback is the last argument.
    client.socket.onAny((...args: unknown[]) => {
      const ack = args.at(-1);
      if (typeof ack === "function") ack();
    });
  }
  await connected(client.socket, 20_000, { firstTry: true });
  const id = client.socket.id!;
  return Object.assign(client, { id, user: name, worker: await workerOf(cluster.server, id) });
}

/** The lines of --list before its summary, as { id: "user rooms" }. */
function listed(stdout: string[]): Record<string, string> {
  return Object.fromEntries(
    stdout.slice(0, -1).map((line) => {
      const [id, user, rooms] = line.split(/\s+/);
      return [id!, `${user} ${rooms}`];
    }),
  );
}

/** The channel an emitter that is waiting for answers listens on, found with PUBSUB. */
async function answerChannel(redisUrl: string, adapter: AdapterName): Promise<string> {
  const redis = createClient({ url: redisUrl });
  await redis.connect();
  try {
    const [kind, pattern] = adapter === "classic" ? ["CHANNELS", "socket.io-response#/#emitter-*"] : [adapter === "sharded" ? "SHARDCHANNELS" : "CHANNELS", "socket.io#/#emitter-*"];
    for (const started = Date.now(); Date.now() - started < 20_000; await sleep(50)) {
      const channels = (await redis.sendCommand(["PUBSUB", kind!, pattern!])) as string[];
      if (channels.length === 1) return String(channels[0]);
    }
    throw new Error("the emitter's answer channel did not appear within 20 s");
  } finally {
    await redis.close();
  }
}

/** Sends what no server would: undecodable bytes, another request's answer, a socket without an id. */
async function publishGarbage(redisUrl: string, adapter: AdapterName, channel: string): Promise<void> {
  const redis = createClient({ url: redisUrl });
  await redis.connect();
  try {
    const foreign =
      adapter === "classic"
        ? { requestId: "not-ours", sockets: [{ id: "FORGEDFORGEDFORGED00", rooms: [], data: { user: "mallory" } }] }
        : { uid: "forger", nsp: "/", type: 8, data: { requestId: "not-ours", sockets: [{ id: "FORGEDFORGEDFORGED00", rooms: [] }] } };
    const garbage = ["{not json", "\xc1\xc1\xc1", JSON.stringify(foreign), JSON.stringify([1, 2, 3]), "null", ""];
    for (const message of garbage) {
      if (adapter === "sharded") await redis.sPublish(channel, message);
      else await redis.publish(channel, message);
    }
  } finally {
    await redis.close();
  }
}

test("--help names the questions; a wrong question is one line and exit 2, before Redis is touched", async () => {
  const help = await runToEnd("emitter.ts", ["--help"], {});
  for (const option of ["--list", "--online", "--ack", "--timeout"]) assert.ok(help.stdout.join("\n").includes(option), `--help lacks ${option}`);
  // Redis points nowhere: had the emitter gone on, it would have failed to connect, with exit 1.
  const env = { REDIS_URL: `redis://127.0.0.1:${await freePort()}` };
  const cases: [string[], RegExp, Record<string, string>?][] = [
    [["--list", "--ack"], /--ack goes with an emit, not with --list/],
    [["--join", "vip", "--ack"], /--ack goes with an emit, not with --join/],
    [["--list", "--online", "alice"], /--list and --online do not go together/],
    [["--online", "alice", "--room", "vip"], /--online NAME asks about one user/],
    [["--online", "alice", "--user", "bob"], /--online NAME asks about one user/],
    [["--online", ""], /--online "": a user name has 1 to/],
    [["--online"], /argument missing/],
    [["--timeout", "100"], /--timeout goes with --list, --online or --ack/],
    [["--list", "--timeout", "soon"], /--timeout takes a whole number of milliseconds/],
    [["--list", "--timeout", "0"], /--timeout takes a whole number of milliseconds/],
    [["--list", "--message", "hi"], /--event and --message go with an emit, not with --list/],
  ];
  const results = await Promise.all(cases.map(([args, , extra]) => runToEnd("emitter.ts", args, { ...env, ...extra })));
  results.forEach((result, i) => {
    const [args, line] = cases[i]!;
    assert.equal(result.code, 2, `emitter.ts ${args.join(" ")}: exit ${result.code}; ${result.stderr.join("\n")}`);
    assert.equal(result.stderr.length, 1, `emitter.ts ${args.join(" ")} printed ${JSON.stringify(result.stderr)}`);
    assert.match(result.stderr[0]!, line);
  });
});

for (const adapter of ADAPTERS) {
  describe(`ADAPTER=${adapter}: emitter.ts asks the servers`, () => {
    let cluster: Cluster;
    let alice1: UserSocket, alice2: UserSocket, bob: UserSocket, carol: UserSocket;

    before(async () => {
      cluster = await startCluster({ adapter });
      // least-connection alternates the workers: alice lands on both.
      const alices: UserSocket[] = [];
      for (let i = 0; i < 6 && new Set(alices.map((a) => a.worker)).size < 2; i++) alices.push(await connectAs(cluster, "alice"));
      alice1 = alices[0]!;
      alice2 = alices.find((a) => a.worker !== alice1.worker)!;
      assert.ok(alice2, "alice's sockets all landed on one worker");
      for (const extra of alices.filter((a) => a !== alice1 && a !== alice2)) extra.socket.disconnect();
      bob = await connectAs(cluster, "bob");
      carol = await connectAs(cluster, "carol", { acks: false });
      assert.equal((await runToEnd("emitter.ts", ["--user", "bob", "--join", "vip"], cluster.env)).code, 0);
    });
    after(async () => {
      for (const s of [alice1, alice2, bob, carol]) s?.socket.disconnect();
      await stopAll();
      await cluster?.stop();
    });

    test("--list: every socket on both workers with its user and rooms; --room vip: bob's only", async () => {
      const all = await runToEnd("emitter.ts", ["--list"], cluster.env, "node", 30_000);
      assert.equal(all.code, 0, all.stderr.join("\n"));
      assert.equal(all.stdout.at(-1), "4 sockets, 2 of 2 servers answered");
      const sockets = listed(all.stdout);
      assert.deepEqual(Object.keys(sockets).sort(), [alice1.id, alice2.id, bob.id, carol.id].sort());
      assert.equal(sockets[alice1.id], "user=alice rooms=user:alice");
      assert.equal(sockets[alice2.id], "user=alice rooms=user:alice");
      assert.match(sockets[bob.id]!, /^user=bob rooms=(user:bob,vip|vip,user:bob)$/);
      assert.notEqual(alice1.worker, alice2.worker);

      const vip = await runToEnd("emitter.ts", ["--list", "--room", "vip"], cluster.env, "node", 30_000);
      assert.equal(vip.code, 0, vip.stderr.join("\n"));
      assert.deepEqual(Object.keys(listed(vip.stdout)), [bob.id]);
      assert.equal(vip.stdout.at(-1), "1 socket, 2 of 2 servers answered");

      const exceptAlice = await runToEnd("emitter.ts", ["--list", "--except", "user:alice"], cluster.env, "node", 30_000);
      assert.deepEqual(Object.keys(listed(exceptAlice.stdout)).sort(), [bob.id, carol.id].sort());
    });

    test("--online: alice has 2 sockets (exit 0), dave is offline (exit 3)", async () => {
      const alice = await runToEnd("emitter.ts", ["--online", "alice"], cluster.env, "node", 30_000);
      assert.deepEqual([alice.code, alice.stdout], [0, ["alice: 2 sockets"]]);
      const dave = await runToEnd("emitter.ts", ["--online", "dave"], cluster.env, "node", 30_000);
      assert.deepEqual([dave.code, dave.stdout], [EXIT_OFFLINE, ["dave: offline"]]);
    });

    test("--ack: 3 of 4 when carol never acknowledges (exit 1); --user alice: 2 of 2 (exit 0); every client got it once", async () => {
      const marks = [alice1, alice2, bob, carol].map((s) => s.received.length);
      const everyone = await runToEnd("emitter.ts", ["--ack", "--timeout", "3000", "--message", "did you get it?"], cluster.env, "node", 30_000);
      assert.deepEqual([everyone.code, everyone.stdout], [1, ["acknowledged by 3 of 4 clients, 2 of 2 servers answered"]]);
      const alices = await runToEnd("emitter.ts", ["--ack", "--user", "alice", "--message", "alice only"], cluster.env, "node", 30_000);
      assert.deepEqual([alices.code, alices.stdout], [0, ["acknowledged by 2 of 2 clients, 2 of 2 servers answered"]]);
      const got = [alice1, alice2, bob, carol].map((s, i) => s.received.slice(marks[i]));
      assert.deepEqual(got, [["did you get it?", "alice only"], ["did you get it?", "alice only"], ["did you get it?"], ["did you get it?"]]);
    });

    test("a worker frozen with SIGSTOP: --list answers within its timeout, partial, exit 1; garbage on the answer channel costs nothing", async () => {
      const frozen = Number(cluster.workerPids().find((pid) => pid !== undefined));
      process.kill(frozen, "SIGSTOP");
      try {
        const partial = await runToEnd("emitter.ts", ["--list", "--timeout", "2000"], cluster.env, "node", 30_000);
        assert.equal(partial.code, 1, partial.stderr.join("\n"));
        // Only the sockets of the worker that runs: all of one worker's, none of the other's.
        const running = Object.keys(listed(partial.stdout));
        const sockets = [alice1, alice2, bob, carol];
        const runningWorker = sockets.find((s) => s.id === running[0])?.worker;
        const expected = sockets.filter((s) => s.worker === runningWorker).map((s) => s.id);
        assert.deepEqual(running.sort(), expected.sort());
        assert.equal(partial.stdout.at(-1), `${expected.length} socket${expected.length === 1 ? "" : "s"}, 1 of 2 servers answered`);
        // Node's start-up is in `ms` too: the wait itself is the 2 s asked for, the rest is slack.
        assert.ok(partial.ms < 2000 + 15_000, `took ${partial.ms} ms`);
        const offline = await runToEnd("emitter.ts", ["--online", "dave", "--timeout", "1000"], cluster.env, "node", 30_000);
        assert.deepEqual([offline.code, offline.stdout], [1, ["dave: not seen, but 1 of 2 servers answered"]]);

        // The frozen worker answers once it runs again; before that, garbage arrives first.
        const waiting = run("emitter.ts", ["--list", "--timeout", "30000"], cluster.env);
        const channel = await answerChannel(cluster.redis.url, adapter);
        await publishGarbage(cluster.redis.url, adapter, channel);
        await sleep(300);
        process.kill(frozen, "SIGCONT");
        const { code } = await waiting.exited;
        assert.equal(code, 0, waiting.stderr.join("\n"));
        assert.equal(waiting.stdout.at(-1), "4 sockets, 2 of 2 servers answered");
        assert.ok(!waiting.stdout.some((line) => line.includes("FORGED")));
      } finally {
        try {
          process.kill(frozen, "SIGCONT");
        } catch {
          // gone
        }
      }
    });
  });
}

describe("what crosses Redis: a --list answer carries no cookie, no Authorization header, no token", () => {
  let cluster: Cluster;
  after(async () => {
    await stopAll();
    await cluster?.stop();
  });

  test("MONITOR during --list shows the socket and its user, not its secrets", async () => {
    cluster = await startCluster({ adapter: "classic" });
    const client = await connectAs(cluster, "erin", {
      headers: { cookie: "session=cookie-secret-4711", authorization: "Bearer header-secret-4712" },
      token: "token-secret-4713",
    });
    const monitor = await monitorRedis(cluster.redis.url);
    try {
      await monitor.next();
      const list = await runToEnd("emitter.ts", ["--list"], cluster.env, "node", 30_000);
      assert.equal(list.code, 0, list.stderr.join("\n"));
      assert.deepEqual(Object.keys(listed(list.stdout)), [client.id]);
      const seen = JSON.stringify(await monitor.next());
      assert.ok(seen.includes(client.id), "the answer crossed Redis");
      assert.ok(seen.includes("erin"));
      for (const secret of ["cookie-secret-4711", "header-secret-4712", "token-secret-4713"]) assert.ok(!seen.includes(secret), `${secret} crossed Redis`);
    } finally {
      client.socket.disconnect();
      await monitor.close();
    }
  });
});

for (const runtime of ["bun", "deno"] as Runtime[]) {
  describe(`${runtime} runs --list and --ack`, () => {
    let cluster: Cluster;
    after(async () => {
      await stopAll();
      await cluster?.stop();
    });

    test(`${runtime} emitter.ts --list, --ack, --online`, async () => {
      cluster = await startCluster({ adapter: "streams" });
      const frank = await connectAs(cluster, "frank");
      try {
        const list = await runToEnd("emitter.ts", ["--list"], cluster.env, runtime, 60_000);
        assert.equal(list.code, 0, list.stderr.join("\n"));
        assert.deepEqual(list.stdout, [`${frank.id}  user=frank  rooms=user:frank`, "1 socket, 2 of 2 servers answered"]);
        const ack = await runToEnd("emitter.ts", ["--ack", "--message", `from ${runtime}`], cluster.env, runtime, 60_000);
        assert.deepEqual([ack.code, ack.stdout], [0, ["acknowledged by 1 of 1 client, 2 of 2 servers answered"]]);
        assert.ok(frank.received.includes(`from ${runtime}`));
        const offline = await runToEnd("emitter.ts", ["--online", "nobody"], cluster.env, runtime, 60_000);
        assert.equal(offline.code, EXIT_OFFLINE);
      } finally {
        frank.socket.disconnect();
      }
    });
  });
}

// Outside CI a missing browser skips with how to get it; under CI=true the test runs and fails.
const noBrowser = missingBrowser();
describe("client.ts and the chat page acknowledge what they show", { skip: noBrowser !== null && process.env.CI !== "true" ? noBrowser : false }, () => {
  let cluster: Cluster;
  let browser: Browser | undefined;
  after(async () => {
    await browser?.close();
    await stopAll();
    await cluster?.stop();
  });

  test("--ack to a page in Chromium and a client.ts: 2 of 2, for a chat message and for another event", async () => {
    if (noBrowser) throw new Error(`CI=true: ${noBrowser}`);
    cluster = await startCluster({ adapter: "classic" });
    const terminal = run("client.ts", ["gus"], cluster.env);
    await terminal.waitFor(/^connected, id: \S+$/, 20_000);
    browser = await launchBrowser();
    const page = await browser.newPage();
    await page.goto(cluster.url);
    await page.waitForFunction(() => document.getElementById("status")?.dataset.state === "connected", undefined, { polling: 50, timeout: 20_000 });

    const chat = await runToEnd("emitter.ts", ["--ack", "--message", "seen?"], cluster.env, "node", 30_000);
    assert.deepEqual([chat.code, chat.stdout], [0, ["acknowledged by 2 of 2 clients, 2 of 2 servers answered"]]);
    const news = await runToEnd("emitter.ts", ["--ack", "--event", "news", "--message", "read it"], cluster.env, "node", 30_000);
    assert.deepEqual([news.code, news.stdout], [0, ["acknowledged by 2 of 2 clients, 2 of 2 servers answered"]]);
    // What was acknowledged was shown: the page's lines, client.ts's output.
    const shown = await page.$$eval("#messages li", (items) => items.map((item) => item.textContent ?? ""));
    assert.ok(shown.includes("seen?") && shown.includes("news: read it"), JSON.stringify(shown));
    await terminal.waitFor(/^seen\?$/);
    await terminal.waitFor(/^news: read it$/);
  });
});
