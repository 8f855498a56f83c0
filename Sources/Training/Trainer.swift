// The training loop: builds the optimizer and schedule from a recipe, runs steps of a
// TrainingTask with gradient accumulation and clipping, logs metrics, checkpoints, resumes
// exactly and stops gracefully on SIGINT/SIGTERM. Under mpirun it trains data-parallel
// (DataParallel.swift): each rank computes its rows of every micro-batch, gradients are summed
// with a bucketed allreduce, rank 0 alone writes. Not a model: tasks own models and losses.
import Collective
import Foundation
import NN
import Synchronization
import Tensors

/// One micro-batch's loss and what it covered.
public struct LossResult {
    public var total: Tensor
    /// Named components (e.g. "loss_text", "loss_image"), unweighted: `total` combines them.
    public var parts: [String: Float]
    public var tokens: Int
    public var examples: Int
    /// How many terms `total` is a mean over (targets for token losses, examples for
    /// per-example losses); data-parallel ranks weight their shares by it. Default: `tokens`.
    public var meanOver: Int
    /// The micro-batch's training FLOPs counted on its real positions (padding left out), when the
    /// task counts them per batch; nil: the task's `flopsPerMicroBatch`.
    public var flops: Double?
    /// The micro-batch's real (non-padding) positions, for the 6·N·D count; nil: all of them.
    public var positions: Int?
    /// True when `total` and `parts` are already these rows' shares of the whole micro-batch's
    /// values (each term divided by the whole micro-batch's count of its kind), so that the ranks'
    /// values simply add up: how a loss of several means (text over targets, diffusion over spans)
    /// splits exactly. False: one mean over `meanOver` terms, weighted by the ranks' counts.
    public var isShare: Bool

    public init(total: Tensor, parts: [String: Float] = [:], tokens: Int, examples: Int, meanOver: Int? = nil,
                flops: Double? = nil, positions: Int? = nil, isShare: Bool = false) {
        self.total = total; self.parts = parts; self.tokens = tokens; self.examples = examples
        self.meanOver = meanOver ?? tokens
        self.flops = flops; self.positions = positions; self.isShare = isShare
    }
}

/// A model plus its data and loss: what the Trainer trains.
public protocol TrainingTask: AnyObject {
    var model: Module { get }
    /// The loss of global micro-batch `index`. Data must be a function of the index (and the
    /// recipe seed), and `rng` is derived from (seed, index): that is what makes resume exact.
    func loss(microBatch index: Int, rng: RNG) throws -> LossResult
    /// The loss of rows `rows` of global micro-batch `index`: one rank's share under data
    /// parallelism. The rows, and the randomness they draw, must be exactly those they have in
    /// the whole micro-batch, so that the ranks' shares (weighted by `meanOver`, or as they are
    /// with `isShare`) add up to the single-process loss. Tasks that cannot split a micro-batch
    /// keep the default, which throws.
    func loss(microBatch index: Int, rows: Range<Int>, rng: RNG) throws -> LossResult
    /// Analytic training FLOPs (forward + backward) of one micro-batch.
    var flopsPerMicroBatch: Double { get }
    /// The JSON config stored beside checkpoints.
    func checkpointConfig() throws -> Foundation.Data
    /// Evaluation metrics at `step` (names without the "eval_" prefix).
    func evaluate(step: Int, rng: RNG) throws -> [String: Double]
    /// Writes samples (PNG grids, text) into `dir`; returns a one-line summary or nil.
    func writeSamples(step: Int, to dir: URL, rng: RNG) throws -> String?
    /// Called after each checkpoint is written (e.g. to export a usable model file into the run).
    func didSaveCheckpoint(step: Int, run: RunDirectory) throws
    /// The most bytes the task's caches reach over a run (the training pool's encoded latents,
    /// codes, speech patches: they fill as the pool is first seen). Part of the memory plan.
    var cacheBytes: Int { get }
    /// The largest encoding-cache file the task writes at a checkpoint (the training pool's
    /// latents or codes, once encoded): it is built in memory as a tensor, then as the file's
    /// bytes, so it briefly takes twice its size. Part of the memory plan.
    var cacheFileBytes: Int { get }
    /// Called once before training on a data-parallel run: this rank computes rows `rows` of each
    /// micro-batch of `batchRows`, among ranks joined by `communicator`. A task whose forward pass
    /// keeps batch statistics (a VQ quantiser's EMA codebook) sums them over the ranks with it.
    func joinDataParallel(rows: Range<Int>, batchRows: Int, communicator: Communicator)
}

