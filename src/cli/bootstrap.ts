/**
 * The embedded default (`npm start`): whatever of database, model and index
 * is missing is made, with the same functions the CLI commands use, then the
 * server starts on it.
 *
 *   1. no videos in the database  → demo data (`vidrecall demo-data`, 5000 videos)
 *   2. no active model in the registry and no exported model in the model
 *      directory → train the demo-small preset (`vidrecall train`; an
 *      interrupted first start resumes from last.ckpt), export it
 *      (`vidrecall export`), register it and make it active
 *   3. no index → `vidrecall reindex`
 *
 * Each step's output is on disk, so a later start skips straight to serving.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { readCurrent, readManifest } from "../../indexer/versions.js";
import { writeDemoData } from "../data/demo.js";
import { VideoStore } from "../data/store.js";
import { readModelMetadata } from "../infer/modelBundle.js";
import { ModelRegistry } from "../registry/modelRegistry.js";
import { selectBackend } from "../train/backend.js";
import { loadModelConfig } from "../train/modelFiles.js";
import { LAST_CHECKPOINT, train } from "../train/trainer.js";
import { runExportCommand } from "./exportCommand.js";
import { runReindex } from "./indexCommands.js";
import { createProgress } from "./progress.js";
import { DEFAULT_EF, DEFAULT_EF_CONSTRUCTION, DEFAULT_KEEP_VERSIONS, DEFAULT_M, DEFAULT_REBUILD_THRESHOLD } from "../../indexer/build.js";
import { DEFAULT_EMBED_BATCH } from "../../indexer/reindex.js";

export interface BootstrapOptions {
  db: string;
  /** Where the demo model is trained and exported. */
  modelDir: string;
  indexDir: string;
  videos: number;
  preset: string;
  log: (line: string) => void;
}

export interface BootstrapResult {
  /** Steps that ran (empty on a start that found everything). */
  made: string[];
  modelDir: string;
}

export async function bootstrap(o: BootstrapOptions): Promise<BootstrapResult> {
  const made: string[] = [];
  const store = VideoStore.open(o.db);
  let modelDir: string;
  try {
    if (store.countVideos() === 0) {
      o.log(`no videos in ${o.db}: generating the demo dataset (${o.videos} videos)`);
      const progress = createProgress("demo-data", o.videos);
      const summary = writeDemoData(store, { videos: o.videos, seed: 1, onProgress: (n) => progress.update(n) });
      progress.stop();
      o.log(`wrote ${summary.videos} demo videos (${summary.categories} categories, ${summary.tags} tags)`);
      made.push("demo-data");
    }

    const registry = new ModelRegistry(store);
    const active = registry.active();
    if (active && existsSync(join(active.dir, "model.json"))) {
      modelDir = active.dir;
    } else {
      modelDir = resolve(o.modelDir);
      if (!existsSync(join(modelDir, "model.json"))) {
        const backend = await selectBackend("auto");
        const resume = existsSync(join(modelDir, LAST_CHECKPOINT));
        o.log(`no model: ${resume ? "resuming" : "training"} the ${o.preset} preset into ${modelDir} (backend: ${backend.description}); this takes a few minutes once`);
        let bar: ReturnType<typeof createProgress> | undefined;
        // One bar per epoch (validation lines go in between), counting from where it starts.
        let from = 0;
        const result = await train(store, loadModelConfig(o.preset), modelDir, {
          resume,
          backend: backend.name,
          onProgress: (p) => {
            if (!bar) {
              from = p.step - 1;
              bar = createProgress(`train epoch ${p.epoch + 1}`, p.batchesPerEpoch - p.batchInEpoch + 1, "steps");
            }
            bar.update(p.step - from, { loss: p.loss.toFixed(4) });
          },
          onEval: (r) => {
            bar?.stop();
            bar = undefined;
            o.log(`epoch ${r.epoch}: gap20 ${r.metrics.gap20?.toFixed(4)}, category accuracy ${r.metrics.category_accuracy?.toFixed(4)}${r.best ? " (best)" : ""}`);
          },
        });
        bar?.stop();
        o.log(`trained ${result.steps} steps; best gap20 ${result.best.gap20.toFixed(4)}`);
        made.push("train");
        for (const line of await runExportCommand({ model: modelDir, verify: true })) o.log(line);
        made.push("export");
      }
      registerActive(registry, store, modelDir, o.preset);
    }
  } finally {
    store.close();
  }

  if (!existsSync(o.indexDir) || readCurrent(o.indexDir) === null) {
    o.log(`no index in ${o.indexDir}: embedding the videos and building it`);
    const r = await runReindex({
      db: o.db,
      model: modelDir,
      indexDir: o.indexDir,
      batchSize: DEFAULT_EMBED_BATCH,
      m: DEFAULT_M,
      efConstruction: DEFAULT_EF_CONSTRUCTION,
      ef: DEFAULT_EF,
      keep: DEFAULT_KEEP_VERSIONS,
      rebuildThreshold: DEFAULT_REBUILD_THRESHOLD,
      progress: "bar",
    });
    o.log(`index ${r.version}: ${r.count} videos (${r.total_s.toFixed(1)} s)`);
    made.push("index");
  }
  recordIndexVersion(o.db, o.indexDir);
  return { made, modelDir };
}

/** Registers the exported model in `dir` (if it is not yet) and makes it the active one. */
function registerActive(registry: ModelRegistry, store: VideoStore, dir: string, preset: string): void {
  const meta = readModelMetadata(dir);
  const existing = registry.list().find((m) => resolve(m.dir) === dir && m.modelHash === meta.sha256);
  const id = existing?.id ?? `${preset}-${meta.sha256.slice(0, 12)}`;
  if (!existing) {
    const stats = store.stats();
    let metrics: Record<string, unknown> | null = meta.metadata.source.metrics ?? null;
    // The training log's last validation, when the export does not carry metrics.
    if (!metrics && existsSync(join(dir, "train_log.jsonl"))) {
      const lines = readFileSync(join(dir, "train_log.jsonl"), "utf8").trim().split("\n");
      metrics = (JSON.parse(lines[lines.length - 1]) as { metrics?: Record<string, unknown> }).metrics ?? null;
    }
    registry.register({
      id,
      dir,
      mode: "scratch",
      config: meta.config,
      snapshot: { videos: stats.videos, labelSpaces: { category: stats.categories, tags: stats.tags } },
      metrics,
      modelHash: meta.sha256,
      embeddingHash: meta.embeddingSha256,
    });
  }
  if (registry.active()?.id !== id) registry.promote(id);
}

/**
 * Names the current index version in the active model's registry entry when
 * it has none and the index holds that model's embeddings, so a later
 * `models rollback` to it restores its index too.
 */
function recordIndexVersion(db: string, indexDir: string): void {
  const current = existsSync(indexDir) ? readCurrent(indexDir) : null;
  if (!current) return;
  const store = VideoStore.open(db);
  try {
    const registry = new ModelRegistry(store);
    const active = registry.active();
    if (!active || active.indexVersion) return;
    const embeddingHash = active.embeddingHash ?? readModelMetadata(active.dir).embeddingSha256;
    if (readManifest(indexDir, current).modelHash !== embeddingHash) return;
    registry.update(active.id, { indexVersion: current, ...(active.embeddingHash ? {} : { embeddingHash }) });
  } finally {
    store.close();
  }
}
