/**
 * Import orchestration shared by every source format. Each input file is one
 * batch written in one transaction: a bad record stops the import and rolls
 * back everything from that file (earlier files stay), unless `skipInvalid`
 * is set, in which case the record is counted, reported and skipped.
 */
import { createReadStream } from "node:fs";
import { basename } from "node:path";
import { createInterface } from "node:readline";
import { parseVideoLine, FieldError } from "./jsonl.js";
import type { Split, SplitFractions } from "./split.js";
import type { UpsertOptions, VideoInput, VideoStore } from "./store.js";
import { FramingLost, Yt8mParsePipeline, yt8mLabelName, type Yt8mConversion } from "./yt8mParse.js";
import { RecordFormatError } from "./yt8mRecords.js";

/** An invalid record, with where it is and what is wrong. */
export class ImportError extends Error {
  override readonly name = "ImportError";
  constructor(
    readonly location: string,
    readonly field: string | undefined,
    readonly problem: string,
  ) {
    super(`${location}: ${field ? `${field}: ` : ""}${problem}`);
  }
}

export interface SkippedRecord {
  location: string;
  reason: string;
}

export interface ImportReport {
  files: number;
  /** Videos written (inserted or updated). */
  videos: number;
  skipped: number;
  /** The first skipped records (at most 50), with reasons. */
  skippedExamples: SkippedRecord[];
  /** Skip counts by kind of problem. */
  skippedByReason: Record<string, number>;
}

export interface ImportOptions {
  skipInvalid?: boolean;
  splitFractions?: SplitFractions;
  /** Put every imported video in this split, overriding the file and the hash. */
  split?: Split;
  /** Called after each record with the running count of videos written. */
  onProgress?: (videos: number) => void;
}

/** One record from a source: where it is, and how to turn it into a video (may throw). */
interface SourceItem {
  location: string;
  parse: () => VideoInput;
}

export { yt8mLabelName };

/** A whole-file problem (framing lost, truncation): no later record of this file can be read. */
class FramingError extends Error {}

function newReport(): ImportReport {
  return { files: 0, videos: 0, skipped: 0, skippedExamples: [], skippedByReason: {} };
}

function recordSkip(report: ImportReport, location: string, reason: string, kind: string): void {
  report.skipped++;
  report.skippedByReason[kind] = (report.skippedByReason[kind] ?? 0) + 1;
  if (report.skippedExamples.length < 50) report.skippedExamples.push({ location, reason });
}

async function importFile(
  store: VideoStore,
  file: string,
  items: AsyncIterable<SourceItem>,
  upsert: UpsertOptions,
  options: ImportOptions,
  report: ImportReport,
): Promise<void> {
  const batch = store.beginBatch();
  let written = 0;
  try {
    try {
      for await (const item of items) {
        let video: VideoInput;
        try {
          video = item.parse();
          if (options.split) video.split = options.split;
          store.upsertVideo(video, upsert);
        } catch (err) {
          const e = toImportError(err, item.location);
          if (!options.skipInvalid) throw e;
          recordSkip(report, e.location, e.message, e.field ?? "record");
          continue;
        }
        written++;
        options.onProgress?.(report.videos + written);
      }
    } catch (err) {
      if (!(err instanceof FramingError) || !options.skipInvalid) throw err;
      // Framing is lost: keep what was read, report the rest of the file as skipped.
      recordSkip(report, basename(file), `${err.message}; rest of file skipped`, "framing");
    }
    batch.commit();
  } catch (err) {
    batch.rollback();
    const name = basename(file);
    const suffix = ` — import stopped; nothing from ${name} was kept`;
    if (err instanceof ImportError) throw new ImportError(err.location, err.field, err.problem + suffix);
    const msg = err instanceof Error ? err.message : String(err);
    throw new ImportError(name, undefined, (msg.startsWith(`${name}: `) ? msg.slice(name.length + 2) : msg) + suffix);
  }
  report.files++;
  report.videos += written;
}

function toImportError(err: unknown, location: string): ImportError {
  if (err instanceof ImportError) return err;
  if (err instanceof FieldError) return new ImportError(location, err.field, err.message.slice(err.field.length + 2));
  if (err instanceof RecordFormatError) return new ImportError(location, err.field, err.problem);
  return new ImportError(location, undefined, err instanceof Error ? err.message : String(err));
}

// ---- JSONL ------------------------------------------------------------------

async function* jsonlItems(file: string, expectedDims: Map<string, number>): AsyncGenerator<SourceItem> {
  const lines = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    if (line.trim() === "") continue;
    yield { location: `${basename(file)} line ${lineNo}`, parse: () => parseVideoLine(line, expectedDims) };
  }
}

export async function importJsonl(store: VideoStore, files: string[], options: ImportOptions = {}): Promise<ImportReport> {
  const report = newReport();
  const expectedDims = store.modalityDims();
  await withBulkLoad(store, async () => {
    for (const file of files) {
      await importFile(store, file, jsonlItems(file, expectedDims), { source: `jsonl:${basename(file)}`, splitFractions: options.splitFractions }, options, report);
    }
  });
  return report;
}

/**
 * Bulk-load settings for the length of an import: WAL checkpoints at 64 MiB
 * instead of 4 MiB (fewer fsyncs and rewrites of hot index pages: commits
 * got ~4x cheaper here), and, loading into an empty store, secondary indexes
 * dropped and rebuilt once at the end (~20% faster). A crash in between is
 * harmless: opening a store recreates missing indexes.
 */
async function withBulkLoad(store: VideoStore, load: () => Promise<void>): Promise<void> {
  const dropIndexes = store.countVideos() === 0;
  store.setBulkLoad(true, dropIndexes);
  try {
    await load();
  } finally {
    store.setBulkLoad(false, dropIndexes);
  }
}

// ---- YouTube-8M TFRecord --------------------------------------------------------

export interface Yt8mImportOptions extends ImportOptions, Yt8mConversion {}

async function* pipelineItems(pipeline: Yt8mParsePipeline, index: number): AsyncGenerator<SourceItem> {
  try {
    for await (const item of pipeline.items(index)) {
      yield {
        location: item.location,
        parse: () => {
          if (item.error) throw new ImportError(item.location, item.error.field, item.error.problem);
          return item.video as VideoInput;
        },
      };
    }
  } catch (err) {
    if (err instanceof FramingLost) throw new FramingError(err.message);
    throw err;
  }
}

export async function importYt8m(store: VideoStore, files: string[], options: Yt8mImportOptions = {}): Promise<ImportReport> {
  const report = newReport();
  // Start parsing first: the worker reads while this thread defines the label spaces.
  const pipeline = new Yt8mParsePipeline(files, options);
  try {
    if (options.vocabulary) {
      // Tag indices equal YouTube-8M's label indices, so models and tools agree on them.
      const vocab = options.vocabulary;
      store.transaction(() => {
        for (const index of [...vocab.keys()].sort((a, b) => a - b)) store.defineLabel("tags", index, yt8mLabelName(index, vocab));
        if ((options.category ?? "firstLabel") !== "none") {
          for (const v of [...new Set([...vocab.values()].map((e) => e.vertical1).filter((v) => v !== ""))].sort()) store.ensureLabel("category", v);
        }
      });
    }
    await withBulkLoad(store, async () => {
      for (let i = 0; i < files.length; i++) {
        await importFile(store, files[i], pipelineItems(pipeline, i), { source: `yt8m:${basename(files[i])}`, splitFractions: options.splitFractions }, options, report);
      }
    });
  } finally {
    await pipeline.close();
  }
  return report;
}