extension TrainingTask {
    public func loss(microBatch index: Int, rows: Range<Int>, rng: RNG) throws -> LossResult {
        throw DataParallelError.notShardable(String(describing: type(of: self)))
    }
    public func evaluate(step: Int, rng: RNG) throws -> [String: Double] { [:] }
    public func writeSamples(step: Int, to dir: URL, rng: RNG) throws -> String? { nil }
    public func didSaveCheckpoint(step: Int, run: RunDirectory) throws {}
    public var cacheBytes: Int { 0 }
    public var cacheFileBytes: Int { 0 }
    public func joinDataParallel(rows: Range<Int>, batchRows: Int, communicator: Communicator) {}
}

/// Set by SIGINT/SIGTERM; the loop finishes its step, checkpoints and returns.
public enum StopRequest {
    static let flag = Atomic<Bool>(false)
    public static var isRequested: Bool { flag.load(ordering: .relaxed) }
    public static func request() { flag.store(true, ordering: .relaxed) }
    public static func reset() { flag.store(false, ordering: .relaxed) }

    /// Installs handlers: the first signal asks for a graceful stop, a second exits at once.
    public static func installSignalHandlers() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { _ in
                if StopRequest.flag.exchange(true, ordering: .relaxed) { _exit(130) }
            }
        }
    }
}

public struct TrainSummary: Sendable {
    public var startStep: Int
    public var endStep: Int
    public var finalLoss: Float
    public var stoppedEarly: Bool
    public var resumedFrom: String?
}

public final class Trainer {
    public let recipe: Recipe
    public let task: TrainingTask
    public let run: RunDirectory
    /// Called with each metrics row (tests, notebooks).
    public var onRow: ((MetricsRow) -> Void)?
    /// Stop after this many steps in this invocation (tests simulate interruptions with it).
    public var stepLimit: Int?
    /// The process group: a SingleProcess unless launched by mpirun. Rank 0 writes the run.
    public let communicator: Communicator
    var isRoot: Bool { communicator.rank == 0 }

    let params: [(String, Tensor)]
    let optimizer: AnyOptimizer
    let ema: EMA?
    let schedule: (Int) -> Float
    /// The N of 6·N·D: parameters outside embedding tables (a lookup costs no multiply-adds).
    let nonEmbeddingParameters: Double

    public init(recipe: Recipe, task: TrainingTask, run: RunDirectory,
                communicator: Communicator = SingleProcess()) throws {
        self.recipe = recipe; self.task = task; self.run = run; self.communicator = communicator
        let o = recipe.optimizer
        params = task.model.namedParameters()
        switch o.name {
        case .sgd: optimizer = .sgd(SGD(params.map(\.1), lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay))
        case .adamw:
            optimizer = .adamw(AdamW(params, lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps,
                                     weightDecay: o.weightDecay, decay: defaultDecayNames(task.model)))
        }
        ema = recipe.train.emaDecay > 0 ? EMA(task.model, decay: recipe.train.emaDecay) : nil
        let embedded = task.model.namedModules().compactMap { $0.1 as? Embedding }.map(\.weight.count).reduce(0, +)
        nonEmbeddingParameters = Double(params.map(\.1.count).reduce(0, +) - embedded)
        schedule = LRSchedule.make(peak: o.lr, warmup: o.warmupSteps, total: recipe.train.steps,
                                   decay: o.schedule, minRatio: o.minLRRatio)
    }

    /// Trains to `train.steps`, resuming from the latest checkpoint unless `fresh`, with every
    /// matrix product in `train.matmul_precision`.
    @discardableResult
    public func train(fresh: Bool = false) throws -> TrainSummary {
        try MatmulPrecision.with(recipe.train.matmulPrecision) { try trainSteps(fresh: fresh) }
    }

