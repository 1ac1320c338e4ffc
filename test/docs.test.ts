/**
 * The docs as a reader meets them: every relative link in a Markdown file leads to a file that
 * exists (chapters move between docs/learn/ and docs/reference/), and to a heading that exists when
 * it names one; every repository path written as plain text (`lib/worker/page.ts`,
 * docs/reference/faults.md#a-sick-redis), in the Markdown and in the comments of the .ts files
 * (code headers point to the doc section that holds their figures), names a file that exists; and
 * README.ja.md, the Japanese front door, gives exactly the commands and captures of README.md.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { test } from "node:test";
import { ROOT } from "../support/scripts.ts";

const markdownFiles = ["README.md", "README.ja.md", ...readdirSync(join(ROOT, "docs"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/**
 * The repository's top-level folders, written out rather than read from the disk, so that a path
 * into a folder that is gone (or not there yet) fails instead of going unnoticed. A new top-level
 * folder must be added here: the first test says so.
 */
const TOP_LEVEL_FOLDERS = ["bench", "docs", "hosts", "lib", "public", "publishers", "support", "test", "tools"];
/** Files at the root that prose names without a folder. */
const ROOT_FILES = ["index.ts", "client.ts", "emitter.ts", "package.json", "package-lock.json", "tsconfig.json", "README.md", "README.ja.md"];

/**
 * A repository path in running text: a top-level folder and at least one more segment, or a root
 * file, not preceded by anything that would make it part of a longer path or a URL (`../lib/x.ts`
 * is a relative link, checked as such; `github.com/.../lib/x` is not ours), optionally with a
 * #fragment. `lib/*.ts` and `test/**` are globs, not paths: they do not match.
 */
const PATH = new RegExp(
  String.raw`(?<![\w./@~$-])((?:${TOP_LEVEL_FOLDERS.join("|")})/[\w.-]*(?:/[\w.-]+)*[\w]|(?:${ROOT_FILES.map((f) => f.replace(/\./g, "\\.")).join("|")})(?![\w-]))(#[\w-]+)?`,
  "g",
);

test("every top-level folder of the repository is one the path check knows", () => {
  const folders = readdirSync(ROOT, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith(".") && entry.name !== "node_modules")
    .map((entry) => entry.name);
  assert.deepEqual(folders.filter((name) => !TOP_LEVEL_FOLDERS.includes(name)), [], "add these to TOP_LEVEL_FOLDERS in test/docs.test.ts");
});

test("every relative link in the docs resolves, to a heading that exists when it names one", () => {
  const broken: string[] = [];
  for (const file of markdownFiles) {
    forEachLine(withoutFences(readFileSync(join(ROOT, file), "utf8")), (line, n) => {
      for (const [, target] of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [path, fragment] = target!.split("#") as [string, string | undefined];
        const resolved = path === "" ? join(ROOT, file) : join(ROOT, dirname(file), path);
        const problem = missing(resolved, fragment);
        if (problem) broken.push(`${file}:${n}: ${target} (${problem})`);
      }
    });
  }
  assert.ok(broken.length === 0, `${broken.length} links lead nowhere (file:line: target):\n${broken.join("\n")}`);
});

test("every repository path named in the Markdown and in the .ts comments exists", () => {
  const stale: string[] = [];
  const check = (file: string, n: number, text: string) => {
    for (const [, path, fragment] of text.matchAll(PATH)) {
      const problem = missing(join(ROOT, path!), fragment?.slice(1));
      if (problem) stale.push(`${file}:${n}: ${path}${fragment ?? ""} (${problem})`);
    }
  };
  for (const file of markdownFiles) forEachLine(readFileSync(join(ROOT, file), "utf8"), (line, n) => check(file, n, line));
  for (const file of typeScriptFiles()) {
    forEachLine(readFileSync(join(ROOT, file), "utf8"), (line, n) => {
      const comment = commentOf(line);
      if (comment) check(file, n, comment);
    });
  }
  assert.ok(stale.length === 0, `${stale.length} paths name nothing in the repository (file:line: path):\n${stale.join("\n")}`);
});

test("README.ja.md shows the same command and output blocks as README.md", () => {
  const blocks = (file: string) => [...readFileSync(join(ROOT, file), "utf8").matchAll(/```[^\n]*\n[\s\S]*?```/g)].map(([block]) => block);
  const english = blocks("README.md");
  assert.ok(english.some((block) => block.includes("npm test")), "README.md has no npm test block");
  assert.deepEqual(blocks("README.ja.md"), english);
});

/** Why `path` (and its #fragment) is not there, or null when it is. */
function missing(path: string, fragment: string | undefined): string | null {
  if (!existsSync(path)) return "no such file";
  if (fragment === undefined || !path.endsWith(".md") || statSync(path).isDirectory()) return null;
  return headingAnchors(readFileSync(path, "utf8")).has(fragment) ? null : `no heading #${fragment} in ${relative(ROOT, path)}`;
}

/** The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces as "-", repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const [, heading] of withoutFences(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const slug = heading!.replace(/`/g, "").toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, "").replace(/\s/g, "-");
    let anchor = slug;
    for (let i = 1; anchors.has(anchor); i++) anchor = `${slug}-${i}`;
    anchors.add(anchor);
  }
  return anchors;
}

/** The text with fenced blocks blanked out, line for line. */
function withoutFences(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```$/gm, (block) => block.replace(/[^\n]/g, ""));
}

/** Calls `visit` with each line of `text` and its number, from 1. */
function forEachLine(text: string, visit: (line: string, n: number) => void): void {
  text.split("\n").forEach((line, i) => visit(line, i + 1));
}

/** The comment part of a line of TypeScript: a block-comment line (` * ...`, `/** ...`), or what follows ` // `. */
function commentOf(line: string): string | null {
  const trimmed = line.trimStart();
  if (/^(\/\*|\*|\/\/)/.test(trimmed)) return trimmed;
  const trailing = /\s\/\/\s(.*)$/.exec(line);
  return trailing ? trailing[1]! : null;
}

/** The repository's .ts files: the root's and those of its top-level folders. */
function typeScriptFiles(): string[] {
  const inFolders = TOP_LEVEL_FOLDERS.filter((folder) => existsSync(join(ROOT, folder))).flatMap((folder) =>
    readdirSync(join(ROOT, folder), { recursive: true, encoding: "utf8" }).map((file) => `${folder}/${file}`),
  );
  return [...readdirSync(ROOT), ...inFolders].filter((file) => file.endsWith(".ts"));
}
