/**
 * Turning one YouTube-8M record into a store-ready video, and a worker-thread
 * pipeline that does it off the main thread: on two cores, reading, protobuf
 * decoding and float16 encoding overlap with SQLite writes on the main thread.
 */
import { basename } from "node:path";
import { Worker } from "node:worker_threads";
import { encodeFeatures, type EncodedFeatures } from "./featureCodec.js";
import type { VideoInput } from "./store.js";
import { readTfRecords, TfRecordError } from "./tfrecord.js";
import { decodeYt8mRecord, RecordFormatError } from "./yt8mRecords.js";
import { categoryOf, type CategoryMode, type Yt8mVocabulary } from "./yt8mVocabulary.js";

export interface Yt8mConversion {
  vocabulary?: Yt8mVocabulary;
  category?: CategoryMode | "none";
}

/** YouTube-8M labels without a Name in vocabulary.csv (56 of them) get this name. */
export function yt8mLabelName(index: number, vocabulary?: Yt8mVocabulary): string {
  const name = vocabulary?.get(index)?.name?.trim();
  return name ? name : `yt8m:${index}`;
}

/** One record as a video with features already encoded for the store. */
export function yt8mRecordToVideo(payload: Uint8Array, where: { file: string; recordIndex: number; offset: number }, options: Yt8mConversion): VideoInput {
  const v = decodeYt8mRecord(payload, where);
  const vocab = options.vocabulary;
  if (vocab) {
    const unknown = v.labels.find((l) => !vocab.has(l));
    if (unknown !== undefined) throw new RecordFormatError("labels", `label ${unknown} is not in the vocabulary`, where);
  }
  const mode = options.category ?? "firstLabel";
  const category = vocab && mode !== "none" ? (categoryOf(v.labels, vocab, mode) ?? null) : undefined;
  // Frame-level bytes are already quantised: uint8 stores them exactly. Video-level means are not.
  const encoding = v.level === "frame" ? "uint8" : "float16";
  const features: VideoInput["features"] = {};
  if (v.features.rgb) features.rgb = { encoded: encodeFeatures(v.features.rgb, encoding) };
  if (v.features.audio) features.audio = { encoded: encodeFeatures(v.features.audio, encoding) };
  return { id: v.id, features, category, tags: v.labels.map((l) => yt8mLabelName(l, vocab)) };
}

// ---- worker protocol ----------------------------------------------------------

export interface ParsedItem {
  location: string;
  video?: VideoInput;
  error?: { field?: string; problem: string };
}

/**
 * A chunk of parsed records in a flat layout: one transferred ArrayBuffer for
 * all feature bytes, and parallel arrays of strings. Structured-cloning one
 * object graph per video cost ~20 µs each on the receiving (SQLite) thread.
 */
export interface ItemChunk {
  location: string[];
  id: string[];
  /** JSON of {field, problem} for a record that failed to parse, else null. */
  error: (string | null)[];
  /** Category name, null for none, undefined when categories are not derived. */
  category: (string | null | undefined)[];
  /** Tag names joined by U+001F. */
  tags: string[];
  /** Per item: modality, encoding, frames, dim, byte offset, byte length (flattened, 6 per modality), "" between items. */
  features: (string | number)[][];
  blob: ArrayBuffer;
}

export type WorkerMessage =
  | { kind: "items"; file: number; chunk: ItemChunk }
  | { kind: "fileEnd"; file: number }
  | { kind: "framing"; file: number; message: string }
  | { kind: "fatal"; message: string };

export interface WorkerInput {
  files: string[];
  vocabulary?: [number, ReturnType<Yt8mVocabulary["get"]>][];
  category?: CategoryMode | "none";
}

/** Items per message, and messages the worker may run ahead of the main thread (bounds memory). */
export const ITEMS_PER_MESSAGE = 256;
export const MAX_MESSAGES_IN_FLIGHT = 4;
const TAG_SEPARATOR = "\u001f";

export function packChunk(items: ParsedItem[]): ItemChunk {
  let bytes = 0;
  for (const it of items) for (const m of Object.values(it.video?.features ?? {})) if ("encoded" in m) bytes += m.encoded.data.byteLength;
  const blob = new ArrayBuffer(bytes);
  const out = new Uint8Array(blob);
  let offset = 0;
  const chunk: ItemChunk = { location: [], id: [], error: [], category: [], tags: [], features: [], blob };
  for (const it of items) {
    chunk.location.push(it.location);
    chunk.error.push(it.error ? JSON.stringify(it.error) : null);
    chunk.id.push(it.video?.id ?? "");
    chunk.category.push(it.video?.category);
    chunk.tags.push((it.video?.tags ?? []).join(TAG_SEPARATOR));
    const feats: (string | number)[] = [];
    for (const [modality, m] of Object.entries(it.video?.features ?? {})) {
      if (!("encoded" in m)) throw new Error("packChunk: features must be encoded");
      out.set(m.encoded.data, offset);
      feats.push(modality, m.encoded.encoding, m.encoded.frames, m.encoded.dim, offset, m.encoded.data.byteLength);
      offset += m.encoded.data.byteLength;
    }
    chunk.features.push(feats);
  }
  return chunk;
}

