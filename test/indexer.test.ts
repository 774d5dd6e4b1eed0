import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { buildIndex, ModelMismatchError, updateIndex } from "../indexer/build.js";
import { embedEntries, type Embedder, type IndexEntry } from "../indexer/embedder.js";
import { exactSearch, normalized } from "../indexer/exact.js";
import { SimilarityIndex, UnknownVideoError } from "../indexer/search.js";
import { acquireLock, IndexBusyError, listVersions, readCurrent, readIds, readManifest } from "../indexer/versions.js";
import { generateClustered } from "../src/bench/annBench.js";
import { tempDir } from "./helpers/tmp.js";

const dir = tempDir("vidrecall-indexer-");
let rootSeq = 0;
const newRoot = () => join(dir, `root-${rootSeq++}`);

interface Data {
  entries: IndexEntry[];
  category: Map<string, string>;
  dim: number;
}

/** n clustered unit vectors with ids `${prefix}${i}` and category = cluster. */
function data(n: number, dim = 16, seed = 1, prefix = "v", clusters = 8): Data {
  const { vectors, cluster } = generateClustered({ n, dim, clusters, intrinsicDim: Math.min(8, dim), seed }, n);
  const entries: IndexEntry[] = [];
  const category = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    entries.push({ id: `${prefix}${i}`, vector: vectors.slice(i * dim, (i + 1) * dim) });
    category.set(`${prefix}${i}`, `c${cluster[i]}`);
  }
  return { entries, category, dim };
}

/** A unit vector far from `v` (its negation, nudged). */
function moved(v: Float32Array): Float32Array {
  return normalized(v.map((x, i) => -x + (i === 0 ? 0.01 : 0)));
}

async function* slowly<T>(items: Iterable<T>): AsyncGenerator<T> {
  for (const x of items) yield x;
}

test("a full build writes a verified version and points CURRENT at it", async () => {
  const root = newRoot();
  const d = data(300);
  const r = await buildIndex(slowly(d.entries), { root, modelHash: "m1", dim: d.dim, M: 8, efConstruction: 50 });
  assert.equal(r.mode, "full");
  assert.equal(readCurrent(root), r.version);
  assert.match(r.version, /^v-\d+-\d+$/);
  for (const f of ["index.hnsw", "ids.json", "manifest.json"]) assert.ok(existsSync(join(root, r.version, f)), f);
  const m = readManifest(root, r.version);
  assert.deepEqual(
    { modelHash: m.modelHash, dim: m.dim, count: m.count, deleted: m.deleted, slots: m.slots, M: m.M, efConstruction: m.efConstruction, kind: m.kind },
    { modelHash: "m1", dim: 16, count: 300, deleted: 0, slots: 300, M: 8, efConstruction: 50, kind: "full" },
  );
  assert.ok(m.ef > 0 && m.build_s >= 0 && !Number.isNaN(Date.parse(m.createdAt)));

  const ix = await SimilarityIndex.open(root);
  assert.equal(ix.size, 300);
  // Every video finds itself first, with cosine 1, when it is not excluded.
  for (const e of d.entries.slice(0, 20)) {
    const [top] = ix.similar(e.id, 1, { excludeSelf: false });
    assert.equal(top.id, e.id);
    assert.ok(Math.abs(top.score - 1) < 1e-5);
  }
});

