/**
 * SearchPool: the same answers from search threads and inline (0 threads,
 * what each process of `serve --processes N` uses), errors of the same kind,
 * and a reload that follows CURRENT in both.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, test } from "node:test";
import { buildIndex, updateIndex } from "../indexer/build.js";
import type { IndexEntry } from "../indexer/embedder.js";
import { UnknownVideoError } from "../indexer/search.js";
import { generateClustered } from "../src/bench/annBench.js";
import { SearchPool } from "../src/service/searchPool.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("vidrecall-searchpool-");
const dim = 16;
const n = 400;
const { vectors, cluster } = generateClustered({ n: n + 1, dim, clusters: 4, intrinsicDim: 8, seed: 3 }, n + 1);
const entries: IndexEntry[] = Array.from({ length: n }, (_, i) => ({ id: `v${i}`, vector: vectors.slice(i * dim, (i + 1) * dim) }));
const categoryOf = new Map(entries.map((e, i) => [e.id, `c${cluster[i]}`]));
const pools: SearchPool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

test("inline and threaded pools answer alike, and both follow CURRENT on load()", async () => {
  const root = join(dir, "index");
  await buildIndex(entries, { root, modelHash: "m1", dim, M: 8, efConstruction: 64 });
  const inline = await SearchPool.open(root, categoryOf, 0);
  const threaded = await SearchPool.open(root, categoryOf, 1);
  pools.push(inline, threaded);
  assert.equal(inline.isInline, true);
  assert.equal(threaded.isInline, false);
  assert.equal(inline.version, threaded.version);
  assert.equal(inline.size, n);
  for (const id of ["v0", "v17", "v399"]) {
    const a = await inline.similar(id, 10);
    const b = await threaded.similar(id, 10);
    assert.deepEqual(a.hits, b.hits, `neighbours of ${id}`);
    assert.equal(a.hits.length, 10);
    assert.ok(!a.hits.some((h) => h.id === id), "the query video is left out");
    const filtered = await inline.similar(id, 5, { category: "c1" });
    assert.ok(filtered.hits.every((h) => categoryOf.get(h.id) === "c1"), `category filter inline for ${id}`);
  }
  // Search by vector (POST /classify's neighbour votes): the same in both, and a stored video's own vector finds it first.
  for (const i of [3, 250]) {
    const v = vectors.slice(i * dim, (i + 1) * dim);
    const a = await inline.similarToVector(v, 6);
    const b = await threaded.similarToVector(v, 6);
    assert.deepEqual(a.hits, b.hits, `neighbours of vector ${i}`);
    assert.equal(a.hits[0].id, `v${i}`, `vector ${i} finds its own video first`);
    assert.ok(Math.abs(a.hits[0].score - 1) < 1e-5, `cosine with itself: ${a.hits[0].score}`);
  }
  await assert.rejects(threaded.similarToVector([1, 2, 3], 5), /3 values, the index has dim 16/, "a vector of the wrong size");
  await assert.rejects(inline.similar("nope", 5), UnknownVideoError, "an unknown id inline");
  await assert.rejects(threaded.similar("nope", 5), UnknownVideoError, "an unknown id in a thread");
  await assert.rejects(inline.similar("v1", 0), RangeError, "a bad k inline");
  assert.ok(inline.stats.graph > 0, "inline searches are counted");

  // A new version with one more video: neither pool sees it until load().
  const first = inline.version;
  const extra = { id: "added", vector: vectors.slice(n * dim, (n + 1) * dim) };
  await updateIndex({ upsert: [extra] }, { root, modelHash: "m1", dim });
  await assert.rejects(inline.similar("added", 3), UnknownVideoError, "not loaded yet");
  const cats = new Map([...categoryOf, ["added", "c0"]]);
  await inline.load(cats);
  await threaded.load(cats);
  assert.notEqual(inline.version, first, "load() moved to the new version");
  assert.equal(inline.version, threaded.version, "both on the new version");
  assert.ok(inline.has("added") && threaded.has("added"));
  assert.deepEqual((await inline.similar("added", 5)).hits, (await threaded.similar("added", 5)).hits, "the new video's neighbours");
});

test("a pool of a negative or fractional thread count is refused", async () => {
  await assert.rejects(SearchPool.open(join(dir, "index"), categoryOf, -1), /search threads must be an integer ≥ 0/);
  await assert.rejects(SearchPool.open(join(dir, "index"), categoryOf, 1.5), /search threads must be an integer ≥ 0/);
});
