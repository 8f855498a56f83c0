// The `fusion` command line: argument parsing only; every subcommand calls library code.
import ArgumentParser

@main
struct Fusion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fusion",
        abstract: "Train and sample unified multimodal transformers (Transfusion-style) on a CPU.",
        discussion: """
            Start with:  fusion train recipes/quickstart.yaml
            Every subcommand has --help with a working example.
            """,
        subcommands: [Train.self, Sample.self, Caption.self, Generate.self, Speak.self, Transcribe.self, Edit.self, Compare.self, Plot.self, Sweep.self, Eval.self, EvalCompare.self, Export.self,
                      DataCommand.self, VAECommand.self, VQCommand.self, MSVQCommand.self, NotebookCommand.self])
}
