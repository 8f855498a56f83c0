// runs/<name>/loss.png and loss.svg: the training loss (and held-out eval loss) against steps, drawn
// from metrics.jsonl whenever a run ends or stops. Not the recipe comparison (fusion compare).
import Evaluation
import Foundation
import Media
import NN

extension RunDirectory {
    public var lossPlotURL: URL { url.appendingPathComponent("loss.png") }

    /// Draws loss.png and loss.svg from metrics.jsonl (train `loss`, eval `eval_loss` when present)
    /// into `folder` (the run folder by default).
    public func writeLossPlot(title: String, to folder: URL? = nil) throws {
        let rows = try MetricsLog.read(metricsURL)
        func series(_ key: String, eval: Bool) -> ([Double], [Double]) {
            let r = rows.filter { ($0["kind"] as? String == "eval") == eval }
            let pts = r.compactMap { row -> (Double, Double)? in
                guard let s = row["step"] as? Int, let v = row[key] as? Double else { return nil }
                return (Double(s), v)
            }
            return (pts.map(\.0), pts.map(\.1))
        }
        let train = series("loss", eval: false), held = series("eval_loss", eval: true)
        // A loss that falls by a factor of several (a diffusion-weighted total from 17 to 3) reads on a
        // log axis; one that moves little keeps a linear one.
        let all = train.1 + held.1
        let logY = (all.min() ?? 0) > 0 && (all.max() ?? 0) / (all.min() ?? 1) >= 4
        var plot = LinePlot(title: title, xLabel: "step", yLabel: "loss", logY: logY)
        // The training loss is noisy step to step: drawn faint, with a centred average over about a
        // thirtieth of the run on top.
        plot.series.append(Series(name: "train", x: train.0, y: train.1, colour: Series.palette[0],
                                  smoothing: max(1, train.0.count / 30)))
        if !held.0.isEmpty {
            plot.series.append(Series(name: "eval", x: held.0, y: held.1, colour: Series.palette[1],
                                      style: held.0.count == 1 ? .markers : .line))
        }
        let dir = folder ?? url
        try PNG.write(plot.render(), to: dir.appendingPathComponent("loss.png").path)
        try atomicWrite(Foundation.Data(plot.svg().utf8), to: dir.appendingPathComponent("loss.svg"))
    }
}
