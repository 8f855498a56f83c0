// The release `fusion` binary for tests that run whole commands (`make test` builds it first),
// and one way to run it: arguments, working folder, exit status and both output streams.
import Foundation

public enum FusionBinary {
    /// The package root (the folder holding Package.swift).
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// `.build/release/fusion` under the package root.
    public static let path = packageRoot.appendingPathComponent(".build/release/fusion").path
    /// Whether it is built (tests through the binary are skipped without it).
    public static var isBuilt: Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// Runs `fusion arguments` in `dir`; returns the exit status (a signal reads as 128 + n),
    /// standard output and standard error.
    public static func run(_ arguments: [String], in dir: URL) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        p.currentDirectoryURL = dir
        let out = Pipe(), err = Pipe()
        (p.standardOutput, p.standardError) = (out, err)
        try p.run()
        // Read both pipes while the process runs, so neither fills and blocks it.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box(), group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errBox.data = err.fileHandleForReading.readDataToEndOfFile() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        p.waitUntilExit()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return (status, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}
