/** `vidrecall train` and `vidrecall eval`. */
import { type Command, Option } from "commander";
import { SPLITS, type Split } from "../data/split.js";
import { VideoStore } from "../data/store.js";
import { presetNames } from "../model/presets.js";
import { selectBackend, type BackendChoice } from "../train/backend.js";
import type { EvalMetrics } from "../train/evaluate.js";
import { evaluateOnStore } from "../train/evaluateStore.js";
import { loadModelConfig, loadTrainedModel } from "../train/modelFiles.js";
import { train } from "../train/trainer.js";
import { writeJsonAtomic, formatTable } from "../bench/report.js";
import { createProgress } from "./progress.js";
import { backendOption, dbOption } from "./options.js";

const fmt = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "-" : x.toFixed(4));

export function metricsTable(m: EvalMetrics): string {
  const rows: string[][] = [["metric", "value"]];
  for (const k of ["gap20", "map", "hit1", "perr", "tag_precision", "tag_recall", "tag_f1", "category_accuracy", "category_macro_f1"] as const) {
    if (m[k] !== undefined) rows.push([k, fmt(m[k])]);
  }
  rows.push(["videos", String(m.videos)]);
  return formatTable(rows);
}

export function registerTrainCommands(program: Command): void {
  program
    .command("train")
    .description("train a model on the store's train split, validating on its validate split")
    .addOption(dbOption())
    .requiredOption("--config <preset|file>", `a preset (${presetNames().join(", ")}) or a JSON/YAML config file`)
    .requiredOption("--out <dir>", "model directory (checkpoints, training log)")
    .option("--resume", "continue from <out>/last.ckpt")
    .option("--adversarial", "turn on FGM adversarial training")
    .option("--no-adversarial", "turn it off (where the config turns it on)")
    .option("--no-holdout", "final fit: train on the train and validate splits for exactly the configured epochs, no validation (training.holdout false)")
    .option("--epochs <n>", "override training.epochs", (v) => Number(v))
    .addOption(backendOption())
    .action(async (opts) => {
      const backend = await selectBackend(opts.backend as BackendChoice);
      process.stderr.write(`backend: ${backend.description}\n`);
      let config = loadModelConfig(opts.config);
      if (opts.adversarial !== undefined) config = { ...config, adversarial: { ...config.adversarial, enabled: Boolean(opts.adversarial) } };
      if (opts.holdout === false) config = { ...config, training: { ...config.training, holdout: false } };
      if (opts.epochs) config = { ...config, training: { ...config.training, epochs: opts.epochs } };
      const store = VideoStore.open(opts.db, { readonly: true });
      let progress: ReturnType<typeof createProgress> | undefined;
      try {
        const result = await train(store, config, opts.out, {
          resume: Boolean(opts.resume),
          backend: backend.name,
          log: (line) => process.stderr.write(line + "\n"),
          onProgress: (p) => {
            progress ??= createProgress("train", p.totalSteps, "steps");
            progress.update(p.step, { loss: p.loss.toFixed(4), "videos/s": p.videosPerSecond.toFixed(1) });
          },
          onEval: (r) => {
            progress?.stop();
            progress = undefined;
            const m = r.metrics;
            process.stderr.write(
              `epoch ${r.epoch} step ${r.step}: loss ${r.train_loss.toFixed(4)}, gap20 ${fmt(m.gap20)}, category_accuracy ${fmt(m.category_accuracy)}${r.best ? " (best)" : ""}\n`,
            );
          },
        });
        progress?.stop();
        process.stdout.write(
          `trained ${result.steps} steps${result.stoppedEarly ? " (early stop)" : ""}; best at step ${result.best.step}: gap20 ${fmt(result.best.metrics?.gap20)}, category_accuracy ${fmt(result.best.metrics?.category_accuracy)}; model in ${opts.out}\n`,
        );
      } finally {
        store.close();
      }
    });

  program
    .command("eval")
    .description("evaluate a trained model on a split; labels are matched by name, unknown ones count as misses")
    .addOption(dbOption())
    .requiredOption("--model <dir>", "model directory (uses its best checkpoint) or a .ckpt file")
    .addOption(new Option("--split <split>", "which videos").choices([...SPLITS, "all"]).default("validate"))
    .option("--json <file>", "write the metrics as JSON (keys gap20, map, hit1, perr, category_accuracy, tag_f1, …)")
    .option("--no-neighbours", "evaluate the tag head alone, even when the model's config turns neighbour-label voting on")
    .addOption(backendOption())
    .action(async (opts) => {
      await selectBackend(opts.backend as BackendChoice);
      const { model, vocabulary } = loadTrainedModel(opts.model);
      const store = VideoStore.open(opts.db, { readonly: true });
      try {
        const target = opts.split === "all" ? { ids: store.videoIds() } : { split: opts.split as Split };
        const r = evaluateOnStore(model, store, target, { vocabulary, neighbours: opts.neighbours as boolean });
        process.stdout.write(metricsTable(r.metrics) + "\n");
        if (r.neighbours && r.modelOnly) {
          const n = r.neighbours;
          process.stdout.write(
            `tags blended with the votes of the ${n.k} nearest of ${n.reference_videos} labelled ${n.reference_splits.join(" + ")} videos (temperature ${n.temperature}, model weight ${n.model_weight}); ` +
              `the model alone: gap20 ${fmt(r.modelOnly.gap20)}, map ${fmt(r.modelOnly.map)}, hit1 ${fmt(r.modelOnly.hit1)} (--no-neighbours to evaluate it alone)\n`,
          );
        }
        if (r.note) process.stdout.write(`note: ${r.note}\n`);
        if (opts.json) writeJsonAtomic(opts.json, { ...r.metrics, ...(r.modelOnly ? { model_only: r.modelOnly, neighbours: r.neighbours } : {}), ...(r.note ? { note: r.note } : {}) });
      } finally {
        store.close();
        model.dispose();
      }
    });
}
