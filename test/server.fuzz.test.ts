/**
 * Hostile input: a few hundred malformed requests (bad JSON, huge numbers,
 * deep nesting, wrong types, oversized bodies, path and query tricks,
 * wrong methods and content types), generated from a seed. Every answer
 * must be a 4xx with a JSON error body, and the server must keep serving
 * good requests throughout.
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import { join } from "node:path";
import { reindex } from "../indexer/reindex.js";
import { writeDemoData } from "../src/data/demo.js";
import { VideoStore } from "../src/data/store.js";
import { InferenceService } from "../src/infer/inferenceService.js";
import { storeEmbedder } from "../src/infer/storeEmbedder.js";
import type { ModelConfigInput } from "../src/model/config.js";
import { seededRandom } from "../src/util/random.js";
import { startServer, type RunningServer } from "../server/server.js";
import { exportRandomModel } from "./helpers/randomModel.js";
import { tempDir } from "./helpers/tmp.js";

const CONFIG: ModelConfigInput = {
  name: "fuzz-tiny",
  input: { features: { rgb: { frames: 4, dim: 8 }, audio: { frames: 4, dim: 4 } }, modalities: ["rgb", "audio"], useTitle: false, sampling: "segment" },
  encoders: { rgb: { type: "gated_mlp", hidden: 8, gatingReduction: 2 }, audio: { type: "gated_mlp", hidden: 6, gatingReduction: 2 } },
  fusion: { type: "concat_se", embeddingDim: 8, seReduction: 2 },
  heads: { mode: "multi" },
};
const KEY = "fuzz-key";
const dir = tempDir("vidrecall-fuzz-");
let server: RunningServer;
let goodId: string;

before(async () => {
  const db = join(dir, "db.sqlite");
  const store = VideoStore.open(db);
  writeDemoData(store, { videos: 40, seed: 2, frames: 4, rgbDim: 8, audioDim: 4, categories: 3, tagsPerCategory: 2 });
  const labels = { categories: store.labels("category").map((l) => l.name), tags: store.labels("tags").map((l) => l.name) };
  const model = (await exportRandomModel(join(dir, "model"), CONFIG, 1, { labels })).dir;
  const service = await InferenceService.create(model, { workers: 1, intraOpThreads: 1 });
  await reindex({ store, embedder: storeEmbedder(service, store), root: join(dir, "index") });
  await service.close();
  goodId = store.videoIds()[0];
  store.close();
  server = await startServer({ db, model, indexDir: join(dir, "index"), host: "127.0.0.1", port: 0, adminKey: KEY, bodyLimit: "64kb", logLevel: "silent", inference: { workers: 1, intraOpThreads: 1 }, searchThreads: 1 });
});

after(async () => {
  await server?.close();
});

interface Probe {
  method: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  what: string;
}

/** Raw node:http, so paths go out exactly as written (no URL normalisation). */
function send(p: Probe): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(server.url);
    const headers: Record<string, string | number> = { ...(p.body !== undefined ? { "content-type": "application/json" } : {}), ...p.headers };
    if (p.body !== undefined) headers["content-length"] = Buffer.byteLength(p.body);
    const req = request({ host: u.hostname, port: u.port, method: p.method, path: p.path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"] ?? ""), body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    if (p.body !== undefined) req.write(p.body);
    req.end();
  });
}

