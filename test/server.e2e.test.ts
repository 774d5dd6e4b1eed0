/**
 * The HTTP service end to end: the real server (startServer, as `vidrecall
 * serve` runs it) on a free loopback port, over a small demo dataset and
 * tiny models trained on it for real. Every endpoint, its errors, admin
 * auth, a reindex job (a real `vidrecall reindex` child process), ingestion
 * with live indexing, deletion, label growth, a model and index hot swap
 * under load with zero failed requests, metrics, and graceful shutdown.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { matrixToJson } from "../src/data/jsonl.js";
import { readModelMetadata } from "../src/infer/modelBundle.js";
import { startServer, type RunningServer } from "../server/server.js";
import type { IndexUpdater } from "../src/service/indexUpdater.js";
import { makeDemoStore, registerModel, trainTiny } from "./helpers/serverFixture.js";
import { tempDir } from "./helpers/tmp.js";

const KEY = "e2e-admin-key";
const dir = tempDir("vidrecall-server-");
const db = join(dir, "db.sqlite");
const indexDir = join(dir, "index");
let server: RunningServer;
let url: string;
let hashA: string;
let embeddingA: string;
let modelB: string;

interface Json {
  [k: string]: unknown;
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Json; type: string }> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  const res = await fetch(url + path, init);
  const text = await res.text();
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch {
    json = { text };
  }
  return { status: res.status, json, type: res.headers.get("content-type") ?? "" };
}

const admin = { authorization: `Bearer ${KEY}` };
const errorOf = (r: { json: Json }) => r.json.error as { code: string; message: string; fields?: { field: string; message: string }[] };

async function waitJob(id: string): Promise<Json> {
  for (let i = 0; i < 600; i++) {
    const r = await call("GET", `/admin/jobs/${id}`, undefined, admin);
    assert.equal(r.status, 200, `GET /admin/jobs/${id}: ${JSON.stringify(r.json)}`);
    if (r.json.state !== "queued" && r.json.state !== "running") return r.json;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`job ${id} did not finish`);
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await check()) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function frames(n: number, dim: number, seed: number): number[][] {
  let s = seed;
  const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  return Array.from({ length: n }, () => Array.from({ length: dim }, rand));
}

function videoRecord(id: string, extra: Json = {}): Json {
  return { id, title: "funny cat video", rgb: frames(6, 16, id.length + 1), audio: frames(6, 8, id.length + 7), ...extra };
}

before(async () => {
  makeDemoStore(db);
  const modelA = await trainTiny(db, join(dir, "model-a"), 7);
  modelB = await trainTiny(db, join(dir, "model-b"), 11);
  hashA = registerModel(db, "tiny-a", modelA, true);
  embeddingA = readModelMetadata(modelA).embeddingSha256;
  registerModel(db, "tiny-b", modelB, false);
  server = await startServer({
    db,
    indexDir,
    host: "127.0.0.1",
    port: 0,
    adminKey: KEY,
    bodyLimit: "256kb",
    watchIntervalMs: 200,
    logLevel: "silent",
    inference: { workers: 1, intraOpThreads: 1 },
  });
  url = server.url;
});

after(async () => {
  await server?.close();
});

describe("HTTP service", () => {
  let ids: string[] = [];

  it("is up, not ready without an index, and documents itself", async () => {
    const h = await call("GET", "/healthz");
    assert.equal(h.status, 200, "healthz");
    assert.equal(h.json.status, "ok");
    const r = await call("GET", "/readyz");
    assert.equal(r.status, 503, `readyz without an index: ${JSON.stringify(r.json)}`);
    assert.match((r.json.reasons as string[]).join(" "), /no index/);
    assert.equal((r.json.model as Json).id, "tiny-a", "the registry's active model is served");
    const s = await call("GET", "/similar/demo-000001");
    assert.equal(s.status, 503, "similar before any index");
    assert.match(errorOf(s).message, /no similarity index has been built yet/);
    const o = await call("GET", "/openapi.json");
    assert.equal(o.status, 200);
    const paths = Object.keys(o.json.paths as Json);
    for (const p of ["/similar/{id}", "/classify", "/videos", "/videos/{id}", "/videos/{id}/labels", "/admin/reindex", "/admin/retrain", "/admin/jobs/{id}", "/healthz", "/readyz", "/metrics"]) {
      assert.ok(paths.includes(p), `openapi documents ${p} (has ${paths.join(", ")})`);
    }
    const classifyBody = JSON.stringify((o.json.paths as Json)["/classify"]);
    assert.match(classifyBody, /tag_threshold/, "the classify request schema comes from zod");
  });

  it("guards the admin routes with the API key", async () => {
    const none = await call("POST", "/admin/reindex");
    assert.equal(none.status, 401, "no key");
    assert.equal(errorOf(none).code, "unauthorized");
    const wrong = await call("POST", "/admin/reindex", undefined, { authorization: "Bearer nope" });
    assert.equal(wrong.status, 403, "wrong key");
    const wrongHeader = await call("GET", "/admin/jobs/00000000-0000-4000-8000-000000000000", undefined, { "x-admin-key": "nope" });
    assert.equal(wrongHeader.status, 403, "wrong key in X-Admin-Key");
    const missingJob = await call("GET", "/admin/jobs/00000000-0000-4000-8000-000000000000", undefined, admin);
    assert.equal(missingJob.status, 404, "unknown job with the right key");
    const badJob = await call("GET", "/admin/jobs/..%2F..%2Fetc", undefined, admin);
    assert.equal(badJob.status, 400, "a job id that is not a uuid");
    const badBody = await call("POST", "/admin/reindex", { incremental: "yes" }, admin);
    assert.equal(badBody.status, 400, "reindex body validated");
    assert.equal(errorOf(badBody).fields?.[0].field, "body.incremental");
    const badRetrain = await call("POST", "/admin/retrain", { mode: "sideways" }, admin);
    assert.equal(badRetrain.status, 400, "retrain mode validated");
    const unknownFrom = await call("POST", "/admin/retrain", { from: "no-such-model" }, admin);
    assert.equal(unknownFrom.status, 404, "retrain from an unknown registry model");
    const pathFrom = await call("POST", "/admin/retrain", { from: "../../etc" }, admin);
    assert.equal(pathFrom.status, 400, "retrain from a path is refused: requests never name files");
  });

  it("builds the index with a reindex job (one at a time) and becomes ready", async () => {
    const start = await call("POST", "/admin/reindex", undefined, admin);
    assert.equal(start.status, 202, JSON.stringify(start.json));
    assert.equal(start.json.kind, "reindex");
    const again = await call("POST", "/admin/reindex", {}, admin);
    assert.equal(again.status, 409, "a second reindex while one runs");
    assert.equal((again.json.error as Json).job, start.json.id, "the conflict names the running job");
    const job = await waitJob(start.json.id as string);
    assert.equal(job.state, "succeeded", `job: ${JSON.stringify(job)}`);
    assert.ok(job.progress, "progress lines were parsed");
    const result = job.result as Json;
    assert.equal(result.count, 160, "every video indexed");
    assert.equal(result.modelHash, embeddingA, "embedded with the served model (the index is keyed by its embedding hash)");
    // Succeeded means live: the index is loaded by the time the job says so.
    const r = await call("GET", "/readyz");
    assert.equal(r.status, 200, `ready: ${JSON.stringify(r.json)}`);
    assert.equal((r.json.index as Json).version, result.version);
    const list = await call("GET", "/admin/jobs", undefined, admin);
    assert.ok((list.json.jobs as Json[]).some((j) => j.id === start.json.id), "listed");
  });

  it("lists videos in pages and shows one with labels, provenance and index state", async () => {
    const p1 = await call("GET", "/videos?limit=5");
    assert.equal(p1.status, 200);
    const v1 = p1.json.videos as Json[];
    assert.equal(v1.length, 5);
    assert.equal(typeof p1.json.next, "string");
    const p2 = await call("GET", `/videos?limit=5&after=${p1.json.next as string}`);
    const v2 = p2.json.videos as Json[];
    assert.equal(v2.length, 5);
    assert.ok(v2.every((v) => !v1.some((w) => w.id === v.id)), "page 2 continues after page 1");
    const all = await call("GET", "/videos?limit=1000");
    ids = (all.json.videos as Json[]).map((v) => v.id as string);
    assert.equal(ids.length, 160);
    assert.equal(all.json.next, null, "last page");
    assert.ok((all.json.videos as Json[]).every((v) => "title" in v && "category" in v && Array.isArray(v.tags)));
    const badAfter = await call("GET", "/videos?after=nope");
    assert.equal(badAfter.status, 400);
    assert.equal(errorOf(badAfter).fields?.[0].field, "query.after");
    const badLimit = await call("GET", "/videos?limit=0");
    assert.equal(badLimit.status, 400);
    const one = await call("GET", `/videos/${ids[0]}`);
    assert.equal(one.status, 200);
    const cat = one.json.category as Json;
    assert.equal(cat.provenance, "imported");
    assert.equal(cat.learned, true, "the model knows the demo categories");
    assert.equal(one.json.indexed, true);
    assert.ok((one.json.modalities as Json[]).some((m) => m.modality === "rgb" && m.dim === 16));
    assert.equal((await call("GET", "/videos/nope")).status, 404);
  });

  it("answers /similar with scored, labelled neighbours; filters by category; 404s unknown ids", async () => {
    const r = await call("GET", `/similar/${ids[3]}?k=7`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const results = r.json.results as { id: string; score: number; title: unknown; category: unknown; tags: unknown }[];
    assert.equal(results.length, 7);
    assert.ok(results.every((h) => h.id !== ids[3]), "the video itself is left out");
    for (let i = 1; i < results.length; i++) assert.ok(results[i - 1].score >= results[i].score, "best first");
    assert.ok(results.every((h) => "title" in h && typeof h.category === "string" && Array.isArray(h.tags)), "title, category, tags");
    const def = await call("GET", `/similar/${ids[3]}`);
    assert.equal((def.json.results as unknown[]).length, 10, "k defaults to 10");
    const category = results[0].category as string;
    const filtered = await call("GET", `/similar/${ids[3]}?k=5&category=${encodeURIComponent(category)}&ef=50`);
    assert.equal(filtered.status, 200);
    const fr = filtered.json.results as { category: string }[];
    assert.ok(fr.length > 0 && fr.every((h) => h.category === category), "only that category");
    const none = await call("GET", `/similar/${ids[3]}?category=no-such-category`);
    assert.deepEqual(none.json.results, [], "an unknown category has no members");
    const unknown = await call("GET", "/similar/no-such-video");
    assert.equal(unknown.status, 404);
    assert.match(errorOf(unknown).message, /no video "no-such-video"/);
    for (const [q, field] of [
      ["k=0", "query.k"],
      ["k=abc", "query.k"],
      ["k=1001", "query.k"],
      ["ef=0", "query.ef"],
      ["k=1&k=2", "query.k"],
      ["bogus=1", "query"],
    ] as const) {
      const bad = await call("GET", `/similar/${ids[3]}?${q}`);
      assert.equal(bad.status, 400, `?${q}`);
      assert.ok(errorOf(bad).fields?.some((f) => f.field.startsWith(field)), `?${q} names ${field}: ${JSON.stringify(errorOf(bad))}`);
    }
  });

  it("classifies stored videos and feature payloads, and names each bad field", async () => {
    const byId = await call("POST", "/classify", { id: ids[0], top: 2, tag_threshold: 0, max_tags: 3 });
    assert.equal(byId.status, 200, JSON.stringify(byId.json));
    const cats = byId.json.categories as { label: string; probability: number }[];
    assert.equal(cats.length, 2, "top 2");
    assert.ok(cats[0].probability >= cats[1].probability);
    assert.equal((byId.json.tags as unknown[]).length, 3, "threshold 0: the top 3 tags");
    assert.equal((byId.json.model as Json).hash, hashA);

    const nested = await call("POST", "/classify", { rgb: frames(9, 16, 3), audio: frames(4, 8, 4), title: "funny cat", embedding: true });
    assert.equal(nested.status, 200, JSON.stringify(nested.json));
    const emb = nested.json.embedding as number[];
    assert.equal(emb.length, 16, "the model's embedding");
    assert.ok(Math.abs(Math.hypot(...emb) - 1) < 1e-3, "L2-normalised");

    const m = { frames: 6, dim: 16, values: Float32Array.from(frames(6, 16, 9).flat()) };
    const b64 = await call("POST", "/classify", { rgb: matrixToJson(m, "float16"), features: { audio: matrixToJson({ frames: 6, dim: 8, values: Float32Array.from(frames(6, 8, 2).flat()) }, "uint8") } });
    assert.equal(b64.status, 200, `base64 float16 + uint8: ${JSON.stringify(b64.json)}`);

    const unused = await call("POST", "/classify", { rgb: frames(2, 16, 1), features: { depth: [[1, 2]] } });
    assert.equal(unused.status, 200);
    assert.deepEqual(unused.json.ignored, ["depth"], "a modality the model does not read is reported");

    const nan = new Float32Array(6 * 16);
    nan[21] = NaN;
    const cases: [string, unknown, RegExp][] = [
      ["wrong dimension", { rgb: frames(3, 12, 1) }, /^body\.rgb$/],
      ["ragged frames", { rgb: [[1, 2, 3], [1, 2]] }, /^body\.rgb\[1\]$/],
      ["NaN in base64", { rgb: { encoding: "float32", shape: [6, 16], data: Buffer.from(nan.buffer).toString("base64") } }, /^body\.rgb\[1\]\[5\]$/],
      ["Infinity", '{"audio": [[1, 2, 3, 4, 5, 6, 7, 1e400]]}', /^body\.audio\[0\]\[7\]$/],
      ["too many frames", { rgb: { encoding: "float32", shape: [5000, 16], data: "" } }, /^body\.rgb\.shape\[0\]$/],
      ["unknown encoding", { rgb: { encoding: "int4", shape: [1, 16], data: "" } }, /^body\.rgb\.encoding$/],
      ["base64 length", { rgb: { encoding: "float32", shape: [2, 16], data: "AAAA" } }, /^body\.rgb\.data$/],
      ["wrong type", { title: 5, rgb: frames(1, 16, 1) }, /^body\.title$/],
      ["unknown key", { id: ids[0], bogus: 1 }, /^body$/],
      ["nothing to classify", { top: 3 }, /^body$/],
      ["bad threshold", { id: ids[0], tag_threshold: 2 }, /^body\.tag_threshold$/],
    ];
    for (const [what, body, field] of cases) {
      const r = await call("POST", "/classify", body);
      assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.json)}`);
      const fields = errorOf(r).fields ?? [];
      assert.ok(fields.some((f) => field.test(f.field)), `${what} names ${field}: ${JSON.stringify(fields)}`);
    }
    const unknown = await call("POST", "/classify", { id: "no-such-video" });
    assert.equal(unknown.status, 404);
    const big = await call("POST", "/classify", { rgb: frames(2000, 16, 1) });
    assert.equal(big.status, 413, "over the 256kb body limit");
    assert.equal(errorOf(big).code, "body_too_large");
    const notJson = await call("POST", "/classify", "{\"id\": ", {});
    assert.equal(notJson.status, 400);
    assert.equal(errorOf(notJson).code, "invalid_json");
    const text = await call("POST", "/classify", "id=1", { "content-type": "text/plain" });
    assert.equal(text.status, 415);
  });

  it("ingests videos (the JSONL schema), grows label spaces, and indexes on request", async () => {
    const one = await call("POST", "/videos", videoRecord("api-1", { category: "brand-new-category", tags: ["fresh-tag"] }));
    assert.equal(one.status, 201, JSON.stringify(one.json));
    assert.deepEqual(one.json.upserted, ["api-1"]);
    assert.deepEqual(
      (one.json.new_labels as Json[]).map((l) => `${l.space}:${l.name}`).sort(),
      ["category:brand-new-category", "tags:fresh-tag"],
      "new label names grow the label spaces",
    );
    const got = await call("GET", "/videos/api-1");
    assert.equal((got.json.category as Json).learned, false, "the served model has not learned the new category");
    assert.equal(got.json.indexed, false, "stored without ?index=true: not searchable yet");
    const notYet = await call("GET", "/similar/api-1");
    assert.equal(notYet.status, 404);
    assert.match(errorOf(notYet).message, /not indexed yet/);

    const bad = await call("POST", "/videos", [videoRecord("api-2"), videoRecord("api-3", { rgb: frames(6, 15, 1) })]);
    assert.equal(bad.status, 400, "a bad record in a batch");
    assert.ok(errorOf(bad).fields?.some((f) => f.field === "body[1].rgb"), JSON.stringify(errorOf(bad)));
    assert.equal((await call("GET", "/videos/api-2")).status, 404, "nothing from a bad batch is stored");
    const badId = await call("POST", "/videos", videoRecord("a/b"));
    assert.equal(badId.status, 400, "ids with slashes are refused");

    const batch = await call("POST", "/videos?index=true", [videoRecord("api-2"), videoRecord("api-3", { category: "brand-new-category" })]);
    assert.equal(batch.status, 200, JSON.stringify(batch.json));
    assert.deepEqual((batch.json.indexed as string[]).sort(), ["api-1", "api-2", "api-3"].filter((id) => (batch.json.indexed as string[]).includes(id)).sort());
    assert.ok((batch.json.indexed as string[]).includes("api-2") && (batch.json.indexed as string[]).includes("api-3"), "indexed at once");
    const sim = await call("GET", "/similar/api-2?k=3");
    assert.equal(sim.status, 200, "the new video is searchable");
    assert.equal((await call("GET", "/videos/api-1")).json.indexed, true, "the coalesced update also picked up api-1");

    // A burst of indexing requests shares runs: the one going plus one for everything that arrived meanwhile.
    // A single process: its updater is the IndexUpdater itself.
    const updater = server.context.indexUpdater as IndexUpdater;
    const runsBefore = updater.runs;
    const burst = await Promise.all(["api-4", "api-5", "api-6", "api-7", "api-8"].map((id) => call("POST", "/videos?index=true", videoRecord(id))));
    for (const [i, r] of burst.entries()) {
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json.indexed, [`api-${i + 4}`], "each request's video is searchable when it returns");
    }
    const runs = updater.runs - runsBefore;
    assert.ok(runs >= 1 && runs <= 2, `5 concurrent requests cost ${runs} index runs`);
    for (const id of ["api-4", "api-5", "api-6", "api-7", "api-8"]) assert.equal((await call("DELETE", `/videos/${id}`)).status, 200);
  });

  it("sets labels by name, growing the label space", async () => {
    const r = await call("POST", `/videos/${ids[5]}/labels`, { category: "hand-labelled", tags: ["x-new", "  padded  "] });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const video = r.json.video as Json;
    assert.equal((video.category as Json).name, "hand-labelled");
    assert.equal((video.category as Json).provenance, "manual");
    assert.equal((video.category as Json).learned, false);
    assert.deepEqual((video.tags as Json[]).map((t) => t.name).sort(), ["padded", "x-new"], "names are trimmed");
    assert.equal((r.json.new_labels as Json[]).length, 3);
    const known = await call("POST", `/videos/${ids[5]}/labels`, { tags: ["x-new"] });
    assert.deepEqual(known.json.new_labels, [], "an existing name is not new");
    assert.equal((await call("POST", `/videos/${ids[5]}/labels`, {})).status, 400, "nothing to set");
    assert.equal((await call("POST", `/videos/${ids[5]}/labels`, { tags: [""] })).status, 400, "empty label name");
    assert.equal((await call("POST", "/videos/nope/labels", { tags: ["a"] })).status, 404);
    // The category filter follows the new category once the watcher reloads categories.
    await until("category reload", async () => {
      const f = await call("GET", `/similar/${ids[6]}?k=200&category=hand-labelled`);
      return (f.json.results as Json[]).some((h) => h.id === ids[5]);
    });
    const cleared = await call("POST", `/videos/${ids[5]}/labels`, { category: null });
    assert.equal(cleared.json.video && (cleared.json.video as Json).category, null, "null clears the category");
  });

  it("deletes videos from the store and, at once, from /similar", async () => {
    const victim = ids[10];
    const d = await call("DELETE", `/videos/${victim}`);
    assert.equal(d.status, 200, JSON.stringify(d.json));
    assert.equal(d.json.index_update, "scheduled");
    assert.equal((await call("GET", `/videos/${victim}`)).status, 404);
    assert.equal((await call("GET", `/similar/${victim}`)).status, 404);
    for (const q of ids.slice(0, 20).filter((id) => id !== victim && id !== ids[5])) {
      const r = await call("GET", `/similar/${q}?k=1000`);
      assert.ok(!(r.json.results as Json[]).some((h) => h.id === victim), `deleted video in the results of ${q}`);
    }
    assert.equal((await call("DELETE", `/videos/${victim}`)).status, 404, "deleting twice");
    ids = ids.filter((id) => id !== victim);
    await until("the index update that removes it", async () => {
      const m = await fetch(`${url}/metrics`).then((r) => r.text());
      return /vidrecall_index_tombstones 0/.test(m) && /vidrecall_index_videos 162/.test(m);
    });
  });

  it("swaps in a newly promoted model and a rebuilt index while requests run, failing none", async () => {
    let stop = false;
    const failures: string[] = [];
    const hashes = new Set<string>();
    let done = 0;
    const loop = async (n: number) => {
      while (!stop) {
        const q = ids[(n * 7 + done) % 100];
        const rs = await Promise.all([
          call("GET", `/similar/${q}?k=5`),
          call("POST", "/classify", { rgb: frames(6, 16, done + 1), title: "cat" }),
          call("POST", "/classify", { id: q }),
        ]);
        for (const r of rs) if (r.status !== 200) failures.push(`${r.status} ${JSON.stringify(r.json)}`);
        hashes.add((rs[1].json.model as Json).hash as string);
        done++;
      }
    };
    const loops = [0, 1, 2, 3].map(loop);
    try {
      await until("some traffic", async () => done > 10);
      // A promotion by another process (the CLI): the watcher picks it up.
      const store = (await import("../src/data/store.js")).VideoStore.open(db);
      const { ModelRegistry } = await import("../src/registry/modelRegistry.js");
      new ModelRegistry(store).promote("tiny-b");
      store.close();
      await until("the new model served", async () => ((await call("GET", "/readyz")).json.model as Json).id === "tiny-b");
      const before = done;
      await until("traffic on the new model", async () => done > before + 10);
      // The index from model B's embeddings: a full rebuild, flipped under load.
      const job = await call("POST", "/admin/reindex", { incremental: false }, admin);
      assert.equal(job.status, 202);
      const finished = await waitJob(job.json.id as string);
      assert.equal(finished.state, "succeeded", JSON.stringify(finished));
      const ready = await call("GET", "/readyz");
      assert.equal((ready.json.index as Json).version, (finished.result as Json).version, "the rebuilt index is live");
      const after = done;
      await until("traffic on the new index", async () => done > after + 10);
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    assert.deepEqual(failures, [], "no request failed during the swaps");
    assert.equal(hashes.size, 2, "requests were answered by both models");
    const incremental = await call("POST", "/admin/reindex", { incremental: true }, admin);
    const inc = await waitJob(incremental.json.id as string);
    assert.equal(inc.state, "succeeded");
    assert.equal((inc.result as Json).mode, "incremental", "an incremental job on the same model updates in place");
  });

  it("exports Prometheus metrics per route, for inference, the index and jobs", async () => {
    const m = await fetch(`${url}/metrics`).then((r) => r.text());
    assert.match(m, /vidrecall_http_requests_total\{method="GET",route="\/similar\/:id",status="200"\} \d+/);
    assert.match(m, /vidrecall_http_request_duration_seconds_bucket\{le="0.005",method="POST",route="\/classify"\}/);
    assert.match(m, /vidrecall_inference_runs_total [1-9]/);
    assert.match(m, /vidrecall_inference_videos_total [1-9]/);
    assert.match(m, /vidrecall_inference_batch_size_count [1-9]/, "batch sizes are a histogram");
    assert.match(m, /vidrecall_inference_batch_size_bucket\{le="32"\} [1-9]/, "runs of up to 32 videos are counted");
    assert.match(m, /vidrecall_index_videos 162/);
    assert.match(m, /vidrecall_index_version_info\{version="v-/);
    assert.match(m, /vidrecall_jobs\{kind="reindex",state="succeeded"\} 3/);
    assert.match(m, /process_resident_memory_bytes/);
  });

  it("disables admin routes when no key is configured", async () => {
    const other = await startServer({ db, indexDir, host: "127.0.0.1", port: 0, logLevel: "silent", inference: { workers: 1, intraOpThreads: 1 } });
    try {
      const r = await fetch(`${other.url}/admin/reindex`, { method: "POST", headers: admin });
      assert.equal(r.status, 403, "disabled, not open");
      const body = (await r.json()) as Json;
      assert.match((body.error as Json).message as string, /VIDRECALL_ADMIN_KEY/);
    } finally {
      await other.close();
    }
  });

  it("shuts down gracefully: requests in flight finish, then nothing is accepted", async () => {
    const { request } = await import("node:http");
    const body = JSON.stringify({ rgb: frames(6, 16, 1), title: "cat" });
    // Requests whose bodies are still arriving when the shutdown starts.
    const pending = [0, 1, 2].map(() => {
      const req = request(`${url}/classify`, { method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } });
      const done = new Promise<number>((resolve, reject) => {
        req.on("response", (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
      });
      req.write(body.slice(0, 10));
      return { req, done };
    });
    const ctx = server.context;
    await until("three requests in flight", async () => ctx.metrics.inFlight() === 3);
    const closing = server.close();
    await new Promise((res) => setTimeout(res, 100));
    await assert.rejects(fetch(`${url}/healthz`), "no new connections once shutdown began");
    for (const p of pending) p.req.end(body.slice(10));
    assert.deepEqual(await Promise.all(pending.map((p) => p.done)), [200, 200, 200], "requests in flight at shutdown are answered");
    await closing;
  });
});
