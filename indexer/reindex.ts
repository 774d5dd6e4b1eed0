/**
 * Reindex: bring the similar-video index in line with the store and a model.
 *
 * 1. Embed: every video without an embedding from this model (new videos,
 *    videos whose features changed — the store drops their embeddings — and
 *    everything when the model is new) is embedded in batches; each batch is
 *    committed to the store's `embeddings` table on its own. A crash loses at
 *    most the batch in flight, and the next run skips what is stored.
 * 2. Index: a full build streams all of the model's stored embeddings into a
 *    new version; `incremental` updates the current version instead, with the
 *    embeddings written since that version began (and any stored video the
 *    index lacks) upserted, and the index's videos no longer in the store
 *    removed. Either way CURRENT flips only after the new version verifies
 *    (indexer/build.ts).
 *
 * An incremental run against an index built from another model refuses
 * before embedding anything (ModelMismatchError): vectors of two models never
 * share an index.
 */
import { existsSync } from "node:fs";
import type { VideoStore } from "../src/data/store.js";
import { buildIndex, ModelMismatchError, updateIndex, type BuildProgress, type BuildResult } from "./build.js";
import { embedEntries, type Embedder, type IndexEntry } from "./embedder.js";
import { listVersions, readCurrent, readIds, readManifest } from "./versions.js";

export const DEFAULT_EMBED_BATCH = 256;

export type ReindexStage = "embed" | BuildProgress["stage"];

export interface ReindexProgress {
  stage: ReindexStage;
  done: number;
  total?: number;
}

export interface ReindexOptions {
  store: VideoStore;
  embedder: Embedder;
  /** Index root, e.g. data/index. */
  root: string;
  /** Update the current version in place of a full build (falls back to a full build when there is none). */
  incremental?: boolean;
  batchSize?: number;
  M?: number;
  efConstruction?: number;
  ef?: number;
  keep?: number;
  rebuildThreshold?: number;
  /** Drop stored embeddings of models no kept index version uses (default true). */
  pruneEmbeddings?: boolean;
  onProgress?: (p: ReindexProgress) => void;
}

export interface ReindexResult extends BuildResult {
  modelHash: string;
  /** Videos embedded by this run. */
  embedded: number;
  /** Videos whose stored embedding was reused. */
  reused: number;
  embed_s: number;
  total_s: number;
  /** Embedding rows of other models dropped. */
  embeddings_pruned: number;
}

const seconds = (since: number) => (performance.now() - since) / 1000;

/** Version directory names encode their start time: v-<ms>-<n>. */
function versionStartMs(root: string, name: string): number {
  const v = listVersions(root).find((x) => x.name === name);
  if (!v) throw new Error(`index ${root}: current version ${name} is not on disk`);
  return v.createdMs;
}

export async function reindex(options: ReindexOptions): Promise<ReindexResult> {
  const started = performance.now();
  const { store, embedder, root } = options;
  const modelHash = embedder.modelHash;
  const current = existsSync(root) ? readCurrent(root) : null;
  const incremental = options.incremental === true && current !== null;
  if (incremental) {
    const m = readManifest(root, current!);
    // Refuse before any work: an incremental run must not start embedding with the wrong model.
    if (m.modelHash !== modelHash) throw new ModelMismatchError(m.modelHash, modelHash, root);
    if (m.dim !== embedder.dim) throw new Error(`index ${root} has dim ${m.dim}, the model's embeddings have dim ${embedder.dim}: run a full rebuild`);
  }

  // 1. Embed what is missing, one committed batch at a time.
  const todo = store.videosWithoutEmbedding(modelHash);
  const total = store.countVideos();
  const reused = total - todo.length;
  const embedStarted = performance.now();
  options.onProgress?.({ stage: "embed", done: reused, total });
  let embedded = 0;
  let batch: IndexEntry[] = [];
  const batchSize = options.batchSize ?? DEFAULT_EMBED_BATCH;
  const flush = () => {
    store.putEmbeddings(modelHash, batch);
    embedded += batch.length;
    batch = [];
    options.onProgress?.({ stage: "embed", done: reused + embedded, total });
  };
  for await (const entry of embedEntries(embedder, todo, batchSize)) {
    batch.push(entry);
    if (batch.length >= batchSize) flush();
  }
  if (batch.length > 0) flush();
  const embed_s = seconds(embedStarted);
  // A version's name holds its start time, and the next incremental run
  // upserts embeddings written at or after it: step past this run's last
  // write so its embeddings do not count as newer than the version built from them.
  const lastWrite = Date.now();
  while (Date.now() <= lastWrite) await new Promise((resolve) => setTimeout(resolve, 1));

  // 2. Index.
  const common = {
    root,
    modelHash,
    dim: embedder.dim,
    M: options.M,
    efConstruction: options.efConstruction,
    ef: options.ef,
    keep: options.keep,
    onProgress: (p: BuildProgress) => options.onProgress?.({ stage: p.stage, done: p.done ?? 0, ...(p.stage === "insert" ? { total } : {}) }),
  };
  let result: BuildResult;
  if (incremental) {
    const base = readCurrent(root)!;
    const since = versionStartMs(root, base);
    const indexed = new Set(readIds(root, base).filter((id): id is string => id !== null));
    const inStore = new Set(store.videoIds());
    const upsertIds = new Set(store.embeddedSince(modelHash, since));
    for (const id of inStore) if (!indexed.has(id)) upsertIds.add(id);
    const remove = [...indexed].filter((id) => !inStore.has(id));
    const upsert = function* (): Generator<IndexEntry> {
      const ids = [...upsertIds];
      for (let i = 0; i < ids.length; i += 1024) {
        const vectors = store.getEmbeddings(modelHash, ids.slice(i, i + 1024));
        for (const [id, vector] of vectors) yield { id, vector };
      }
    };
    result = await updateIndex({ upsert: upsert(), remove }, { ...common, rebuildThreshold: options.rebuildThreshold });
  } else {
    result = await buildIndex(store.iterateEmbeddings(modelHash), { ...common, expectedCount: store.countEmbeddings(modelHash) });
  }

  // Embeddings only matter for models some kept version was built from.
  let pruned = 0;
  if (options.pruneEmbeddings !== false) {
    const keepHashes = new Set<string>([modelHash]);
    for (const v of listVersions(root)) if (v.complete) keepHashes.add(readManifest(root, v.name).modelHash);
    pruned = store.pruneEmbeddings([...keepHashes]);
  }
  return { ...result, modelHash, embedded, reused, embed_s, total_s: seconds(started), embeddings_pruned: pruned };
}
