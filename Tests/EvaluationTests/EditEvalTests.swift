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
}