test("scores are cosine similarities and match exact search", async () => {
  const root = newRoot();
  const d = data(400, 24, 3);
  await buildIndex(d.entries, { root, modelHash: "m1", dim: d.dim });
  const ix = await SimilarityIndex.open(root);
  const flat = new Float32Array(d.entries.length * d.dim);
  d.entries.forEach((e, i) => flat.set(e.vector, i * d.dim));
  // An unnormalised query: the index normalises it.
  const q = d.entries[7].vector.map((x, i) => 3 * x + (i % 3 === 0 ? 0.2 : 0));
  const exact = exactSearch(flat, d.dim, normalized(q), 10);
  const got = ix.similarToVector(q, 10);
  assert.deepEqual(
    got.map((h) => h.id),
    exact.map((h) => `v${h.row}`),
  );
  got.forEach((h, i) => assert.ok(Math.abs(h.score - exact[i].score) < 1e-5, `${h.score} vs ${exact[i].score}`));
  for (let i = 1; i < got.length; i++) assert.ok(got[i - 1].score >= got[i].score);
  assert.throws(() => ix.similarToVector(new Float32Array(d.dim), 3), /non-zero/);
  assert.throws(() => ix.similarToVector(new Float32Array(5), 3), /dim 24/);
});

test("unknown ids raise UnknownVideoError; k must be a positive integer", async () => {
  const root = newRoot();
  const d = data(50);
  await buildIndex(d.entries, { root, modelHash: "m1", dim: d.dim });
  const ix = await SimilarityIndex.open(root);
  assert.throws(
    () => ix.similar("nope", 5),
    (err: unknown) => err instanceof UnknownVideoError && err.id === "nope" && /"nope" is not in the similarity index/.test(err.message),
  );
  assert.throws(() => ix.similar("v1", 0), RangeError);
  assert.throws(() => ix.similar("v1", 2.5), RangeError);
});

test("k larger than the index returns every video, best first", async () => {
  const root = newRoot();
  const d = data(50);
  await buildIndex(d.entries, { root, modelHash: "m1", dim: d.dim });
  const ix = await SimilarityIndex.open(root);
  const others = ix.similar("v3", 1000);
  assert.equal(others.length, 49);
  assert.ok(!others.some((h) => h.id === "v3"));
  assert.equal(new Set(others.map((h) => h.id)).size, 49);
  for (let i = 1; i < others.length; i++) assert.ok(others[i - 1].score >= others[i].score);
  assert.equal(ix.similar("v3", 1000, { excludeSelf: false }).length, 50);
  assert.equal(ix.similarToVector(d.entries[0].vector, 51).length, 50);
});