    private func trainSteps(fresh: Bool) throws -> TrainSummary {
        let parallel = try DataParallel(trainer: self)
        if isRoot {
            try run.prepare(fresh: fresh)
            try atomicWrite(Foundation.Data(recipe.yaml().utf8), to: run.recipeURL)
        }
        communicator.barrier()   // ranks > 0 read checkpoints only once rank 0 has prepared the run
        var state = TrainingState(step: 0, examples: 0, tokens: 0, flops: 0, wallSeconds: 0, seed: recipe.seed, optimizerStep: 0)
        var resumedFrom: String?
        if !fresh, let (ckpt, url) = try loadLatestCheckpoint() {
            state = ckpt.state
            resumedFrom = url.lastPathComponent
            if isRoot { try MetricsLog.truncate(run.metricsURL, toStep: state.step) }
        } else if isRoot {
            try? FileManager.default.removeItem(at: run.metricsURL)
        }
        parallel.synchroniseWeights()
        var log = isRoot ? try run.openMetrics(step: state.step, recipe: recipe) : nil
        let t = recipe.train
        let progress = isRoot ? Progress(total: t.steps, startStep: state.step) : nil
        if let resumedFrom { progress?.message("resuming \(run.url.lastPathComponent) from \(resumedFrom) (step \(state.step))") }
        let startStep = state.step
        let base = RNG(seed: recipe.seed)
        var lastLoss: Float = .nan
        var intervalStart = Date(), intervalTokens = 0
        let runStart = Date(), wallBefore = state.wallSeconds
        var stopped = false
        var skipped = Set<Int>()                          // steps a rollback replays without updating

        while state.step < t.steps {
            if let limit = stepLimit, state.step - startStep >= limit { stopped = true; break }
            let step = state.step
            let lr = schedule(step)
            optimizer.lr = lr
            task.model.zeroGrad()
            var parts: [String: Float] = [:], lossSum: Float = 0
            for j in 0..<t.gradAccum {
                let index = step * t.gradAccum + j
                let counted: (tokens: Int, examples: Int, flops: Double?, positions: Int?)
                if parallel.isActive {                            // this rank's rows; counts over all ranks
                    counted = try parallel.accumulate(microBatch: index, rng: base.split(UInt64(index)), last: j == t.gradAccum - 1,
                                                      lossSum: &lossSum, parts: &parts)
                } else {
                    let r = try task.loss(microBatch: index, rng: base.split(UInt64(index)))
                    let scaled = t.gradAccum == 1 ? r.total : r.total * (1 / Float(t.gradAccum))
                    scaled.backward()
                    lossSum += r.total.item / Float(t.gradAccum)
                    for (k, v) in r.parts { parts[k, default: 0] += v / Float(t.gradAccum) }
                    counted = (r.tokens, r.examples, r.flops, r.positions)
                }
                state.tokens += counted.tokens; state.examples += counted.examples
                intervalTokens += counted.tokens
                state.flops += counted.flops ?? task.flopsPerMicroBatch
                if let positions = counted.positions {
                    state.flops6ND = (state.flops6ND ?? 0) + 6 * nonEmbeddingParameters * Double(positions)
                }
            }
            // Under MPI: finish the gradient sums; loss and parts over all ranks.
            parallel.finishStep(lossSum: &lossSum, parts: &parts)
            let gradNorm = clipGradNorm(params.map(\.1), maxNorm: recipe.optimizer.gradClip)
            let bad = skipped.contains(step) ? "replayed" : nonFinite(loss: lossSum, parts: parts, gradNorm: gradNorm)
            if let bad {
                // No update: the step's data is consumed, the weights and optimizer state are untouched.
                task.model.zeroGrad()
                if bad != "replayed" {
                    var row = MetricsRow()
                    row.set("step", .int(step + 1)); row.set("kind", .string("nonfinite")); row.set("where", .string(bad))
                    row.set("action", .string(t.onNonFinite.rawValue))
                    try log?.append(row)
                    if isRoot { onRow?(row) }
                    progress?.message("step \(step + 1): non-finite \(bad); " + (t.onNonFinite == .skip ? "step skipped" : t.onNonFinite.rawValue))
                    if t.onNonFinite == .stop { throw RunError.nonFinite(step: step + 1, what: bad) }
                    if t.onNonFinite == .rollback {
                        skipped.insert(step)
                        // Every rank sees the same non-finite sums, so all roll back to the same checkpoint.
                        if let (ckpt, url) = try loadLatestCheckpoint() {
                            state = ckpt.state
                            if isRoot {
                                try MetricsLog.truncate(run.metricsURL, toStep: state.step)
                                log = try run.openMetrics(step: state.step, recipe: recipe)   // truncate replaced the file
                                try log?.append(row)
                            }
                            progress?.message("rolled back to \(url.lastPathComponent); step \(step + 1) will be skipped")
                            continue
                        }
                        progress?.message("no checkpoint to roll back to; step \(step + 1) skipped")
                    }
                }
            } else {
                optimizer.update()
                ema?.update()
                lastLoss = lossSum
            }
            state.step += 1
            state.optimizerStep = optimizer.step
            state.wallSeconds = wallBefore + Date().timeIntervalSince(runStart)

            let logNow = bad == nil && (state.step % max(t.logEvery, 1) == 0 || state.step == t.steps)
            let elapsed = Date().timeIntervalSince(intervalStart)
            let tokensPerSecond = Double(intervalTokens) / max(elapsed, 1e-9)
            if logNow {
                var row = MetricsRow()
                row.set("step", .int(state.step)); row.set("examples", .int(state.examples))
                row.set("tokens", .int(state.tokens)); row.set("flops", .double(state.flops))
                if let f = state.flops6ND { row.set("flops_6nd", .double(f)) }
                row.set("loss", .double(Double(lossSum)))
                for k in parts.keys.sorted() { row.set(k, .double(Double(parts[k]!))) }
                row.set("lr", .double(Double(lr))); row.set("grad_norm", .double(Double(gradNorm)))
                row.set("tokens_per_s", .double(tokensPerSecond)); row.set("wall_s", .double(state.wallSeconds))
                try log?.append(row)
                if isRoot { onRow?(row) }
                intervalStart = Date(); intervalTokens = 0
            }
            // The loss's parts (text, image, …) beside it, so a multimodal run shows each falling.
            let shown = parts.keys.sorted().map { String(format: "%@ %.3f", String($0.hasPrefix("loss_") ? $0.dropFirst(5) : $0[...]), parts[$0]!) }
            progress?.update(step: state.step, loss: lossSum, tokensPerSecond: tokensPerSecond, extra: shown.joined(separator: "  "), log: logNow)

            let last = state.step == t.steps
            let evalNow = isRoot && (recipe.eval.every > 0 && state.step % recipe.eval.every == 0 || last)
            let sampleNow = isRoot && (recipe.sample.every > 0 && state.step % recipe.sample.every == 0 || last)
            let checkpointDue = state.step % max(t.checkpointEvery, 1) == 0 || last
            // Evaluation, samples and checkpoints allocate other sizes than the steps: each phase
            // starts and ends with an empty buffer cache, so their memory never stacks on the
            // steps' cached buffers (the peak is the larger of the two, as MemoryPlan assumes).
            let phases = evalNow || sampleNow || isRoot && checkpointDue
            if phases { Allocator.shared.emptyCache() }
            defer { if phases { Allocator.shared.emptyCache() } }
            if evalNow, let log, let progress {
                try evaluate(state: state, log: log, progress: progress, rng: base.split(1 << 40 | UInt64(state.step)))
            }
            if sampleNow {
                if let line = try task.writeSamples(step: state.step, to: run.samplesURL, rng: base.split(1 << 41 | UInt64(state.step))) {
                    progress?.message(line)
                }
                try log?.mirror?.samples(step: state.step, in: run.samplesURL)
            }
            if parallel.anyRank(StopRequest.isRequested) { stopped = true }
            if checkpointDue || stopped {
                try saveCheckpoint(state)
            }
            if stopped { progress?.message("stopped at step \(state.step); checkpoint saved"); break }
        }
        if stopped && state.step % max(t.checkpointEvery, 1) != 0 { try saveCheckpoint(state) }
        if isRoot { try run.writeLossPlot(title: recipe.name + " loss") }
        communicator.barrier()   // every rank returns once rank 0's last checkpoint is in place
        return TrainSummary(startStep: startStep, endStep: state.step, finalLoss: lastLoss, stoppedEarly: stopped, resumedFrom: resumedFrom)
    }

