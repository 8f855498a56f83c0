// python3 for interop tests (transformers, tensorboard, fusion_torch): runs a script and returns
// its exit status and both streams, or nil when python3 cannot be started (the test then skips).
import Foundation

public enum Python {
    /// Runs `python3 -c script arguments…` with `environment` added to this process's.
    public static func run(_ script: String, _ arguments: [String] = [], environment: [String: String] = [:])
        -> (status: Int32, stdout: Data, stderr: String)? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script] + arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        guard (try? p.run()) != nil else { return nil }
        // Read both pipes while the process runs, so neither fills and blocks it.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box(), group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errBox.data = err.fileHandleForReading.readDataToEndOfFile() }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return (p.terminationStatus, data, String(decoding: errBox.data, as: UTF8.self))
    }
}
