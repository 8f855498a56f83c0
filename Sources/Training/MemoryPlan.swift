// Memory planned before a run: what the process already holds, the model's weights, gradients,
// optimizer moments and EMA, the data caches once full, one micro-batch's tape (measured on probe
// batches of four and eight rows of the same task and scaled to the recipe's rows) and the
// checkpoint writer's buffer, checked against the memory this process may still take
// (MemAvailable, the cgroup's limit, the address-space limit, `train.memory_limit`). A recipe that cannot fit stops in seconds with the estimate and
// the keys to change, instead of growing until the kernel kills it. Not the allocator (Tensors).
import Foundation
import NN
import Tensors

/// The memory this process may still take, and which limit says so.
public struct MemoryBudget: Sendable, CustomStringConvertible {
    /// Bytes this process may add to what it holds now.
    public var headroom: Int
    /// The binding limit: "MemAvailable", "cgroup memory limit", "address-space limit (ulimit -v)"
    /// or "train.memory_limit".
    public var source: String

    public var description: String { "\(MemoryPlan.format(headroom)) more (\(source))" }

    /// The tightest of the machine's available memory (shared by `sharedBy` processes on this
    /// machine, e.g. MPI ranks), the cgroup's limit, the address-space limit and `limit` (a cap on
    /// this process's resident memory), measured now.
    public static func current(limit: Int? = nil, sharedBy: Int = 1) -> MemoryBudget {
        var options: [(Int, String)] = []
        let share = max(sharedBy, 1)
        if let available = SystemMemory.meminfo("MemAvailable") { options.append((available / share, "MemAvailable")) }
        if let (max, used) = SystemMemory.cgroupLimit() { options.append((Swift.max(0, max - used) / share, "cgroup memory limit")) }
        var rl = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &rl) == 0, rl.rlim_cur != rlim_t.max, let vm = SystemMemory.status("VmSize") {
            options.append((Swift.max(0, Int(clamping: rl.rlim_cur) - vm), "address-space limit (ulimit -v)"))
        }
        if let limit { options.append((Swift.max(0, limit - SystemMemory.residentBytes), "train.memory_limit")) }
        guard let tightest = options.min(by: { $0.0 < $1.0 }) else { return MemoryBudget(headroom: .max, source: "no limit found") }
        return MemoryBudget(headroom: tightest.0, source: tightest.1)
    }
}

/// Readings of this process and machine from /proc and /sys (Linux); nil where absent.
public enum SystemMemory {
    /// Resident bytes of this process now (VmRSS).
    public static var residentBytes: Int { status("VmRSS") ?? 0 }
    /// The most resident bytes this process has held (VmHWM).
    public static var peakResidentBytes: Int { status("VmHWM") ?? 0 }

    /// A "Name:  123 kB" field of /proc/self/status, in bytes.
    static func status(_ field: String) -> Int? { kilobyteField(field, in: "/proc/self/status") }
    /// A field of /proc/meminfo, in bytes.
    static func meminfo(_ field: String) -> Int? { kilobyteField(field, in: "/proc/meminfo") }

    static func kilobyteField(_ field: String, in path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let number = line.dropFirst(field.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { Int($0) }
            return number.map { $0 * 1024 }
        }
        return nil
    }

    /// The memory limit of this process's cgroup and what the cgroup uses now (v2, then v1), or nil
    /// when there is none.
    static func cgroupLimit() -> (limit: Int, used: Int)? {
        func number(_ path: String) -> Int? {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        var group = ""
        if let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) {
            group = String(line.dropFirst(3))
        }
        for dir in Set(["/sys/fs/cgroup" + group, "/sys/fs/cgroup"]) {
            if let limit = number(dir + "/memory.max"), let used = number(dir + "/memory.current") { return (limit, used) }
        }
        // cgroup v1 reports "no limit" as a number near Int64.max.
        if let limit = number("/sys/fs/cgroup/memory/memory.limit_in_bytes"), limit < 1 << 60,
           let used = number("/sys/fs/cgroup/memory/memory.usage_in_bytes") { return (limit, used) }
        return nil
    }
}

