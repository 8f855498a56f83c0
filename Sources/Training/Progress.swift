// The progress displays: training's line (step, loss, rate, ETA) and CountProgress for a command's
// counted loops (prompts, images, files). Each is one line refreshed in place on a terminal and
// plain periodic lines otherwise (files, pipes, CI), so logs read line by line. Not logging of metrics
// (Metrics.swift).
import Foundation

public final class Progress {
    let total: Int
    let isTerminal: Bool
    let start = Date()
    let startStep: Int
    var lastDraw = Date.distantPast

    public init(total: Int, startStep: Int) {
        self.total = total
        self.startStep = startStep
        isTerminal = isatty(STDOUT_FILENO) != 0
    }

    /// Reports completed step `step` (1-based). `log` forces a plain line.
    public func update(step: Int, loss: Float, tokensPerSecond: Double, extra: String = "", log: Bool) {
        let elapsed = Date().timeIntervalSince(start)
        let rate = Double(step - startStep) / max(elapsed, 1e-9)
        let eta = rate > 0 ? Double(total - step) / rate : 0
        let line = String(format: "step %d/%d  loss %.4f  %.0f tok/s  %.2f step/s  ETA %@%@",
                          step, total, loss, tokensPerSecond, rate, Progress.duration(eta), extra.isEmpty ? "" : "  " + extra)
        if isTerminal {
            if Date().timeIntervalSince(lastDraw) > 0.1 || step == total {
                print("\r\u{1B}[2K" + line, terminator: step == total ? "\n" : "")
                fflush(stdout)
                lastDraw = Date()
            }
        } else if log || step == total {
            print(line)
            fflush(stdout)
        }
    }

    /// Prints a message on its own line without breaking the progress line.
    public func message(_ text: String) {
        print((isTerminal ? "\r\u{1B}[2K" : "") + text)
        fflush(stdout)
    }

    public static func duration(_ s: Double) -> String {
        let s = Int(s.rounded())
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
            : s >= 60 ? String(format: "%dm%02ds", s / 60, s % 60) : "\(s)s"
    }
}

/// Progress of a command's counted loop ("prompt 12/120  3.1/s  ETA 35s") on standard error: one
/// line refreshed in place on a terminal; on a file or pipe a plain line every `interval` seconds
/// and one at the end, never a carriage return (a short loop writes just its last line).
public final class CountProgress {
    let label: String
    let total: Int
    let isTerminal: Bool
    let interval: TimeInterval
    let write: (String) -> Void
    let start = Date()
    var lastDraw: Date
    var drawn = false
    var finished = false

    /// `write` receives each piece of text (default: standard error); `isTerminal` says how to
    /// draw (default: whether standard error is a terminal).
    public init(_ label: String, total: Int, isTerminal: Bool? = nil, interval: TimeInterval = 10,
                write: ((String) -> Void)? = nil) {
        self.label = label
        self.total = max(total, 0)
        self.isTerminal = isTerminal ?? (isatty(STDERR_FILENO) != 0)
        self.interval = interval
        self.write = write ?? { FileHandle.standardError.write(Foundation.Data($0.utf8)) }
        lastDraw = isTerminal == true ? .distantPast : Date()
    }

    /// `done` items of `total` are finished.
    public func update(_ done: Int) {
        let now = Date()
        let elapsed = now.timeIntervalSince(start)
        let rate = Double(done) / max(elapsed, 1e-9)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let line = "\(label) \(done)/\(total)" + (done > 0 ? String(format: "  %.1f/s  ETA %@", rate, Progress.duration(eta)) : "")
        let last = done >= total
        if isTerminal {
            guard now.timeIntervalSince(lastDraw) > 0.1 || last else { return }
            write("\r\u{1B}[2K" + line)
            drawn = true
        } else {
            guard !finished && (now.timeIntervalSince(lastDraw) >= interval || last) else { return }
            finished = last
            write(line + "\n")
        }
        lastDraw = now
    }

    /// Ends the refreshed line on a terminal (call once the loop is over).
    public func finish() {
        if isTerminal && drawn { write("\n") }
        drawn = false
    }
}
