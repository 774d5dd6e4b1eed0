/**
 * What the server serves right now: one inference service (the registry's
 * active model, else the configured model directory) and the similarity
 * index's current version, plus the tombstones of videos deleted since that
 * version was built.
 *
 * `refresh()` brings both up to date (the model watcher calls it every few
 * seconds, admin jobs when they finish): a new active model is loaded next to
 * the old one and swapped in by the inference service (calls in flight finish
 * on the old model), a moved index CURRENT is loaded into a new object and
 * swapped by SimilarityIndex.reload (searches in flight finish on the old
 * graph; see SearchPool). Nothing here builds an index: that is native, synchronous work done
 * by a child process (see jobService / indexUpdater).
 */
import { resolve } from "node:path";
import type { Logger } from "pino";
import { readCurrent } from "../../indexer/versions.js";
import type { VideoStore } from "../data/store.js";
import { InferenceService, type InferenceServiceOptions } from "../infer/inferenceService.js";
import { readModelMetadata } from "../infer/modelBundle.js";
import type { ModelRegistry } from "../registry/modelRegistry.js";
import { SearchPool } from "./searchPool.js";

/** Two search threads: the searches of a 2-core machine's both cores, at one graph copy each. */
export const DEFAULT_SEARCH_THREADS = 2;

export interface RuntimeOptions {
  store: VideoStore;
  registry: ModelRegistry;
  /** Served when the registry has no active model. */
  modelDir?: string;
  indexDir: string;
  inference?: InferenceServiceOptions;
  /** Search threads, each with its own copy of the index (default 2). */
  searchThreads?: number;
  logger: Logger;
}

/** Which model should be served: the registry's active one, else the configured directory. */
export interface ModelTarget {
  /** Registry id, or null for a model directory given on the command line. */
  id: string | null;
  dir: string;
  /** sha256 the registry records for it (null when unknown). */
  hash: string | null;
}

export interface RefreshResult {
  model: "unchanged" | "swapped" | "failed";
  index: "unchanged" | "loaded" | "reloaded" | "none" | "failed";
}

export class ServingRuntime {
  readonly tombstones = new Set<string>();
  private indexRef: SearchPool | undefined;
  private target: ModelTarget;
  /** A target that failed to load: not retried until the registry names another. */
  private failedTarget: string | undefined;
  private categoriesDirty = false;
  private refreshing: Promise<RefreshResult> | undefined;
  private queuedRefresh: Promise<RefreshResult> | undefined;
  private closed = false;
  lastModelError: string | null = null;
  lastIndexError: string | null = null;

  private constructor(
    private readonly options: RuntimeOptions,
    readonly service: InferenceService,
    target: ModelTarget,
  ) {
    this.target = target;
    this.servedKey = `${targetKey(target)}\u0000${target.hash ?? ""}`;
  }
  private servedKey: string;

  /** Loads the model to serve and, if one exists, the current index version. */
  static async start(options: RuntimeOptions): Promise<ServingRuntime> {
    const target = resolveTarget(options.registry, options.modelDir);
    const service = await InferenceService.create(target.dir, options.inference);
    const runtime = new ServingRuntime(options, service, target);
    try {
      await runtime.refreshIndex();
    } catch (err) {
      // A broken index is reported by /readyz and retried by the watcher; the model still serves /classify.
      runtime.lastIndexError = (err as Error).message;
      options.logger.error({ err }, "cannot load the similarity index");
    }
    return runtime;
  }

  get store(): VideoStore {
    return this.options.store;
  }

  get indexDir(): string {
    return this.options.indexDir;
  }

  /** The loaded index, or undefined while none has been built. */
  get index(): SearchPool | undefined {
    return this.indexRef;
  }

  /** The model being served (registry id, directory, hash). */
  get model(): { id: string | null; dir: string; hash: string } {
    return { id: this.target.id, dir: this.target.dir, hash: this.service.modelHash };
  }

  /** Label names the served model knows, per space (its model.json). */
  modelLabels(): { category: ReadonlySet<string>; tags: ReadonlySet<string> } {
    const meta = this.service.model;
    if (this.labelCache?.hash !== meta.sha256) {
      this.labelCache = { hash: meta.sha256, category: new Set(meta.labels.categories), tags: new Set(meta.labels.tags) };
    }
    return this.labelCache;
  }
  private labelCache: { hash: string; category: Set<string>; tags: Set<string> } | undefined;

  /** A video's category changed: the index's category filter is reloaded on the next refresh. */
  markCategoriesChanged(): void {
    this.categoriesDirty = true;
  }

