// EditEval on real renders: the true target of every triplet passes (the change happened, the
// rest stayed), the unedited source fails the change but keeps everything, and a per-kind report adds up.
import Data
import Evaluation
import Media
import Testing

@Suite struct EditEvalTests {
    let world = ShapesWorld(seed: 11)
    let eval = EditEval(imageSize: 32)

    @Test func targetRendersPassAndSourceRendersFail() {
        var targets: [EditCheck] = [], sources: [EditCheck] = []
        for i in 0..<60 {
            let triplet = world.edit(i)
            targets.append(eval.check(triplet, image: render(triplet.target, 32)))
            sources.append(eval.check(triplet, image: render(triplet.source, 32)))
        }
        let perfect = EditEvalReport(checks: targets), unchanged = EditEvalReport(checks: sources)
        #expect(perfect.accuracy == 1 && perfect.preservation == 1, "\(perfect)")
        #expect(unchanged.accuracy == 0, "an unedited image never shows the asked change: \(unchanged)")
        #expect(unchanged.preservation == 1, "but it keeps every untouched object")
        #expect(perfect.kinds.map(\.kind) == EditKind.allCases && perfect.kinds.allSatisfy { $0.edits == 12 })
        #expect(perfect.metrics(prefix: "inversion_")["inversion_edit_accuracy_move"] == 1)
    }

    @Test func aMissingUntouchedObjectCostsPreservationOnly() {
        // A recolour in a scene of several objects, judged on detections with one untouched object gone.
        let triplet = (0..<200).lazy.map(world.edit).first { $0.kind == .recolour && $0.source.objects.count == 3 }!
        let untouched = triplet.target.objects.filter { triplet.source.objects.contains($0) }
        let found = triplet.target.objects.filter { $0 != untouched[0] }
        let check = EditEval.check(triplet, found: found)
        #expect(check.changed && check.untouched == 2 && check.preserved == 1)
    }

    @Test func errorsAreThoseOfAMeanAndOfARatioOverEdits() {
        // Accuracy 3/4: the 0/1 verdicts' standard error √(0.25 / 4) = 0.25. Preservation 3 of 5
        // untouched objects, R = 0.6: the ratio estimator's √(Σ (k − R·u)² / (n (n − 1))) / ū with
        // residuals −0.2, −0.6, 0.8, 0 and ū = 1.25.
        let checks = [EditCheck(kind: .move, changed: true, preserved: 1, untouched: 2),
                      EditCheck(kind: .move, changed: false, preserved: 0, untouched: 1),
                      EditCheck(kind: .add, changed: true, preserved: 2, untouched: 2),
                      EditCheck(kind: .add, changed: true, preserved: 0, untouched: 0)]
        let report = EditEvalReport(checks: checks)
        #expect(abs(report.accuracy - 0.75) < 1e-12 && abs(report.accuracySE - 0.25) < 1e-12)
        #expect(abs(report.preservation - 0.6) < 1e-12)
        #expect(abs(report.preservationSE - (1.04 / 12).squareRoot() / 1.25) < 1e-12, "\(report.preservationSE)")
        #expect(report.metrics()["edit_preservation_se"] == report.preservationSE)
        #expect(report.kinds.first { $0.kind == .add }!.preservationSE == 0, "both add edits keep all they could")
        #expect(report.description.contains("0.750 ± 0.250"), "\(report)")
    }
}
