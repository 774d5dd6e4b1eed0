/** `vidrecall models list|show|add|promote|rollback`: the model registry. */
import type { Command } from "commander";
import { VideoStore } from "../data/store.js";
import type { ModelRecord } from "../registry/modelRegistry.js";
import { ModelRegistry } from "../registry/modelRegistry.js";
import { promoteModel, rollbackModel } from "../registry/promotion.js";
import { formatTable } from "../bench/report.js";
import { selectBackend, type BackendChoice } from "../train/backend.js";
import { resolveParent } from "../train/retrain.js";
import { emitJsonl, progressFormatOption, type ProgressFormat } from "./indexCommands.js";
import { backendOption, dbOption } from "./options.js";
import { indexDirOption, stageProgress } from "./retrainCommands.js";

const when = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString().replace("T", " ").slice(0, 19));

function oldGap(m: ModelRecord): string {
  const h = m.metrics?.holdout as { old?: { gap20?: number | null } } | undefined;
  const g = h?.old?.gap20;
  return typeof g === "number" ? g.toFixed(4) : "-";
}

function gateText(m: ModelRecord): string {
  const gate = m.metrics?.gate as { passed?: boolean } | undefined;
  return gate ? (gate.passed ? "passed" : "failed") : "-";
}

export function registerModelsCommands(program: Command): void {
  const models = program.command("models").description("the model registry: list, show, add, promote, rollback");

  models
    .command("list")
    .description("registered models, newest first")
    .addOption(dbOption())
    .option("--json", "print JSON")
    .action((opts: { db: string; json?: boolean }) => {
      const store = VideoStore.open(opts.db, { readonly: true });
      try {
        const list = new ModelRegistry(store).list();
        if (opts.json) return void process.stdout.write(JSON.stringify(list, null, 2) + "\n");
        if (list.length === 0) return void process.stdout.write("no registered models (vidrecall retrain, or vidrecall models add)\n");
        const rows = [["id", "status", "mode", "parent", "created", "holdout old gap20", "gate", "index"]];
        for (const m of list) rows.push([m.id, m.status, m.mode, m.parent ?? "-", when(m.createdAt), oldGap(m), gateText(m), m.indexVersion ?? "-"]);
        process.stdout.write(formatTable(rows) + "\n");
      } finally {
        store.close();
      }
    });

  models
    .command("show <id>")
    .description("one model's record as JSON: config, parent, data snapshot, holdout metrics, gate verdict, status")
    .addOption(dbOption())
    .action((id: string, opts: { db: string }) => {
      const store = VideoStore.open(opts.db, { readonly: true });
      try {
        process.stdout.write(JSON.stringify(new ModelRegistry(store).require(id), null, 2) + "\n");
      } finally {
        store.close();
      }
    });

  models
    .command("add <dir>")
    .description("register a trained model directory (e.g. from `vidrecall train`); it becomes active if none is")
    .addOption(dbOption())
    .action((dir: string, opts: { db: string }) => {
      const store = VideoStore.open(opts.db);
      try {
        const rec = resolveParent(store, new ModelRegistry(store), dir, (line) => process.stderr.write(line + "\n"));
        process.stdout.write(JSON.stringify({ id: rec.id, status: rec.status, dir: rec.dir }) + "\n");
      } finally {
        store.close();
      }
    });

  models
    .command("promote <id>")
    .description("make a model active: export it, reuse its parent's index if the embedding is unchanged or reindex, update the registry (the server swaps)")
    .addOption(dbOption())
    .addOption(indexDirOption())
    .option("--force", "promote even though the gate kept it a candidate")
    .addOption(backendOption())
    .addOption(progressFormatOption())
    .action(async (id: string, opts: { db: string; indexDir: string; force?: boolean; backend: BackendChoice; progress: ProgressFormat }) => {
      const progress = stageProgress(opts.progress);
      try {
        await selectBackend(opts.backend);
        const store = VideoStore.open(opts.db);
        try {
          const r = await promoteModel(store, id, {
            indexDir: opts.indexDir,
            force: opts.force,
            onProgress: (p) => progress.update(p),
            log: (line) => {
              progress.stop();
              process.stderr.write(line + "\n");
            },
          });
          progress.stop();
          if (opts.progress === "jsonl") emitJsonl({ event: "result", ...r });
          else process.stdout.write(JSON.stringify(r, null, 2) + "\n");
        } finally {
          store.close();
        }
      } catch (err) {
        progress.stop();
        if (opts.progress === "jsonl") emitJsonl({ event: "error", message: (err as Error).message });
        throw err;
      }
    });

  models
    .command("rollback")
    .description("restore the previously active model and the index version it used")
    .addOption(dbOption())
    .addOption(indexDirOption())
    .action((opts: { db: string; indexDir: string }) => {
      const store = VideoStore.open(opts.db);
      try {
        const r = rollbackModel(store, { indexDir: opts.indexDir });
        process.stdout.write(JSON.stringify(r, null, 2) + "\n");
        process.stderr.write(`rolled back from "${r.from}" to "${r.to}"${r.indexVersion ? `; index ${r.indexVersion}${r.indexFlipped ? " is current again" : " was already current"}` : ""}\n`);
      } finally {
        store.close();
      }
    });
}
