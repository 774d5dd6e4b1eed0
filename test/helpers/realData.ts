import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** ../shared/data/yt8m-2018-video-level next to the repository root (found from this file or the cwd). */
export function findRealDataDir(): string | undefined {
  const candidates: string[] = [];
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json"))) candidates.push(resolve(dir, "../shared/data/yt8m-2018-video-level"));
    dir = dirname(dir);
  }
  candidates.push(resolve(process.cwd(), "../shared/data/yt8m-2018-video-level"));
  return candidates.find((c) => existsSync(join(c, "validate0000.tfrecord")));
}

export const REAL_DATA_MISSING = "YouTube-8M shards not found at ../shared/data/yt8m-2018-video-level";

export const shardPath = (dir: string, i: number): string => join(dir, `validate${String(i).padStart(4, "0")}.tfrecord`);