  /** Whether `id` is searchable now (in the loaded index and not deleted since). */
  isIndexed(id: string): boolean {
    return this.indexRef !== undefined && this.indexRef.has(id) && !this.tombstones.has(id);
  }

  /**
   * Brings model and index up to date. Refreshes run one at a time; a call
   * made during one waits for it and then runs once more (so a change that
   * prompted the call is always seen), and calls made meanwhile share that run.
   */
  refresh(): Promise<RefreshResult> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => (this.refreshing = undefined));
      return this.refreshing;
    }
    this.queuedRefresh ??= this.refreshing
      .catch(() => undefined)
      .then(() => {
        this.queuedRefresh = undefined;
        return this.refresh();
      });
    return this.queuedRefresh;
  }

  private async doRefresh(): Promise<RefreshResult> {
    if (this.closed) return { model: "unchanged", index: "unchanged" };
    let model: RefreshResult["model"] = "unchanged";
    try {
      model = await this.refreshModel();
      this.lastModelError = null;
    } catch (err) {
      model = "failed";
      this.lastModelError = (err as Error).message;
      this.options.logger.error({ err }, "model swap failed; the previous model stays in service");
    }
    let index: RefreshResult["index"];
    try {
      index = await this.refreshIndex();
      this.lastIndexError = null;
    } catch (err) {
      index = "failed";
      this.lastIndexError = (err as Error).message;
      this.options.logger.error({ err }, "index reload failed; the previous version stays in service");
    }
    return { model, index };
  }

  private async refreshModel(): Promise<RefreshResult["model"]> {
    const want = resolveTarget(this.options.registry, this.options.modelDir);
    // The registry's hash changes when a model directory is re-exported in place.
    const key = `${targetKey(want)}\u0000${want.hash ?? ""}`;
    if (key === this.servedKey || key === this.failedTarget) return "unchanged";
    try {
      const swap = await this.service.swapModel(want.dir);
      this.options.logger.info({ model: want.id, dir: want.dir, hash: swap.modelHash, loadMs: swap.loadMs }, "model swapped in");
    } catch (err) {
      this.failedTarget = key;
      throw err;
    }
    this.target = want;
    this.servedKey = key;
    this.failedTarget = undefined;
    return "swapped";
  }

  private async refreshIndex(): Promise<RefreshResult["index"]> {
    const root = this.options.indexDir;
    const current = readCurrent(root);
    if (current === null) return "none";
    const moved = this.indexRef?.version !== current;
    if (!moved && !this.categoriesDirty) return "unchanged";
    this.categoriesDirty = false;
    // Categories are read when a version is loaded: pass a fresh map every time.
    const categoryOf = this.options.store.videoCategories();
    let result: RefreshResult["index"];
    if (!this.indexRef) {
      this.indexRef = await SearchPool.open(root, categoryOf, this.options.searchThreads ?? DEFAULT_SEARCH_THREADS);
      result = "loaded";
    } else {
      await this.indexRef.load(categoryOf);
      result = "reloaded";
    }
    // Deleted videos the loaded version no longer holds need no tombstone.
    for (const id of this.tombstones) if (!this.indexRef.has(id)) this.tombstones.delete(id);
    if (moved) this.options.logger.info({ version: this.indexRef.version, videos: this.indexRef.size }, "index version loaded");
    return result;
  }

  /** Stops refreshing, then drains and closes the inference service. */
  async close(): Promise<void> {
    this.closed = true;
    await this.refreshing?.catch(() => undefined);
    await Promise.all([this.service.close({ drain: true }), this.indexRef?.close()]);
  }
}

function targetKey(t: ModelTarget): string {
  return `${t.id ?? ""}\u0000${t.dir}`;
}

/** The registry's active model if there is one, else `modelDir`. */
export function resolveTarget(registry: ModelRegistry, modelDir: string | undefined): ModelTarget {
  const active = registry.active();
  if (active) return { id: active.id, dir: resolve(active.dir), hash: active.modelHash };
  if (!modelDir) throw new Error("no model to serve: the registry has no active model and no --model directory was given (give --model DIR, promote one with `vidrecall models promote`, or run `npm start` / `vidrecall serve --bootstrap` for the demo)");
  return { id: null, dir: resolve(modelDir), hash: null };
}

/** The sha256 model.json records for a model directory (throws a clear error when it is not an exported model). */
export function modelHashOf(dir: string): string {
  return readModelMetadata(dir).sha256;
}
