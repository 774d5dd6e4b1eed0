/**
 * `vidrecall retrain`: a candidate from the active (or a given) model on the
 * store's current labels, gated on the holdout, optionally promoted.
 *
 * Output: a progress bar per stage on stderr and a JSON summary on stdout;
 * with `--progress jsonl`, JSON lines on stdout for a supervising process
 * (the server's /admin/retrain): `{"event":"progress","stage","done","total"}`,
 * then `{"event":"result", …summary}`, or `{"event":"error","message"}` and
 * exit status 1.
 */
import { Option, type Command } from "commander";
import { VideoStore } from "../data/store.js";
import type { GateResult } from "../registry/gate.js";
import type { HoldoutMetrics } from "../registry/holdout.js";
import { promoteModel, type PromoteResult } from "../registry/promotion.js";
import { selectBackend, type BackendChoice } from "../train/backend.js";
import { RETRAIN_MODES, retrain, type RetrainMode, type RetrainResult } from "../train/retrain.js";
import { writeJsonAtomic } from "../bench/report.js";
import { DEFAULT_INDEX_DIR, emitJsonl, progressFormatOption, type ProgressFormat } from "./indexCommands.js";
import { backendOption, dbOption, parsePositiveInt } from "./options.js";
import { createProgress, type Progress } from "./progress.js";

export function indexDirOption(): Option {
  return new Option("--index-dir <dir>", "index root (versions + CURRENT)").default(DEFAULT_INDEX_DIR);
}

export function parseUnit(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0 || x > 1) throw new Error(`${name} must be a number in [0, 1], got "${v}"`);
    return x;
  };
}

function parsePositive(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!Number.isFinite(x) || x <= 0) throw new Error(`${name} must be a positive number, got "${v}"`);
    return x;
  };
}

function parseNonNegativeInt(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0) throw new Error(`${name} must be a non-negative integer, got "${v}"`);
    return x;
  };
}

/** The compact view of holdout metrics in summaries: new labels as name → AP. */
export function holdoutSummary(m: HoldoutMetrics) {
  const ap = (r: Record<string, { ap: number | null; positives: number }>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.ap]));
  return {
    videos: m.videos,
    old_gap20: m.old.gap20,
    old_category_accuracy: m.old.category_accuracy,
    gap20: m.all_gap20,
    new_tags: ap(m.new_tags),
    new_categories: ap(m.new_categories),
  };
}

export function gateSummary(g: GateResult) {
  return { passed: g.passed, reasons: g.reasons, checks: g.checks, unchecked: g.unchecked, options: g.options };
}

export interface RetrainSummary {
  id: string;
  dir: string;
  mode: RetrainMode;
  parent: string;
  status: "candidate" | "active";
  new_labels: { tags: string[]; categories: string[] };
  holdout: ReturnType<typeof holdoutSummary>;
  parent_holdout: ReturnType<typeof holdoutSummary>;
  gate: ReturnType<typeof gateSummary>;
  embedding_changed: boolean;
  retrain_s: number;
  timings: RetrainResult["timings"];
  promoted: boolean;
  promotion: PromoteResult | null;
  /** Why it was not promoted, when --promote was asked. */
  not_promoted_reason?: string;
}

export function retrainSummary(r: RetrainResult, promotion: PromoteResult | null, promoteAsked: boolean): RetrainSummary {
  return {
    id: r.id,
    dir: r.dir,
    mode: r.mode,
    parent: r.parent,
    status: promotion ? "active" : "candidate",
    new_labels: r.newLabels,
    holdout: holdoutSummary(r.holdout),
    parent_holdout: holdoutSummary(r.parentHoldout),
    gate: gateSummary(r.gate),
    embedding_changed: r.embeddingChanged,
    retrain_s: r.timings.total_s,
    timings: r.timings,
    promoted: promotion !== null,
    promotion,
    ...(promoteAsked && !promotion ? { not_promoted_reason: `gate: ${r.gate.reasons.join("; ")}` } : {}),
  };
}

interface RetrainCommandOptions {
  db: string;
  from?: string;
  mode: RetrainMode;
  out?: string;
  id?: string;
  promote?: boolean;
  indexDir: string;
  tolerance: number;
  minNewAp: number;
  minPositives: number;
  epochs?: number;
  learningRate?: number;
  headsNewSteps?: number;
  headsEpochs?: number;
  headsLearningRate?: number;
  backend: BackendChoice;
  progress: ProgressFormat;
  json?: string;
}

/** A stage-aware progress sink for the three output formats. */
export function stageProgress(format: ProgressFormat) {
  let bar: Progress | undefined;
  let barStage: string | undefined;
  return {
    update(p: { stage: string; done: number; total?: number }) {
      if (format === "jsonl") return emitJsonl({ event: "progress", stage: p.stage, done: p.done, ...(p.total !== undefined ? { total: p.total } : {}) });
      if (format === "none") return;
      if (barStage !== p.stage) {
        bar?.stop();
        bar = createProgress(p.stage, p.total, p.stage === "train" ? "steps" : "videos");
        barStage = p.stage;
      }
      bar?.update(p.done);
    },
    stop() {
      bar?.stop();
      bar = undefined;
      barStage = undefined;
    },
  };
}

