/**
 * Promotion and rollback: what moves the served model and index.
 *
 * Promote (a candidate that passed the gate, or any model with `force`):
 * 1. export: model.onnx + model.json in the model's directory (checked
 *    against tfjs), unless an export of its checkpoint is already there;
 * 2. index: when another registered model with the same embedding hash (a
 *    `heads` retrain's parent) has an index version still on disk, that
 *    version is reused and made current; otherwise, if there is an index at
 *    all, the store is re-embedded with the new model and a new version is
 *    built and made current (indexer/reindex.ts);
 * 3. the registry makes it active (one transaction; the previous active model
 *    is retired). A running server polls the registry and CURRENT and swaps
 *    both.
 *
 * Rollback: the previous active model's index version is made current again
 * (it is never pruned while a registered model that was active names it),
 * then the registry restores that model.
 *
 * Index versions named by models that are or were active are excluded from
 * pruning, so a rollback always finds its version.
 */
// Loaded in the main thread before any inference worker starts: a native addon first
// loaded by a worker that has since exited cannot be loaded again in this process
// (Node: "Module did not self-register"), and the export's parity check loads it here.
import "onnxruntime-node";
import { closeSync, existsSync, openSync, readFileSync, readSync } from "node:fs";
import { join, resolve } from "node:path";
import { reindex, type ReindexProgress } from "../../indexer/reindex.js";
import { acquireLock, CURRENT_FILE, flipCurrent, listVersions, pruneVersions, readCurrent } from "../../indexer/versions.js";
import { DEFAULT_KEEP_VERSIONS } from "../../indexer/build.js";
import type { VideoStore } from "../data/store.js";
import { exportModel, METADATA_FILE, ONNX_FILE, type ExportMetadata } from "../export/exportModel.js";
import { InferenceService } from "../infer/inferenceService.js";
import { storeEmbedder } from "../infer/storeEmbedder.js";
import { BEST_CHECKPOINT } from "../train/trainer.js";
import { loadTrainedModel } from "../train/modelFiles.js";
import { ModelRegistry, type ModelRecord } from "./modelRegistry.js";
import type { GateResult } from "./gate.js";

export type PromotionStage = "export" | "reindex" | "promote";

export interface PromotionProgress {
  stage: PromotionStage | `reindex:${ReindexProgress["stage"]}`;
  done: number;
  total?: number;
}

export interface PromoteOptions {
  /** Index root (default data/index). */
  indexDir: string;
  /** Promote even if the gate kept the model a candidate. */
  force?: boolean;
  /** Complete index versions kept besides those registered models need (default 3). */
  keep?: number;
  onProgress?: (p: PromotionProgress) => void;
  log?: (line: string) => void;
}

export interface PromoteResult {
  id: string;
  dir: string;
  modelHash: string;
  /** Index version now current for this model (null: no index). */
  indexVersion: string | null;
  /** "reused" (from `reusedFrom`, embedding unchanged), "built" (reindexed), "none" (no index to keep in line). */
  index: "reused" | "built" | "none";
  reusedFrom?: string;
  exported: boolean;
  previous: string | null;
  promote_s: number;
}

function gateOf(m: ModelRecord): GateResult | undefined {
  return (m.metrics?.gate as GateResult | undefined) ?? undefined;
}

function versionOnDisk(root: string, name: string | null): boolean {
  return name !== null && listVersions(root).some((v) => v.name === name && v.complete);
}

/** An export of the model's current best checkpoint, if one is in its directory. */
function existingExport(dir: string): ExportMetadata | undefined {
  const metaFile = join(dir, METADATA_FILE);
  if (!existsSync(metaFile) || !existsSync(join(dir, ONNX_FILE))) return undefined;
  const meta = JSON.parse(readFileSync(metaFile, "utf8")) as ExportMetadata;
  const ckpt = resolve(dir, meta.source.checkpoint);
  if (ckpt !== resolve(dir, BEST_CHECKPOINT)) return undefined;
  // The checkpoint was rewritten after the export: export again.
  return existsSync(ckpt) && checkpointCreatedAt(ckpt) === meta.source.createdAt ? meta : undefined;
}

/** A checkpoint's createdAt, from its header alone (the tensors are not read). */
function checkpointCreatedAt(file: string): string | undefined {
  const fd = openSync(file, "r");
  try {
    const head = Buffer.alloc(12);
    if (readSync(fd, head, 0, 12, 0) < 12) return undefined;
    const len = head.readUInt32LE(8);
    const json = Buffer.alloc(len);
    if (readSync(fd, json, 0, len, 12) < len) return undefined;
    return (JSON.parse(json.toString("utf8")) as { createdAt?: string }).createdAt;
  } finally {
    closeSync(fd);
  }
}

/** Prunes old index versions, never those registered models may need. */
export function pruneIndex(root: string, registry: ModelRegistry, keep = DEFAULT_KEEP_VERSIONS): string[] {
  if (!existsSync(join(root, CURRENT_FILE))) return [];
  const release = acquireLock(root);
  try {
    return pruneVersions(root, keep, registry.pinnedIndexVersions());
  } finally {
    release();
  }
}

