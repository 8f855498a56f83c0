// Progress of long commands: one refreshed line on a terminal, plain periodic lines (no carriage
// returns) in files and pipes, so a redirected log reads line by line — for CountProgress alone and through
// `fusion eval` and `fusion data` with standard error in a file.
import Foundation
import Testing
@testable import Models
@testable import Training

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
private let fusionBinary = packageRoot.appendingPathComponent(".build/release/fusion").path

struct ProgressTests {
    @Test func countProgressInAFileWritesPlainPeriodicLines() {
        // Every update past the interval writes a line (interval 0: each one), never a carriage return.
        var text = ""
        let p = CountProgress("prompt", total: 5, isTerminal: false, interval: 0) { text += $0 }
        for i in 1...5 { p.update(i) }
        p.finish()
        #expect(!text.contains("\r") && text.hasSuffix("\n"))
        #expect(text.split(separator: "\n").map { String($0.prefix(10)) } == (1...5).map { "prompt \($0)/5" })

        // A loop shorter than the interval writes its last line only, once.
        var short = ""
        let q = CountProgress("clip", total: 300, isTerminal: false) { short += $0 }
        for i in 1...300 { q.update(i) }
        q.update(300)
        q.finish()
        #expect(short.split(separator: "\n").count == 1 && short.hasPrefix("clip 300/300"), "\(short)")
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
