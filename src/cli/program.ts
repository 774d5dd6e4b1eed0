import { Command } from "commander";
import { registerDataCommands } from "./dataCommands.js";
import { registerBenchCommands } from "./benchCommands.js";
import { registerTrainCommands } from "./trainCommands.js";
import { registerExportCommand } from "./exportCommand.js";
import { registerIndexCommands, registerReindexCommand } from "./indexCommands.js";
import { registerInferCommands } from "./inferCommands.js";
import { registerLabelsCommands } from "./labelsCommands.js";
import { registerModelsCommands } from "./modelsCommands.js";
import { registerRetrainCommands } from "./retrainCommands.js";
import { registerHttpBench, registerServeCommands } from "./serveCommands.js";


export function buildProgram(): Command {
  const program = new Command();
  program
    .name("vidrecall")
    .description("Multimodal video embeddings: classification plus similar-video recall")
    .version("0.1.0")
    .showHelpAfterError("(run with --help for usage)");
  registerDataCommands(program);
  registerTrainCommands(program);
  registerExportCommand(program);
  registerInferCommands(program);
  registerIndexCommands(program);
  registerReindexCommand(program);
  registerLabelsCommands(program);
  registerRetrainCommands(program);
  registerModelsCommands(program);
  registerBenchCommands(program);
  registerServeCommands(program);
  registerHttpBench(program);
  return program;
}
