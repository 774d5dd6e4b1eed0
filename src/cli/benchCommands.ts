/** `vidrecall bench …`: speed and memory measurements, printed as JSON and a short table. */
import type { Command } from "commander";
import { benchImport } from "../bench/importBench.js";
import { writeBenchResult } from "../bench/report.js";

export function registerBenchCommands(program: Command): void {
  const bench = program.command("bench").description("benchmarks: print JSON and a short table");
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
}