function probes(): Probe[] {
  const rand = seededRandom("fuzz", 1);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const nest = (depth: number, open: string, close: string, inner = "1") => open.repeat(depth) + inner + close.repeat(depth);
  const badJson = ["{", "{\"id\": ", "{'id': 'x'}", "{\"id\": \"x\",}", "[1, 2", "NaN", "{\"rgb\": [[NaN]]}", "\u0000", "{\"id\": \"\\ud800\"}", "nul", "{\"a\":1}{\"b\":2}", "\"just a string\"", "123", "true", "null", ""];
  const hugeNumbers = ["1e400", "-1e400", "1e308", "-1e308", "18446744073709551616", "123456789012345678901234567890", "9007199254740993"];
  const wrongTypes: unknown[] = [null, true, 0, -1, 1.5, "x", [], {}, [[]], [null], { a: 1 }, "1", -1e9, 1e9];
  const pathTricks = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "..",
    "%00",
    "a%00b",
    "%E0%A4%A",
    "%",
    "%zz",
    "%2F",
    "x".repeat(5000),
    encodeURIComponent("🎬".repeat(300)),
    "a%0Ab",
    "%7B%7D",
    "..%5C..%5Cwindows",
    encodeURIComponent("<script>alert(1)</script>"),
    "%20",
  ];
  const out: Probe[] = [];
  const json = (method: string, path: string, body: string, what: string) => out.push({ method, path, body, what });

  for (const b of badJson) for (const path of ["/classify", "/videos", `/videos/${goodId}/labels`]) json("POST", path, b, `bad JSON ${JSON.stringify(b)} to ${path}`);
  for (const n of hugeNumbers) {
    json("POST", "/classify", `{"rgb": [[${n}, 1, 1, 1, 1, 1, 1, 1]], "top": ${n}}`, `huge number ${n} in features and top`);
    json("POST", "/classify", `{"id": "${goodId}", "tag_threshold": ${n}, "max_tags": ${n}}`, `huge number ${n} in options`);
    json("POST", "/classify", `{"rgb": {"encoding": "float32", "shape": [${n}, ${n}], "data": ""}}`, `huge shape ${n}`);
    json("POST", "/videos", `{"id": "fz", "rgb": [[${n}, 1, 1, 1, 1, 1, 1, 1]]}`, `huge number ${n} in a video`);
    out.push({ method: "GET", path: `/similar/${goodId}?k=${encodeURIComponent(n)}`, what: `k=${n}` });
    out.push({ method: "GET", path: `/videos?limit=${encodeURIComponent(n)}`, what: `limit=${n}` });
  }
  for (const depth of [50, 1000, 20000]) {
    json("POST", "/classify", `{"rgb": ${nest(depth, "[", "]")}}`, `arrays nested ${depth} deep in rgb`);
    json("POST", "/classify", nest(depth, "{\"a\":", "}"), `objects nested ${depth} deep`);
    json("POST", "/videos", nest(depth, "[", "]", "{}"), `a batch nested ${depth} deep`);
    json("POST", `/videos/${goodId}/labels`, `{"tags": ${nest(depth, "[", "]", "\"x\"")}}`, `tags nested ${depth} deep`);
    json("POST", "/classify", `{"features": ${nest(depth, "{\"m\":", "}")}}`, `features nested ${depth} deep`);
  }
  const fields = ["id", "title", "rgb", "audio", "features", "top", "tag_threshold", "max_tags", "embedding"];
  for (let i = 0; i < 80; i++) {
    const f = pick(fields);
    const v = pick(wrongTypes);
    if (f === "title" && (v === null || typeof v === "string")) continue;
    if ((f === "features" && typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0)) continue;
    json("POST", "/classify", JSON.stringify({ [f]: v }), `classify ${f}=${JSON.stringify(v)}`);
  }
  const videoFields = ["id", "title", "split", "category", "tags", "rgb", "audio", "features", "extra"];
  for (let i = 0; i < 60; i++) {
    const f = pick(videoFields);
    const v = pick(wrongTypes);
    json("POST", "/videos", JSON.stringify({ id: f === "id" ? v : `fz-${i}`, [f]: v, ...(f === "id" ? {} : { rgb: v }) }), `video ${f}=${JSON.stringify(v)}`);
  }
  for (const v of wrongTypes) {
    json("POST", `/videos/${goodId}/labels`, JSON.stringify({ category: v === null ? 5 : v, tags: v }), `labels ${JSON.stringify(v)}`);
    json("POST", "/admin/reindex", JSON.stringify({ incremental: v }), `reindex incremental=${JSON.stringify(v)} without key`);
    out.push({ method: "POST", path: "/admin/retrain", body: JSON.stringify({ mode: v, from: v }), headers: { authorization: `Bearer ${KEY}` }, what: `retrain ${JSON.stringify(v)}` });
  }
  for (const t of pathTricks) {
    out.push({ method: "GET", path: `/similar/${t}`, what: `similar path ${t.slice(0, 40)}` });
    out.push({ method: "GET", path: `/videos/${t}`, what: `video path ${t.slice(0, 40)}` });
    out.push({ method: "DELETE", path: `/videos/${t}`, what: `delete path ${t.slice(0, 40)}` });
    out.push({ method: "POST", path: `/videos/${t}/labels`, body: "{\"tags\": [\"a\"]}", what: `labels path ${t.slice(0, 40)}` });
    out.push({ method: "GET", path: `/admin/jobs/${t}`, headers: { authorization: `Bearer ${KEY}` }, what: `job path ${t.slice(0, 40)}` });
  }
  for (const q of ["k=-1", "k=1.5", "k=", "k[]=1", "k[a]=1", "ef=99999", "k=1&k=2", "category=&k=1", "category=" + "c".repeat(600), "tags=-3", "%zz=1", "k=%00"]) {
    out.push({ method: "GET", path: `/similar/${goodId}?${q}`, what: `query ${q.slice(0, 40)}` });
    out.push({ method: "GET", path: `/videos?${q.replace(/^k/, "limit")}`, what: `videos query ${q.slice(0, 40)}` });
  }
  for (const method of ["PUT", "PATCH", "DELETE"]) out.push({ method, path: "/classify", what: `${method} /classify` });
  out.push({ method: "POST", path: "/similar/x", what: "POST /similar" });
  out.push({ method: "GET", path: "/../../etc/passwd", what: "dot segments" });
  out.push({ method: "GET", path: "/nope", what: "unknown route" });
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16", "application/json; charset=koi8-r"]) {
    out.push({ method: "POST", path: "/classify", body: `{"id": "${goodId}"}`, headers: { "content-type": type }, what: `content-type ${type}` });
  }
  out.push({ method: "POST", path: "/classify", body: Buffer.alloc(80 * 1024, 0x20), what: "80 KiB of spaces (over the 64kb limit)" });
  out.push({ method: "POST", path: "/videos", body: `[${Array.from({ length: 3000 }, () => "{}").join(",")}]`, what: "3000 empty videos" });
  out.push({ method: "POST", path: "/classify", body: JSON.stringify({ rgb: Array.from({ length: 5000 }, () => [1, 2]) }), what: "too many nested frames" });
  out.push({ method: "POST", path: "/classify", body: JSON.stringify({ rgb: { encoding: "float32", shape: [2, 8], data: "!!!!" } }), what: "base64 with bad characters" });
  out.push({ method: "POST", path: "/classify", body: JSON.stringify({ rgb: { encoding: "float32", shape: [2, 8], data: "AAAA", extra: 1 } }), what: "extra key in base64 features" });
  out.push({ method: "POST", path: "/classify", body: "{\"__proto__\": {\"polluted\": true}, \"id\": \"x\"}", what: "__proto__ key" });
  for (const lone of ["\\ud800", "\\udfff", "a\\ud83d"]) {
    json("POST", "/videos", `{"id": "${lone}"}`, `lone surrogate ${lone} in an id`);
    json("POST", "/videos", `{"id": "ok-${out.length}", "title": "${lone}", "tags": ["${lone}"]}`, `lone surrogate ${lone} in a title and tag`);
    json("POST", `/videos/${goodId}/labels`, `{"category": "${lone}"}`, `lone surrogate ${lone} in a label`);
  }
  out.push({ method: "POST", path: "/classify", body: "{\"constructor\": {\"prototype\": {\"x\": 1}}}", what: "constructor key" });
  return out;
}