test("a category filter returns k results from the category, whichever way it is answered", async () => {
  const root = newRoot();
  const n = 3000;
  const dim = 16;
  // Six tight, well separated clusters.
  const { vectors, cluster } = generateClustered({ n, dim, clusters: 6, spread: 0.3, intrinsicDim: 8, seed: 5 }, n);
  const entries = Array.from({ length: n }, (_, i) => ({ id: `v${i}`, vector: vectors.slice(i * dim, (i + 1) * dim) }));
  // "rare": 12 videos across all clusters (0.4%); "sparse": every 8th video (12.5%); otherwise the cluster.
  const rare = new Set(Array.from({ length: 12 }, (_, i) => `v${i * 211 + 17}`));
  const categoryOf = (id: string) => {
    const i = Number(id.slice(1));
    return rare.has(id) ? "rare" : i % 8 === 0 ? "sparse" : `c${cluster[i]}`;
  };
  await buildIndex(entries, { root, modelHash: "m1", dim, M: 8, efConstruction: 40 });
  const exactIn = (q: Float32Array, category: string, k: number) =>
    exactSearch(vectors, dim, normalized(q), n)
      .map((h) => `v${h.row}`)
      .filter((id) => categoryOf(id) === category)
      .slice(0, k);
  const ix = await SimilarityIndex.open(root, { categoryOf, ef: 32 });
  const path = (fn: () => unknown) => {
    const before = { ...ix.stats };
    fn();
    return (Object.keys(before) as (keyof typeof before)[]).filter((key) => ix.stats[key] !== before[key]).join("+");
  };
  assert.equal(ix.categoryCounts().get("rare"), 12);

  // Selective: exact search over the category, exactly right.
  for (const qi of [0, 1000, 2999]) {
    const q = entries[qi].vector;
    let got: { id: string }[] = [];
    assert.equal(
      path(() => (got = ix.similarToVector(q, 5, { category: "rare" }))),
      "exact",
    );
    assert.deepEqual(
      got.map((h) => h.id),
      exactIn(q, "rare", 5),
    );
    // More than the category holds: all of it.
    assert.equal(ix.similarToVector(q, 50, { category: "rare" }).length, 12);
    // Forced through the filtered graph it still fills k, mostly right.
    const graph = ix.similarToVector(q, 5, { category: "rare", strategy: "hnsw" });
    assert.equal(graph.length, 5);
    assert.ok(graph.filter((h) => exactIn(q, "rare", 5).includes(h.id)).length >= 4);
  }

  // Large category, query inside it: its nearest neighbours overall are its nearest members.
  const member = entries.findIndex((e, i) => categoryOf(e.id) === "c0" && i % 8 !== 0);
  let got: { id: string }[] = [];
  assert.equal(
    path(() => (got = ix.similar(`v${member}`, 8, { category: "c0" }))),
    "postFilter",
  );
  assert.deepEqual(
    got.map((h) => h.id),
    exactIn(entries[member].vector, "c0", 9).filter((id) => id !== `v${member}`),
  );
  // Large category far from the query: none nearby, so scanned exactly rather than walked to.
  const far = entries.findIndex((e) => categoryOf(e.id) === "c1");
  assert.equal(
    path(() => (got = ix.similarToVector(entries[far].vector, 8, { category: "c0" }))),
    "exact",
  );
  assert.deepEqual(
    got.map((h) => h.id),
    exactIn(entries[far].vector, "c0", 8),
  );
  // A few members nearby, fewer than k in the probe (2 × ef 32 = 64 results,
  // ~8 of them "sparse"): the filtered graph walk.
  const sparse = entries[8 * 37];
  assert.equal(
    path(() => (got = ix.similarToVector(sparse.vector, 16, { category: "sparse" }))),
    "graph",
  );
  assert.equal(got.length, 16);
  assert.ok(got.every((h) => categoryOf(h.id) === "sparse"));
  assert.deepEqual(ix.similarToVector(entries[0].vector, 3, { category: "no-such-category" }), []);
  const plain = await SimilarityIndex.open(root);
  assert.throws(() => plain.similar("v1", 3, { category: "rare" }), /categoryOf/);

  // When the filtered graph walk comes back short (a filter or deletions can
  // cut the graph), the query is redone exactly. hnswlib rarely does this on
  // small data, so the graph is made to drop results here.
  const stubbed = await SimilarityIndex.open(root, { categoryOf, ef: 10 });
  const g = (stubbed as unknown as { state: { graph: { searchKnn: (...a: unknown[]) => { neighbors: number[]; distances: number[] } } } }).state.graph;
  const real = g.searchKnn.bind(g);
  // The native method is read-only on the prototype: shadow it on this instance.
  Object.defineProperty(g, "searchKnn", {
    value: (...a: unknown[]) => {
      const r = real(...a);
      return { neighbors: r.neighbors.slice(0, 2), distances: r.distances.slice(0, 2) };
    },
  });
  got = stubbed.similarToVector(sparse.vector, 5, { category: "sparse" });
  assert.deepEqual(
    got.map((h) => h.id),
    exactIn(sparse.vector, "sparse", 5),
  );
  assert.deepEqual(stubbed.stats, { graph: 0, postFilter: 0, exact: 1, fallback: 1 });
  // Forcing the graph returns what it found.
  assert.equal(stubbed.similarToVector(sparse.vector, 5, { category: "sparse", strategy: "hnsw" }).length, 2);
});

