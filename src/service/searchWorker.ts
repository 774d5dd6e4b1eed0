/**
 * A search thread of the SearchPool: holds its own SimilarityIndex (the
 * indexer's loader and search, unchanged) and answers one message at a time.
 * Loading a new version is asynchronous (SimilarityIndex.reload), so searches
 * that arrive meanwhile are answered from the version already loaded.
 */
import { parentPort } from "node:worker_threads";
import { SimilarityIndex } from "../../indexer/search.js";
import type { FromSearchWorker, SearchRequest, ToSearchWorker } from "./searchPool.js";

let index: SimilarityIndex | undefined;
const port = parentPort!;
const post = (m: FromSearchWorker) => port.postMessage(m);

port.on("message", (m: ToSearchWorker) => {
  if (m.type === "close") {
    port.close();
    return;
  }
  if (m.type === "load") {
    const categoryOf = new Map(m.categories);
    const loading = index ? index.reload({ categoryOf }).then(() => index!) : SimilarityIndex.open(m.root, { categoryOf });
    loading.then(
      (ix) => {
        index = ix;
        post({ type: "loaded", seq: m.seq, version: ix.version });
      },
      (err: Error) => post({ type: "loaded", seq: m.seq, error: err.message }),
    );
    return;
  }
  if (m.type === "searches") {
    post({ type: "results", items: m.items.map(search) });
    return;
  }
  post(search(m));
});

function search(m: SearchRequest): Extract<FromSearchWorker, { type: "result" }> {
  try {
    if (!index) throw new Error("no index loaded in this search thread");
    const hits = m.vector ? index.similarToVector(m.vector, m.k, m.options) : index.similar(m.id!, m.k, m.options);
    return { type: "result", seq: m.seq, version: index.version, hits, stats: index.stats };
  } catch (err) {
    const e = err as Error;
    return { type: "result", seq: m.seq, error: { name: e.name, message: e.message } };
  }
}
