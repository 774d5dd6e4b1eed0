/** Commands that fill and inspect the store: import, export, stats, demo-data. */
import { type Command, Option } from "commander";
import { writeDemoData } from "../data/demo.js";
import { exportJsonl } from "../data/export.js";
import { importJsonl, importYt8m, type ImportReport } from "../data/importer.js";
import { parseSplitFractions, SPLITS, type Split } from "../data/split.js";
import { VideoStore } from "../data/store.js";
import { readYt8mVocabulary, type CategoryMode } from "../data/yt8mVocabulary.js";
import { createProgress } from "./progress.js";
import { dbOption, parsePositiveInt } from "./options.js";

function printImportReport(report: ImportReport, db: string): void {
  process.stdout.write(`imported ${report.videos} videos from ${report.files} file(s) into ${db}\n`);
  if (report.skipped > 0) {
    const kinds = Object.entries(report.skippedByReason).map(([k, n]) => `${k}: ${n}`).join(", ");
    process.stdout.write(`skipped ${report.skipped} invalid record(s) (${kinds}); first ones:\n`);
    for (const s of report.skippedExamples.slice(0, 10)) process.stdout.write(`  ${s.reason}\n`);
  }
}

const CATEGORY_MODES: Record<string, CategoryMode | "none"> = {
  "first-label": "firstLabel",
  "first-known-label": "firstKnownLabel",
  majority: "majority",
  none: "none",
};

export function registerDataCommands(program: Command): void {
  const imp = program.command("import").description("import videos into the store (YouTube-8M TFRecord or JSONL)");

  const common = (c: Command) =>
    c
      .addOption(dbOption())
      .option("--skip-invalid", "skip invalid records (reported) instead of stopping the import")
      .addOption(new Option("--split <split>", "put every imported video in this split (default: from a hash of the id)").choices([...SPLITS]))
      .option("--split-fractions <t,v,s>", "train,validate,test fractions for hash-assigned splits", "0.8,0.1,0.1")
      .option("--vocab-min-count <n>", "min count of a title token in the training split to enter the vocabulary", parsePositiveInt("--vocab-min-count"), 2);

  common(
    imp
      .command("yt8m")
      .description("import YouTube-8M TFRecord shards (video-level Example or frame-level SequenceExample)")
      .argument("<files...>", "TFRecord files")
      .option("--vocabulary <csv>", "YouTube-8M vocabulary.csv: tag names, and the category from label verticals")
      .addOption(
        new Option("--category <mode>", "category of a video: Vertical1 of its first label that has one (first-label), skipping (Unknown) (first-known-label), the most frequent Vertical1 (majority), or none")
          .choices(Object.keys(CATEGORY_MODES))
          .default("first-label"),
      ),
  ).action(async (files: string[], opts) => {
    const vocabulary = opts.vocabulary ? await readYt8mVocabulary(opts.vocabulary) : undefined;
    await runImport(opts, (store, onProgress) =>
      importYt8m(store, files, {
        vocabulary,
        category: CATEGORY_MODES[opts.category],
        skipInvalid: Boolean(opts.skipInvalid),
        splitFractions: parseSplitFractions(opts.splitFractions),
        split: opts.split as Split | undefined,
        onProgress,
      }),
    );
  });

  common(
    imp
      .command("jsonl")
      .description("import videos from JSONL files (one video per line; see README for the format)")
      .argument("<files...>", "JSONL files"),
  ).action(async (files: string[], opts) => {
    await runImport(opts, (store, onProgress) =>
      importJsonl(store, files, {
        skipInvalid: Boolean(opts.skipInvalid),
        splitFractions: parseSplitFractions(opts.splitFractions),
        split: opts.split as Split | undefined,
        onProgress,
      }),
    );
  });

  program
    .command("export-jsonl")
    .description("export the store's videos to a JSONL file (lossless: features in their stored encoding)")
    .addOption(dbOption())
    .requiredOption("--out <file>", "JSONL file to write (written to a temp file, then renamed)")
    .addOption(new Option("--split <split>", "only this split").choices([...SPLITS]))
    .action(async (opts) => {
      const store = VideoStore.open(opts.db, { readonly: true });
      try {
        const n = await exportJsonl(store, opts.out, { split: opts.split as Split | undefined });
        process.stdout.write(`exported ${n} videos to ${opts.out}\n`);
      } finally {
        store.close();
      }
    });

  program
    .command("stats")
    .description("videos per split, label-space sizes and the most frequent tags")
    .addOption(dbOption())
    .option("--json", "print JSON (keys: videos, splits, categories, tags, top_tags)")
    .option("--top <n>", "how many top tags", parsePositiveInt("--top"), 10)
    .action((opts) => {
      const store = VideoStore.open(opts.db, { readonly: true });
      try {
        const s = store.stats(opts.top);
        if (opts.json) {
          process.stdout.write(JSON.stringify(s, null, 2) + "\n");
          return;
        }
        process.stdout.write(`videos      ${s.videos}\n`);
        for (const split of SPLITS) process.stdout.write(`  ${split.padEnd(10)}${s.splits[split]}\n`);
        process.stdout.write(`categories  ${s.categories}\ntags        ${s.tags}\n\ntop tags:\n`);
        for (const t of s.top_tags) process.stdout.write(`  ${String(t.videos).padStart(7)}  ${t.name}\n`);
      } finally {
        store.close();
      }
    });

  program
    .command("demo-data")
    .description("generate a synthetic multimodal dataset (frame-level rgb/audio, titles, category, tags) from a latent topic model")
    .addOption(dbOption())
    .option("--videos <n>", "number of videos", parsePositiveInt("--videos"), 5000)
    .option("--seed <n>", "random seed (same seed, same data)", (v) => Number(v), 1)
    .option("--frames <n>", "frames per video", parsePositiveInt("--frames"), 32)
    .option("--rgb-dim <n>", "rgb feature dimension", parsePositiveInt("--rgb-dim"), 256)
    .option("--audio-dim <n>", "audio feature dimension", parsePositiveInt("--audio-dim"), 128)
    .action(async (opts) => {
      const progress = createProgress("demo-data", opts.videos);
      const store = VideoStore.open(opts.db);
      try {
        const summary = writeDemoData(store, {
          videos: opts.videos,
          seed: opts.seed,
          frames: opts.frames,
          rgbDim: opts.rgbDim,
          audioDim: opts.audioDim,
          onProgress: (n) => progress.update(n),
        });
        progress.stop();
        process.stdout.write(`wrote ${summary.videos} demo videos (${summary.categories} categories, ${summary.tags} tags) to ${opts.db}\n`);
      } finally {
        store.close();
      }
    });
}

async function runImport(
  opts: { db: string; vocabMinCount: number },
  run: (store: VideoStore, onProgress: (n: number) => void) => Promise<ImportReport>,
): Promise<void> {
  const store = VideoStore.open(opts.db);
  const progress = createProgress("import", undefined);
  try {
    const report = await run(store, (n) => progress.update(n));
    progress.stop();
    store.buildTokenVocabulary(opts.vocabMinCount);
    printImportReport(report, opts.db);
  } finally {
    store.close();
  }
}
