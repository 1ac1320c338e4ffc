/**
 * docs/ is the thing under test here: every ```trace block in docs/ must match a live capture
 * of the same step (support/capture.ts), and the example of docs/learn/any-language.md must deliver.
 * The ```sent blocks of that page (what publishers/publish.py sends on each adapter) must be, byte
 * for byte, what a live conformance run sends (support/conformance.ts), but for the socket id.
 *
 * What is compared, per step: each connection's commands in order (connections sorted, since the
 * two workers interleave at random), with each message decoded. Socket ids, worker and emitter
 * uids, request ids, ports and timestamps (a fetchSockets answer's handshake has some) are
 * replaced by placeholders; `#` comment lines are not compared.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import { ADAPTERS } from "../lib/config.ts";
import {
  argumentBytes,
  byteTable,
  connectionNames,
  decodedMessage,
  parseMonitorLine,
  renderByteTable,
  renderStep,
  POST_STEP_TITLES,
  STEP_TITLES,
  type Trace,
  captureTrace,
  renderSent,
} from "../support/capture.ts";
import { PUBLISHER_ARGUMENTS, type Report, renderReport, startRig } from "../support/conformance.ts";
import { type Cluster, startCluster, workerOf } from "../support/cluster.ts";
import { ROOT, run, type Script, sleep, stopAll } from "../support/scripts.ts";

const DOCS = `${ROOT}docs/`;
const QUIET_MS = 1000;

interface Block {
  file: string;
  title: string;
  commands: { connection: string; args: string; shownMessage?: string }[];
}

describe("the traces in docs/ match a live capture", () => {
  let trace: Trace;
  let live: Map<string, Block>;
  // Every chapter, learning path and reference; docs/captures/ holds the captures themselves.
  const documented = readdirSync(DOCS, { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".md") && !file.startsWith("captures"))
    .flatMap((file) => traceBlocks(file, readFileSync(DOCS + file, "utf8")));

  before(async () => {
    trace = await captureTrace();
    const names = connectionNames(trace);
    live = new Map(trace.steps.map((step) => [step.title, traceBlocks("live", renderStep(step, names))[0]!]));
  });

  test("docs/learn/traces.md shows every step of the post's scenario, and docs/learn/ every other step", () => {
    const shown = documented.filter((block) => block.file === "learn/traces.md").map((block) => block.title);
    assert.deepEqual([...new Set(shown)].sort(), [...POST_STEP_TITLES].sort());
    const learned = new Set(documented.filter((block) => block.file.startsWith("learn/")).map((block) => block.title));
    assert.deepEqual(STEP_TITLES.filter((title) => !learned.has(title)), []);
  });

  test("each trace block names a step of the scenario", () => {
    for (const block of documented) assert.ok((STEP_TITLES as readonly string[]).includes(block.title), `${block.file}: unknown step "${block.title}"`);
  });

  test("each decoded message in docs/ is the decoding of the line above it", () => {
    for (const block of documented) {
      for (const command of block.commands.filter((command) => command.shownMessage !== undefined)) {
        assert.equal(command.shownMessage, JSON.stringify(decodedMessage(command.args)?.value), `${block.file}, ${block.title}`);
      }
    }
  });

  test("channels, commands and message shapes in docs/ are what Redis sees today", () => {
    for (const file of new Set(documented.map((block) => block.file))) {
      const blocks = documented.filter((block) => block.file === file);
      const expected = blocks.map((block) => live.get(block.title)!);
      assert.deepEqual(normalised(blocks), normalised(expected), `docs/${file} no longer matches a live capture`);
    }
  });

  test("the byte table in docs/learn/traces.md is derived from the payload shown above it", () => {
    const text = readFileSync(`${DOCS}learn/traces.md`, "utf8");
    const chat = documented.find((block) => block.file === "learn/traces.md" && block.title === "A chats")!;
    const payload = argumentBytes(chat.commands.find((command) => decodedMessage(command.args)?.format === "msgpack")!.args)[2]!;
    assert.ok(text.includes(renderByteTable(byteTable(payload))), "docs/learn/traces.md lacks the byte table of its own chat message");
  });
});

describe("docs/learn/any-language.md: publishing with redis-cli and Lua, no Socket.IO library", () => {
  let cluster: Cluster;
  let server: Script;
  let a: Script;
  let b: Script;
  /** Everyone but A: B, and two more so that one of them shares A's worker. */
  let others: Script[];
  let idA: string;
  let env: Record<string, string>;
  // The definition of publish(), then the blocks that call it (the page has others: Python, PHP, the check).
  const [definition, ...rest] = shellBlocks(readFileSync(`${DOCS}learn/any-language.md`, "utf8"));
  const uses = rest.filter((block) => block.startsWith("publish "));

  before(async () => {
    cluster = await startCluster();
    ({ server, env } = cluster);
    a = run("client.ts", ["A"], env);
    idA = (await a.waitFor(/^connected, id: (\S+)$/))[1]!;
    b = run("client.ts", ["B"], env);
    others = [b, run("client.ts", ["C"], env), run("client.ts", ["D"], env)];
    const ids = await Promise.all(others.map(async (client) => (await client.waitFor(/^connected, id: (\S+)$/))[1]!));
    const workers = await Promise.all([idA, ...ids].map((id) => workerOf(server, id, 10_000)));
    assert.ok(workers.slice(1).includes(workers[0]!), `no other client shares A's worker: ${workers}`);
  });

  after(async () => {
    await stopAll();
    await cluster?.stop();
  });

  /** Runs the doc's definition block, then one of its usage blocks, as a reader would paste them. */
  const paste = (use: string) => {
    const result = spawnSync("bash", ["-euc", `${definition}\n${use}`], { env: { ...process.env, ...env, SOCKET_ID: idA }, encoding: "utf8", timeout: 15_000 });
    assert.equal(result.status, 0, `the example failed: ${result.stderr}`);
    return result.stdout.trim();
  };

  test("the page has a definition and two uses", () => {
    assert.match(definition ?? "", /EVAL/);
    assert.equal(uses.length, 2);
  });

  test("without a socket id, every client gets the message", async () => {
    assert.equal(paste(uses[0]!), "2", "PUBLISH should reach both workers' subscriptions");
    for (const client of [a, ...others]) await client.waitFor(/^message from redis-cli$/);
  });

  test("with A's id, A gets it and no one else, on either worker; MONITOR shows what the page shows", async () => {
    const from = others.map((client) => client.stdout.length);
    const monitor = createClient({ url: cluster.redis.url });
    const seen: string[] = [];
    await monitor.connect();
    await monitor.monitor((line) => seen.push(line));
    paste(uses[1]!);
    await a.waitFor(/^Hi A, from redis-cli$/);
    await sleep(QUIET_MS);
    await monitor.close();
    assert.deepEqual(others.map((client, i) => client.stdout.slice(from[i])), [[], [], []]);
    assert.ok(!server.stdout.some((line) => line.includes("redis-cli")), "the server's chat message handler ran");

    // The page's MONITOR block: the PUBLISH the script made, with the page's socket id. Lua tables
    // have no key order, so the messages are compared decoded (deepEqual ignores key order).
    const page = readFileSync(`${DOCS}learn/any-language.md`, "utf8");
    const shown = parseMonitorLine(/^.*\[0 lua\] "PUBLISH".*$/m.exec(page)![0]);
    const live = seen.map(parseMonitorLine).find((command) => command.connection === "lua" && command.args.startsWith('"PUBLISH"'));
    assert.ok(live, `no PUBLISH from lua in MONITOR: ${seen.join("\n")}`);
    const pageId = /"socket\.io#\/#([A-Za-z0-9_-]{20})#"/.exec(shown.args)![1]!;
    const [, channel] = argumentBytes(live.args);
    assert.equal(channel!.toString(), `socket.io#/#${idA}#`);
    assert.deepEqual(decodedMessage(live.args), JSON.parse(JSON.stringify(decodedMessage(shown.args)).replaceAll(pageId, idA)));
  });
});

