/**
 * `bench import`: each run imports N shards into a fresh database in a child
 * process, so its peak RSS (getrusage maxrss) is the import's alone. Runs with
 * 20 shards and with all shards show whether memory grows with input size.
 */
import { fork } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface ImportRun {
  shards: number;
  videos: number;
  seconds: number;
  videos_per_s: number;
  peak_rss_mb: number;
}

export interface ImportBenchResult {
  videos: number;
  videos_per_s: number;
  peak_rss_mb: number;
  runs: ImportRun[];
}

export function listShards(dataDir: string): string[] {
  return readdirSync(dataDir)
    .filter((f) => f.endsWith(".tfrecord"))
    .sort()
    .map((f) => join(dataDir, f));
}

function runChild(files: string[], vocabulary: string, db: string): Promise<Omit<ImportRun, "shards">> {
  const worker = fileURLToPath(new URL("./importWorker.js", import.meta.url));
  return new Promise((resolve, reject) => {
    const child = fork(worker, [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    child.once("message", (m) => resolve(m as Omit<ImportRun, "shards">));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code !== 0) reject(new Error(`import worker exited with code ${code}`));
    });
    child.send({ files, vocabulary, db });
  });
}

export async function benchImport(options: { dataDir: string; shards?: number }): Promise<ImportBenchResult> {
  const all = listShards(options.dataDir);
  if (all.length === 0) throw new Error(`no .tfrecord shards in ${options.dataDir}`);
  const vocabulary = join(options.dataDir, "vocabulary.csv");
  const full = Math.min(options.shards ?? all.length, all.length);
  const sizes = [...new Set([Math.min(20, full), full])];
  const runs: ImportRun[] = [];
  for (const n of sizes) {
    const dir = mkdtempSync(join(tmpdir(), "vidrecall-bench-import-"));
    try {
      const r = await runChild(all.slice(0, n), vocabulary, join(dir, "bench.sqlite"));
      runs.push({ shards: n, ...r });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const last = runs[runs.length - 1];
  return { videos: last.videos, videos_per_s: last.videos_per_s, peak_rss_mb: Math.max(...runs.map((r) => r.peak_rss_mb)), runs };
}
