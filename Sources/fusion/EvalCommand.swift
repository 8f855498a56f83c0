// `fusion eval --checkpoint RUN --suite shapes|captions|fd|folder|edits|speech|losses`: scores a trained Transfusion,
// Chameleon or VAR run and prints a table (and JSON with --json). Argument parsing and output only; the
// work is ImageTextModel's and TransfusionEvaluator's (Training) and Evaluation's.
import ArgumentParser
import Data
import Diffusion
import Evaluation
import Foundation
import Media
import Models
import NN
import Tensors
import Training

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a Transfusion, Chameleon or VAR run: ShapesEval, caption accuracy, a Fréchet distance, a folder's held-out captions, edits or speech.",
        discussion: """
            Examples:
              fusion eval --checkpoint runs/transfusion-shapes --suite shapes \\
                --images-per-prompt 2 --steps 50 --cfg 3 --seed 0 --json shapes.json
              fusion eval --checkpoint runs/transfusion-shapes --suite captions --count 200
              fusion train recipes/eval-classifier.yaml
              fusion eval --checkpoint runs/transfusion-shapes --suite fd \\
                --classifier runs/eval-classifier/classifier.safetensors --count 256
              fusion train recipes/clip-textures.yaml
              fusion eval --checkpoint runs/transfusion-textures --suite folder \\
                --encoder runs/clip-textures/encoder.safetensors --count 200
              fusion eval --checkpoint runs/edit-shapes --suite edits --count 100 \\
                --json edits.json --grid edits.png
              fusion eval --checkpoint runs/any-to-any-shapes --suite speech --count 50
              fusion eval --checkpoint runs/compare-transfusion-tiny --suite losses --json losses.json

            shapes:   images for a fixed prompt set (--prompts-per-category × 6 categories,
                      300 prompts × 2 images by default), checked by an analytic detector;
                      per-category and overall pass rates with standard errors over prompts.
            captions: greedy captions of held-out ShapesWorld images, parsed and checked
                      against their object lists (exact, count, colour, shape, size,
                      position).
            fd:       Fréchet distance between classifier features of images generated from
                      held-out captions and real renders of other held-out scenes (with the
                      real-vs-real floor).
            folder:   for any run (a folder's or ShapesWorld's): one image per held-out
                      caption of the run's own data, embedded by an image–text encoder
                      trained contrastively on the same data (model.kind clip): alignment
                      with the prompt (beside real images and mismatched prompts), caption
                      retrieval (beside real images and chance) and the Fréchet distance to
                      the real held-out images, with errors.
            losses:   the run's held-out losses on the shared held-out documents (text,
                      captioning, caption prior, markers, image codes, corpus), as its
                      training evaluation scores them, kept document by document so that
                      fusion eval-compare pairs two runs by document. Run folders and
                      checkpoint folders (not exports).
            --ceiling (shapes, fd, folder): real renders through the run's VAE or VQ
                      tokenizer in place of samples: the best the family can score with that
                      tokenizer.
            edits:    held-out ShapesWorld edit triplets edited by instruction and by
                      inversion (--method; Chameleon: instruction), checked by the detector:
                      the asked change happened (accuracy) and the untouched objects stayed
                      (preservation), per edit kind.
            speech:   held-out spoken captions (espeak-ng): the model's transcripts of them,
                      the log-mel distance of its own speech for the same words to
                      espeak-ng's, and how well it transcribes its own speech (runs trained
                      with speech documents).

            Every suite scores Transfusion, Chameleon and VAR runs alike, except that
            Chameleon runs edit by instruction only (inversion needs diffusion) and VAR runs
            neither edit nor speak. Chameleon and VAR image codes are sampled at --temperature
            (default 1) with the recipe's --top-k and --cfg.
            """)

    enum Suite: String, ExpressibleByArgument, CaseIterable { case shapes, captions, fd, folder, edits, speech, losses }
    enum Methods: String, ExpressibleByArgument, CaseIterable { case instruction, inversion, both }

    @Option(help: "A run folder (newest checkpoint), one checkpoint folder, or an exported model.") var checkpoint: String
    @Option(help: "shapes, captions, fd, folder, edits, speech or losses.") var suite: Suite = .shapes
    @Option(parsing: .unconditional, help: "shapes: images per prompt.") var imagesPerPrompt = 2
    @Option(parsing: .unconditional, help: "shapes: prompts per category (6 categories; 50: 300 prompts).") var promptsPerCategory = 50
    @Option(parsing: .unconditional, help: "Seed of the prompt set (shapes) or of the held-out world (captions, fd).") var evalSeed: UInt64 = 0
    @Option(parsing: .unconditional, help: "captions, fd, edits, speech: number of held-out images (edits: triplets; speech: clips).") var count = 200
    @Option(help: "edits: instruction, inversion or both.") var method: Methods = .both
    @Option(parsing: .unconditional, help: "edits: image guidance scale of the instruction method (default: none).") var imageCfg: Float?
    @Option(help: "edits: a PNG grid of the first 8 triplets: source | target | each method.") var grid: String?
    @Option(help: "fd: the classifier (train recipes/eval-classifier.yaml).")
    var classifier = "runs/eval-classifier/\(ShapesClassifier.fileName)"
    @Option(help: "folder: the image–text encoder (a model.kind clip run's \(ImageTextEncoder.fileName)).") var encoder: String?
    @Option(parsing: .unconditional, help: "Diffusion steps (default: the recipe's).") var steps: Int?
    @Option(parsing: .unconditional, help: "Classifier-free guidance scale (default: the recipe's).") var cfg: Float?
    @Option(help: "shapes: a pilot over guidance scales, e.g. 1,1.5,2,3,5: the suite at each, and the best by overall score.")
    var cfgSweep: String?
    @Option(help: "Sampler: ddpm, ddim or euler (Transfusion runs).") var sampler: SpanSampler?
    @Option(parsing: .unconditional, help: "Chameleon and VAR runs: temperature of the image codes (default 1).") var temperature: Float?
    @Option(parsing: .unconditional, help: "Chameleon and VAR runs: keep the k most likely codes (0: all; default: the recipe's).") var topK: Int?
    @Option(parsing: .unconditional, help: "Sampling seed.") var seed: UInt64 = 0
    @Option(help: "Also write the report as JSON here.") var json: String?
    @Flag(help: "shapes: print every prompt with what was found.") var details = false
    @Flag(help: "Use the raw weights even when the run kept EMA weights.") var noEMA = false
    @Flag(help: "shapes, fd: score real renders through the run's image tokenizer (VAE or VQ) instead of samples: the ceiling the family can reach.")
    var ceiling = false

    @OptionGroup var compute: PrecisionOption

    func run() throws {
        try reportingErrors("eval", in: compute) {
            if suite != .shapes { try checkCount(count, flag: "--count") }
            if suite == .fd && count < 2 { throw ValidationError("--count must be at least 2 for a Fréchet distance, got \(count)") }
            if suite == .speech {                               // Transfusion or Chameleon runs
                let start = Date()
                let speaking = try SpeakingRun(path: checkpoint, steps: steps, cfg: cfg)
                let evaluation = speaking.evaluation(heldOut: try speaking.heldOutSpeech(shapesSeed: heldOutSeed))
                let clips = evaluation.scored(count)
                let counter = CountProgress("clip", total: max(clips, 1))
                let report = try evaluation.report(count: count) { counter.update($0) }
                counter.finish()
                print(report)
                print(String(format: "(%@ run, %d clips, %.0f s)", speaking.kind.rawValue, clips, Date().timeIntervalSince(start)))
                try write(report.metrics)
                return
            }
            if suite == .edits { try runEdits(); return }
            if suite == .losses { try runLosses(); return }
            if ceiling && ![.shapes, .fd, .folder].contains(suite) { throw ValidationError("--ceiling applies to --suite shapes, fd and folder") }
            if suite == .folder && encoder == nil {
                throw ValidationError("--suite folder needs --encoder: train one with model.kind clip on the run's data, then pass its \(ImageTextEncoder.fileName)")
            }
            if let cfgSweep { try sweep(cfgSweep); return }
            let loaded = try ImageTextModel.load(path: checkpoint, ema: !noEMA, cfg: cfg, sampler: sampler, steps: steps,
                                                 temperature: temperature, topK: topK)
            let model = ceiling ? loaded.ceiling : loaded
            let size = model.imageSize
            let start = Date()
            switch suite {
            case .shapes:
                guard imagesPerPrompt > 0, promptsPerCategory > 0 else { throw ValidationError("--images-per-prompt and --prompts-per-category must be positive") }
                let eval = ShapesEval(seed: evalSeed, promptsPerCategory: promptsPerCategory, imageSize: size)
                let longest = eval.prompts.map { model.prompt($0.text) }.max { $0.count < $1.count } ?? model.prompt("")
                if !ceiling { _ = try model.planSampling(prompt: longest, count: imagesPerPrompt, flag: "--images-per-prompt") }
                let counter = CountProgress("prompt", total: eval.prompts.count)
                let report = model.shapesEval(eval, imagesPerPrompt: imagesPerPrompt, seed: seed) { counter.update($0) }
                counter.finish()
                if details { print(report.details + "\n") }
                print(report)
                print(String(format: "(%@ run: %@, %d images per prompt, %.0f s)", model.kind.rawValue, model.sampling,
                             imagesPerPrompt, Date().timeIntervalSince(start)))
                try write(report)
            case .captions:
                let world = ShapesWorld(seed: heldOutSeed, imageSize: size)
                let counter = CountProgress("image", total: count)
                let (report, captions) = model.captionAccuracy(world: world, count: count) { counter.update($0) }
                counter.finish()
                if details {
                    for (i, c) in captions.enumerated().prefix(20) { print("\(c)\t(truth: \(world.example(i).caption))") }
                }
                print(report)
                print(String(format: "(%@ run, %d images, %.0f s)", model.kind.rawValue, count, Date().timeIntervalSince(start)))
                try write(report)
            case .fd:
                let net = try ShapesClassifier.load(from: classifier)
                guard net.config.imageSize == size else {
                    throw ValidationError("the classifier takes \(net.config.imageSize)px images, the run makes \(size)px")
                }
                let counter = CountProgress("image", total: count)
                let report = model.frechetDistance(classifier: net, world: ShapesWorld(seed: heldOutSeed, imageSize: size),
                                                   count: count, seed: seed) { counter.update($0) }
                counter.finish()
                print(report)
                print(String(format: "(%@ run: %@, %.0f s)", model.kind.rawValue, model.sampling, Date().timeIntervalSince(start)))
                try write(report)
            case .folder:
                let (net, encoderTokenizer) = try ImageTextEncoder.loadWithTokenizer(from: encoder!)
                guard net.config.imageSize == size else {
                    throw ValidationError("the encoder takes \(net.config.imageSize)px images, the run makes \(size)px")
                }
                let run = try SavedModel(path: checkpoint, ema: !noEMA).run
                let recipePath = run.appendingPathComponent("recipe.yaml").path
                guard FileManager.default.fileExists(atPath: recipePath) else {
                    throw ValidationError("--suite folder reads the held-out data from the run's recipe.yaml, and \(run.path) has none")
                }
                let heldOut = try Recipe.load(recipePath).heldOutExamples()
                let counter = CountProgress("image", total: min(count, heldOut.count ?? count))
                let report = try model.folderEval(encoder: net, encoderTokenizer: encoderTokenizer, heldOut: heldOut,
                                                  count: count, seed: seed) { counter.update($0) }
                counter.finish()
                print(report)
                print(String(format: "(%@ run: %@, %.0f s)", model.kind.rawValue, model.sampling, Date().timeIntervalSince(start)))
                try write(report)
            case .edits, .speech, .losses:
                break                                           // answered above
            }
        }
    }

    /// `--cfg-sweep`: ShapesEval at each guidance scale of `list` (the same prompts and seeds), a
    /// table of overall and per-category scores with standard errors, and the best scale. The pilot
    /// rule both families are tuned by: pick the scale on a pilot prompt set (`--eval-seed 1`),
    /// report at it on the main set (`--eval-seed 0`).
    func sweep(_ list: String) throws {
        guard suite == .shapes, cfg == nil else { throw ValidationError("--cfg-sweep runs --suite shapes and replaces --cfg") }
        let scales = try list.split(separator: ",").map { item -> Float in
            guard let v = Float(item.trimmingCharacters(in: .whitespaces)), v.isFinite, v >= 0 else {
                throw ValidationError("--cfg-sweep takes comma-separated scales ≥ 0, e.g. 1,1.5,2,3; got \"\(item)\"")
            }
            return v
        }
        guard !scales.isEmpty, imagesPerPrompt > 0, promptsPerCategory > 0 else {
            throw ValidationError("--cfg-sweep needs at least one scale, and positive --images-per-prompt and --prompts-per-category")
        }
        let start = Date()
        var reports: [String: ShapesEvalReport] = [:]
        var lines = ["cfg     overall         " + ShapesEvalCategory.allCases.map { $0.rawValue }.joined(separator: "  ")]
        var best: (scale: Float, score: Double)?
        for scale in scales {
            let model = try ImageTextModel.load(path: checkpoint, ema: !noEMA, cfg: scale, sampler: sampler, steps: steps,
                                                temperature: temperature, topK: topK)
            let eval = ShapesEval(seed: evalSeed, promptsPerCategory: promptsPerCategory, imageSize: model.imageSize)
            let counter = CountProgress("cfg \(scale): prompt", total: eval.prompts.count)
            let report = model.shapesEval(eval, imagesPerPrompt: imagesPerPrompt, seed: seed) { counter.update($0) }
            counter.finish()
            reports[String(scale)] = report
            let categories = ShapesEvalCategory.allCases.map { c in
                report.categories.first { $0.category == c }.map { String(format: "%5.1f%%", 100 * $0.score) } ?? "    –"
            }
            lines.append(String(format: "%-6g  %5.1f%% ± %4.1f  ", scale, 100 * report.overall, 100 * report.standardError)
                         + categories.joined(separator: "  "))
            if best == nil || report.overall > best!.score { best = (scale, report.overall) }
        }
        print(lines.joined(separator: "\n"))
        print(String(format: "best: cfg %g (%.1f%%); %d prompts × %d images per scale, eval seed %llu, %.0f s", best!.scale,
                     100 * best!.score, 6 * promptsPerCategory, imagesPerPrompt, evalSeed, Date().timeIntervalSince(start)))
        try write(reports)
    }

    /// --suite losses: the run's own held-out scoring, with the checkpoint's EMA weights unless
    /// --no-ema (the metrics rows of training are the raw weights').
    func runLosses() throws {
        let (checkpointURL, runURL) = try RunDirectory.resolveCheckpoint(checkpoint)
        let recipePath = runURL.appendingPathComponent("recipe.yaml").path
        guard FileManager.default.fileExists(atPath: recipePath) else {
            throw ValidationError("--suite losses rebuilds the run's task from its recipe.yaml, and \(runURL.path) has none (exports are not scored)")
        }
        let recipe = try Recipe.load(recipePath)
        _ = try ModelFamily.saved(recipe.model.kind.rawValue, path: checkpoint, needs: .imageText, for: "score held-out document losses")
        let start = Date()
        guard let scoring = try recipe.model.kind.makeTask(recipe, run: RunDirectory(runURL)) as? HeldOutLossScoring & TrainingTask else {
            throw ValidationError("\(checkpoint): the \(recipe.model.kind) task keeps no held-out document losses")
        }
        let saved = try Checkpoint.read(checkpointURL)
        let ema = !noEMA && saved.ema != nil
        try scoring.model.load(ema ? saved.ema! : saved.model)
        let (kinds, metrics) = try withoutGrad { try scoring.heldOutLosses() }
        let report = HeldOutLossReport(run: runURL.path, step: saved.state.step, weights: ema ? "ema" : "raw",
                                       kinds: kinds, metrics: metrics)
        print(report)
        print(String(format: "(%@ run, step %d, %@ weights, %.0f s)", recipe.model.kind.rawValue, saved.state.step,
                     report.weights, Date().timeIntervalSince(start)))
        try write(report)
    }

    /// The edits suite: Transfusion runs by instruction and inversion, Chameleon runs by instruction.
    func runEdits() throws {
        let editor = try ImageEditor.load(path: checkpoint, ema: !noEMA, sampler: sampler, steps: steps, cfg: cfg, imageCfg: imageCfg,
                                          temperature: temperature, topK: topK)
        let methods = method == .both ? editor.methods : [EditMethod(rawValue: method.rawValue)!]
        for m in methods { try editor.check(m, path: checkpoint) }
        let start = Date()
        let world = ShapesWorld(seed: heldOutSeed, imageSize: editor.imageSize)
        var reports: [String: EditEvalReport] = [:], images: [[Image]] = []
        for m in methods {
            let counter = CountProgress("\(m.rawValue): triplet", total: count)
            let (report, edited) = editor.editEval(world: world, count: count, method: m, seed: seed) { counter.update($0) }
            counter.finish()
            print("\(m.rawValue):\n\(report)\n")
            reports[m.rawValue] = report
            images.append(Array(edited.prefix(8)))
        }
        print(String(format: "(%@ run: %@, %d triplets, %.0f s)", editor.family.rawValue, editor.sampling, count,
                     Date().timeIntervalSince(start)))
        if let grid {
            let (picture, text) = editor.editGrid(world: world, edited: images)
            try PNG.write(picture, to: grid)
            try atomicWrite(Foundation.Data(("columns: source | target | " + methods.map(\.rawValue).joined(separator: " | ")
                                             + "\n" + text).utf8),
                            to: URL(fileURLWithPath: grid).deletingPathExtension().appendingPathExtension("txt"))
            print("wrote \(grid)")
        }
        try write(reports)
    }

    /// The held-out world of evaluations (not a training seed of the shipped recipes).
    var heldOutSeed: UInt64 { 0x5EED_E7A1 &+ evalSeed }

    func write<T: Encodable>(_ report: T) throws { try writeReport(report, to: json) }
}

/// `--json`: the report as sorted, indented JSON at `path` (written atomically), when one is given.
func writeReport<T: Encodable>(_ report: T, to path: String?) throws {
    guard let path else { return }
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try atomicWrite(try enc.encode(report), to: URL(fileURLWithPath: path))
    print("wrote \(path)")
}