describe("docs/learn/any-language.md: the bytes publishers/publish.py sends on each adapter, as a live run sends them", () => {
  const page = readFileSync(`${DOCS}learn/any-language.md`, "utf8");
  const shown = [...page.matchAll(/^```sent\n([\s\S]*?)^```$/gm)].map((match) => `\`\`\`sent\n${match[1]}\`\`\``);
  const noPython = spawnSync("/usr/bin/python3", ["-c", "import redis, msgpack"]).status === 0 ? null : "not installed: apt-get install -y python3-redis python3-msgpack";
  const skip = noPython !== null && process.env.CI !== "true" ? noPython : false;

  for (const adapter of ADAPTERS) {
    test(`ADAPTER=${adapter}: each case the page shows is what npm run conformance -- --sent prints today`, { skip }, async () => {
      if (noPython) throw new Error(`CI=true: ${noPython}`);
      const block = shown.find((text) => text.startsWith(`\`\`\`sent\n# ADAPTER=${adapter}:`));
      assert.ok(block, `no \`\`\`sent block for ${adapter}`);
      const rig = await startRig(adapter);
      let report: Report;
      try {
        report = await rig.check({ command: ["/usr/bin/python3", "publishers/publish.py", ...PUBLISHER_ARGUMENTS] });
      } finally {
        await rig.stop();
      }
      assert.equal(report.passed, true, renderReport(report));
      // The run's socket id in place of the page's: both are 20 characters, so MessagePack lengths hold.
      const liveId = report.results.find((result) => result.name === "socket")!.values.socket!;
      const pageId = /^# \$ .* --room=([\w-]{20}) /m.exec(block)?.[1];
      const live = sentCases(pageId ? renderSent(report).replaceAll(liveId, pageId) : renderSent(report));
      const cases = sentCases(block);
      assert.ok(cases.size > 0);
      assert.equal(block.split("\n")[1], renderSent(report).split("\n")[1]);
      for (const [title, text] of cases) assert.equal(text, live.get(title), `docs/learn/any-language.md, ${adapter}, ${title}`);
    });
  }
});

