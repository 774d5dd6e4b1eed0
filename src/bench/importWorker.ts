/** Child process of `bench import`: one import, timed, reporting its own peak RSS. */
import { importYt8m } from "../data/importer.js";
import { VideoStore } from "../data/store.js";
import { readYt8mVocabulary } from "../data/yt8mVocabulary.js";

process.once("message", async (msg: { files: string[]; vocabulary: string; db: string }) => {
  const started = performance.now();
  const store = VideoStore.open(msg.db);
  const vocabulary = await readYt8mVocabulary(msg.vocabulary);
  const report = await importYt8m(store, msg.files, { vocabulary });
  store.close();
  const seconds = (performance.now() - started) / 1000;
  process.send?.({
    videos: report.videos,
    seconds,
    videos_per_s: report.videos / seconds,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  });
  process.disconnect?.();
});
