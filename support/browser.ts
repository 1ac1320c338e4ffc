/**
 * support/browser.ts: a real Chromium for the browser test and the screenshot script, driven by
 * playwright-core (which ships no browser: this is Debian's `chromium`, or what CHROME points at).
 */
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

/** The browser to drive: CHROME, else Debian's chromium. */
export const CHROME = process.env.CHROME ?? "/usr/bin/chromium";

/**
 * Headless, no sandbox (the tests run as root), and none of the browser's own traffic (updates,
 * sync, QUIC probes, field trials): the only connections are those the pages make to loopback.
 * Each launch gets a fresh, empty user data directory that playwright-core removes on close().
 */
export const CHROME_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why no browser can be launched here, with how to get one; null when CHROME exists. */
export function missingBrowser(): string | null {
  if (existsSync(CHROME)) return null;
  return `no browser at ${CHROME}: install Debian's chromium (apt-get install -y chromium) or set CHROME to a Chromium or Chrome binary`;
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROME, headless: true, args: CHROME_FLAGS, timeout: 30_000 });
}
