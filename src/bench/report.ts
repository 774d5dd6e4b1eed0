/** Shared output of every benchmark: JSON on stdout (and to a file), then a short table on stderr. */
import { writeFileAtomic } from "../util/files.js";

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, JSON.stringify(value, null, 2) + "\n");
}

export function formatTable(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => c.padStart(widths[i])).join("  ")).join("\n");
}

export function writeBenchResult(result: unknown, jsonFile: string | undefined, table: string[][]): void {
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  if (jsonFile) writeJsonAtomic(jsonFile, result);
  process.stderr.write("\n" + formatTable(table) + "\n");
}