/// A recipe's planned peak memory, by part.
public struct MemoryPlan: Sendable, CustomStringConvertible {
    /// Resident bytes before the run's model exists: code, libraries, tokenizer, data.
    public var runtime = 0
    public var weights = 0
    public var gradients = 0
    /// AdamW's two moments (or SGD's momentum).
    public var optimizer = 0
    public var ema = 0
    /// The tape and temporaries of one micro-batch's forward and backward at the run's rows.
    public var microBatch = 0
    /// The checkpoint writer's transient buffer (the largest file, encoded in memory).
    public var checkpoint = 0
    /// The task's caches once full (the training pool's encoded latents, codes, speech patches).
    public var dataCaches = 0
    /// The rows one process computes per micro-batch, what one row's tape costs, and the part of
    /// the micro-batch's memory that does not grow with rows.
    public var rows = 0
    public var bytesPerRow = 0
    public var microBatchFixed = 0
    /// Seconds the probes took.
    public var probeSeconds = 0.0
    /// What a row is in the description: "rows" of a micro-batch, or "images" of a sampling batch.
    public var rowName = "micro-batch of %d rows"

    public var total: Int { runtime + weights + gradients + optimizer + ema + microBatch + checkpoint + dataCaches }

    public var description: String {
        "planned peak \(Self.format(total)) (runtime \(Self.format(runtime)), weights+grads+optimizer+EMA "
            + "\(Self.format(weights + gradients + optimizer + ema)), \(String(format: rowName, rows)) \(Self.format(microBatch))"
            + (checkpoint > 0 ? ", checkpoint \(Self.format(checkpoint))" : "")
            + (dataCaches > 0 ? ", data caches \(Self.format(dataCaches)))" : ")")
    }

    /// "412 MiB", "3.14 GiB", "116 GiB".
    public static func format(_ bytes: Int) -> String {
        let mib = Double(bytes) / 1_048_576
        if mib >= 10 * 1024 { return String(format: "%.0f GiB", mib / 1024) }
        if mib >= 1024 { return String(format: "%.2f GiB", mib / 1024) }
        return String(format: "%.0f MiB", mib)
    }

    /// Bytes held per parameter beyond its weight: gradient, optimizer state, EMA.
    static func stateBytes(_ recipe: Recipe) -> (gradients: Int, optimizer: Int, ema: Int) {
        let o = recipe.optimizer
        let moments = o.name == .sgd ? (o.momentum > 0 ? 1 : 0) : 2
        return (4, 4 * moments, recipe.train.emaDecay > 0 ? 4 : 0)
    }

    /// A lower bound of the parameters a recipe's model has, known before building it: the
    /// decoder stack of the families that have one (embeddings, heads and patch layers come on
    /// top). Nil for the families without a decoder.
    public static func parameterLowerBound(_ recipe: Recipe) -> Int? {
        guard recipe.model.kind.capabilities.contains(.decoder),
              case let config = Presets.decoder(recipe.model), config.problem == nil else { return nil }
        return config.parameterCount
    }

