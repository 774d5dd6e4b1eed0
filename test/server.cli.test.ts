/**
 * `vidrecall serve` as a user runs it: the embedded default's first start
 * (demo data → train demo-small → export → register → index) and a later
 * start that reuses everything; the start line with the address and an
 * example curl; SIGTERM shutting down cleanly; a clear error without a model.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { readCurrent } from "../indexer/versions.js";
import { bootstrap } from "../src/cli/bootstrap.js";
import { VideoStore } from "../src/data/store.js";
import { ModelRegistry } from "../src/registry/modelRegistry.js";
import { cliCommand } from "../src/service/cliRunner.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("vidrecall-serve-");
const paths = { db: join(dir, "vidrecall.sqlite"), modelDir: join(dir, "models", "demo-small"), indexDir: join(dir, "index") };

it("bootstrap makes what is missing once, and a later start reuses it", async () => {
  const lines: string[] = [];
  const first = await bootstrap({ ...paths, videos: 120, preset: "demo-small", log: (l) => lines.push(l) });
  assert.deepEqual(first.made, ["demo-data", "train", "export", "index"], lines.join("\n"));
  assert.ok(existsSync(join(paths.modelDir, "model.onnx")), "exported");
  assert.ok(readCurrent(paths.indexDir), "indexed");
  const store = VideoStore.open(paths.db, { readonly: true });
  const active = new ModelRegistry(store).active();
  store.close();
  assert.equal(active?.dir, paths.modelDir, "registered and made active");
  assert.equal(active?.indexVersion, readCurrent(paths.indexDir), "the registry names the active model's index version (what a rollback restores)");
  assert.ok(active?.embeddingHash, "the registry records the embedding hash");
  const second = await bootstrap({ ...paths, videos: 120, preset: "demo-small", log: (l) => lines.push(l) });
  assert.deepEqual(second.made, [], "nothing to make on a later start");
});

function serve(args: string[], env: NodeJS.ProcessEnv = {}) {
  const [file, ...rest] = [...cliCommand(), "serve", ...args];
  const child = spawn(file, rest, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on("line", (l) => stdout.push(l));
  createInterface({ input: child.stderr }).on("line", (l) => stderr.push(l));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, stdout, stderr, exited };
}

it("serve --bootstrap prints where it listens and a curl, serves, and exits 0 on SIGTERM", async () => {
  const s = serve(["--bootstrap", "--db", paths.db, "--index-dir", paths.indexDir, "--bootstrap-model-dir", paths.modelDir, "--port", "0", "--log-level", "warn"], { VIDRECALL_ADMIN_KEY: "" });
  try {
    // The start ends with two lines: where it listens, and a curl to try.
    for (let i = 0; i < 1200 && !s.stdout.some((l) => l.includes("try: curl")) && s.child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    const url = s.stdout.map((l) => /listening on (http:\/\/\S+)/.exec(l)).find(Boolean)?.[1];
    assert.ok(url, `no listening line; stdout: ${s.stdout.join("\n")}; stderr: ${s.stderr.join("\n")}`);
    const curl = s.stdout.find((l) => l.includes("try: curl"));
    assert.ok(curl && /curl '.*\/similar\/demo-\d+\?k=5'/.test(curl), `example curl: ${curl}`);
    const id = /similar\/([^?]+)/.exec(curl)![1];
    const r = await fetch(`${url}/similar/${id}?k=5`);
    assert.equal(r.status, 200, "the example curl works");
    assert.equal(((await r.json()) as { results: unknown[] }).results.length, 5);
    s.child.kill("SIGTERM");
    assert.equal(await s.exited, 0, `exit code after SIGTERM; stderr: ${s.stderr.join("\n")}`);
    assert.ok(s.stderr.some((l) => /SIGTERM: shutting down/.test(l)), "says it is shutting down");
  } finally {
    if (s.child.exitCode === null) s.child.kill("SIGKILL");
  }
});

it("serve without a model says what to do", async () => {
  const s = serve(["--db", join(dir, "empty.sqlite"), "--index-dir", join(dir, "none"), "--port", "0"]);
  assert.equal(await s.exited, 1);
  assert.match(s.stderr.join("\n"), /vidrecall: error: no model to serve: the registry has no active model and no --model directory was given/);
});
