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
import { readTfRecords, TfRecordError } from "./tfrecord.js";
import { decodeYt8mRecord, RecordFormatError } from "./yt8mRecords.js";
import { categoryOf, type CategoryMode, type Yt8mVocabulary } from "./yt8mVocabulary.js";

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
    const msg = err instanceof Error ? err.message : String(err);
    throw new ImportError(basename(file), undefined, `${msg.replace(`${basename(file)}: `, "")} — import stopped; nothing from ${basename(file)} was kept`);
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
  for (const file of files) {
    await importFile(store, file, jsonlItems(file, expectedDims), { source: `jsonl:${basename(file)}`, splitFractions: options.splitFractions }, options, report);
  }
  return report;
}

// ---- YouTube-8M TFRecord --------------------------------------------------------

export interface Yt8mImportOptions extends ImportOptions {
  /** Label names and verticals; without it tags are named by their index and no category is set. */
  vocabulary?: Yt8mVocabulary;
  /** How a video's category is derived from its labels' verticals; "none" sets no category. */
  category?: CategoryMode | "none";
}

/** YouTube-8M labels without a Name in vocabulary.csv (56 of them) get this name. */
export function yt8mLabelName(index: number, vocabulary?: Yt8mVocabulary): string {
  const name = vocabulary?.get(index)?.name;
  return name ? name : `yt8m:${index}`;
}

async function* yt8mItems(file: string, options: Yt8mImportOptions): AsyncGenerator<SourceItem> {
  const records = readTfRecords(file);
  for (;;) {
    let next: IteratorResult<{ payload: Uint8Array; index: number; offset: number }>;
    try {
      next = await records.next();
    } catch (err) {
      if (err instanceof TfRecordError) throw new FramingError(err.message);
      throw err;
    }
    if (next.done) return;
    const r = next.value;
    yield {
      location: `${basename(file)} record ${r.index} (byte ${r.offset})`,
      parse: () => {
        const v = decodeYt8mRecord(r.payload, { file, recordIndex: r.index, offset: r.offset });
        const vocab = options.vocabulary;
        if (vocab) {
          const unknown = v.labels.find((l) => !vocab.has(l));
          if (unknown !== undefined) throw new RecordFormatError("labels", `label ${unknown} is not in the vocabulary`, { file, recordIndex: r.index, offset: r.offset });
        }
        const mode = options.category ?? "firstLabel";
        const category = vocab && mode !== "none" ? (categoryOf(v.labels, vocab, mode) ?? null) : undefined;
        const features: VideoInput["features"] = {};
        // Frame-level bytes are already quantised: uint8 stores them exactly. Video-level means are not.
        const encoding = v.level === "frame" ? "uint8" : "float16";
        if (v.features.rgb) features.rgb = { matrix: v.features.rgb, encoding };
        if (v.features.audio) features.audio = { matrix: v.features.audio, encoding };
        return { id: v.id, features, category, tags: v.labels.map((l) => yt8mLabelName(l, vocab)) };
      },
    };
  }
}

export async function importYt8m(store: VideoStore, files: string[], options: Yt8mImportOptions = {}): Promise<ImportReport> {
  const report = newReport();
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
  for (const file of files) {
    await importFile(store, file, yt8mItems(file, options), { source: `yt8m:${basename(file)}`, splitFractions: options.splitFractions }, options, report);
  }
  return report;
}
