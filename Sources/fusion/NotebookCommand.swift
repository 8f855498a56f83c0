// `fusion notebook run FILE.md`: executes a markdown notebook's sh blocks and refreshes its outputs.
import ArgumentParser
import Foundation
import Notebooks

struct NotebookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notebook", abstract: "Run executable markdown notebooks.", subcommands: [Run.self])

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a notebook's sh blocks in order and refresh their output blocks and figures.",
            discussion: """
                Example (from the repository root):
                  fusion notebook run notebooks-md/quickstart.md

                Each ```sh block runs in its own `bash -e -o pipefail` in the working folder,
                with the folder of this fusion binary first on PATH. Its output (last 40 lines)
                replaces the ```output block below it. A block line `# show: runs/x/loss.png`
                copies that file to figures/ beside the notebook and links it under the output.
                The run stops at the first block that fails, naming its line; the outputs so far
                are kept.
                """)

        @Argument(help: "Notebook files (.md).") var files: [String]
        @Flag(help: "Run the blocks but leave the files unchanged (for CI).") var check = false
        @Option(help: "Folder the blocks run in.") var workdir = "."

        func run() throws {
            let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
                .deletingLastPathComponent().path
            for file in files {
                var notebook = try Notebook(contentsOf: file)
                let figures = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("figures").path
                let shell = BashShell(workingDirectory: workdir, extraPath: [binDir]) { text in
                    FileHandle.standardError.write(Foundation.Data(text.utf8))
                }
                let started = Date()
                do {
                    try notebook.run(shell: shell.callAsFunction, figures: check ? nil : figures, workingDirectory: workdir) { k, n, block in
                        FileHandle.standardError.write(Foundation.Data("── \(file):\(block.line) (block \(k) of \(n))\n".utf8))
                    }
                } catch {
                    if !check { try notebook.write(to: file) }
                    throw error
                }
                if !check { try notebook.write(to: file) }
                print(String(format: "%@: %d blocks ran in %.0f s", file, try notebook.blocks().count,
                             Date().timeIntervalSince(started)))
            }
        }
    }
}
