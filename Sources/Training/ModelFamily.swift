// Model families: what a recipe's `model.kind` names. Each family is registered here once — its
// name, what it is and what the verbs can do with its runs — so the recipe schema, the trainer and
// the CLI look a family up instead of comparing strings. The family's code lives in its folder
// under Models/, and Models/Families.swift says which training task each family builds. Adding a
// family is a case here (the compiler then lists every switch that must learn it), its folder and
// its task.
import Foundation

public enum ModelFamily: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case lm, transfusion, chameleon, `var`, vae, vq, msvq, classifier, clip

    /// What runs of a family can do beyond training.
    public struct Capabilities: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// A decoder stack sized by `model.preset` (and dim/layers/heads), known before the model is built.
        public static let decoder = Capabilities(rawValue: 1 << 0)
        /// Reads image–caption pairs; draws and captions images (`fusion sample`, `caption`, and the
        /// shapes, captions, fd and folder suites of `fusion eval`).
        public static let imageText = Capabilities(rawValue: 1 << 1)
        /// Trains edit triplets (`data.edit_fraction`).
        public static let editTriplets = Capabilities(rawValue: 1 << 2)
        /// Edits images from the command line (`fusion edit`, `fusion eval --suite edits`).
        public static let editVerb = Capabilities(rawValue: 1 << 3)
        /// Trains speech documents (`data.speech_fraction`) and speaks (`fusion speak`, `transcribe`).
        public static let speech = Capabilities(rawValue: 1 << 4)
        /// Exports as a Hugging Face decoder (`fusion export --format hf`).
        public static let huggingFace = Capabilities(rawValue: 1 << 5)
        /// Splits a micro-batch across MPI ranks (`loss(microBatch:rows:rng:)`).
        public static let dataParallel = Capabilities(rawValue: 1 << 6)
    }

    public var description: String { rawValue }

    /// One line on what the family is (`fusion train --help` lists them).
    public var summary: String {
        switch self {
        case .lm: return "a decoder-only language model (next-token cross-entropy)"
        case .transfusion: return "text tokens and diffused image/audio spans in one decoder"
        case .chameleon: return "the same decoder over text and VQ codes, all causal (baseline)"
        case .var: return "the same decoder predicting multi-scale VQ code maps a scale at a time (VAR)"
        case .vae: return "an image VAE: the continuous latents Transfusion diffuses"
        case .vq: return "a VQ image tokenizer: the codes Chameleon predicts"
        case .msvq: return "a multi-scale VQ image tokenizer: the code pyramids VAR predicts"
        case .classifier: return "the ShapesWorld classifier ShapesEval scores images with"
        case .clip: return "a contrastive image–text encoder (the folder eval suite)"
        }
    }

    public var capabilities: Capabilities {
        switch self {
        case .lm: return [.decoder, .huggingFace, .dataParallel]
        case .transfusion: return [.decoder, .imageText, .editTriplets, .editVerb, .speech, .huggingFace, .dataParallel]
        case .chameleon: return [.decoder, .imageText, .editTriplets, .speech, .huggingFace, .dataParallel]
        case .var: return [.decoder, .imageText, .dataParallel]
        case .vae, .vq: return [.dataParallel]
        case .msvq, .classifier, .clip: return []
        }
    }

    /// The families that can `capability`, as a phrase for messages ("transfusion and chameleon").
    public static func names(with capability: Capabilities) -> String {
        let names = allCases.filter { $0.capabilities.contains(capability) }.map(\.rawValue)
        return names.count < 2 ? names.joined() : names.dropLast().joined(separator: ", ") + " and " + names.last!
    }

    /// The family of a saved model's `kind` (a run, checkpoint or export's config), or an error
    /// that names `path` and the families that can do `what`.
    public static func saved(_ kind: String, path: String, needs capability: Capabilities, for what: String) throws -> ModelFamily {
        guard let family = ModelFamily(rawValue: kind), family.capabilities.contains(capability) else {
            throw RunError.option("\(path) holds a model of the \(kind) family, which cannot \(what) (\(names(with: capability)) runs can)")
        }
        return family
    }
}