export async function runRetrainCommand(opts: RetrainCommandOptions): Promise<RetrainSummary> {
  const backend = await selectBackend(opts.backend);
  process.stderr.write(`backend: ${backend.description}\n`);
  const store = VideoStore.open(opts.db);
  const progress = stageProgress(opts.progress);
  const log = (line: string) => {
    progress.stop();
    process.stderr.write(line + "\n");
  };
  try {
    const r = await retrain(store, {
      from: opts.from,
      mode: opts.mode,
      out: opts.out,
      id: opts.id,
      gate: { tolerance: opts.tolerance, minNewLabelAp: opts.minNewAp, minPositives: opts.minPositives },
      heads: {
        ...(opts.headsNewSteps !== undefined ? { newLabelSteps: opts.headsNewSteps } : {}),
        ...(opts.headsEpochs !== undefined ? { epochs: opts.headsEpochs } : {}),
        ...(opts.headsLearningRate !== undefined ? { learningRate: opts.headsLearningRate } : {}),
      },
      epochs: opts.epochs,
      learningRate: opts.learningRate,
      backend: backend.name,
      onProgress: (p) => progress.update(p),
      log,
    });
    progress.stop();
    log(`candidate "${r.id}" in ${r.dir}: gate ${r.gate.passed ? "passed" : `failed (${r.gate.reasons.join("; ")})`}`);
    let promotion: PromoteResult | null = null;
    if (opts.promote && r.gate.passed) {
      promotion = await promoteModel(store, r.id, { indexDir: opts.indexDir, onProgress: (p) => progress.update(p), log });
      progress.stop();
      log(`promoted "${r.id}" (index ${promotion.index}${promotion.indexVersion ? `: ${promotion.indexVersion}` : ""})`);
    }
    return retrainSummary(r, promotion, Boolean(opts.promote));
  } finally {
    progress.stop();
    store.close();
  }
}

export function registerRetrainCommands(program: Command): void {
  program
    .command("retrain")
    .description("train a candidate on the store's current labels from the active (or a given) model, compare it with its parent on the holdout, register it; --promote makes it active if it passes the gate")
    .addOption(dbOption())
    .option("--from <dir|id>", "parent model: a registry id or a model directory (default: the registry's active model); an unregistered directory is registered")
    .addOption(new Option("--mode <mode>", "heads: frozen backbone, heads fine-tuned on cached fused features; full: whole model fine-tuned from the parent; scratch: trained anew").choices([...RETRAIN_MODES]).default("heads"))
    .option("--out <dir>", "directory of the new model (default: next to the parent's, named by the id)")
    .option("--id <id>", "registry id (default: <mode>-<UTC date>-<time>)")
    .option("--promote", "if the gate passes: export, reindex if the embedding changed, make it the active model")
    .addOption(indexDirOption())
    .option("--tolerance <x>", "gate: largest allowed drop of old-label GAP@20 and category accuracy", parseUnit("--tolerance"), 0.01)
    .option("--min-new-ap <x>", "gate: minimum holdout AP of each new label", parseUnit("--min-new-ap"), 0.5)
    .option("--min-positives <n>", "gate: holdout positives a new label needs to be checked", parsePositiveInt("--min-positives"), 20)
    .option("--epochs <n>", "full/scratch: training epochs (full default: a third of the parent's)", parsePositiveInt("--epochs"))
    .option("--learning-rate <x>", "full/scratch: learning rate (full default: 0.3 × the parent's)", parsePositive("--learning-rate"))
    .option("--heads-new-steps <n>", "heads: steps training only the new labels' rows (default 600)", parseNonNegativeInt("--heads-new-steps"))
    .option("--heads-epochs <n>", "heads: epochs fine-tuning all head rows (default 1)", parseNonNegativeInt("--heads-epochs"))
    .option("--heads-learning-rate <x>", "heads: learning rate of the all-rows phase (default 1e-4)", parsePositive("--heads-learning-rate"))
    .addOption(backendOption())
    .addOption(progressFormatOption())
    .option("--json <file>", "also write the summary here")
    .action(async (opts: RetrainCommandOptions) => {
      try {
        const summary = await runRetrainCommand(opts);
        if (opts.json) writeJsonAtomic(opts.json, summary);
        if (opts.progress === "jsonl") emitJsonl({ event: "result", ...summary });
        else process.stdout.write(JSON.stringify(summary, null, 2) + "\n");
      } catch (err) {
        if (opts.progress === "jsonl") emitJsonl({ event: "error", message: (err as Error).message });
        throw err;
      }
    });
}
