/**
 * Label files: labels for videos already in the store, by name, as CSV or
 * JSONL (`vidrecall labels import`). New names grow the label spaces (next
 * free index; existing indices never move).
 *
 * CSV: a header row naming the columns `id` (required), `category`, `tags`;
 * `tags` holds names separated by `|`; fields may be double-quoted (RFC 4180,
 * `""` inside quotes is a quote). An empty cell leaves that label space as it
 * is.
 *
 *   id,category,tags
 *   v1,Sports,football|stadium
 *   v2,,"cats|funny, animals"
 *
 * JSONL: `{"id": "v1", "category": "Sports", "tags": ["football"]}`; a missing
 * key leaves that space as it is, `"category": null` clears the category,
 * `"tags": []` (with replace) clears the tags.
 *
 * Tags are added to the video's tags, or replace them with `replace`. The
 * whole file is one transaction: an error (naming file, line and field)
 * leaves the store as it was.
 */
import { createReadStream } from "node:fs";
import { basename, extname } from "node:path";
import { createInterface } from "node:readline";
import { z } from "zod";
import type { Provenance, VideoStore } from "./store.js";

export type LabelFileFormat = "csv" | "jsonl";

export interface LabelRecord {
  id: string;
  /** undefined: unchanged; null: cleared. */
  category?: string | null;
  /** undefined: unchanged. */
  tags?: string[];
}

export interface LabelImportOptions {
  /** Default: from the extension (.csv, .jsonl/.json/.ndjson). */
  format?: LabelFileFormat;
  /** Tags replace the video's tags instead of being added. Default false. */
  replace?: boolean;
  provenance?: Provenance;
  now?: number;
}

export interface LabelImportResult {
  file: string;
  lines: number;
  videos: number;
  /** Names that were not in the label space before this file. */
  newLabels: { category: string[]; tags: string[] };
  labelSpaces: { category: number; tags: number };
}

export class LabelFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string,
    message: string,
  ) {
    super(`${basename(file)} line ${line}: ${field}: ${message}`);
    this.name = "LabelFileError";
  }
}

const Name = z.string().trim().min(1, "empty label name").max(512);
const JsonLabels = z
  .object({
    id: z.string().min(1).max(512),
    category: Name.nullish(),
    tags: z.array(Name).max(10_000).optional(),
  })
  .strict();

export function labelFileFormat(file: string, format?: LabelFileFormat): LabelFileFormat {
  if (format) return format;
  const ext = extname(file).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".jsonl" || ext === ".json" || ext === ".ndjson") return "jsonl";
  throw new Error(`${file}: cannot tell the format from the extension "${ext}"; use --format csv|jsonl`);
}

/** Splits one CSV line into fields (quotes per RFC 4180; no line breaks inside fields). */
export function parseCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new Error("unterminated quoted field");
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ",") throw new Error(`unexpected "${line[i]}" after a quoted field`);
    } else {
      const end = line.indexOf(",", i);
      field = end < 0 ? line.slice(i) : line.slice(i, end);
      i = end < 0 ? line.length : end;
    }
    out.push(field);
    if (i >= line.length) return out;
    i++; // the comma
  }
}

const CSV_COLUMNS = ["id", "category", "tags"] as const;

function csvRecord(fields: string[], columns: Map<string, number>, at: (field: string, message: string) => LabelFileError): LabelRecord {
  if (fields.length !== columns.size) throw at("(row)", `${fields.length} fields, the header has ${columns.size}`);
  const get = (c: string) => (columns.has(c) ? fields[columns.get(c)!].trim() : "");
  const id = get("id");
  if (!id) throw at("id", "empty video id");
  const rec: LabelRecord = { id };
  const category = get("category");
  if (category) rec.category = category;
  const tags = get("tags");
  if (tags) {
    rec.tags = tags.split("|").map((t, i) => {
      const name = t.trim();
      if (!name) throw at(`tags[${i}]`, "empty tag name (two | in a row, or a trailing |?)");
      return name;
    });
  }
  return rec;
}