test("incremental update: adds, updates in place, deletes, reuses deleted slots", async () => {
  const root = newRoot();
  const d = data(500, 16, 7);
  const v1 = await buildIndex(d.entries, { root, modelHash: "m1", dim: d.dim, M: 8, efConstruction: 50 });
  const removed = d.entries.slice(0, 20).map((e) => e.id);
  const updated = d.entries.slice(100, 110).map((e) => ({ id: e.id, vector: moved(e.vector) }));
  const fresh = data(15, 16, 99, "new").entries;

  const r = await updateIndex({ remove: [...removed, "never-indexed"], upsert: slowly([...updated, ...fresh]) }, { root, modelHash: "m1", dim: d.dim });
  assert.equal(r.mode, "incremental");
  assert.deepEqual({ added: r.added, updated: r.updated, removed: r.removed, missing: r.missing }, { added: 15, updated: 10, removed: 20, missing: 1 });
  // 15 of the 20 freed slots reused: the graph did not grow.
  assert.deepEqual({ count: r.count, deleted: r.deleted, slots: r.slots }, { count: 495, deleted: 5, slots: 500 });
  assert.equal(readCurrent(root), r.version);
  const m = readManifest(root, r.version);
  assert.equal(m.parent, v1.version);
  assert.equal(m.kind, "incremental");

  const ix = await SimilarityIndex.open(root);
  assert.equal(ix.size, 495);
  const all = ix.similarToVector(d.entries[0].vector, 10_000);
  assert.equal(all.length, 495);
  const returned = new Set(all.map((h) => h.id));
  for (const id of removed) {
    assert.ok(!returned.has(id), `${id} was deleted`);
    assert.throws(() => ix.similar(id, 3), UnknownVideoError);
  }
  for (const id of removed.slice(0, 5)) {
    // Searching with a deleted video's own vector must not bring it back.
    const old = d.entries.find((e) => e.id === id)!.vector;
    assert.ok(!ix.similarToVector(old, 10).some((h) => removed.includes(h.id)));
  }
  for (const u of updated) {
    const [top] = ix.similarToVector(u.vector, 1);
    assert.equal(top.id, u.id);
    assert.ok(top.score > 0.9999);
    // And no longer near where it was.
    const old = d.entries.find((e) => e.id === u.id)!.vector;
    assert.ok(!ix.similarToVector(old, 5).some((h) => h.id === u.id));
  }
  for (const f of fresh) assert.equal(ix.similar(f.id, 1, { excludeSelf: false })[0].id, f.id);

  // The previous version is untouched: still loadable, still holding the removed ids.
  const before = await SimilarityIndex.openVersion(root, v1.version);
  assert.equal(before.size, 500);
  assert.ok(before.has(removed[0]));

  // Adding more than the free slots grows the graph only by the difference.
  const more = data(8, 16, 123, "more").entries;
  const r2 = await updateIndex({ upsert: more }, { root, modelHash: "m1", dim: d.dim });
  assert.deepEqual({ count: r2.count, deleted: r2.deleted, slots: r2.slots }, { count: 503, deleted: 0, slots: 503 });
  assert.equal(readIds(root, r2.version).filter((x) => x === null).length, 0);
  const ix2 = await SimilarityIndex.open(root);
  for (const e of more) assert.equal(ix2.similar(e.id, 1, { excludeSelf: false })[0].id, e.id);
});

