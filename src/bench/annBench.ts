/**
 * `bench ann`: the similarity index against exact search on synthetic,
 * clustered unit vectors (deterministic from a seed), in one run.
 *
 * Data: `clusters` random unit centres with Zipf-distributed sizes (so
 * categories range from large to very selective, like real ones); a point is
 * its centre plus noise of norm ≈ `spread` that varies along the cluster's own
 * `intrinsicDim` random directions plus a little isotropic noise, normalised
 * (`intrinsicDim = dim` gives isotropic clusters, the hardest case). `n`
 * points are indexed; `queries` more from the same distribution are held out
 * as queries. Ground truth is exact top-k by cosine over a flat Float32Array;
 * the index is built and searched through the real indexer (buildIndex →
 * SimilarityIndex), so the numbers include id mapping and the N-API
 * conversions a caller pays.
 */
import { seededRandom } from "../util/random.js";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildIndex, DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, DEFAULT_M } from "../../indexer/build.js";
import type { IndexEntry } from "../../indexer/embedder.js";
import { exactSearch } from "../../indexer/exact.js";
import { estimateGraphBytesPerVector } from "../../indexer/hnsw.js";
import { SimilarityIndex } from "../../indexer/search.js";
import { IDS_FILE, INDEX_FILE, readCurrent } from "../../indexer/versions.js";

export interface SyntheticSpec {
  n: number;
  dim: number;
  clusters: number;
  /** Norm of the per-point noise relative to the unit centre (default 1: cos to the centre ≈ 0.71). */
  spread?: number;
  /**
   * Dimensions the noise varies in within a cluster (default 32; `dim` makes
   * it isotropic, the hardest case: locally uniform). Learned embeddings vary
   * along few directions within a class, which is what graph search exploits.
   */
  intrinsicDim?: number;
  /** Isotropic noise added on top of the low-rank part, as a fraction of `spread` (default 0.25). */
  isotropic?: number;
  /** Zipf exponent of the cluster sizes (default 1). */
  zipf?: number;
  seed?: number;
}

export interface AnnBenchOptions {
  synthetic: SyntheticSpec;
  queries?: number;
  k?: number;
  M?: number;
  efConstruction?: number;
  /** The ef of the headline numbers (default: the indexer's default). */
  ef?: number;
  /** Further ef values for the recall/QPS curve. */
  efSweep?: number[];
  /** Measure category-filtered search (graph vs exact) per category size. */
  filter?: boolean;
  workDir?: string;
  log?: (line: string) => void;
}

export interface EfPoint {
  ef: number;
  recall_at_10: number;
  qps: number;
}

export type FilterKind = "same" | "cross" | "random";

export interface FilterPoint {
  kind: FilterKind;
  category: string;
  size: number;
  fraction: number;
  queries: number;
  hnsw_ms: number;
  exact_ms: number;
  /** First exact query of the category: includes gathering its vectors from the graph. */
  exact_cold_ms: number;
  /** Filtered graph search's recall@k against exact search within the category. */
  hnsw_recall: number;
  /** The default strategy (what callers get). */
  auto_ms: number;
  auto_recall: number;
}

export interface AnnBenchResult {
  synthetic: {
    n: number;
    dim: number;
    clusters: number;
    spread: number;
    intrinsic_dim: number;
    zipf: number;
    seed: number;
    queries: number;
    k: number;
    M: number;
    ef_construction: number;
    ef: number;
    recall_at_10: number;
    qps: number;
    exact_qps: number;
    speedup: number;
    build_s: number;
    /** CPU time of the build (this process): on a shared machine, wall time includes waiting for a core. */
    build_cpu_s: number;
    insert_s: number;
    generate_s: number;
    disk_bytes_per_vector: number;
    index_file_bytes_per_vector: number;
    memory_bytes_per_vector: number;
    memory_bytes_per_vector_estimate: number;
    peak_rss_mb: number;
    ef_sweep: EfPoint[];
    filter?: { crossover_fraction: Record<FilterKind, number | null>; points: FilterPoint[] };
  };
}


function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * rand();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
}

/**
 * `count` clustered unit vectors (flat) and each one's cluster: centre +
 * spread · (B_c z + isotropic · g) normalised, where B_c is the cluster's own
 * random dim × intrinsicDim basis and z, g are standard Gaussian.
 */
