// The family registry: the recipe schema offers exactly the registered families, each family's
// capabilities answer what the verbs ask, and a saved model of a family that cannot do what a
// verb asks is refused with the families that can.
import Foundation
import Testing
@testable import Models
@testable import Training

@Suite struct ModelFamilyTests {
    @Test func theSchemaOffersExactlyTheRegisteredFamilies() throws {
        let kind = RecipeSchema.recipe.first { $0.name == "model" }.flatMap { model -> RecipeSchema.Key? in
            guard case .section(let keys) = model.type else { return nil }
            return keys.first { $0.name == "kind" }
        }
        guard case .choice(let names)? = kind?.type else {
            Issue.record("model.kind is not a choice")
            return
        }
        #expect(names == ModelFamily.allCases.map(\.rawValue))
        for family in ModelFamily.allCases {
            let r = try Recipe.parse("name: f\nmodel: {kind: \(family.rawValue)}\ntrain: {steps: 1}\n", file: "f.yaml")
            #expect(r.model.kind == family && !family.summary.isEmpty)
        }
    }

    @Test func capabilitiesAnswerWhatTheVerbsAsk() {
        #expect(ModelFamily.names(with: .imageText) == "transfusion, chameleon and var")
        #expect(ModelFamily.names(with: .editTriplets) == "transfusion and chameleon")   // what `fusion edit` loads
        #expect(ModelFamily.names(with: .dataParallel) == "lm, transfusion, chameleon, var, vae and vq")
        #expect(ModelFamily.names(with: .editVerb) == "transfusion")
        #expect(ModelFamily.allCases.filter { $0.capabilities.contains(.decoder) } == [.lm, .transfusion, .chameleon, .var])
        // A family that trains edit triplets or speech draws images; one with a decoder and no image
        // capability is the lm.
        for f in ModelFamily.allCases where !f.capabilities.isDisjoint(with: [.editTriplets, .editVerb, .speech]) {
            #expect(f.capabilities.contains(.imageText), "\(f)")
        }
    }

    @Test func aSavedModelThatCannotDoWhatIsAskedIsRefusedWithTheFamiliesThatCan() throws {
        #expect(try ModelFamily.saved("chameleon", path: "runs/c", needs: .imageText, for: "draw or caption images") == .chameleon)
        let lm = try #require(throws: RunError.self) {
            try ModelFamily.saved("lm", path: "runs/x", needs: .imageText, for: "draw or caption images")
        }
        #expect("\(lm)".contains("runs/x holds a model of the lm family, which cannot draw or caption images (transfusion, chameleon and var runs can)"))
        let vq = try #require(throws: RunError.self) {
            try ModelFamily.saved("vq", path: "runs/v", needs: .huggingFace, for: "be exported with --format hf")
        }
        #expect("\(vq)".contains("(lm, transfusion and chameleon runs can)"))   // .huggingFace
        #expect(throws: RunError.self) { try ModelFamily.saved("unknown", path: "p", needs: [], for: "load") }
    }
}
