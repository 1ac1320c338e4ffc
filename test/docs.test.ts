/**
 * The docs as a reader meets them: every relative link in a Markdown file leads to a file that
 * exists (chapters move between docs/learn/ and docs/reference/), and README.ja.md, the Japanese
 * front door, gives exactly the commands and captures of README.md.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { ROOT } from "../support/scripts.ts";

const markdownFiles = ["README.md", "README.ja.md", ...readdirSync(join(ROOT, "docs"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

test("every relative link in the docs resolves", () => {
  const broken: string[] = [];
  for (const file of markdownFiles) {
    const text = readFileSync(join(ROOT, file), "utf8").replace(/```[\s\S]*?```/g, "");
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!) || target!.startsWith("#")) continue;
      const path = join(ROOT, dirname(file), target!.split("#")[0]!);
      if (!existsSync(path)) broken.push(`${file}: ${target}`);
    }
  }
  assert.deepEqual(broken, []);
});

test("README.ja.md shows the same command and output blocks as README.md", () => {
  const blocks = (file: string) => [...readFileSync(join(ROOT, file), "utf8").matchAll(/```[^\n]*\n[\s\S]*?```/g)].map(([block]) => block);
  const english = blocks("README.md");
  assert.ok(english.some((block) => block.includes("npm test")), "README.md has no npm test block");
  assert.deepEqual(blocks("README.ja.md"), english);
});