export function unpackChunk(chunk: ItemChunk): ParsedItem[] {
  const blob = Buffer.from(chunk.blob);
  return chunk.location.map((location, i) => {
    const error = chunk.error[i];
    if (error !== null) return { location, error: JSON.parse(error) as ParsedItem["error"] };
    const features: VideoInput["features"] = {};
    const f = chunk.features[i];
    for (let k = 0; k < f.length; k += 6) {
      const [modality, encoding, frames, dim, off, len] = f.slice(k, k + 6) as [string, EncodedFeatures["encoding"], number, number, number, number];
      features[modality] = { encoded: { encoding, frames, dim, data: blob.subarray(off, off + len) } };
    }
    const tags = chunk.tags[i];
    return { location, video: { id: chunk.id[i], features, category: chunk.category[i], tags: tags === "" ? [] : tags.split(TAG_SEPARATOR) } };
  });
}

/**
 * The worker side: parse every file in order, posting items in chunks. Each
 * chunk needs a credit (the main thread returns one per chunk it takes), so the
 * worker runs at most MAX_MESSAGES_IN_FLIGHT chunks ahead and memory stays flat.
 */
export async function runParseWorker(
  input: WorkerInput,
  post: (m: WorkerMessage, transfer?: ArrayBuffer[]) => void,
  acquireCredit: () => Promise<void>,
): Promise<void> {
  const options: Yt8mConversion = {
    vocabulary: input.vocabulary ? new Map(input.vocabulary as [number, NonNullable<ReturnType<Yt8mVocabulary["get"]>>][]) : undefined,
    category: input.category,
  };
  const send = async (file: number, items: ParsedItem[]) => {
    await acquireCredit();
    const chunk = packChunk(items);
    post({ kind: "items", file, chunk }, [chunk.blob]);
  };
  for (let f = 0; f < input.files.length; f++) {
    const file = input.files[f];
    let items: ParsedItem[] = [];
    try {
      for await (const r of readTfRecords(file)) {
        const location = `${basename(file)} record ${r.index} (byte ${r.offset})`;
        try {
          items.push({ location, video: yt8mRecordToVideo(r.payload, { file, recordIndex: r.index, offset: r.offset }, options) });
        } catch (err) {
          const field = err instanceof RecordFormatError ? err.field : undefined;
          const problem = err instanceof RecordFormatError ? err.problem : err instanceof Error ? err.message : String(err);
          items.push({ location, error: { field, problem } });
        }
        if (items.length >= ITEMS_PER_MESSAGE) {
          await send(f, items);
          items = [];
        }
      }
    } catch (err) {
      if (items.length) await send(f, items);
      items = [];
      if (err instanceof TfRecordError) {
        post({ kind: "framing", file: f, message: err.message });
        continue;
      }
      throw err;
    }
    if (items.length) await send(f, items);
    post({ kind: "fileEnd", file: f });
  }
}

/**
 * Starts a worker module. Compiled code runs the .js file; when this module
 * itself runs as TypeScript source (tests under tsx), the worker needs tsx's
 * loader registered inside it first, which Node 20 does not inherit.
 */
export function startWorker(jsUrl: URL, workerData: unknown): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(jsUrl, { workerData });
  const tsUrl = jsUrl.href.replace(/\.js$/, ".ts");
  const boot = `import("tsx/esm/api").then((api) => { api.register(); return import(${JSON.stringify(tsUrl)}); });`;
  return new Worker(boot, { eval: true, workerData });
}

/** The main-thread side: per-file streams of parsed items from one worker. */
export class Yt8mParsePipeline {
  private readonly worker: Worker;
  private readonly queue: WorkerMessage[] = [];
  private waiting: (() => void) | undefined;
  private failure: Error | undefined;
  private exited = false;

  constructor(files: string[], options: Yt8mConversion) {
    const input: WorkerInput = { files, vocabulary: options.vocabulary ? [...options.vocabulary.entries()] : undefined, category: options.category };
    this.worker = startWorker(new URL("./yt8mParseWorker.js", import.meta.url), input);
    this.worker.on("message", (m: WorkerMessage) => {
      this.queue.push(m);
      this.wake();
    });
    this.worker.on("error", (err) => {
      this.failure = err;
      this.wake();
    });
    this.worker.on("exit", () => {
      this.exited = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  private async next(): Promise<WorkerMessage> {
    for (;;) {
      const m = this.queue.shift();
      if (m) return m;
      if (this.failure) throw this.failure;
      if (this.exited) throw new Error("YouTube-8M parse worker exited early");
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  /**
   * Items of file `index`, in order. Must be called for files in order, each
   * read to its end. A lost framing throws `FramingLost` after the items read before it.
   */
  async *items(index: number): AsyncGenerator<ParsedItem> {
    for (;;) {
      const m = await this.next();
      if (m.kind === "fatal") throw new Error(m.message);
      if (m.file !== index) throw new Error(`parse worker out of step: expected file ${index}, got ${m.file}`);
      if (m.kind === "fileEnd") return;
      if (m.kind === "framing") throw new FramingLost(m.message);
      this.worker.postMessage("ack");
      yield* unpackChunk(m.chunk);
    }
  }

  async close(): Promise<void> {
    if (!this.exited) await this.worker.terminate();
  }
}

/** The rest of a file cannot be read: its framing (a length or its CRC) is broken. */
export class FramingLost extends Error {}
