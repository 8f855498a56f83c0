// Executable markdown notebooks: fenced `sh` blocks run in order, each one's output is written
// into the `output` block that follows it, and files a block names with `# show: PATH` are
// copied next to the notebook and linked under the output. Not a Jupyter clone: no kernels, no
// state between blocks beyond the files they write (each block is its own bash process).
import Foundation

/// A notebook that could not be read, run or written.
public enum NotebookError: Error, CustomStringConvertible, Equatable {
    /// A fence opened at `line` is never closed.
    case unclosedFence(file: String, line: Int)
    /// The block starting at `line` exited with `status`.
    case blockFailed(file: String, line: Int, status: Int32)
    /// `# show: path` in the block at `line` names a file the block did not write.
    case missingFigure(file: String, line: Int, path: String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .unclosedFence(let file, let line):
            return "\(file):\(line): code fence opened here is never closed; add a closing ``` line"
        case .blockFailed(let file, let line, let status):
            return "\(file):\(line): block exited with status \(status); its output is in the output block below it"
        case .missingFigure(let file, let line, let path):
            return "\(file):\(line): '# show: \(path)' names a file that does not exist after the block ran; check the path (relative to the working folder)"
        case .io(let path, let reason):
            return "\(path): \(reason)"
        }
    }
}

/// A parsed notebook: its lines and the runnable blocks in it.
///
/// ```swift
/// var nb = try Notebook(contentsOf: "notebooks-md/quickstart.md")
/// try nb.run(shell: BashShell(workingDirectory: "."), figures: "notebooks-md/figures")
/// try nb.write(to: "notebooks-md/quickstart.md")
/// ```
public struct Notebook {
    /// One ```sh block.
    public struct Block: Equatable {
        /// 1-based line of the opening fence.
        public var line: Int
        public var script: String
        /// Files named by `# show: PATH` lines, relative to the working folder.
        public var figures: [String]
    }

    /// What running one block produced.
    public struct Result: Equatable {
        public var status: Int32
        public var output: String
        public init(status: Int32, output: String) { self.status = status; self.output = output }
    }

    public let path: String
    public private(set) var lines: [String]

    /// Output blocks keep the last `maxOutputLines` lines of what a block printed.
    public var maxOutputLines = 40

