import { Command } from "commander";

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("vidrecall")
    .description("Multimodal video embeddings: classification plus similar-video recall")
    .version("0.1.0");
  return program;
}