test("deleting past the threshold rebuilds the index compactly instead", async () => {
  const root = newRoot();
  const d = data(400, 16, 11);
  await buildIndex(d.entries, { root, modelHash: "m1", dim: d.dim });
  // 60 of 400 (15%): below the default 20%, stays incremental.
  const r1 = await updateIndex({ remove: d.entries.slice(0, 60).map((e) => e.id) }, { root, modelHash: "m1", dim: d.dim });
  assert.equal(r1.mode, "incremental");
  assert.equal(r1.deleted, 60);
  // 30 more: 90 of 400 = 22.5% deleted.
  const r2 = await updateIndex({ remove: d.entries.slice(60, 90).map((e) => e.id), upsert: [{ id: "v200", vector: moved(d.entries[200].vector) }] }, { root, modelHash: "m1", dim: d.dim });
  assert.equal(r2.mode, "full");
  assert.match(r2.rebuildReason!, /90 of 400 slots deleted/);
  assert.deepEqual({ count: r2.count, deleted: r2.deleted, slots: r2.slots }, { count: 310, deleted: 0, slots: 310 });
  const m = readManifest(root, r2.version);
  assert.equal(m.kind, "full");
  assert.equal(m.modelHash, "m1");
  const ix = await SimilarityIndex.open(root);
  assert.equal(ix.size, 310);
  const ids = new Set(ix.ids());
  for (const e of d.entries.slice(0, 90)) assert.ok(!ids.has(e.id));
  for (const e of d.entries.slice(90)) assert.ok(ids.has(e.id), e.id);
  // The update carried into the rebuild.
  assert.equal(ix.similarToVector(moved(d.entries[200].vector), 1)[0].id, "v200");
  // A lower threshold triggers it sooner.
  const r3 = await updateIndex({ remove: ["v300"] }, { root, modelHash: "m1", dim: d.dim, rebuildThreshold: 0 });
  assert.equal(r3.mode, "full");
  assert.equal(r3.slots, 309);
});

test("an update with embeddings of another model is refused and changes nothing", async () => {
  const root = newRoot();
  const d = data(100);
  const v1 = await buildIndex(d.entries, { root, modelHash: "model-a", dim: d.dim });
  const dirsBefore = readdirSync(root).sort();
  await assert.rejects(
    updateIndex({ upsert: data(3, 16, 2, "x").entries }, { root, modelHash: "model-b", dim: d.dim }),
    (err: unknown) => err instanceof ModelMismatchError && /model-a/.test(err.message) && /model-b/.test(err.message) && /full rebuild/.test(err.message),
  );
  assert.equal(readCurrent(root), v1.version);
  assert.deepEqual(readdirSync(root).sort(), dirsBefore);
  await assert.rejects(updateIndex({ upsert: data(3, 8, 2, "x").entries }, { root, modelHash: "model-a", dim: 8 }), /dim 16.*dim 8.*full rebuild/);
  // A full build with the new model is how the index moves on.
  const v2 = await buildIndex(data(100, 16, 3).entries, { root, modelHash: "model-b", dim: d.dim });
  assert.equal(readManifest(root, v2.version).modelHash, "model-b");
  await assert.rejects(updateIndex({ remove: ["v1"] }, { root, modelHash: "model-a", dim: d.dim }), ModelMismatchError);
  await assert.rejects(updateIndex({ remove: ["v1"] }, { root: newRoot(), modelHash: "model-a", dim: d.dim }), /run a full build first/);
});

test("a build that fails before the flip leaves the previous version current", async () => {
  const root = newRoot();
  const d = data(200);
  const v1 = await buildIndex(d.entries, { root, modelHash: "m1", dim: d.dim });
  const expected = (await SimilarityIndex.open(root)).similar("v5", 5);

  // Injected failure at the last moment: everything written and verified, CURRENT not yet moved.
  await assert.rejects(
    buildIndex(data(200, 16, 9, "w").entries, {
      root,
      modelHash: "m1",
      dim: d.dim,
      onProgress: (p) => {
        if (p.stage === "flip") throw new Error("injected crash before flip");
      },
    }),
    /injected crash before flip/,
  );
  // A file that does not read back as written (zeroed in the middle) fails verification.
  await assert.rejects(
    buildIndex(data(200, 16, 9, "w").entries, {
      root,
      modelHash: "m1",
      dim: d.dim,
      onProgress: (p) => {
        if (p.stage !== "verify") return;
        const partial = listVersions(root).find((v) => !v.complete)!;
        const file = join(partial.dir, "index.hnsw");
        const bytes = readFileSync(file);
        bytes.fill(0, 96, Math.floor(bytes.length / 2));
        writeFileSync(file, bytes);
      },
    }),
    /verification of .* failed/,
  );
  // Input that breaks half way.
  async function* broken(): AsyncGenerator<IndexEntry> {
    yield* slowly(data(100, 16, 9, "w").entries);
    throw new Error("embedding service went away");
  }
  await assert.rejects(buildIndex(broken(), { root, modelHash: "m1", dim: d.dim }), /embedding service went away/);
  await assert.rejects(buildIndex([{ id: "a", vector: new Float32Array(16) }], { root, modelHash: "m1", dim: d.dim }), /zero vector/);
  await assert.rejects(buildIndex([{ id: "a", vector: new Float32Array(3).fill(1) }], { root, modelHash: "m1", dim: d.dim }), /3 values.*dim 16/);

  assert.equal(readCurrent(root), v1.version);
  // The failed builds cleaned up after themselves.
  assert.deepEqual(
    listVersions(root).map((v) => v.name),
    [v1.version],
  );
  const ix = await SimilarityIndex.open(root);
  assert.equal(ix.size, 200);
  assert.deepEqual(ix.similar("v5", 5), expected);
});

