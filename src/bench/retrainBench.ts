/**
 * `bench retrain`: learning new tags with a `heads` retrain, on the shared
 * YouTube-8M shards.
 *
 * 1. A copy of the `bench quality` database (the same import: shards
 *    0000–0059 train, 10% of them the `validate` holdout; 0060–0079 `test`),
 *    or a fresh import when there is none.
 * 2. Five frequent tags are held out entirely: their assignments are written
 *    to a label file and the labels are deleted from the store (every other
 *    tag keeps its index).
 * 3. The "before" model (the `video-level` preset) is trained on that store,
 *    registered and made active. It cannot know the held-out tags: their
 *    AP before is 0 by construction.
 * 4. The held-out labels are imported back (`labels import`): they are new
 *    names, so they get new indices at the end of the tag space.
 * 5. A `heads` retrain from the active model, with the promotion gate;
 *    reported: AP of each new tag on the holdout, GAP@20 over the old tags
 *    before and after, the retrain's wall time, and whether the gate promoted.
 *
 * The before model (step 3) is kept in the work directory and reused by later
 * runs with the same held-out tags (resumed first if its training was stopped
 * part-way); steps 4–5 run every time (the imported
 * labels are deleted again first, so each run starts from the same store,
 * and the before model's fused-feature cache is removed, so the retrain time
 * includes computing them).
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { importLabelFile } from "../data/labelFile.js";
import { VideoStore } from "../data/store.js";
import { ModelRegistry } from "../registry/modelRegistry.js";
import { promoteModel } from "../registry/promotion.js";
import { FUSED_CACHE_FILE } from "../train/fusedFeatures.js";
import { retrain } from "../train/retrain.js";
import { loadModelConfig } from "../train/modelFiles.js";
import { readCheckpoint } from "../train/checkpoint.js";
import { BEST_CHECKPOINT, LAST_CHECKPOINT, storeLabelSpaces, train } from "../train/trainer.js";
import { writeFileAtomic } from "../util/files.js";
import { ensureStore } from "./qualityBench.js";

export const BEFORE_MODEL_ID = "bench-before";

export interface HoldOutPlan {
  tags: string[];
  /** Frequency rank in the store (1 = most frequent) of each held-out tag. */
  ranks: number[];
  labelFile: string;
  assignments: number;
}

/**
 * The default held-out tags: every other one of the 10 most frequent
 * tags in the store (ranks 1, 3, 5, 7, 9), so that frequent near-synonym pairs
 * (Game / Video game) are not both removed and the task stays "new tag", not
 * "new concept the features were never trained to separate".
 */
export function defaultHeldOutTags(store: VideoStore): { tags: string[]; ranks: number[] } {
  const top = store.stats(10).top_tags;
  if (top.length < 9) throw new Error(`the store has only ${top.length} tags in use; the bench needs at least 9`);
  const ranks = [1, 3, 5, 7, 9];
  return { tags: ranks.map((r) => top[r - 1].name), ranks };
}

/** The work directory's database: a copy of the quality bench's import (or a fresh one). */
export async function benchStore(dataDir: string, workDir: string, sourceDb: string, log: (s: string) => void): Promise<VideoStore> {
  const db = join(workDir, "yt8m.sqlite");
  if (existsSync(db)) return VideoStore.open(db);
  if (existsSync(sourceDb)) {
    log(`copying ${sourceDb} to ${db}…`);
    const src = VideoStore.open(sourceDb, { readonly: true });
    try {
      src.copyTo(db);
    } finally {
      src.close();
    }
    return VideoStore.open(db);
  }
  return ensureStore(dataDir, db, log);
}

/**
 * Holds the tags out: writes `id,tags` rows of every assignment to a CSV
 * label file and deletes the labels. Idempotent per work directory: a store
 * whose held-out tags are already gone keeps the existing label file.
 */
