/**
 * TRANSPORTS=websocket on the server (lib/config.ts, index.ts): the real clustered index.ts refuses
 * an Engine.IO long-polling handshake with engine.io's own answer, client.ts started with the same
 * variable connects and chats, client.ts left on long-polling does not get in, and the chat page in
 * a real Chromium (support/browser.ts) learns the transport from the page it was served and chats
 * over WebSocket alone. A bad value is one line and exit code 2.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { launchBrowser, missingBrowser } from "../support/browser.ts";
import { type Cluster, startCluster } from "../support/cluster.ts";
import { run, runToEnd, sleep, stopAll } from "../support/scripts.ts";

const inCI = process.env.CI === "true";
const noBrowser = missingBrowser();
const skipBrowser = noBrowser !== null && !inCI ? noBrowser : false;

test("TRANSPORTS that names no transport: one line, exit code 2", async () => {
  const { code, stderr } = await runToEnd("index.ts", [], { TRANSPORTS: "websocket,carrier-pigeon", PORT: "0", WORKERS: "1" });
  assert.equal(code, 2);
  assert.deepEqual(stderr, ['TRANSPORTS must be polling, websocket or both (comma-separated), got "websocket,carrier-pigeon"']);
});

describe("a server started with TRANSPORTS=websocket", () => {
  let cluster: Cluster;
  let browser: Browser | undefined;

  before(async () => {
    cluster = await startCluster({ workers: 2, env: { TRANSPORTS: "websocket" } });
  });

  after(async () => {
    await browser?.close();
    await stopAll();
    await cluster?.stop();
  });

  test("a long-polling handshake is refused with engine.io's answer; a WebSocket one is let in", async () => {
    const polling = await fetch(`${cluster.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(polling.status, 400);
    assert.deepEqual(await polling.json(), { code: 0, message: "Transport unknown" });
    // The same server still answers what is not Socket.IO's, and serves the page.
    assert.match(await (await fetch(cluster.url)).text(), /^worker: [12]$/);
    const page = await (await fetch(cluster.url, { headers: { accept: "text/html" } })).text();
    assert.match(page, /<meta name="transports" content="websocket">/);
  });

  test("client.ts with TRANSPORTS=websocket connects and chats; client.ts on long-polling is kept out", async () => {
    const ann = run("client.ts", ["Ann"], { ...cluster.env, TRANSPORTS: "websocket" });
    const bob = run("client.ts", ["Bob"], { ...cluster.env, TRANSPORTS: "websocket" });
    const polling = run("client.ts", ["Pol"], { ...cluster.env, TRANSPORTS: "polling" });
    await ann.waitFor(/^connected, id: \S+$/, 30_000);
    await bob.waitFor(/^connected, id: \S+$/, 30_000);
    ann.send("over websocket alone");
    await bob.waitFor(/^over websocket alone from Ann$/, 30_000);
    await sleep(2000);
    assert.ok(!polling.stdout.some((line) => line.startsWith("connected")), `the polling client got in:\n${polling.stdout.join("\n")}`);
    assert.ok(!polling.stdout.includes("over websocket alone from Ann"), "the polling client got a line");
    await polling.stop();
  });

  test("the chat page connects over WebSocket alone and chats", { skip: skipBrowser }, async () => {
    if (noBrowser) throw new Error(`CI=true: ${noBrowser}`);
    browser = await launchBrowser();
    const context = await browser.newContext();
    const errors: string[] = [];
    const open = async (name: string) => {
      const page = await context.newPage();
      page.on("pageerror", (err) => errors.push(`${name}: ${err.message}`));
      await page.goto(cluster.url);
      await page.fill("#name", name);
      await waitIn(page, () => document.getElementById("status")?.dataset.state === "connected");
      return page;
    };
    const cat = await open("Cat");
    const dan = await open("Dan");
    for (const page of [cat, dan]) assert.equal(await page.$eval("#transport", (element) => (element as HTMLElement).dataset.value), "websocket");
    await cat.fill("#text", "hello without polling");
    await cat.press("#text", "Enter");
    await waitIn(dan, () => [...document.querySelectorAll('#messages li[data-kind="received"]')].some((item) => item.textContent === "hello without polling from Cat"));
    // From inside the page, a socket that insists on long-polling is refused.
    const pollingOnly = await cat.evaluate(async () => {
      const { io } = window as unknown as { io: (options: object) => { on(event: string, listener: () => void): void; close(): void } };
      const socket = io({ transports: ["polling"], forceNew: true, reconnection: false, timeout: 5000 });
      const result = await new Promise<string>((resolve) => {
        socket.on("connect", () => resolve("connected"));
        socket.on("connect_error", () => resolve("refused"));
        setTimeout(() => resolve("no answer"), 8000);
      });
      socket.close();
      return result;
    });
    assert.equal(pollingOnly, "refused");
    assert.deepEqual(errors, []);
  });
});

async function waitIn(page: Page, condition: () => boolean, ms = 30_000) {
  await page.waitForFunction(condition, undefined, { timeout: ms });
}
