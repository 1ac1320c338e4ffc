/**
 * tools/screenshot.ts: `npm run screenshot`. Makes docs/images/two-pages.png from a real run: the
 * clustered index.ts (2 workers) on a private Redis, two chat pages in Chromium (support/browser.ts)
 * beside a client.ts user and emitter.ts, all talking; then one picture of the two pages and the
 * two terminals, composed in the same browser.
 *
 *   npm run screenshot                     (port 3000 when free, as in README.md; PORT=... to choose)
 *   OUT=/tmp/shot.png npm run screenshot
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Page } from "playwright-core";
import { EXIT_USAGE } from "../lib/failures.ts";
import { launchBrowser, missingBrowser } from "../support/browser.ts";
import { type Cluster, startCluster } from "../support/cluster.ts";
import { ROOT, run, runToEnd, sleep, stopAll } from "../support/scripts.ts";

const OUT = process.env.OUT ?? join(ROOT, "docs", "images", "two-pages.png");
const missing = missingBrowser();
if (missing) {
  console.error(missing);
  process.exit(1);
}
if (process.env.PORT !== undefined && !/^\d+$/.test(process.env.PORT)) {
  console.error(`PORT must be a port number, got "${process.env.PORT}"`);
  process.exit(EXIT_USAGE);
}

const browser = await launchBrowser();
let cluster: Cluster | undefined;
try {
  cluster = await startCluster({ port: process.env.PORT ? Number(process.env.PORT) : (await isFree(3000)) ? 3000 : undefined });
  // localhost, as README.md writes it: the address shows in the picture.
  const url = `http://localhost:${cluster.port}`;
  const env = { ...cluster.env, SERVER_URL: url };

  const context = await browser.newContext({ viewport: { width: 520, height: 500 } });
  const openPage = async (name: string) => {
    const page = await context.newPage();
    await page.goto(url);
    await page.fill("#name", name);
    await page.waitForFunction(() => document.getElementById("transport")?.dataset.value === "polling websocket");
    return page;
  };
  const say = async (page: Page, text: string) => {
    await page.fill("#text", text);
    await page.press("#text", "Enter");
    await sleep(300);
  };
  // Pages one after the other, so that each gets its own worker.
  const ann = await openPage("Ann");
  const bob = await openPage("Bob");

  // The terminals: what was typed (after a prompt) and what the scripts printed, in order.
  const clientLines = [`$ npx tsx client.ts Carol`];
  const carol = run("client.ts", ["Carol"], env);
  await carol.waitFor(/^connected/);
  let seen = 0;
  const carolPrinted = async () => {
    await sleep(300);
    clientLines.push(...carol.stdout.slice(seen));
    seen = carol.stdout.length;
  };
  const carolTypes = async (line: string) => {
    await carolPrinted();
    clientLines.push(`> ${line}`);
    carol.send(line);
    await carolPrinted();
  };
  const emitterLines: string[] = [];
  const emit = async (...args: string[]) => {
    emitterLines.push(`$ npx tsx emitter.ts ${args.map((arg) => (/\s/.test(arg) ? `"${arg}"` : arg)).join(" ")}`);
    await runToEnd("emitter.ts", args, env);
    await carolPrinted();
  };

  await say(ann, "hello, I'm in a browser");
  await carolTypes("hi Ann, a terminal here");
  await say(bob, "/join lobby");
  await say(bob, "me too, in another window");
  await emit("--room", "lobby", "--message", "only the lobby sees this");
  await emit("--event", "news", "--message", "the emitter never connects");
  await say(ann, "<b>markup</b> stays text");
  await carolPrinted();

  const shot = async (page: Page) => (await page.screenshot()).toString("base64");
  const [annPng, bobPng] = [await shot(ann), await shot(bob)];

  const composer = await context.newPage();
  await composer.setViewportSize({ width: 1100, height: 900 });
  await composer.setContent(composition(url, annPng, bobPng, clientLines, emitterLines));
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, await composer.locator("main").screenshot());
  console.log(`wrote ${OUT}`);
} finally {
  await browser.close();
  await stopAll();
  await cluster?.stop();
}

function composition(url: string, annPng: string, bobPng: string, clientLines: string[], emitterLines: string[]): string {
  const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const window = (title: string, png: string) =>
    `<figure><div class="bar">${escape(title)}</div><img src="data:image/png;base64,${png}"></figure>`;
  const terminal = (title: string, lines: string[]) =>
    `<figure class="term"><div class="bar">${escape(title)}</div><pre>${lines.map(escape).join("\n")}</pre></figure>`;
  return `<!doctype html><style>
    body { margin: 0; background: #fff; font: 14px system-ui, sans-serif; }
    main { display: grid; grid-template-columns: 520px 520px; gap: 16px; padding: 16px; width: max-content; background: #e9ebef; }
    figure { margin: 0; border-radius: 8px; overflow: hidden; box-shadow: 0 1px 4px #0003; background: #fff; }
    .bar { background: #d5d8de; padding: 5px 10px; color: #333; font-size: 13px; }
    img { display: block; }
    .term pre { margin: 0; padding: 10px; background: #1e1f22; color: #e6e6e6; font: 13px/1.45 ui-monospace, monospace; min-height: 150px; white-space: pre-wrap; }
  </style><main>
    ${window(`${url}  (window 1)`, annPng)}
    ${window(`${url}  (window 2)`, bobPng)}
    ${terminal("terminal: client.ts", clientLines)}
    ${terminal("terminal: emitter.ts", emitterLines)}
  </main>`;
}

async function isFree(port: number): Promise<boolean> {
  const { createServer } = await import("node:net");
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, () => probe.close(() => resolve(true)));
  });
}
