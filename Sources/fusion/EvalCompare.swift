// `fusion eval-compare BASELINE.json OTHER.json…`: ShapesEval reports written by `fusion eval
// --json` compared prompt by prompt (Evaluation.ShapesEvalDifference), caption reports caption by
// caption (CaptionAccuracyDifference), held-out losses document by document (HeldOutLossDifference).
// Reading files and printing only.
import ArgumentParser
import Evaluation
import Foundation
import NN

struct EvalCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-compare",
        abstract: "Compare ShapesEval reports on the same prompts, caption reports on the same scenes, or held-out losses on the same documents, with paired standard errors.",
        discussion: """
            Examples (the first report is the baseline):
              fusion eval --checkpoint runs/a --suite shapes --json a.json
              fusion eval --checkpoint runs/b --suite shapes --json b.json
              fusion eval-compare a.json b.json
              fusion eval --checkpoint runs/a --suite captions --count 500 --json a-captions.json
              fusion eval --checkpoint runs/b --suite captions --count 500 --json b-captions.json
              fusion eval-compare a-captions.json b-captions.json
              fusion eval --checkpoint runs/a --suite losses --json a-losses.json
              fusion eval --checkpoint runs/b --suite losses --json b-losses.json
              fusion eval-compare a-losses.json b-losses.json

            Each prompt's score (the fraction of its images that pass) is differenced between
            the reports, so what makes a prompt hard cancels: the standard error of a difference
            is smaller than the two reports' errors combined. Differences inside two standard
            errors are marked as ties. The reports must score the same prompts (the same
            --eval-seed and --prompts-per-category). Caption reports are paired by scene in the
            same way, each figure (exact, count, colour, …) as a ratio over the captions; they
            must caption the same scenes (the same --eval-seed and --count). Held-out loss
            reports are paired by document, kind by kind (text, caption, prior, …), over the
            shared held-out set every family scores.
            """)

    @Argument(help: "ShapesEval, caption or held-out loss JSON reports (fusion eval --suite shapes|captions|losses --json), all of one kind; the first is the baseline.") var reports: [String]
    @Option(help: "Also write the differences as JSON here (a list, one per report after the first).") var json: String?

    func run() throws {
        try reportingErrors("eval-compare") {
            guard reports.count >= 2 else { throw ValidationError("give a baseline report and at least one other") }
            let files = try reports.map { path -> Data in
                if let problem = fileProblem(path) { throw ValidationError("\(path): \(problem)") }
                guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("\(path): cannot read") }
                return data
            }
            let keys = (try? JSONSerialization.jsonObject(with: files[0]) as? [String: Any]) ?? [:]
            if keys["kinds"] != nil {
                try compare(files, as: HeldOutLossReport.self, kind: "a held-out loss report (fusion eval --suite losses --json)",
                            by: HeldOutLossDifference.init)
            } else if keys["captions"] != nil {
                try compare(files, as: CaptionAccuracyReport.self, kind: "a caption report (fusion eval --suite captions --json)",
                            by: CaptionAccuracyDifference.init)
            } else {
                try compare(files, as: ShapesEvalReport.self, kind: "a ShapesEval report (fusion eval --suite shapes --json)",
                            by: ShapesEvalDifference.init)
            }
        }
    }

    /// Decodes every report as `Report` (the baseline's kind), prints each later one's difference
    /// from the baseline and writes them to --json.
    func compare<Report: Decodable, Difference: Encodable & CustomStringConvertible>(
        _ files: [Data], as _: Report.Type, kind: String, by difference: (Report, Report) throws -> Difference
    ) throws {
        let loaded = try zip(reports, files).map { path, data -> Report in
            do { return try JSONDecoder().decode(Report.self, from: data) } catch {
                throw ValidationError("\(path): not \(kind)\(path == reports[0] ? "" : ", as \(reports[0]) is"): \(error)")
            }
        }
        var differences: [Difference] = []
        for (path, report) in zip(reports.dropFirst(), loaded.dropFirst()) {
            let d: Difference
            do { d = try difference(loaded[0], report) } catch {
                throw ValidationError("\(path) against \(reports[0]): \(error)")
            }
            print("\(path) − \(reports[0]):")
            print(d)
            differences.append(d)
        }
        try writeReport(differences, to: json)
    }
}
