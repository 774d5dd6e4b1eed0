/**
 * YouTube-8M vocabulary.csv: label index → name and verticals.
 *
 * Rows are ordered by TrainVideoCount, not by Index, and WikiDescription is a
 * quoted field that may contain commas and newlines, so the file goes through
 * a real CSV parser and is keyed by the Index column.
 */
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { parse } from "csv-parse/sync";

export const VOCABULARY_HEADER = [
  "Index",
  "TrainVideoCount",
  "KnowledgeGraphId",
  "Name",
  "WikiUrl",
  "Vertical1",
  "Vertical2",
  "Vertical3",
  "WikiDescription",
] as const;

export interface VocabularyEntry {
  index: number;
  /** Label name; empty for a few entries of the 2018 vocabulary (no Knowledge Graph name). */
  name: string;
  /** Top-level vertical ("Games", "Autos & Vehicles", "(Unknown)", …); may be "" in other releases. */
  vertical1: string;
  trainVideoCount: number;
  knowledgeGraphId: string;
  vertical2: string;
  vertical3: string;
}

export type Yt8mVocabulary = Map<number, VocabularyEntry>;

export class VocabularyError extends Error {
  override readonly name = "VocabularyError";
  constructor(
    readonly source: string,
    readonly line: number | undefined,
    readonly problem: string,
  ) {
    super(`${source}${line !== undefined ? `: line ${line}` : ""}: ${problem}`);
  }
}

interface ParsedRow {
  record: string[];
  info: { lines: number };
}

function parseNonNegativeInt(text: string, column: string, source: string, line: number): number {
  if (!/^\d+$/.test(text)) {
    throw new VocabularyError(source, line, `${column} is ${JSON.stringify(text)}, expected a non-negative integer`);
  }
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new VocabularyError(source, line, `${column} ${text} is too large`);
  return n;
}

/**
 * Parses the text of vocabulary.csv. `source` is only used in error messages.
 * Line numbers in errors are 1-based physical lines where the row starts.
 */
export function parseYt8mVocabulary(text: string | Uint8Array, source = "vocabulary.csv"): Yt8mVocabulary {
  let rows: ParsedRow[];
  try {
    // info:true gives each record's end line, from which the start line follows.
    rows = parse(text, { bom: true, info: true }) as unknown as ParsedRow[];
  } catch (e) {
    // csv-parse's messages already carry the line ("... at line 12").
    throw new VocabularyError(source, undefined, `malformed CSV: ${(e as Error).message}`);
  }
  if (rows.length === 0) throw new VocabularyError(source, undefined, "empty file (no header)");

  const header = rows[0].record;
  const expected = VOCABULARY_HEADER.join(",");
  if (header.join(",") !== expected) {
    throw new VocabularyError(source, 1, `header is ${JSON.stringify(header.join(","))}, expected ${JSON.stringify(expected)}`);
  }

  const vocab: Yt8mVocabulary = new Map();
  const firstLine = new Map<number, number>();
  for (let r = 1; r < rows.length; r++) {
    const line = rows[r - 1].info.lines + 1;
    const rec = rows[r].record;
    // csv-parse already rejects rows whose field count differs from the header's.
    const [indexText, countText, kgId, name, , vertical1, vertical2, vertical3] = rec;
    const index = parseNonNegativeInt(indexText, "Index", source, line);
    const trainVideoCount = parseNonNegativeInt(countText, "TrainVideoCount", source, line);
    const seen = firstLine.get(index);
    if (seen !== undefined) {
      throw new VocabularyError(source, line, `duplicate Index ${index} (first seen on line ${seen})`);
    }
    firstLine.set(index, line);
    vocab.set(index, { index, name, vertical1, trainVideoCount, knowledgeGraphId: kgId, vertical2, vertical3 });
  }
  return vocab;
}

/** Reads and parses a vocabulary.csv file. */
export async function readYt8mVocabulary(file: string): Promise<Yt8mVocabulary> {
  return parseYt8mVocabulary(await readFile(file), basename(file));
}

/**
 * How a single category is chosen from a video's labels:
 *  - "firstLabel": Vertical1 of the first label that has a non-empty Vertical1;
 *  - "firstKnownLabel": as above, but also skipping the "(Unknown)" vertical;
 *  - "majority": the most frequent non-empty Vertical1 among the labels, ties
 *    going to the vertical whose first occurrence comes earliest.
 */
export type CategoryMode = "firstLabel" | "firstKnownLabel" | "majority";

export const UNKNOWN_VERTICAL = "(Unknown)";

/**
 * The single-label category of a video. Returns undefined when no label
 * qualifies (no labels, or none with a usable Vertical1), so callers decide
 * whether to drop the video or bucket it. A label missing from the vocabulary
 * is an error, not a silent skip.
 */
export function categoryOf(
  labels: readonly number[],
  vocab: Yt8mVocabulary,
  mode: CategoryMode = "firstLabel",
): string | undefined {
  const entries: VocabularyEntry[] = [];
  // Check every label, not just up to the chosen one, so bad data never hides behind a good first label.
  for (const label of labels) {
    const entry = vocab.get(label);
    if (entry === undefined) throw new RangeError(`categoryOf: label ${label} is not in the vocabulary`);
    entries.push(entry);
  }
  const verticals: string[] = [];
  for (const entry of entries) {
    const v = entry.vertical1;
    if (v === "" || (mode === "firstKnownLabel" && v === UNKNOWN_VERTICAL)) continue;
    if (mode !== "majority") return v;
    verticals.push(v);
  }
  if (verticals.length === 0) return undefined;
  const counts = new Map<string, number>();
  for (const v of verticals) counts.set(v, (counts.get(v) ?? 0) + 1);
  // Map iteration follows first insertion, so strict ">" keeps the earliest on ties.
  let best: string | undefined;
  let bestCount = 0;
  for (const [v, c] of counts) {
    if (c > bestCount) {
      best = v;
      bestCount = c;
    }
  }
  return best;
}
