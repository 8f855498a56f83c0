// `fusion eval-compare BASELINE.json OTHER.json…`: ShapesEval reports written by `fusion eval
// --json` compared prompt by prompt (Evaluation.ShapesEvalDifference). Reading files and printing only.
import ArgumentParser
import Evaluation
import Foundation
import NN

struct EvalCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval-compare",
        abstract: "Compare ShapesEval reports on the same prompts, with paired standard errors.",
        discussion: """
            Examples (the first report is the baseline):
              fusion eval --checkpoint runs/a --suite shapes --json a.json
              fusion eval --checkpoint runs/b --suite shapes --json b.json
              fusion eval-compare a.json b.json

            Each prompt's score (the fraction of its images that pass) is differenced between
            the reports, so what makes a prompt hard cancels: the standard error of a difference
            is smaller than the two reports' errors combined. Differences inside two standard
            errors are marked as ties. The reports must score the same prompts (the same
            --eval-seed and --prompts-per-category).
            """)

    @Argument(help: "ShapesEval JSON reports (fusion eval --suite shapes --json); the first is the baseline.") var reports: [String]
    @Option(help: "Also write the differences as JSON here (a list, one per report after the first).") var json: String?

    func run() throws {
        try reportingErrors("eval-compare") {
            guard reports.count >= 2 else { throw ValidationError("give a baseline report and at least one other") }
            let loaded = try reports.map { path -> ShapesEvalReport in
                if let problem = fileProblem(path) { throw ValidationError("\(path): \(problem)") }
                guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("\(path): cannot read") }
                do { return try JSONDecoder().decode(ShapesEvalReport.self, from: data) } catch {
                    throw ValidationError("\(path): not a ShapesEval report (fusion eval --suite shapes --json): \(error)")
                }
            }
            var differences: [ShapesEvalDifference] = []
            for (path, report) in zip(reports.dropFirst(), loaded.dropFirst()) {
                let d: ShapesEvalDifference
                do { d = try ShapesEvalDifference(baseline: loaded[0], other: report) } catch {
                    throw ValidationError("\(path) against \(reports[0]): \(error)")
                }
                print("\(path) − \(reports[0]):")
                print(d)
                differences.append(d)
            }
            try writeReport(differences, to: json)
        }
    }
}
