/** `vidrecall labels import FILE`: labels by name for stored videos (CSV or JSONL, see src/data/labelFile.ts). */
import { Option, type Command } from "commander";
import { importLabelFile, type LabelFileFormat } from "../data/labelFile.js";
import { VideoStore, type Provenance } from "../data/store.js";
import { dbOption } from "./options.js";

export function registerLabelsCommands(program: Command): void {
  const labels = program.command("labels").description("labels of stored videos");
  labels
    .command("import <file>")
    .description("set categories and add (or --replace) tags of stored videos from a CSV (id,category,tags with tags separated by |) or JSONL ({id, category, tags}) file; new names grow the label spaces; one transaction")
    .addOption(dbOption())
    .addOption(new Option("--format <format>", "default: from the extension").choices(["csv", "jsonl"]))
    .option("--replace", "the file's tags replace each video's tags (default: added to them)")
    .addOption(new Option("--provenance <p>", "recorded with each assignment").choices(["manual", "imported", "predicted"]).default("manual"))
    .action(async (file: string, opts: { db: string; format?: LabelFileFormat; replace?: boolean; provenance: Provenance }) => {
      const store = VideoStore.open(opts.db);
      try {
        const r = await importLabelFile(store, file, { format: opts.format, replace: Boolean(opts.replace), provenance: opts.provenance });
        process.stdout.write(JSON.stringify(r, null, 2) + "\n");
        process.stderr.write(
          `labels: ${r.videos} videos from ${r.lines} lines; new labels: ${r.newLabels.tags.length} tags, ${r.newLabels.category.length} categories; label spaces now ${r.labelSpaces.category} categories, ${r.labelSpaces.tags} tags\n`,
        );
      } finally {
        store.close();
      }
    });
}
