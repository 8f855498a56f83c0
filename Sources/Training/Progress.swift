// The progress display: a single refreshed line with rate and ETA on a terminal, plain log lines
// every `logEvery` steps otherwise (files, CI). Not logging of metrics (Metrics.swift).
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
