/**
 * A retrain job (`POST /admin/retrain`, a real `vidrecall retrain --promote`
 * child process) while the server is under load: the new model and its
 * index are swapped in, and a rollback swaps back, with zero failed requests.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { reindex } from "../indexer/reindex.js";
import { importLabelFile } from "../src/data/labelFile.js";
import { VideoStore } from "../src/data/store.js";
import { InferenceService } from "../src/infer/inferenceService.js";
import { storeEmbedder } from "../src/infer/storeEmbedder.js";
import { ModelRegistry } from "../src/registry/modelRegistry.js";
import { rollbackModel } from "../src/registry/promotion.js";
import { startServer, type RunningServer } from "../server/server.js";
import { makeDemoStore, registerModel, trainTiny } from "./helpers/serverFixture.js";
import { tempDir } from "./helpers/tmp.js";

const KEY = "retrain-admin-key";
const dir = tempDir("vidrecall-retrain-server-");
const db = join(dir, "db.sqlite");
const indexDir = join(dir, "index");
let server: RunningServer;
let v1 = "";

type Json = Record<string, unknown>;
async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Json }> {
  const res = await fetch(server.url + path, { method, headers: { "content-type": "application/json", ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) as Json };
  } catch {
    return { status: res.status, json: { text } };
  }
}

async function until(what: string, check: () => Promise<boolean>, tries = 1200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

before(async () => {
  makeDemoStore(db, 400);
  const modelA = await trainTiny(db, join(dir, "model-a"), 7);
  registerModel(db, "tiny-a", modelA, true);
  const store = VideoStore.open(db);
  try {
    // The served model's index, and new labels: every video of one category gets a new tag.
    const service = await InferenceService.create(modelA);
    const r = await reindex({ store, embedder: storeEmbedder(service, store), root: indexDir });
    await service.close();
    v1 = r.version;
    const registry = new ModelRegistry(store);
    registry.update("tiny-a", { indexVersion: v1 });
    const cat0 = store.labels("category")[0].name;
    const rows = store.videoIds().filter((id) => store.getVideo(id)!.category?.name === cat0).map((id) => `${id},fresh tag`);
    writeFileSync(join(dir, "labels.csv"), ["id,tags", ...rows].join("\n") + "\n");
    await importLabelFile(store, join(dir, "labels.csv"));
  } finally {
    store.close();
  }
  server = await startServer({ db, indexDir, host: "127.0.0.1", port: 0, adminKey: KEY, watchIntervalMs: 200, logLevel: "silent", inference: { workers: 1, intraOpThreads: 1 } });
});

after(async () => {
  await server?.close();
});

test("a retrain job and a rollback while the server is under load fail no request", async () => {
  const ids = (() => {
    const s = VideoStore.open(db, { readonly: true });
    try {
      return s.videoIds().slice(0, 100);
    } finally {
      s.close();
    }
  })();
  let stop = false;
  let done = 0;
  const failures: string[] = [];
  const models = new Set<string>();
  const loop = async (n: number) => {
    while (!stop) {
      const q = ids[(n * 13 + done) % ids.length];
      const rs = await Promise.all([call("GET", `/similar/${q}?k=5`), call("POST", "/classify", { id: q })]);
      for (const r of rs) if (r.status !== 200) failures.push(`${r.status} ${JSON.stringify(r.json)}`);
      const m = rs[1].json.model as Json | undefined;
      if (m) models.add(String(m.hash));
      done++;
    }
  };
  const loops = [0, 1, 2].map(loop);
  try {
    await until("some traffic", async () => done > 10);
    const job = await call("POST", "/admin/retrain", { mode: "heads", promote: true }, { authorization: `Bearer ${KEY}` });
    assert.equal(job.status, 202, `retrain job accepted: ${JSON.stringify(job.json)}`);
    let finished: Json = {};
    await until("the retrain job", async () => {
      finished = (await call("GET", `/admin/jobs/${job.json.id as string}`, undefined, { authorization: `Bearer ${KEY}` })).json;
      return finished.state !== "queued" && finished.state !== "running";
    }, 6000);
    assert.equal(finished.state, "succeeded", `retrain job: ${JSON.stringify(finished)}`);
    const result = finished.result as Json;
    assert.equal(result.promoted, true, `promoted: ${JSON.stringify(result.gate)}`);
    assert.deepEqual((result.new_labels as Json).tags, ["fresh tag"], "the job learned the new tag");
    assert.equal(result.embedding_changed, false, "heads retrain: same embedding");
    const newId = result.id as string;
    await until("the retrained model served", async () => ((await call("GET", "/readyz")).json.model as Json).id === newId);
    const ready = (await call("GET", "/readyz")).json;
    assert.equal((ready.index as Json).version, v1, "no reindex: the parent's index version is still served");
    const classified = await call("POST", "/classify", { id: ids[0] });
    assert.equal((classified.json.model as Json).hash, (ready.model as Json).hash, "classify answers with the retrained model");
    const mark = done;
    await until("traffic on the retrained model", async () => done > mark + 10);

    const s = VideoStore.open(db);
    try {
      const rb = rollbackModel(s, { indexDir });
      assert.deepEqual([rb.from, rb.to], [newId, "tiny-a"], "rolled back to the first model");
    } finally {
      s.close();
    }
    await until("the first model served again", async () => ((await call("GET", "/readyz")).json.model as Json).id === "tiny-a");
    const mark2 = done;
    await until("traffic after the rollback", async () => done > mark2 + 10);
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  assert.deepEqual(failures, [], "no request failed during the retrain, promotion and rollback");
  assert.equal(models.size, 2, "requests were answered by both models");
});
