/** Export of the store to JSONL, written to a temp file and renamed so a crash never leaves half a file. */
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { videoToJson } from "./jsonl.js";
import type { Split } from "./split.js";
import type { VideoStore } from "./store.js";

export async function exportJsonl(store: VideoStore, out: string, options: { split?: Split } = {}): Promise<number> {
  const tmp = `${out}.tmp-${process.pid}`;
  const stream = createWriteStream(tmp, { encoding: "utf8" });
  let n = 0;
  try {
    for (const id of store.videoIds(options.split)) {
      const v = store.getVideo(id);
      if (!v) continue;
      const line = videoToJson(v, v.category?.name ?? null, v.tags.map((t) => t.name), store.getEncodedFeatures(id)) + "\n";
      if (!stream.write(line)) await once(stream, "drain");
      n++;
    }
    stream.end();
    await once(stream, "finish");
    await rename(tmp, out);
  } catch (err) {
    stream.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
  return n;
}