export function generateClustered(spec: SyntheticSpec, count: number): { vectors: Float32Array; cluster: Int32Array } {
  const { dim, clusters } = spec;
  const spread = spec.spread ?? 1;
  const zipf = spec.zipf ?? 1;
  const r = Math.min(dim, spec.intrinsicDim ?? 32);
  const iso = r === dim ? 0 : (spec.isotropic ?? 0.25);
  const rand = seededRandom("ann", spec.seed ?? 1);
  const gauss = gaussian(rand);
  const centres = new Float32Array(clusters * dim);
  for (let c = 0; c < clusters; c++) {
    let n = 0;
    for (let i = 0; i < dim; i++) {
      const v = gauss();
      centres[c * dim + i] = v;
      n += v * v;
    }
    const inv = 1 / Math.sqrt(n);
    for (let i = 0; i < dim; i++) centres[c * dim + i] *= inv;
  }
  // B_c has N(0, 1/dim) entries, so ‖B_c z‖ ≈ √r and ‖g‖ ≈ √dim: scaled so the
  // low-rank and isotropic parts have norms a and b with a² + b² = spread².
  const a = spread / Math.sqrt(1 + iso * iso);
  const lowScale = a / Math.sqrt(r);
  const isoScale = (iso * a) / Math.sqrt(dim);
  const bases = r === dim ? null : new Float32Array(clusters * dim * r);
  if (bases) for (let i = 0; i < bases.length; i++) bases[i] = gauss() / Math.sqrt(dim);
  const cumulative = new Float64Array(clusters);
  let total = 0;
  for (let c = 0; c < clusters; c++) cumulative[c] = total += 1 / Math.pow(c + 1, zipf);
  const vectors = new Float32Array(count * dim);
  const cluster = new Int32Array(count);
  const z = new Float64Array(r);
  for (let p = 0; p < count; p++) {
    const u = rand() * total;
    let lo = 0;
    let hi = clusters - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    cluster[p] = lo;
    const off = p * dim;
    if (bases) {
      for (let j = 0; j < r; j++) z[j] = gauss();
      const b = lo * dim * r;
      for (let i = 0; i < dim; i++) {
        let v = 0;
        for (let j = 0; j < r; j++) v += bases[b + i * r + j] * z[j];
        vectors[off + i] = centres[lo * dim + i] + lowScale * v + isoScale * gauss();
      }
    } else {
      const noise = spread / Math.sqrt(dim);
      for (let i = 0; i < dim; i++) vectors[off + i] = centres[lo * dim + i] + noise * gauss();
    }
    let n = 0;
    for (let i = 0; i < dim; i++) n += vectors[off + i] * vectors[off + i];
    const inv = 1 / Math.sqrt(n);
    for (let i = 0; i < dim; i++) vectors[off + i] *= inv;
  }
  return { vectors, cluster };
}

function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}

/**
 * Bytes per vector held by a loaded index, measured in a fresh process
 * (RSS after SimilarityIndex.open minus before), so nothing this process
 * built or generated is counted.
 */