    private func evaluate(state: TrainingState, log: MetricsLog, progress: Progress, rng: RNG) throws {
        let metrics = try withoutGrad { try task.evaluate(step: state.step, rng: rng) }
        guard !metrics.isEmpty else { return }
        var row = MetricsRow()
        row.set("step", .int(state.step)); row.set("tokens", .int(state.tokens)); row.set("flops", .double(state.flops))
        if let f = state.flops6ND { row.set("flops_6nd", .double(f)) }
        row.set("kind", .string("eval"))
        for k in metrics.keys.sorted() { row.set("eval_" + k, .double(metrics[k]!)) }
        try log.append(row)
        onRow?(row)
        // Counts (documents) print as integers, scores and losses with four decimals.
        progress.message("eval @\(state.step): " + metrics.keys.sorted().map { key in
            let v = metrics[key]!
            return key == "documents" ? "\(key) \(Int(v))" : String(format: "%@ %.4f", key, v)
        }.joined(separator: "  "))
    }

    /// What is not finite in a step — "loss_image", "loss", or "gradient of blocks.2.wq" — or nil.
    private func nonFinite(loss: Float, parts: [String: Float], gradNorm: Float) -> String? {
        if let part = parts.keys.sorted().first(where: { !parts[$0]!.isFinite }) { return part }
        if !loss.isFinite { return "loss" }
        guard !gradNorm.isFinite else { return nil }
        let name = params.first { $0.1.grad.map { !$0.squaredNorm().isFinite } ?? false }?.0
        return "gradient of " + (name ?? "a parameter")
    }

