// Markdown notebooks: which blocks run, how outputs and figure links are written and rewritten,
// failures, and the bash runner itself.
import Foundation
import Testing
@testable import Notebooks

@Suite struct NotebookTests {
    static let source = """
        # Title

        ```sh
        echo one
        # show: a.png
        ```

        Some prose.

        ```bash
        echo two
        ```

        ```output
        stale
        ```

        ```swift
        let notRun = 1
        ```
        """

    /// A shell that answers each block with its first line, upper-cased.
    static func fake(_ b: Notebook.Block) -> Notebook.Result {
        .init(status: 0, output: b.script.split(separator: "\n")[0].uppercased() + "\n")
    }

    @Test func findsShellBlocksAndShowLines() throws {
        let nb = try Notebook(text: Self.source)
        let blocks = try nb.blocks()
        #expect(blocks.map(\.line) == [3, 10])
        #expect(blocks[0].figures == ["a.png"] && blocks[1].figures.isEmpty)
        #expect(blocks[1].script == "echo two")
    }

    @Test func outputsAreInsertedThenReplacedSoRunningTwiceChangesNothing() throws {
        var nb = try Notebook(text: Self.source)
        try nb.run(shell: Self.fake)
        let once = nb.text
        #expect(once.contains("```sh\necho one\n# show: a.png\n```\n\n```output\nECHO ONE\n```"))
        #expect(once.contains("```output\nECHO TWO\n```") && !once.contains("stale"))
        #expect(once.contains("```swift\nlet notRun = 1\n```"))
        var again = try Notebook(text: once)
        try again.run(shell: Self.fake)
        #expect(again.text == once)
    }

    @Test func figuresAreCopiedBesideTheNotebookAndLinkedOnce() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("runs/x/samples"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Foundation.Data([1, 2, 3]).write(to: dir.appendingPathComponent("runs/x/samples/a.png"))
        let text = Self.source.replacingOccurrences(of: "# show: a.png", with: "# show: runs/x/samples/a.png")
        var nb = try Notebook(text: text, path: dir.appendingPathComponent("demo.md").path)
        let figures = dir.appendingPathComponent("figures").path
        try nb.run(shell: Self.fake, figures: figures, workingDirectory: dir.path)
        try nb.run(shell: Self.fake, figures: figures, workingDirectory: dir.path)
        #expect(nb.text.components(separatedBy: "![a.png](figures/demo-x-samples-a.png)").count == 2, "\(nb.text)")
        #expect(FileManager.default.contents(atPath: figures + "/demo-x-samples-a.png") == Foundation.Data([1, 2, 3]))
    }

    @Test func aMissingFigureNamesTheBlock() throws {
        var nb = try Notebook(text: Self.source, path: "x.md")
        #expect(throws: NotebookError.missingFigure(file: "x.md", line: 3, path: "a.png")) {
            try nb.run(shell: Self.fake, figures: FileManager.default.temporaryDirectory.path)
        }
    }

    @Test func aFailingBlockStopsTheRunAndKeepsItsOutput() throws {
        var nb = try Notebook(text: Self.source, path: "x.md")
        var ran: [Int] = []
        #expect(throws: NotebookError.blockFailed(file: "x.md", line: 3, status: 2)) {
            try nb.run(shell: { b in ran.append(b.line); return .init(status: 2, output: "boom\n") })
        }
        #expect(ran == [3])
        #expect(nb.text.contains("```output\nboom\n(exit status 2)\n```"))
    }

    @Test func unclosedFenceNamesItsLine() {
        #expect(throws: NotebookError.unclosedFence(file: "y.md", line: 2)) {
            try Notebook(text: "hi\n```sh\necho\n", path: "y.md")
        }
    }

    @Test func progressLinesKeepWhatATerminalShowsAndLongOutputIsCut() throws {
        var nb = try Notebook(text: "```sh\nx\n```\n")
        nb.maxOutputLines = 3
        try nb.run(shell: { _ in .init(status: 0, output: "step 1\rstep 2\rstep 3\na\nb\nc\n") })
        #expect(nb.text == "```sh\nx\n```\n\n```output\n… (1 earlier lines)\na\nb\nc\n```\n")
    }

    @Test func bashShellRunsInTheFolderWithPathAndFailsOnErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nb-\(UUID().uuidString)")
        let bin = dir.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tool = bin.appendingPathComponent("greet").path
        try "#!/bin/sh\necho hello from greet\n".write(toFile: tool, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: tool)
        let shell = BashShell(workingDirectory: dir.path, extraPath: ["bin"])
        let ok = try shell(.init(line: 1, script: "greet\necho err >&2\nbasename \"$PWD\"", figures: []))
        #expect(ok.status == 0)
        #expect(ok.output == "hello from greet\nerr\n\(dir.lastPathComponent)\n")
        let failed = try shell(.init(line: 1, script: "false | cat\necho not reached", figures: []))
        #expect(failed.status == 1 && failed.output.isEmpty)
    }
}
