/**
 * Neighbour-label voting in POST /classify, end to end: a tiny model trained
 * for real with votes on (model weight 0, so the tags are the votes alone),
 * served over a real index. The expected tag probabilities are computed here
 * from what GET /similar returns for the same video (scores and tags), so
 * the test checks the served blend against the public API, not against the
 * service's own code.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer, type RunningServer } from "../server/server.js";
import { makeDemoStore, registerModel, trainTiny } from "./helpers/serverFixture.js";
import { tempDir } from "./helpers/tmp.js";

const KEY = "votes-admin-key";
const dir = tempDir("vidrecall-votes-");
const db = join(dir, "db.sqlite");
let server: RunningServer;
let url: string;
const K = 5;
const TEMPERATURE = 10;

interface Json {
  [k: string]: unknown;
}

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, json: (await res.json()) as Json };
}

before(async () => {
  makeDemoStore(db);
  const model = await trainTiny(db, join(dir, "model"), 7, { neighbours: { enabled: true, k: K, temperature: TEMPERATURE, modelWeight: 0 } });
  registerModel(db, "voting", model, true);
  server = await startServer({ db, indexDir: join(dir, "index"), host: "127.0.0.1", port: 0, adminKey: KEY, watchIntervalMs: 200, logLevel: "silent", inference: { workers: 1, intraOpThreads: 1 } });
  url = server.url;
});

after(async () => {
  await server?.close();
});

/** The votes of a /similar answer, by tag name: softmax(temperature·score) over the hits carrying each tag. */
function votesOf(hits: { score: number; tags: string[] }[]): Map<string, number> {
  const max = Math.max(...hits.map((h) => h.score));
  const w = hits.map((h) => Math.exp(TEMPERATURE * (h.score - max)));
  const total = w.reduce((a, b) => a + b, 0);
  const votes = new Map<string, number>();
  hits.forEach((h, i) => h.tags.forEach((t) => votes.set(t, (votes.get(t) ?? 0) + w[i] / total)));
  return votes;
}

describe("POST /classify with neighbour votes", () => {
  it("says why there are no votes before an index exists", async () => {
    const r = await call("POST", "/classify", { id: "demo-000001" });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.tag_votes, { neighbours: 0, skipped: "no similarity index has been built yet" });
  });

  it("blends the tags of the nearest indexed videos, never the video itself", async () => {
    const start = await call("POST", "/admin/reindex");
    assert.equal(start.status, 202, JSON.stringify(start.json));
    for (let i = 0; i < 600; i++) {
      const job = await call("GET", `/admin/jobs/${start.json.id as string}`);
      if (job.json.state === "succeeded") break;
      assert.ok(job.json.state === "queued" || job.json.state === "running", `reindex job: ${JSON.stringify(job.json)}`);
      await new Promise((res) => setTimeout(res, 200));
    }
    for (const id of ["demo-000001", "demo-000042", "demo-000117"]) {
      const similar = await call("GET", `/similar/${id}?k=${K}&tags=50`);
      assert.equal(similar.status, 200, JSON.stringify(similar.json));
      const hits = similar.json.results as { id: string; score: number; tags: string[] }[];
      assert.equal(hits.length, K);
      const expected = votesOf(hits);
      const r = await call("POST", "/classify", { id, tag_threshold: 0, max_tags: 50 });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json.tag_votes, { neighbours: K, index_version: similar.json.index_version }, `${id}: ${K} neighbours voted`);
      const tags = r.json.tags as { label: string; probability: number }[];
      for (const t of tags) {
        const want = expected.get(t.label) ?? 0;
        assert.ok(Math.abs(t.probability - want) < 1e-4, `${id} tag ${t.label}: served ${t.probability}, votes of /similar's hits ${want}`);
      }
      for (const [label, want] of expected) assert.ok(tags.some((t) => t.label === label), `${id}: voted tag ${label} (${want}) is in the answer`);
      for (let i = 1; i < tags.length; i++) assert.ok(tags[i - 1].probability >= tags[i].probability, `${id}: tags most probable first`);
      assert.equal(r.json.embedding, undefined, "the embedding used for the search is not returned unless asked for");
    }
  });

  it("a deleted neighbour stops voting", async () => {
    const id = "demo-000042";
    const before = (await call("GET", `/similar/${id}?k=${K}`)).json.results as { id: string }[];
    const victim = before[0].id;
    assert.equal((await call("DELETE", `/videos/${victim}`)).status, 200);
    const similar = await call("GET", `/similar/${id}?k=${K}&tags=50`);
    const hits = similar.json.results as { id: string; score: number; tags: string[] }[];
    assert.ok(!hits.some((h) => h.id === victim), "deleted: not similar any more");
    const expected = votesOf(hits);
    const r = await call("POST", "/classify", { id, tag_threshold: 0, max_tags: 50 });
    assert.equal((r.json.tag_votes as Json).neighbours, K);
    for (const t of r.json.tags as { label: string; probability: number }[]) {
      assert.ok(Math.abs(t.probability - (expected.get(t.label) ?? 0)) < 1e-4, `tag ${t.label} after deleting ${victim}`);
    }
  });
});