    public init(text: String, path: String = "<notebook>") throws {
        self.path = path
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        self.lines = lines
        _ = try fences()
    }

    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NotebookError.io(path: path, reason: "cannot read the notebook (does the file exist?)")
        }
        try self.init(text: String(decoding: data, as: UTF8.self), path: path)
    }

    public var text: String { lines.joined(separator: "\n") + "\n" }

    /// Fenced blocks as (info string, index of opening line, index of closing line).
    func fences() throws -> [(info: String, open: Int, close: Int)] {
        var out: [(info: String, open: Int, close: Int)] = []
        var open: (info: String, line: Int, fence: String)?
        for (i, line) in lines.enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if let o = open {
                if t.hasPrefix(o.fence) && t.allSatisfy({ $0 == o.fence.first }) {
                    out.append((o.info, o.line, i)); open = nil
                }
            } else if t.hasPrefix("```") || t.hasPrefix("~~~") {
                let fence = String(t.prefix { $0 == t.first })
                open = (t.dropFirst(fence.count).trimmingCharacters(in: .whitespaces), i, fence)
            }
        }
        if let o = open { throw NotebookError.unclosedFence(file: path, line: o.line + 1) }
        return out
    }

    /// The ```sh (or ```bash) blocks, in order.
    public func blocks() throws -> [Block] {
        try fences().filter { Self.isShell($0.info) }.map { f in
            let body = Array(lines[(f.open + 1)..<f.close])
            let figures = body.compactMap { l -> String? in
                let t = l.trimmingCharacters(in: .whitespaces)
                guard t.hasPrefix("# show:") else { return nil }
                return t.dropFirst("# show:".count).trimmingCharacters(in: .whitespaces)
            }
            return Block(line: f.open + 1, script: body.joined(separator: "\n"), figures: figures)
        }
    }

    static func isShell(_ info: String) -> Bool {
        let word = info.split(separator: " ").first.map(String.init) ?? ""
        return word == "sh" || word == "bash"
    }

    /// Runs every block in order with `shell`, rewriting output blocks and figure links as it
    /// goes; `figures` is the folder (beside the notebook) figures are copied into, and `progress`
    /// hears about each block. Stops at the first failing block (its output is kept) and throws.
    /// Figure paths are relative to `workingDirectory` (where the blocks ran).
    public mutating func run(shell: (Block) throws -> Result, figures: String? = nil, workingDirectory: String = ".",
                             progress: (Int, Int, Block) -> Void = { _, _, _ in }) throws {
        let all = try blocks()
        for (k, block) in all.enumerated() {
            progress(k + 1, all.count, block)
            let result = try shell(block)
            try setOutput(of: k, to: result)
            if result.status != 0 { throw NotebookError.blockFailed(file: path, line: block.line, status: result.status) }
            if let folder = figures, !block.figures.isEmpty {
                try setFigures(of: k, block.figures.map {
                    try copyFigure($0, block: block, into: folder, workingDirectory: workingDirectory)
                })
            }
        }
    }

    /// Replaces (or inserts) the ```output block after block `k`.
    mutating func setOutput(of k: Int, to result: Result) throws {
        let fence = try fences()
        let shells = fence.filter { Self.isShell($0.info) }
        let close = shells[k].close
        var body = result.output.components(separatedBy: "\n").map(Self.lastCarriageSegment)
        while body.last?.trimmingCharacters(in: .whitespaces) == "" { body.removeLast() }
        if body.count > maxOutputLines {
            let cut = body.count - maxOutputLines
            body = ["… (\(cut) earlier lines)"] + body.suffix(maxOutputLines)
        }
        if result.status != 0 { body.append("(exit status \(result.status))") }
        let block = ["", "```output"] + body.map { $0.replacingOccurrences(of: "```", with: "'''") } + ["```"]
        if let existing = fence.first(where: { $0.open > close && $0.info == "output" }),
           lines[(close + 1)..<existing.open].allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            lines.replaceSubrange((close + 1)...existing.close, with: block)
        } else {
            lines.insert(contentsOf: block, at: close + 1)
        }
    }

    /// Replaces the figure links directly after block `k`'s output block with `links`.
    mutating func setFigures(of k: Int, _ links: [String]) throws {
        let fence = try fences()
        let shells = fence.filter { Self.isShell($0.info) }
        guard let output = fence.first(where: { $0.open > shells[k].close && $0.info == "output" }) else { return }
        var end = output.close + 1
        while end < lines.count, Self.isFigureLine(lines[end]) || (lines[end].isEmpty && end + 1 < lines.count && Self.isFigureLine(lines[end + 1])) {
            end += 1
        }
        lines.replaceSubrange((output.close + 1)..<end, with: [""] + links)
    }

    static func isFigureLine(_ line: String) -> Bool { line.hasPrefix("![") && line.contains("](figures/") }

    /// Copies a figure into `folder` as `<notebook>-<last folders and file name>` (so two runs'
    /// step-600.png do not collide) and returns its markdown link.
    func copyFigure(_ figure: String, block: Block, into folder: String, workingDirectory: String = ".") throws -> String {
        let source = figure.hasPrefix("/") ? URL(fileURLWithPath: figure)
            : URL(fileURLWithPath: workingDirectory).appendingPathComponent(figure)
        guard FileManager.default.fileExists(atPath: source.path) else {
            throw NotebookError.missingFigure(file: path, line: block.line, path: figure)
        }
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let parts = figure.split(separator: "/").filter { !["", ".", "runs"].contains($0) }.suffix(3)
        let name = stem + "-" + parts.joined(separator: "-")
        let target = URL(fileURLWithPath: folder).appendingPathComponent(name)
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let data = try Foundation.Data(contentsOf: source)
            try data.write(to: target, options: .atomic)
        } catch {
            throw NotebookError.io(path: target.path, reason: "cannot copy figure \(figure): \(error.localizedDescription)")
        }
        return "![\(source.lastPathComponent)](figures/\(name))"
    }

    /// What a terminal shows of a line redrawn with carriage returns (progress lines).
    static func lastCarriageSegment(_ line: String) -> String {
        let parts = line.split(separator: "\r", omittingEmptySubsequences: true)
        return parts.last.map(String.init) ?? ""
    }

    /// Writes the notebook atomically (a temporary file renamed into place).
    public func write(to path: String) throws {
        do {
            try Foundation.Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw NotebookError.io(path: path, reason: "cannot write the notebook: \(error.localizedDescription)")
        }
    }
}

/// Runs blocks with `bash -e -o pipefail` in `workingDirectory`, with `extraPath` (e.g. the
/// release build folder, so blocks call `fusion`) in front of PATH; output is echoed to
/// `echo` as it arrives and returned with stdout and stderr interleaved.
public struct BashShell {
    public var workingDirectory: String
    public var extraPath: [String]
    public var echo: (String) -> Void

    public init(workingDirectory: String, extraPath: [String] = [], echo: @escaping (String) -> Void = { _ in }) {
        self.workingDirectory = workingDirectory; self.extraPath = extraPath; self.echo = echo
    }

    public func callAsFunction(_ block: Notebook.Block) throws -> Notebook.Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-e", "-o", "pipefail", "-c", block.script]
        process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        var env = ProcessInfo.processInfo.environment
        let dirs = extraPath.map { URL(fileURLWithPath: $0, relativeTo: URL(fileURLWithPath: workingDirectory)).path }
        env["PATH"] = (dirs + [env["PATH"] ?? "/usr/bin:/bin"]).joined(separator: ":")
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw NotebookError.io(path: "/bin/bash", reason: "cannot start bash: \(error.localizedDescription)")
        }
        var collected = Foundation.Data()
        let handle = pipe.fileHandleForReading
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            collected.append(chunk)
            echo(String(decoding: chunk, as: UTF8.self))
        }
        process.waitUntilExit()
        return Notebook.Result(status: process.terminationStatus, output: String(decoding: collected, as: UTF8.self))
    }
}