    // MARK: - Checkpoints

    private func saveCheckpoint(_ state: TrainingState) throws {
        guard isRoot else { return }
        let ckpt = Checkpoint(model: task.model.stateDict(), ema: ema?.stateDict(), optimizer: optimizer.stateTensors(),
                              state: state, config: try task.checkpointConfig(), recipe: recipe.yaml())
        try ckpt.write(to: run.checkpointURL(step: state.step))
        run.prune(keep: recipe.train.keepCheckpoints)
        try task.didSaveCheckpoint(step: state.step, run: run)
    }

    /// The newest checkpoint that loads; a corrupt newest one falls back to the one before.
    private func loadLatestCheckpoint() throws -> (Checkpoint, URL)? {
        var firstError: Error?
        for url in run.checkpoints() {
            do {
                let c = try Checkpoint.read(url)
                try task.model.load(c.model)
                if let e = c.ema { ema?.restore(e, updates: c.state.optimizerStep) }
                try optimizer.load(c.optimizer, step: c.state.optimizerStep)
                if let firstError { FileHandle.standardError.write("warning: skipped a bad checkpoint: \(firstError)\n".data(using: .utf8)!) }
                return (c, url)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
        return nil
    }
}

/// The optimizers a recipe can name, behind one interface.
enum AnyOptimizer {
    case adamw(AdamW), sgd(SGD)

    var lr: Float {
        get { switch self { case .adamw(let o): o.lr; case .sgd(let o): o.lr } }
        nonmutating set { switch self { case .adamw(let o): o.lr = newValue; case .sgd(let o): o.lr = newValue } }
    }
    var step: Int { switch self { case .adamw(let o): o.step; case .sgd: 0 } }
    func update() { switch self { case .adamw(let o): o.update(); case .sgd(let o): o.update() } }
    func stateTensors() -> [String: Tensor] {
        switch self { case .adamw(let o): o.state().tensors; case .sgd(let o): o.state() }
    }
    func load(_ t: [String: Tensor], step: Int) throws {
        switch self { case .adamw(let o): try o.load(tensors: t, step: step); case .sgd(let o): o.load(t) }
    }
}
