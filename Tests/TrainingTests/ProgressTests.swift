// Progress of long commands: one refreshed line on a terminal, plain lines (no carriage returns)
// in files and pipes, so a redirected log reads line by line — for CountProgress alone and through
// `fusion eval` and `fusion data` with standard error in a file.
import Foundation
import Testing
@testable import Training

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
private let fusionBinary = packageRoot.appendingPathComponent(".build/release/fusion").path

struct ProgressTests {
    @Test func countProgressInAFileWritesPlainLinesAtEachTenth() {
        var text = ""
        let p = CountProgress("prompt", total: 120, isTerminal: false) { text += $0 }
        for i in 1...120 { p.update(i) }
        p.finish()
        #expect(!text.contains("\r"))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 10, "\(lines)")
        #expect(lines.first?.hasPrefix("prompt 12/120") == true && lines.last?.hasPrefix("prompt 120/120") == true, "\(lines)")
        #expect(text.hasSuffix("\n"))

        var few = ""
        let q = CountProgress("clip", total: 3, isTerminal: false) { few += $0 }
        for i in 1...3 { q.update(i) }
        q.finish()
        #expect(few.split(separator: "\n").map { String($0.prefix(8)) } == ["clip 1/3", "clip 2/3", "clip 3/3"])
    }

    @Test func countProgressOnATerminalRefreshesOneLine() {
        var text = ""
        let p = CountProgress("image", total: 5, isTerminal: true) { text += $0 }
        for i in 1...5 { p.update(i) }
        p.finish()
        #expect(text.hasPrefix("\r\u{1B}[2Kimage 1/5"))
        #expect(text.contains("image 5/5") && text.hasSuffix("\n"))
        #expect(text.filter { $0 == "\n" }.count == 1)
    }

    /// `fusion eval` and `fusion data shapes` with standard error redirected to a file.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: fusionBinary), "needs .build/release/fusion (make test builds it)"))
    func redirectedLogsReadLineByLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-progress-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let runs: [(String, [String], String)] = [
            ("eval", ["eval", "--checkpoint", "checkpoints/shapes-tiny", "--suite", "shapes", "--prompts-per-category", "2",
                      "--images-per-prompt", "1", "--steps", "2"], "prompt 12/12"),
            ("data", ["data", "shapes", "--out", dir.appendingPathComponent("shapes").path, "--count", "20"], "image 20/20"),
        ]
        for (name, arguments, last) in runs {
            let log = dir.appendingPathComponent("\(name).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: fusionBinary)
            p.arguments = arguments
            p.currentDirectoryURL = packageRoot
            p.standardOutput = FileHandle.nullDevice
            p.standardError = try FileHandle(forWritingTo: log)
            try p.run()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            let text = try String(contentsOf: log, encoding: .utf8)
            #expect(!text.contains("\r") && !text.contains("\u{1B}"), "\(name): \(text.debugDescription)")
            #expect(text.split(separator: "\n").last?.hasPrefix(last) == true, "\(name): \(text)")
        }
    }
}