    /// The plan of training `recipe` with `ranks` processes splitting each micro-batch. `build`
    /// makes the recipe's task (the CLI's family lookup); it is called twice with probe recipes of
    /// four and eight rows (the run's rows if fewer), whose micro-batches 0 and 1 are run forward and
    /// backward to measure the tape per row. The probes' buffers are returned to the system afterwards.
    public static func training(_ recipe: Recipe, ranks: Int = 1, build: (Recipe) throws -> TrainingTask) throws -> MemoryPlan {
        var plan = MemoryPlan()
        let start = Date()
        plan.rows = (recipe.train.batchSize + max(ranks, 1) - 1) / max(ranks, 1)
        var measured: [Int] = []
        var parameters = 0, cacheFile = 0
        let precision = recipe.train.matmulPrecision
        let probeRows = Array(Set([min(4, plan.rows), min(8, plan.rows)])).sorted()
        for rows in probeRows {
            var probe = recipe
            probe.train.batchSize = rows
            probe.train.gradAccum = 1
            let task = try build(probe)
            parameters = task.model.parameterCount
            plan.dataCaches = task.cacheBytes
            cacheFile = task.cacheFileBytes
            // Two micro-batches: the second meets the buffers the first left cached, as steps do.
            measured.append(try heldGrowth {
                try MatmulPrecision.with(precision) {
                    for index in 0..<2 {
                        task.model.zeroGrad()
                        let loss = try task.loss(microBatch: index, rng: RNG(seed: recipe.seed).split(UInt64(index)))
                        loss.total.backward()
                    }
                }
            })
            task.model.zeroGrad()
        }
        Allocator.shared.trim()   // the probes' buffers and freed heap (their data, tokenizer copies) back to the system
        // Code, libraries, BLAS buffers, tokenizer and data, now that the probes are gone.
        plan.runtime = max(0, SystemMemory.residentBytes - Allocator.shared.liveBytes)
        let state = stateBytes(recipe)
        plan.weights = 4 * parameters
        plan.gradients = state.gradients * parameters
        plan.optimizer = state.optimizer * parameters
        plan.ema = state.ema * parameters
        // The probes include the gradients they created; the rest is the tape, linear in rows.
        let (fixed, perRow) = line(rows: probeRows, measured: measured)
        plan.microBatchFixed = max(0, fixed - plan.gradients)
        plan.bytesPerRow = perRow
        plan.microBatch = plan.microBatchFixed + perRow * plan.rows
        // The checkpoint writer encodes its largest file (the optimizer's moments, or the weights)
        // in one buffer of the file's size; the pool's encoding cache is written then too, as a
        // tensor and its file's bytes (a long run's 65 536 latents: 2 × 134 MB, which the plan missed).
        plan.checkpoint = max(plan.weights, plan.optimizer, 2 * cacheFile)
        plan.probeSeconds = Date().timeIntervalSince(start)
        return plan
    }

    /// The plan of generating `count` items in one batch with a model already loaded: what the
    /// process holds now (the model among it), and the batch's working set measured by `probe`
    /// with 1 and 2 items (a single denoising step and the decoding, say) and scaled to `count`.
    public static func generation(count: Int, probe: (Int) throws -> Void) rethrows -> MemoryPlan {
        var plan = MemoryPlan()
        plan.rowName = "batch of %d images"
        plan.rows = count
        let sizes = [1, 2]
        let measured = try sizes.map { n in try heldGrowth { try probe(n) } }
        Allocator.shared.trim()
        plan.weights = Allocator.shared.liveBytes
        plan.runtime = max(0, SystemMemory.residentBytes - plan.weights)
        (plan.microBatchFixed, plan.bytesPerRow) = line(rows: sizes, measured: measured)
        plan.microBatch = plan.microBatchFixed + plan.bytesPerRow * count
        return plan
    }

    /// What the tensor allocator holds more after `body`, from an emptied cache: the live and the
    /// cached bytes, i.e. its working set at its peak and the buffers of other sizes it keeps.
    static func heldGrowth(_ body: () throws -> Void) rethrows -> Int {
        let allocator = Allocator.shared
        allocator.emptyCache()
        let before = allocator.liveBytes
        try body()
        return allocator.liveBytes + allocator.cachedBytes - before
    }

    /// `measured = fixed + perRow · rows` through the probes (one probe: all of it fixed), neither
    /// part negative.
    static func line(rows: [Int], measured: [Int]) -> (fixed: Int, perRow: Int) {
        guard rows.count == 2 else { return (max(0, measured[0]), 0) }
        let perRow = max(0, (measured[1] - measured[0]) / (rows[1] - rows[0]))
        return (max(0, measured[0] - perRow * rows[0]), perRow)
    }

    /// Throws ``MemoryPlanError`` unless the training plan fits what the process may still take.
    public func check(_ recipe: Recipe, budget: MemoryBudget) throws {
        try check(budget: budget) { MemoryPlanError.trainingAdvice(self, budget: budget, recipe: recipe) }
    }

