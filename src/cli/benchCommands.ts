/** `vidrecall bench …`: speed and memory measurements, printed as JSON and a short table. */
import type { Command } from "commander";
import { backendOption } from "./options.js";
import { registerAnnBench } from "./indexCommands.js";
import { registerInferBench } from "./inferCommands.js";
import { benchImport } from "../bench/importBench.js";
import { writeBenchResult } from "../bench/report.js";
import { benchTrain } from "../bench/trainBench.js";
import { benchQuality, type QualityRun } from "../bench/qualityBench.js";
import { benchDemo } from "../bench/demoBench.js";
import { benchRetrain } from "../bench/retrainBench.js";
import { selectBackend } from "../train/backend.js";
import { BACKENDS, type BackendChoice } from "../train/backend.js";

export function registerBenchCommands(program: Command): void {
  const bench = program.command("bench").description("benchmarks: print JSON and a short table");
  registerAnnBench(bench);
  registerInferBench(bench);
  bench
    .command("import")
    .description("import the YouTube-8M shards into a fresh database; videos/s and peak RSS (with 20 shards and with all)")
    .option("--data <dir>", "directory of the YouTube-8M shards", "../shared/data/yt8m-2018-video-level")
    .option("--json <file>", "also write the JSON result here")
    .option("--shards <n>", "shards in the full run (default: all)", (v) => Number(v))
    .action(async (opts) => {
      const result = await benchImport({ dataDir: opts.data, shards: opts.shards });
      writeBenchResult(result, opts.json, [
        ["shards", "videos", "videos/s", "peak RSS MB"],
        ...result.runs.map((r) => [String(r.shards), String(r.videos), r.videos_per_s.toFixed(0), r.peak_rss_mb.toFixed(1)]),
      ]);
    });

  bench
    .command("train")
    .description("training videos/s on the fixed frame-level benchmark config, for each tfjs backend available")
    .option("--json <file>", "also write the JSON result here")
    .option("--backends <list>", `comma-separated, from ${BACKENDS.filter((b) => b !== "auto").join(", ")}`, "tensorflow,wasm-ort,wasm,cpu")
    .option("--steps <n>", "timed steps per backend", (v) => Number(v), 10)
    .option("--cpu-steps <n>", "timed steps on the (slow) cpu backend", (v) => Number(v), 2)
    .action(async (opts) => {
      const backends = String(opts.backends).split(",").map((b) => b.trim()) as BackendChoice[];
      for (const b of backends) if (!BACKENDS.includes(b)) throw new Error(`unknown backend "${b}"`);
      const result = await benchTrain({ backends, steps: opts.steps, cpuSteps: opts.cpuSteps });
      writeBenchResult(result, opts.json, [
        ["backend", "videos/s", "ms/step", "steps"],
        ...Object.entries(result.backends).map(([name, r]) => [name, r.videos_per_s.toFixed(2), r.step_ms.toFixed(0), String(r.steps)]),
      ]);
    });

  bench
    .command("quality")
    .description("video-level preset vs a logistic-regression baseline on the YouTube-8M shards (train 0000–0059, report 0060–0079), adversarial on vs off")
    .option("--data <dir>", "directory of the YouTube-8M shards", "../shared/data/yt8m-2018-video-level")
    .option("--work-dir <dir>", "where the database and models are kept", ".bench/quality")
    .option("--json <file>", "also write the JSON result here")
    .option("--no-adversarial", "skip the run with FGM the other way from the preset")
    .option("--epochs <n>", "override the preset's epochs", (v) => Number(v))
    .addOption(backendOption())
    .action(async (opts) => {
      const backend = await selectBackend(opts.backend as BackendChoice);
      process.stderr.write(`backend: ${backend.description}\n`);
      const result = await benchQuality({
        dataDir: opts.data,
        workDir: opts.workDir,
        adversarial: opts.adversarial !== false,
        epochs: opts.epochs,
        backend: backend.name,
        log: (s) => process.stderr.write(s + "\n"),
      });
      const f = (x: number | undefined) => (x === undefined ? "-" : x.toFixed(4));
      const fgm = (on: boolean) => (on ? "FGM on" : "FGM off");
      const rows: string[][] = [["", "gap20", "map", "hit1", "train s"]];
      const add = (name: string, r: QualityRun) => {
        rows.push([name, f(r.gap20), f(r.map), f(r.hit1), r.train_s.toFixed(0)]);
        if (r.model_only) rows.push([`  tag head alone`, f(r.model_only.gap20), f(r.model_only.map), f(r.model_only.hit1), ""]);
      };
      add(`model (preset: ${fgm(result.model.adversarial)}${result.neighbours ? ", neighbour votes" : ""})`, result.model);
      rows.push(["baseline (LR)", f(result.baseline.gap20), f(result.baseline.map), f(result.baseline.hit1), result.baseline.train_s.toFixed(0)]);
      if (result.adversarial) add(`preset with ${fgm(!result.model.adversarial)}`, result.model.adversarial ? result.adversarial.off : result.adversarial.on);
      writeBenchResult(result, opts.json, rows);
    });

  bench
    .command("retrain")
    .description("hold out 5 frequent YouTube-8M tags, train without them, import their labels back and run a heads retrain: new-tag AP, old-tag GAP@20 before/after, retrain time, gate verdict")
    .option("--data <dir>", "directory of the YouTube-8M shards", "../shared/data/yt8m-2018-video-level")
    .option("--source-db <file>", "database of `bench quality` to copy (imported afresh when missing)", ".bench/quality/yt8m.sqlite")
    .option("--work-dir <dir>", "where the database copy, the before model and the retrained models are kept", ".bench/retrain")
    .option("--tags <list>", "comma-separated tags to hold out (default: ranks 1, 3, 5, 7, 9 by frequency)")
    .option("--epochs <n>", "before model: override the preset's epochs", (v) => Number(v))
    .option("--keep-feature-cache", "reuse the before model's cached fused features (default: computed afresh, inside the timed retrain)")
    .option("--json <file>", "also write the JSON result here")
    .addOption(backendOption())
    .action(async (opts) => {
      const backend = await selectBackend(opts.backend as BackendChoice);
      process.stderr.write(`backend: ${backend.description}\n`);
      const result = await benchRetrain({
        dataDir: opts.data,
        workDir: opts.workDir,
        sourceDb: opts.sourceDb,
        tags: opts.tags ? String(opts.tags).split(",").map((t: string) => t.trim()) : undefined,
        epochs: opts.epochs,
        keepFeatureCache: Boolean(opts.keepFeatureCache),
        backend: backend.name,
        log: (s) => process.stderr.write(s + "\n"),
      });
      const f = (x: number | null | undefined) => (x === null || x === undefined ? "-" : x.toFixed(4));
      writeBenchResult(result, opts.json, [
        ["new tag", "AP before", "AP after", "holdout positives"],
        ...Object.entries(result.new_tags).map(([k, v]) => [k, "0", f(v), String(result.new_tag_positives[k])]),
        ["old-tag GAP@20", f(result.old_gap20_before), f(result.old_gap20_after), ""],
        ["retrain s", "", result.retrain_s.toFixed(1), ""],
        ["promoted", "", String(result.promoted), ""],
      ]);
    });

  bench
    .command("demo")
    .description("demo-small on fresh demo data: validation category accuracy and GAP@20, with all inputs and each modality alone")
    .option("--videos <n>", "demo videos", (v) => Number(v), 5000)
    .option("--work-dir <dir>", "where the data and models go (replaced)", ".bench/demo")
    .option("--no-ablation", "only the run with all inputs")
    .option("--json <file>", "also write the JSON result here")
    .addOption(backendOption())
    .action(async (opts) => {
      const backend = await selectBackend(opts.backend as BackendChoice);
      process.stderr.write(`backend: ${backend.description}\n`);
      const result = await benchDemo({ workDir: opts.workDir, videos: opts.videos, ablation: opts.ablation !== false, backend: backend.name, log: (s) => process.stderr.write(s + "\n") });
      const rows = [["inputs", "category acc", "gap20", "train s"], ...[result.all, ...Object.values(result.ablation)].map((r) => [r.inputs.join("+"), r.category_accuracy.toFixed(4), r.gap20.toFixed(4), r.train_s.toFixed(0)])];
      writeBenchResult(result, opts.json, rows);
    });
}