/** A ```sent block cut into its cases: "# room: room lobby" and the lines that follow it. */
function sentCases(block: string): Map<string, string> {
  const cases = new Map<string, string>();
  let title = "";
  for (const line of block.split("\n").slice(2, -1)) {
    if (/^# \w+: /.test(line) && !line.startsWith("# $")) cases.set((title = line), "");
    else cases.set(title, `${cases.get(title)}${line}\n`);
  }
  return cases;
}

/** The ```trace blocks of a Markdown text. */
function traceBlocks(file: string, markdown: string): Block[] {
  return [...markdown.matchAll(/^```trace\n([\s\S]*?)^```$/gm)].map((match) => {
    const [titleLine = "", ...lines] = match[1]!.trimEnd().split("\n");
    const title = titleLine.replace(/^# /, "");
    const commands: Block["commands"] = [];
    for (const line of lines) {
      const shown = /^\s+msgpack: (.*)$/.exec(line);
      if (shown) commands.at(-1)!.shownMessage = shown[1]!;
      else if (!line.startsWith("#")) {
        const [, connection, args] = /^(\S+)\s+(.*)$/.exec(line) ?? [];
        assert.ok(connection && args, `${file}, ${title}: cannot read "${line}"`);
        commands.push({ connection, args });
      }
    }
    return { file, title, commands };
  });
}

/** The ```sh blocks of a Markdown text. */
function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
}

/**
 * Blocks in a form that a live run and a doc share: per step, one entry per connection (its role
 * and its commands, messages decoded), sorted; ids replaced in order of appearance.
 */
function normalised(blocks: Block[]): string[][] {
  const uids = new Set<string>();
  const steps = blocks.map((block) => {
    const byConnection = new Map<string, string[]>();
    for (const { connection, args } of block.commands) {
      if (/^"CLIENT" "SETINFO"/i.test(args)) continue; // sent by node-redis, shown only by Redis >= 7.2
      const parts = argumentBytes(args).map((arg) => JSON.stringify(arg.toString("latin1")));
      const message = decodedMessage(args);
      if (message) parts[2] = `${message.format} ${JSON.stringify(message.value)}`;
      const value = message?.value as { uid?: string; requestId?: unknown; data?: { requestId?: unknown } } | unknown[] | undefined;
      const uid = Array.isArray(value) ? value[0] : value?.uid;
      if (typeof uid === "string" && uid !== "emitter") uids.add(uid);
      // A question's id, chosen at random by the asker (emitter.ts --list, --ack), comes back in each answer.
      const requestId = Array.isArray(value) ? undefined : (value?.requestId ?? value?.data?.requestId);
      if (typeof requestId === "string") uids.add(requestId);
      // A worker's own response channel, in any namespace: socket.io-response#<namespace>#<uid>#
      for (const [, id] of args.matchAll(/"socket\.io-response#[^#"]*#([^#"]+)#"/g)) uids.add(id!);
      const role = connection.replace(/-\d+$/, "");
      byConnection.set(connection, [...(byConnection.get(connection) ?? [role]), parts.join(" ")]);
    }
    return [...byConnection.values()].map((lines) => lines.join("\n  "));
  });
  const socketIds = new Map<string, string>();
  return steps.map((entries) =>
    entries
      .map((entry) => {
        let text = entry.replace(/(?<![\w-])[\w-]{20}(?![\w-])/g, (id) => {
          if (!socketIds.has(id)) socketIds.set(id, `<socket ${socketIds.size + 1}>`);
          return socketIds.get(id)!;
        });
        for (const uid of uids) text = text.replace(new RegExp(`(?<![\\w-])${uid.replace(/[-]/g, "\\-")}(?![\\w-])`, "g"), "<uid>");
        // A socket's handshake in a fetchSockets answer: when it came, on which port, the polling cache-buster.
        return text
          .replace(/"time":"[^"]*"/g, '"time":"<time>"')
          .replace(/"issued":\d+/g, '"issued":<time>')
          .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>")
          .replace(/([?&]t=|"t":")[\w-]+/g, "$1<t>");
      })
      .sort(),
  );
}