    /// Throws ``MemoryPlanError`` with `advice` (what to change) unless the plan fits `budget`.
    public func check(budget: MemoryBudget, advice: () -> String) throws {
        guard total - runtime > budget.headroom else { return }
        throw MemoryPlanError(plan: self, budget: budget, advice: advice())
    }
}

/// A run or command whose planned peak does not fit: says the estimate, the limit and what to change.
public struct MemoryPlanError: Error, CustomStringConvertible {
    public let plan: MemoryPlan
    public let budget: MemoryBudget
    public let advice: String

    public var description: String {
        "not enough memory: \(plan), \(MemoryPlan.format(plan.total - plan.runtime)) more "
            + "than the \(MemoryPlan.format(plan.runtime)) this process holds now, but only \(MemoryPlan.format(budget.headroom)) is free "
            + "(\(budget.source)). To fit: \(advice)."
    }

    /// The keys that shrink a training run, with how many rows would fit.
    static func trainingAdvice(_ plan: MemoryPlan, budget: MemoryBudget, recipe: Recipe) -> String {
        // Rows whose tape fits beside everything else the run holds.
        let rest = plan.total - plan.runtime - plan.microBatch + plan.microBatchFixed
        let rowsFit = plan.bytesPerRow > 0 ? max(0, budget.headroom - rest) / plan.bytesPerRow : plan.rows
        let modelBytes = plan.weights + plan.gradients + plan.optimizer + plan.ema + plan.checkpoint
        var advice: [String] = []
        if plan.microBatch >= modelBytes && plan.microBatch >= plan.dataCaches {
            let fits = max(1, min(rowsFit, plan.rows))
            advice.append("lower train.batch_size (\(recipe.train.batchSize); at most about \(fits) rows fit per micro-batch) and raise "
                          + "train.grad_accum to keep the batch, or lower data.seq_len (\(recipe.data.seqLen))")
        }
        if plan.dataCaches > 0 && 4 * plan.dataCaches >= plan.microBatch {
            advice.append("lower data.pool (\(recipe.data.pool); its cached latents, codes and speech take "
                          + "\(MemoryPlan.format(plan.dataCaches)))")
        }
        advice.append("shrink the model (model.preset, model.dim, model.layers, model.mlp_hidden)")
        if recipe.train.emaDecay > 0 { advice.append("drop the EMA (train.ema_decay: 0)") }
        return advice.joined(separator: "; or ")
    }

    /// How many items of a generation plan fit `budget` (at least 1).
    public static func itemsThatFit(_ plan: MemoryPlan, budget: MemoryBudget) -> Int {
        guard plan.bytesPerRow > 0 else { return plan.rows }
        return max(1, (budget.headroom - plan.microBatchFixed) / plan.bytesPerRow)
    }
}

/// A model too large to build at all: its decoder's parameters alone exceed what is free.
public struct ModelTooLargeError: Error, CustomStringConvertible {
    public let parameters: Int
    public let bytes: Int
    public let budget: MemoryBudget

    public var description: String {
        "the model needs more memory than the process may take: its decoder alone has \(parameters) parameters, "
            + "\(MemoryPlan.format(bytes)) with gradients and optimizer state, but only \(MemoryPlan.format(budget.headroom)) is free "
            + "(\(budget.source)). "
            + "Shrink it: model.preset, model.dim, model.layers, model.mlp_hidden"
    }

    /// Throws when the recipe's decoder alone (weights, gradients, optimizer state, EMA) cannot fit
    /// `budget`: checked before any task is built, so a typo in model.dim stops in milliseconds.
    public static func check(_ recipe: Recipe, budget: MemoryBudget) throws {
        guard let parameters = MemoryPlan.parameterLowerBound(recipe) else { return }
        let state = MemoryPlan.stateBytes(recipe)
        let (bytes, overflow) = parameters.multipliedReportingOverflow(by: 4 + state.gradients + state.optimizer + state.ema)
        if overflow || bytes > budget.headroom {
            throw ModelTooLargeError(parameters: parameters, bytes: overflow ? .max : bytes, budget: budget)
        }
    }
}

