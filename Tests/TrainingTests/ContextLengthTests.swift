// Prompts past a model's trained context (its recipe's data.seq_len): `fusion sample`, `generate`
// and `speak` refuse them naming the limit and the length; `caption` and `generate` cap what they
// generate with a warning. The shipped checkpoints predate configs that keep the context, so this
// also checks the fallback to the recipe.yaml beside them. Needs the release `fusion` binary.
import Foundation
import Testing

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
private let fusionBinary = packageRoot.appendingPathComponent(".build/release/fusion").path

@Suite(.serialized) struct ContextLengthTests {
    func fusion(_ arguments: [String], in dir: URL) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: fusionBinary)
        p.arguments = arguments
        p.currentDirectoryURL = dir
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return (status, String(decoding: data, as: UTF8.self))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: fusionBinary), "needs .build/release/fusion (make test builds it)"))
    func promptsPastTheTrainedContextAreRefusedOrCapped() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-context-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let shapes = packageRoot.appendingPathComponent("checkpoints/shapes-tiny").path
        let speech = packageRoot.appendingPathComponent("checkpoints/speech-tiny").path
        let long = Array(repeating: "red circle", count: 250).joined(separator: " ")   // 500 words
        let refused: [([String], String)] = [
            (["sample", "--checkpoint", shapes, "--prompt", long, "--steps", "1"], "past the 128 the model was trained on"),
            (["generate", "--checkpoint", shapes, "--prompt", long], "past the 128 the model was trained on"),
            (["speak", "--checkpoint", speech, "--prompt", long], "past the 128 the model was trained on"),
        ]
        for (arguments, needle) in refused {
            let (status, stderr) = try fusion(arguments, in: dir)
            #expect(status == 1, "\(arguments[0]): exit \(status)\n\(stderr)")
            #expect(stderr.contains(needle) && stderr.contains("positions") && stderr.contains("--prompt"), "\(arguments[0]): \(stderr)")
        }
        let (made, _) = try fusion(["data", "shapes", "--out", "d", "--count", "1"], in: dir)
        #expect(made == 0)
        let capped: [([String], String)] = [
            (["caption", "--checkpoint", shapes, "--image", "d/000000.png", "--max-tokens", "500"], "captions stop at 109 tokens"),
            (["generate", "--checkpoint", shapes, "--prompt", "a red", "--max-tokens", "300", "--steps", "1", "--out", "g"],
             "generation stops there"),
        ]
        for (arguments, needle) in capped {
            let (status, stderr) = try fusion(arguments, in: dir)
            #expect(status == 0, "\(arguments[0]): exit \(status)\n\(stderr)")
            #expect(stderr.contains("warning:") && stderr.contains(needle), "\(arguments[0]): \(stderr)")
        }
    }
}