/** Runs a build in a child process that SIGKILLs itself at `killAt`; resolves when it is dead. */
function crashingBuild(root: string, killAt: "insert" | "write" | "flip"): Promise<number> {
  const ts = import.meta.url.endsWith(".ts");
  const buildUrl = new URL(`../indexer/build.${ts ? "ts" : "js"}`, import.meta.url).href;
  const code = `
    const { buildIndex } = await import(${JSON.stringify(buildUrl)});
    const killAt = ${JSON.stringify(killAt)};
    const die = () => process.kill(process.pid, "SIGKILL");
    async function* entries() {
      for (let i = 0; i < 400; i++) {
        if (killAt === "insert" && i === 200) die();
        const v = new Float32Array(16);
        for (let j = 0; j < 16; j++) v[j] = Math.sin(i * 7.1 + j * 1.3);
        yield { id: "c" + i, vector: v };
      }
    }
    await buildIndex(entries(), { root: ${JSON.stringify(root)}, modelHash: "m1", dim: 16, onProgress: (p) => { if (p.stage === killAt && p.done === undefined) die(); } });
    process.stdout.write("finished\\n");
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(ts ? ["--import", "tsx"] : []), "--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (b) => (out += b));
    child.stderr.on("data", (b) => (out += b));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal !== "SIGKILL") reject(new Error(`child was meant to die at ${killAt}, exited ${code}: ${out}`));
      else resolve(child.pid!);
    });
  });
}

test("a build process killed mid-build leaves the old index current; the next build cleans up", async () => {
  const root = newRoot();
  const d = data(200);
  const v1 = await buildIndex(d.entries, { root, modelHash: "m1", dim: d.dim });
  const expected = (await SimilarityIndex.open(root)).similar("v5", 5);

  let current = v1.version;
  for (const killAt of ["insert", "write", "flip"] as const) {
    const pid = await crashingBuild(root, killAt);
    assert.equal(readCurrent(root), current, `after a kill at ${killAt}`);
    // The dead build's directory is there; only at "flip" is it complete (verified, never made current).
    const leftovers = listVersions(root).filter((v) => v.name !== current);
    assert.equal(leftovers.length, 1);
    assert.equal(leftovers[0].complete, killAt === "flip");
    // Its lock names a dead process.
    assert.equal(JSON.parse(readFileSync(join(root, ".lock"), "utf8")).pid, pid);
    const ix = await SimilarityIndex.open(root);
    assert.deepEqual(ix.similar("v5", 5), expected);

    // The next build takes over the stale lock and removes the partial directory.
    const next = await buildIndex(d.entries, { root, modelHash: "m1", dim: d.dim, keep: 1 });
    assert.deepEqual(
      listVersions(root).map((v) => v.name),
      [next.version],
    );
    assert.ok(!existsSync(join(root, ".lock")));
    current = next.version;
  }
});

test("a build refuses to run while another live process holds the lock", async () => {
  const root = newRoot();
  const release = acquireLock(root);
  try {
    await assert.rejects(buildIndex(data(10).entries, { root, modelHash: "m1", dim: 16 }), IndexBusyError);
  } finally {
    release();
  }
  await buildIndex(data(10).entries, { root, modelHash: "m1", dim: 16 });
  // A torn lock file (its writer died before writing) is taken over.
  writeFileSync(join(root, ".lock"), "");
  await buildIndex(data(10).entries, { root, modelHash: "m1", dim: 16 });
});

test("old versions are pruned to `keep`, never the current one", async () => {
  const root = newRoot();
  const d = data(30);
  const names: string[] = [];
  for (let i = 0; i < 5; i++) names.push((await buildIndex(d.entries, { root, modelHash: "m1", dim: d.dim })).version);
  assert.deepEqual(
    listVersions(root).map((v) => v.name),
    names.slice(2),
  );
  assert.equal(readCurrent(root), names[4]);
  const r = await updateIndex({ remove: ["v0"] }, { root, modelHash: "m1", dim: d.dim, keep: 2 });
  assert.deepEqual(
    listVersions(root).map((v) => v.name),
    [names[4], r.version],
  );
});

test("reload swaps versions under a running search loop without breaking it", async () => {
  const root = newRoot();
  // Big enough that loading takes a while: the loop must keep searching meanwhile.
  const a = data(12000, 32, 21, "a");
  const b = data(12000, 32, 22, "b");
  await buildIndex(a.entries, { root, modelHash: "m1", dim: 32, M: 8, efConstruction: 40 });
  const ix = await SimilarityIndex.open(root, { categoryOf: (id) => (id.startsWith("a") ? "A" : "B") });
  const queries = a.entries.slice(0, 50);

  let stop = false;
  let failure: unknown;
  let reloading = false;
  let duringReload = 0;
  const seen = { a: 0, b: 0 };
  const loop = (async () => {
    for (let i = 0; !stop; i++) {
      const q = queries[i % queries.length];
      const hits = ix.similarToVector(q.vector, 10);
      assert.equal(hits.length, 10);
      // Results come wholly from one version, never a mix...
      const prefixes = new Set(hits.map((h) => h.id[0]));
      assert.equal(prefixes.size, 1);
      if (hits[0].id.startsWith("a")) {
        // ...and are right for it: the old graph is intact until the swap.
        assert.equal(hits[0].id, q.id);
        assert.ok(hits[0].score > 0.9999);
        seen.a++;
      } else {
        assert.ok(hits[0].score < 0.9999);
        seen.b++;
      }
      if (reloading) duringReload++;
      await tick();
    }
  })().catch((err: unknown) => {
    failure = err;
    stop = true;
  });
  const until = async (cond: () => boolean) => {
    while (!cond() && !stop) await tick();
  };

  await until(() => seen.a >= 20);
  const built = await buildIndex(b.entries, { root, modelHash: "m1", dim: 32, M: 8, efConstruction: 40 });
  assert.notEqual(ix.version, built.version);
  reloading = true;
  const [swapped, again] = await Promise.all([ix.reload(), ix.reload()]);
  reloading = false;
  assert.equal(swapped, true);
  assert.equal(again, false);
  assert.equal(ix.version, built.version);
  const afterSwap = seen.b;
  await until(() => seen.b >= afterSwap + 20);
  stop = true;
  await loop;
  if (failure) throw failure;
  assert.ok(seen.a >= 20 && seen.b >= 20);
  // The index file loads off the main thread: searches ran while it did.
  assert.ok(duringReload > 0, "no search ran during the reload");
  assert.equal(ix.similarToVector(queries[0].vector, 5, { category: "B" }).length, 5);
});

test("embedEntries batches ids through an Embedder and checks what it returns", async () => {
  const calls: string[][] = [];
  const embedder: Embedder = {
    modelHash: "h",
    dim: 4,
    embed: async (ids) => {
      calls.push(ids);
      return ids.map((id) => normalized([id.length, 1, 2, 3]));
    },
  };
  const out: IndexEntry[] = [];
  for await (const e of embedEntries(embedder, ["a", "bb", "ccc", "dddd", "eeeee"], 2)) out.push(e);
  assert.deepEqual(calls, [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]);
  assert.deepEqual(
    out.map((e) => e.id),
    ["a", "bb", "ccc", "dddd", "eeeee"],
  );
  const bad: Embedder = { ...embedder, embed: async (ids) => ids.map(() => new Float32Array(3)) };
  await assert.rejects(async () => {
    for await (const _ of embedEntries(bad, ["a"])) void _;
  }, /length 3.*expected 4/);
});

/** Runs `vidrecall <args>` with only the index commands registered, in a child process. */
function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const ts = import.meta.url.endsWith(".ts");
  const url = new URL(`../src/cli/indexCommands.${ts ? "ts" : "js"}`, import.meta.url).href;
  const code = `
    const { Command } = await import("commander");
    const { registerIndexCommands } = await import(${JSON.stringify(url)});
    const program = new Command().exitOverride();
    registerIndexCommands(program);
    try {
      await program.parseAsync(${JSON.stringify(args)}, { from: "user" });
    } catch (err) {
      process.stderr.write(String(err && err.message) + "\\n");
      process.exit(1);
    }
  `;
  const r = spawnSync(process.execPath, [...(ts ? ["--import", "tsx"] : []), "--input-type=module", "-e", code], { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("cli: index build (full, incremental), status and similar", () => {
  const root = newRoot();
  const d = data(120);
  const jsonl = (entries: IndexEntry[]) => entries.map((e) => JSON.stringify({ id: e.id, vector: Array.from(e.vector) })).join("\n") + "\n";
  const full = join(dir, "full.jsonl");
  writeFileSync(full, jsonl(d.entries.slice(0, 100)));
  let r = cli(["index", "build", "--vectors", full, "--model-hash", "m1", "--index-dir", root, "--m", "8"]);
  assert.equal(r.status, 0, r.stderr);
  const built = JSON.parse(r.stdout) as { version: string; count: number; mode: string };
  assert.deepEqual([built.mode, built.count], ["full", 100]);

  const more = join(dir, "more.jsonl");
  writeFileSync(more, jsonl(d.entries.slice(100)));
  const remove = join(dir, "remove.txt");
  writeFileSync(remove, "v0\nv1\n");
  r = cli(["index", "build", "--incremental", "--vectors", more, "--remove", remove, "--model-hash", "m1", "--index-dir", root]);
  assert.equal(r.status, 0, r.stderr);
  const upd = JSON.parse(r.stdout) as { mode: string; count: number; added: number; removed: number };
  assert.deepEqual([upd.mode, upd.count, upd.added, upd.removed], ["incremental", 118, 20, 2]);

  r = cli(["index", "build", "--incremental", "--vectors", more, "--model-hash", "m2", "--index-dir", root]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /model m1.*model m2.*full rebuild/);

  r = cli(["index", "status", "--index-dir", root]);
  assert.equal(r.status, 0, r.stderr);
  const status = JSON.parse(r.stdout) as { current: string; manifest: { count: number; M: number }; versions: { name: string; current: boolean }[] };
  assert.equal(status.manifest.count, 118);
  assert.equal(status.manifest.M, 8);
  assert.deepEqual(
    status.versions.map((v) => v.current),
    [false, true],
  );

  r = cli(["index", "similar", "v110", "-k", "3", "--include-self", "--index-dir", root]);
  assert.equal(r.status, 0, r.stderr);
  const hits = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { id: string; score: number });
  assert.equal(hits.length, 3);
  assert.equal(hits[0].id, "v110");
  r = cli(["index", "similar", "v0", "--index-dir", root]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /"v0" is not in the similarity index/);
});