function measureLoadedBytes(root: string, n: number): number {
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const searchUrl = new URL(`../../indexer/search${ext}`, import.meta.url).href;
  const code = `
    const { SimilarityIndex } = await import(${JSON.stringify(searchUrl)});
    const settle = () => new Promise((r) => setTimeout(r, 50));
    await settle();
    const before = process.memoryUsage().rss;
    const ix = await SimilarityIndex.open(${JSON.stringify(root)});
    await settle();
    const after = process.memoryUsage().rss;
    if (ix.size !== ${n}) throw new Error("loaded " + ix.size + " vectors");
    process.stdout.write(JSON.stringify({ bytes: after - before }));
  `;
  const r = spawnSync(process.execPath, [...process.execArgv, "--input-type=module", "-e", code], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`memory probe failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { bytes: number }).bytes / n;
}

function recallAt(found: string[], truth: Int32Array | number[], k: number): number {
  const want = new Set<string>();
  for (let i = 0; i < Math.min(k, truth.length); i++) want.add(`s${truth[i]}`);
  let hit = 0;
  for (const id of found.slice(0, k)) if (want.has(id)) hit++;
  return hit / want.size;
}

export async function benchAnn(options: AnnBenchOptions): Promise<AnnBenchResult> {
  const log = options.log ?? (() => {});
  const spec = options.synthetic;
  const { n, dim, clusters } = spec;
  const queries = options.queries ?? 1000;
  const k = options.k ?? 10;
  const M = options.M ?? DEFAULT_M;
  const efConstruction = options.efConstruction ?? DEFAULT_EF_CONSTRUCTION;
  const ef = options.ef ?? DEFAULT_EF;
  const efSweep = [...new Set([...(options.efSweep ?? [16, 32, 48, 64, 96, 128, 200]), ef])].sort((a, b) => a - b);
  const workDir = options.workDir ?? mkdtempSync(join(tmpdir(), "vidrecall-ann-"));
  const root = join(workDir, "index");
  rmSync(root, { recursive: true, force: true });

  try {
    let t = performance.now();
    const { vectors, cluster } = generateClustered(spec, n + queries);
    const generate_s = seconds(t);
    log(`generated ${n} + ${queries} vectors (dim ${dim}, ${clusters} clusters) in ${generate_s.toFixed(1)} s`);
    const base = vectors.subarray(0, n * dim);
    const query = (q: number) => vectors.subarray((n + q) * dim, (n + q + 1) * dim);

    // Exact search: ground truth and the baseline's speed, single thread.
    t = performance.now();
    const truth: Int32Array[] = [];
    for (let q = 0; q < queries; q++) truth.push(Int32Array.from(exactSearch(base, dim, query(q), k).map((h) => h.row)));
    const exact_qps = queries / seconds(t);
    log(`exact: ${exact_qps.toFixed(1)} queries/s`);

    const entries = function* (): Generator<IndexEntry> {
      for (let i = 0; i < n; i++) yield { id: `s${i}`, vector: base.subarray(i * dim, (i + 1) * dim) };
    };
    t = performance.now();
    const cpu0 = process.cpuUsage();
    const built = await buildIndex(entries(), {
      root,
      modelHash: `synthetic-${spec.seed ?? 1}`,
      dim,
      M,
      efConstruction,
      ef,
      expectedCount: n,
      onProgress: (p) => {
        if (p.stage === "insert" && p.done !== undefined && p.done % 20000 === 0) log(`  inserted ${p.done}`);
      },
    });
    const build_s = seconds(t);
    const cpu = process.cpuUsage(cpu0);
    const build_cpu_s = (cpu.user + cpu.system) / 1e6;
    log(`build: ${build_s.toFixed(1)} s, CPU ${build_cpu_s.toFixed(1)} s (insert ${built.insert_s.toFixed(1)} s, write ${built.write_s.toFixed(1)} s, verify ${built.verify_s.toFixed(1)} s)`);

    const version = readCurrent(root)!;
    const indexBytes = statSync(join(root, version, INDEX_FILE)).size;
    const idsBytes = statSync(join(root, version, IDS_FILE)).size;
    const memory_bytes_per_vector = measureLoadedBytes(root, n);

    const categoryOf = (id: string) => `c${cluster[Number(id.slice(1))]}`;
    const index = await SimilarityIndex.open(root, { categoryOf });
    const sweep: EfPoint[] = [];
    for (const e of efSweep) {
      let recall = 0;
      t = performance.now();
      for (let q = 0; q < queries; q++) {
        const found = index.similarToVector(query(q), k, { ef: e });
        recall += recallAt(
          found.map((h) => h.id),
          truth[q],
          k,
        );
      }
      const qps = queries / seconds(t);
      sweep.push({ ef: e, recall_at_10: recall / queries, qps });
      log(`ef ${e}: recall@${k} ${(recall / queries).toFixed(4)}, ${qps.toFixed(0)} queries/s`);
    }
    const head = sweep.find((p) => p.ef === ef)!;

    let filter: AnnBenchResult["synthetic"]["filter"];
    if (options.filter ?? true) {
      const randomIndex = await SimilarityIndex.open(root, { categoryOf: (id) => randomCategory(Number(id.slice(1))) });
      filter = measureFilter(index, randomIndex, query, (q) => cluster[n + q], queries, k, log);
    }

    const result: AnnBenchResult = {
      synthetic: {
        n,
        dim,
        clusters,
        spread: spec.spread ?? 1,
        intrinsic_dim: Math.min(dim, spec.intrinsicDim ?? 32),
        zipf: spec.zipf ?? 1,
        seed: spec.seed ?? 1,
        queries,
        k,
        M,
        ef_construction: efConstruction,
        ef,
        recall_at_10: head.recall_at_10,
        qps: head.qps,
        exact_qps,
        speedup: head.qps / exact_qps,
        build_s,
        build_cpu_s,
        insert_s: built.insert_s,
        generate_s,
        disk_bytes_per_vector: (indexBytes + idsBytes) / n,
        index_file_bytes_per_vector: indexBytes / n,
        memory_bytes_per_vector,
        memory_bytes_per_vector_estimate: estimateGraphBytesPerVector(dim, M),
        peak_rss_mb: process.resourceUsage().maxRSS / 1024,
        ef_sweep: sweep,
        ...(filter ? { filter } : {}),
      },
    };
    return result;
  } finally {
    if (!options.workDir) rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * Category-filtered search through the graph (JS filter callback) against
 * exact search over the category, by category share, for three kinds of
 * category: clusters queried from inside ("same": the usual "more like this
 * in its own category") and from other clusters ("cross"), and random
 * subsets unrelated to the embedding ("random"). Where the graph stops
 * winning is what the search picks its strategy by.
 */
function measureFilter(
  index: SimilarityIndex,
  randomIndex: SimilarityIndex,
  query: (q: number) => Float32Array,
  queryCluster: (q: number) => number,
  queries: number,
  k: number,
  log: (s: string) => void,
): { crossover_fraction: Record<FilterKind, number | null>; points: FilterPoint[] } {
  const per = 50;
  const points: FilterPoint[] = [];
  const measure = (ix: SimilarityIndex, kind: FilterKind, category: string, size: number, qs: number[]) => {
    if (qs.length === 0) return;
    let t = performance.now();
    ix.similarToVector(query(qs[0]), k, { category, strategy: "exact" });
    const exact_cold_ms = performance.now() - t;
    const exactIds: string[][] = [];
    t = performance.now();
    for (const q of qs) exactIds.push(ix.similarToVector(query(q), k, { category, strategy: "exact" }).map((h) => h.id));
    const exact_ms = (performance.now() - t) / qs.length;
    let recall = 0;
    t = performance.now();
    qs.forEach((q, i) => {
      const got = new Set(ix.similarToVector(query(q), k, { category, strategy: "hnsw" }).map((h) => h.id));
      recall += exactIds[i].filter((id) => got.has(id)).length / exactIds[i].length;
    });
    const hnsw_ms = (performance.now() - t) / qs.length;
    let autoRecall = 0;
    t = performance.now();
    qs.forEach((q, i) => {
      const got = new Set(ix.similarToVector(query(q), k, { category }).map((h) => h.id));
      autoRecall += exactIds[i].filter((id) => got.has(id)).length / exactIds[i].length;
    });
    const auto_ms = (performance.now() - t) / qs.length;
    const p: FilterPoint = {
      kind,
      category,
      size,
      fraction: size / ix.size,
      queries: qs.length,
      hnsw_ms,
      hnsw_recall: recall / qs.length,
      exact_ms,
      exact_cold_ms,
      auto_ms,
      auto_recall: autoRecall / qs.length,
    };
    points.push(p);
    log(
      `filter ${kind} ${category} (${(100 * p.fraction).toFixed(2)}%, ${qs.length} queries): graph ${hnsw_ms.toFixed(2)} ms (recall ${p.hnsw_recall.toFixed(3)}), ` +
        `exact ${exact_ms.toFixed(2)} ms (cold ${exact_cold_ms.toFixed(0)} ms), auto ${auto_ms.toFixed(2)} ms (recall ${p.auto_recall.toFixed(3)})`,
    );
  };

  const counts = [...index.categoryCounts()].sort((a, b) => b[1] - a[1]);
  // Eight clusters spread over the size range.
  const step = Math.max(1, Math.floor(counts.length / 8));
  const picked = counts.filter((_, i) => i % step === 0 || i === counts.length - 1);
  for (const [category, size] of picked) {
    const c = Number(category.slice(1));
    const same: number[] = [];
    const cross: number[] = [];
    for (let q = 0; q < queries; q++) {
      const list = queryCluster(q) === c ? same : cross;
      if (list.length < per) list.push(q);
    }
    measure(index, "same", category, size, same);
    measure(index, "cross", category, size, cross);
  }
  const all = Array.from({ length: Math.min(per, queries) }, (_, q) => q);
  for (const [category, size] of [...randomIndex.categoryCounts()].filter(([c]) => c !== "rest").sort((a, b) => b[1] - a[1])) {
    measure(randomIndex, "random", category, size, all);
  }
  // Per kind: the largest share at which exact search is still at least as fast.
  const crossover = (kind: FilterKind) => {
    const wins = points.filter((p) => p.kind === kind && p.exact_ms <= p.hnsw_ms).map((p) => p.fraction);
    return wins.length ? Math.max(...wins) : null;
  };
  return { crossover_fraction: { same: crossover("same"), cross: crossover("cross"), random: crossover("random") }, points };
}

/** Shares of the random categories of the filter measurement (the rest is "rest"). */
export const RANDOM_CATEGORY_SHARES = [0.4, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005];

/** A category for video `i` independent of its vector: a hash of i into RANDOM_CATEGORY_SHARES. */
function randomCategory(i: number): string {
  let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  const u = ((h ^ (h >>> 16)) >>> 0) / 4294967296;
  let acc = 0;
  for (const share of RANDOM_CATEGORY_SHARES) {
    acc += share;
    if (u < acc) return `r${share * 100}%`;
  }
  return "rest";
}