/**
 * Reads a label file record by record; `onRecord` gets each with its line
 * number. Errors name the file, line and field.
 */
export async function readLabelFile(file: string, format: LabelFileFormat, onRecord: (rec: LabelRecord, line: number) => void): Promise<number> {
  const lines = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  let lineNo = 0;
  let columns: Map<string, number> | undefined;
  let records = 0;
  for await (const raw of lines) {
    lineNo++;
    const line = lineNo === 1 ? raw.replace(/^\uFEFF/, "") : raw;
    if (line.trim() === "") continue;
    const at = (field: string, message: string) => new LabelFileError(file, lineNo, field, message);
    let rec: LabelRecord;
    if (format === "csv") {
      let fields: string[];
      try {
        fields = parseCsvLine(line);
      } catch (err) {
        throw at("(row)", (err as Error).message);
      }
      if (!columns) {
        columns = new Map();
        for (const [i, f] of fields.entries()) {
          const name = f.trim().toLowerCase();
          if (!(CSV_COLUMNS as readonly string[]).includes(name)) throw at(`header[${i}]`, `unknown column "${f.trim()}" (expected ${CSV_COLUMNS.join(", ")})`);
          if (columns.has(name)) throw at(`header[${i}]`, `column "${name}" appears twice`);
          columns.set(name, i);
        }
        if (!columns.has("id")) throw at("header", `no "id" column (expected a header row with ${CSV_COLUMNS.join(", ")})`);
        continue;
      }
      rec = csvRecord(fields, columns, at);
    } else {
      let json: unknown;
      try {
        json = JSON.parse(line);
      } catch (err) {
        throw at("(record)", `invalid JSON: ${(err as Error).message}`);
      }
      const parsed = JsonLabels.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const path = issue.path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), "");
        throw at(path || "(record)", issue.message);
      }
      rec = parsed.data;
    }
    onRecord(rec, lineNo);
    records++;
  }
  if (format === "csv" && !columns) throw new LabelFileError(file, lineNo, "header", "empty file: expected a header row");
  return records;
}

/** Applies a label file to the store in one transaction (see the module comment). */
export async function importLabelFile(store: VideoStore, file: string, options: LabelImportOptions = {}): Promise<LabelImportResult> {
  const format = labelFileFormat(file, options.format);
  const provenance = options.provenance ?? "manual";
  const now = options.now ?? Date.now();
  const known = { category: new Set(store.labels("category").map((l) => l.name)), tags: new Set(store.labels("tags").map((l) => l.name)) };
  const fresh = { category: new Set<string>(), tags: new Set<string>() };
  const videos = new Set<string>();
  const batch = store.beginBatch();
  let lines: number;
  try {
    lines = await readLabelFile(file, format, (rec, line) => {
      const at = (field: string, err: unknown) => new LabelFileError(file, line, field, err instanceof Error ? err.message : String(err));
      if (!store.getVideo(rec.id)) throw at("id", `unknown video "${rec.id}" (import the video first)`);
      try {
        if (rec.category !== undefined) store.setLabels(rec.id, "category", rec.category === null ? [] : [rec.category], provenance, now);
      } catch (err) {
        throw at("category", err);
      }
      try {
        if (rec.tags !== undefined) {
          if (options.replace) store.setLabels(rec.id, "tags", rec.tags, provenance, now);
          else store.addLabels(rec.id, "tags", rec.tags, provenance, now);
        }
      } catch (err) {
        throw at("tags", err);
      }
      if (rec.category) if (!known.category.has(rec.category.trim())) fresh.category.add(rec.category.trim());
      for (const t of rec.tags ?? []) if (!known.tags.has(t.trim())) fresh.tags.add(t.trim());
      videos.add(rec.id);
    });
    batch.commit();
  } catch (err) {
    batch.rollback();
    throw err;
  }
  return {
    file,
    lines,
    videos: videos.size,
    newLabels: { category: [...fresh.category], tags: [...fresh.tags] },
    labelSpaces: { category: store.labelSpaceSize("category"), tags: store.labelSpaceSize("tags") },
  };
}