it("answers a few hundred hostile requests with 4xx JSON errors and keeps serving", async () => {
  const list = probes();
  assert.ok(list.length >= 300, `${list.length} probes`);
  const bad: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const p = list[i];
    const r = await send(p);
    let parsed: { error?: { code?: unknown; message?: unknown } } | undefined;
    try {
      parsed = JSON.parse(r.body) as typeof parsed;
    } catch {
      parsed = undefined;
    }
    const ok = r.status >= 400 && r.status < 500 && r.type.startsWith("application/json") && typeof parsed?.error?.message === "string" && typeof parsed.error.code === "string";
    if (!ok) bad.push(`${p.what}: ${r.status} ${r.type} ${r.body.slice(0, 200)}`);
    // The server keeps answering good requests all along.
    if (i % 50 === 0) {
      const good = await send({ method: "GET", path: `/similar/${goodId}?k=3`, what: "good" });
      assert.equal(good.status, 200, `a good request after probe ${i} (${p.what})`);
    }
  }
  assert.deepEqual(bad, [], "every hostile request gets a 4xx JSON error");
  const health = await send({ method: "GET", path: "/healthz", what: "health" });
  assert.equal(health.status, 200, "still up");
  const classify = await send({ method: "POST", path: "/classify", body: JSON.stringify({ id: goodId }), what: "good classify" });
  assert.equal(classify.status, 200, `classify still works: ${classify.body}`);
  assert.equal(({} as Record<string, unknown>).polluted, undefined, "no prototype pollution");
});
