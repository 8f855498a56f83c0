// runs/<name>/loss.png: the training loss (and held-out eval loss) against steps, drawn from
// metrics.jsonl whenever a run ends or stops. Not the recipe comparison (fusion compare).
import Evaluation
import Foundation
import Media

extension RunDirectory {
    public var lossPlotURL: URL { url.appendingPathComponent("loss.png") }

    /// Draws loss.png from metrics.jsonl (train `loss`, eval `eval_loss` when present).
    public func writeLossPlot(title: String) throws {
        let rows = try MetricsLog.read(metricsURL)
        func series(_ key: String, eval: Bool) -> ([Double], [Double]) {
            let r = rows.filter { ($0["kind"] as? String == "eval") == eval }
            let pts = r.compactMap { row -> (Double, Double)? in
                guard let s = row["step"] as? Int, let v = row[key] as? Double else { return nil }
                return (Double(s), v)
            }
            return (pts.map(\.0), pts.map(\.1))
        }
        var plot = LinePlot(title: title, xLabel: "step")
        let train = series("loss", eval: false), held = series("eval_loss", eval: true)
        plot.series.append(Series(name: "train", x: train.0, y: train.1, colour: Series.palette[0]))
        if !held.0.isEmpty { plot.series.append(Series(name: "eval", x: held.0, y: held.1, colour: Series.palette[1])) }
        try PNG.write(plot.render(), to: lossPlotURL.path)
    }
}
