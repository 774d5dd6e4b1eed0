import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { tempDir } from "./helpers/tmp.js";

// Runs the compiled CLI: tests run from dist/test, the CLI is dist/src/cli/main.js.
const cli = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const dir = tempDir();

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("every command has --help", () => {
  for (const cmd of [[], ["import"], ["import", "yt8m"], ["import", "jsonl"], ["export-jsonl"], ["export"], ["stats"], ["demo-data"], ["train"], ["eval"], ["bench"], ["bench", "import"]]) {
    const r = run(...cmd, "--help");
    assert.equal(r.code, 0, `${cmd.join(" ")} --help: ${r.err}`);
    assert.match(r.out, /Usage: vidrecall/);
  }
});

test("failures exit non-zero with a one-line error", () => {
  const missing = run("stats", "--db", join(dir, "nope.sqlite"));
  assert.equal(missing.code, 1);
  assert.equal(missing.err.trim().split("\n").length, 1);
  assert.match(missing.err, /^vidrecall: error: no database at .*nope\.sqlite/);

  const bad = join(dir, "bad.jsonl");
  writeFileSync(bad, '{"id": "a", "rgb": [[1, 2]]}\n{"id": "b", "rgb": [[1, 2, 3]]}\n');
  const r = run("import", "jsonl", bad, "--db", join(dir, "x.sqlite"));
  assert.equal(r.code, 1);
  assert.match(r.err, /vidrecall: error: bad\.jsonl line 2: rgb: dimension 3, expected 2/);
});

test("demo-data, stats --json, export and re-import work end to end", () => {
  const db = join(dir, "demo.sqlite");
  assert.equal(run("demo-data", "--videos", "40", "--seed", "2", "--frames", "4", "--rgb-dim", "8", "--audio-dim", "4", "--db", db).code, 0);
  const stats = JSON.parse(run("stats", "--db", db, "--json").out);
  assert.deepEqual(Object.keys(stats), ["videos", "splits", "categories", "tags", "top_tags"]);
  assert.equal(stats.videos, 40);
  const out = join(dir, "demo.jsonl");
  assert.equal(run("export-jsonl", "--db", db, "--out", out).code, 0);
  const db2 = join(dir, "again.sqlite");
  const imported = run("import", "jsonl", out, "--db", db2);
  assert.equal(imported.code, 0, imported.err);
  assert.match(imported.out, /imported 40 videos/);
  assert.equal(JSON.parse(run("stats", "--db", db2, "--json").out).videos, 40);
});