function flipUnderLock(root: string, name: string): void {
  const release = acquireLock(root);
  try {
    flipCurrent(root, name);
  } finally {
    release();
  }
}

export async function promoteModel(store: VideoStore, id: string, options: PromoteOptions): Promise<PromoteResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const progress = options.onProgress ?? (() => {});
  const registry = new ModelRegistry(store);
  const rec = registry.require(id);
  const gate = gateOf(rec);
  if (rec.status === "candidate" && gate && !gate.passed && !options.force) {
    throw new Error(`model "${id}" did not pass the promotion gate (${gate.reasons.join("; ")}); promote with --force to override`);
  }
  const previous = registry.active();

  // 1. Export.
  progress({ stage: "export", done: 0, total: 1 });
  let meta = existingExport(rec.dir);
  let exported = false;
  if (!meta) {
    const loaded = loadTrainedModel(rec.dir);
    try {
      meta = (await exportModel(loaded, rec.dir, { verify: {} })).metadata;
      exported = true;
    } finally {
      loaded.model.dispose();
    }
    log(`exported ${join(rec.dir, ONNX_FILE)} (sha256 ${meta.onnx.sha256.slice(0, 16)}…)`);
  }
  const modelHash = meta.onnx.sha256;
  progress({ stage: "export", done: 1, total: 1 });

  // 2. Index.
  const root = options.indexDir;
  let indexVersion: string | null = null;
  let index: PromoteResult["index"] = "none";
  let reusedFrom: string | undefined;
  const twin = [rec, ...(previous ? [previous] : []), ...registry.list()].find(
    (m) => rec.embeddingHash !== null && m.embeddingHash === rec.embeddingHash && versionOnDisk(root, m.indexVersion),
  );
  if (twin) {
    indexVersion = twin.indexVersion;
    index = "reused";
    reusedFrom = twin.id === rec.id ? undefined : twin.id;
    if (readCurrent(root) !== indexVersion) flipUnderLock(root, indexVersion!);
    log(`index: ${indexVersion} reused${reusedFrom ? ` from "${reusedFrom}" (same embedding)` : ""}`);
  } else if (existsSync(join(root, CURRENT_FILE))) {
    progress({ stage: "reindex", done: 0 });
    const service = await InferenceService.create(rec.dir);
    try {
      // Keep every version during the build; pruning below spares the registry's.
      const r = await reindex({
        store,
        embedder: storeEmbedder(service, store),
        root,
        keep: Number.MAX_SAFE_INTEGER,
        pruneEmbeddings: false,
        onProgress: (p) => progress({ stage: `reindex:${p.stage}`, done: p.done, total: p.total }),
      });
      indexVersion = r.version;
      index = "built";
      log(`index: built ${r.version} (${r.count} videos, ${r.embedded} embedded) in ${r.total_s.toFixed(1)} s`);
    } finally {
      await service.close();
    }
  } else {
    log(`index: none at ${root} (build one with \`vidrecall reindex\`)`);
  }

  // 3. Registry.
  progress({ stage: "promote", done: 0, total: 1 });
  registry.update(id, { modelHash, indexVersion });
  registry.promote(id);
  if (index === "built") pruneIndex(root, registry, options.keep);
  progress({ stage: "promote", done: 1, total: 1 });
  return {
    id,
    dir: rec.dir,
    modelHash,
    indexVersion,
    index,
    reusedFrom,
    exported,
    previous: previous && previous.id !== id ? previous.id : null,
    promote_s: (performance.now() - started) / 1000,
  };
}

export interface RollbackResult {
  from: string;
  to: string;
  dir: string;
  indexVersion: string | null;
  /** Whether CURRENT was moved. */
  indexFlipped: boolean;
}

/** Restores the previously active model and its index version (see the module comment). */
export function rollbackModel(store: VideoStore, options: { indexDir: string }): RollbackResult {
  const registry = new ModelRegistry(store);
  const current = registry.active();
  if (!current) throw new Error("no active model to roll back from");
  const prev = registry.previous();
  if (!prev) throw new Error(`model "${current.id}" has no previously active model to roll back to`);
  const root = options.indexDir;
  let flipped = false;
  if (prev.indexVersion) {
    if (!versionOnDisk(root, prev.indexVersion)) {
      throw new Error(`model "${prev.id}" used index version ${prev.indexVersion}, which is not in ${root} any more; nothing changed (promote it with \`models promote ${prev.id} --force\` to reindex)`);
    }
    if (readCurrent(root) !== prev.indexVersion) {
      flipUnderLock(root, prev.indexVersion);
      flipped = true;
    }
  }
  const { to } = registry.rollback();
  return { from: current.id, to: to.id, dir: to.dir, indexVersion: prev.indexVersion, indexFlipped: flipped };
}