export function holdOutTags(store: VideoStore, workDir: string, tags: string[], ranks: number[], log: (s: string) => void): HoldOutPlan {
  const labelFile = join(workDir, "heldout_labels.csv");
  const planFile = join(workDir, "heldout.json");
  if (existsSync(planFile)) {
    const plan = JSON.parse(readFileSync(planFile, "utf8")) as HoldOutPlan;
    if (plan.tags.join("\n") !== tags.join("\n")) throw new Error(`${workDir} holds out ${plan.tags.join(", ")}, not ${tags.join(", ")}; use another --work-dir`);
    // A previous run imported them back: take them out again.
    for (const t of tags) if (store.labelIndex("tags", t) !== undefined) store.deleteLabel("tags", t);
    return plan;
  }
  const byVideo = new Map<string, string[]>();
  for (const t of tags) for (const id of store.videosWithLabel("tags", t)) byVideo.set(id, [...(byVideo.get(id) ?? []), t]);
  const csv = ["id,tags", ...[...byVideo].map(([id, ts]) => `${csvField(id)},${csvField(ts.join("|"))}`)].join("\n") + "\n";
  writeFileAtomic(labelFile, csv);
  let assignments = 0;
  store.transaction(() => {
    for (const t of tags) assignments += store.deleteLabel("tags", t);
  });
  const plan: HoldOutPlan = { tags, ranks, labelFile, assignments };
  writeFileAtomic(planFile, JSON.stringify(plan, null, 2) + "\n");
  log(`held out ${tags.join(", ")}: ${assignments} assignments on ${byVideo.size} videos, saved to ${labelFile}`);
  return plan;
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Trains (or reuses) the before model and makes it the registry's active model. */
export async function ensureBeforeModel(store: VideoStore, workDir: string, options: { epochs?: number; backend?: string; log: (s: string) => void }): Promise<string> {
  const dir = join(workDir, "models", "before");
  const registry = new ModelRegistry(store);
  let validation: Record<string, unknown> | null = null;
  const config = (() => {
    const c = loadModelConfig("video-level");
    return options.epochs ? { ...c, training: { ...c.training, epochs: options.epochs } } : c;
  })();
  // A run that was stopped part-way (its last.ckpt not finished) is resumed, not used as it stands.
  const lastPath = join(dir, LAST_CHECKPOINT);
  const unfinished = existsSync(lastPath) && !readCheckpoint(lastPath).header.position.finished;
  if (!existsSync(join(dir, BEST_CHECKPOINT)) || unfinished) {
    if (!unfinished) rmSync(dir, { recursive: true, force: true });
    options.log(`${unfinished ? "resuming" : "training"} the before model (video-level preset, without the held-out tags) in ${dir}…`);
    const started = performance.now();
    const r = await train(store, config, dir, {
      resume: unfinished,
      labels: storeLabelSpaces(store),
      backend: options.backend,
      log: options.log,
      onEval: (e) => options.log(`before: epoch ${e.epoch} step ${e.step}: loss ${e.train_loss.toFixed(3)}, holdout gap20 ${e.metrics.gap20?.toFixed(4)}, ${e.videos_per_s.toFixed(0)} videos/s`),
    });
    options.log(`before model trained in ${((performance.now() - started) / 1000).toFixed(0)} s (${r.steps} steps)`);
    validation = r.best.metrics ? { validation: r.best.metrics } : null;
  }
  if (!registry.get(BEFORE_MODEL_ID)) {
    if (!validation) {
      const m = readCheckpoint(join(dir, BEST_CHECKPOINT)).header.metrics;
      validation = m ? { validation: m } : null;
    }
    registry.register({
      id: BEFORE_MODEL_ID,
      dir,
      mode: "scratch",
      config,
      snapshot: { videos: store.countVideos(), labelSpaces: { category: store.labelSpaceSize("category"), tags: store.labelSpaceSize("tags") } },
      metrics: validation,
    });
  }
  return dir;
}

/** Imports the held-out labels back (new names: new indices at the end of the tag space). */
export async function restoreHeldOut(store: VideoStore, plan: HoldOutPlan) {
  return importLabelFile(store, plan.labelFile, { provenance: "manual" });
}

export interface RetrainBenchResult {
  held_out: { tags: string[]; training_frequency_ranks: number[]; assignments: number };
  /** New tag → holdout AP after the heads retrain (before: 0 by construction, see new_tags_before). */
  new_tags: Record<string, number | null>;
  new_tags_before: Record<string, number>;
  new_tag_positives: Record<string, number>;
  min_new_tag_ap: number | null;
  old_gap20_before: number | null;
  old_gap20_after: number | null;
  old_category_accuracy_before: number | null;
  old_category_accuracy_after: number | null;
  retrain_s: number;
  timings: { features_s: number; train_s: number; evaluate_s: number };
  features: { cached: number; computed: number } | undefined;
  promoted: boolean;
  gate: { passed: boolean; reasons: string[]; checks: string[] };
  promote_s: number | null;
  model_id: string;
  before_model_dir: string;
  videos: { train: number; holdout: number };
  backend?: string;
}

export async function benchRetrain(options: {
  dataDir: string;
  workDir: string;
  sourceDb: string;
  tags?: string[];
  epochs?: number;
  keepFeatureCache?: boolean;
  backend?: string;
  log: (s: string) => void;
}): Promise<RetrainBenchResult> {
  const { log, workDir } = options;
  const store = await benchStore(options.dataDir, workDir, options.sourceDb, log);
  try {
    const planFile = join(workDir, "heldout.json");
    let chosen: { tags: string[]; ranks: number[] };
    if (options.tags) chosen = { tags: options.tags, ranks: options.tags.map(() => -1) };
    else if (existsSync(planFile)) {
      const p = JSON.parse(readFileSync(planFile, "utf8")) as HoldOutPlan;
      chosen = { tags: p.tags, ranks: p.ranks };
    } else chosen = defaultHeldOutTags(store);
    const plan = holdOutTags(store, workDir, chosen.tags, chosen.ranks, log);
    const beforeDir = await ensureBeforeModel(store, workDir, { epochs: options.epochs, backend: options.backend, log });
    const registry = new ModelRegistry(store);
    if (registry.active()?.id !== BEFORE_MODEL_ID) registry.promote(BEFORE_MODEL_ID);
    if (!options.keepFeatureCache) rmSync(join(beforeDir, FUSED_CACHE_FILE), { force: true });

    const imported = await restoreHeldOut(store, plan);
    log(`labels import: ${imported.videos} videos, new tags ${imported.newLabels.tags.join(", ")}`);
    log("heads retrain from the before model…");
    const r = await retrain(store, { from: BEFORE_MODEL_ID, mode: "heads", backend: options.backend, log });
    let promoted = false;
    let promote_s: number | null = null;
    if (r.gate.passed) {
      const p = await promoteModel(store, r.id, { indexDir: join(workDir, "index"), log });
      promoted = true;
      promote_s = p.promote_s;
    } else log(`gate kept ${r.id} a candidate: ${r.gate.reasons.join("; ")}`);
    const aps = Object.fromEntries(Object.entries(r.holdout.new_tags).map(([k, v]) => [k, v.ap]));
    const known = Object.values(aps).filter((x): x is number => x !== null);
    return {
      held_out: { tags: plan.tags, training_frequency_ranks: plan.ranks, assignments: plan.assignments },
      new_tags: aps,
      new_tags_before: Object.fromEntries(Object.entries(r.parentHoldout.new_tags).map(([k, v]) => [k, v.ap ?? 0])),
      new_tag_positives: Object.fromEntries(Object.entries(r.holdout.new_tags).map(([k, v]) => [k, v.positives])),
      min_new_tag_ap: known.length ? Math.min(...known) : null,
      old_gap20_before: r.parentHoldout.old.gap20,
      old_gap20_after: r.holdout.old.gap20,
      old_category_accuracy_before: r.parentHoldout.old.category_accuracy,
      old_category_accuracy_after: r.holdout.old.category_accuracy,
      retrain_s: r.timings.total_s,
      timings: { features_s: r.timings.features_s, train_s: r.timings.train_s, evaluate_s: r.timings.evaluate_s },
      features: r.features,
      promoted,
      gate: { passed: r.gate.passed, reasons: r.gate.reasons, checks: r.gate.checks },
      promote_s,
      model_id: r.id,
      before_model_dir: beforeDir,
      videos: { train: store.videoIds("train").length, holdout: store.videoIds("validate").length },
      backend: options.backend,
    };
  } finally {
    store.close();
  }
}
