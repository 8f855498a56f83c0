// Data-parallel training: a micro-batch split into row shares, weighted by tokens (lm) or shared
// out term by term (Transfusion's text and diffusion means, Chameleon's loss and its parts), gives
// the full batch's loss, parts and gradient; backward's readiness hook reports final gradients;
// and, under each MPI launcher installed (Open MPI's mpirun, MPICH's mpiexec), `fusion train` on 2
// ranks follows the single-process loss curve, through a resume, and counts both ranks as on this
// machine; a Transfusion, a Chameleon and a VAE run on 2 ranks follow theirs (a VQ run refuses).
@testable import Collective
import Foundation
import NN
import Tensors
import Testing
@testable import Models
@testable import Training

/// A recipe whose curve does not depend on train.steps (constant LR after warmup), so a run can
/// be extended and resumed and still be compared with a straight run.
func dataParallelRecipeText(steps: Int) -> String {
    """
    name: dp
    seed: 3
    model: {kind: lm, preset: nano, dim: 32, layers: 2, heads: 2}
    data: {tokenizer_vocab: 300, seq_len: 32}
    optimizer: {lr: 3.0e-3, warmup_steps: 2, schedule: constant}
    train: {steps: \(steps), batch_size: 4, grad_accum: 2, log_every: 1, checkpoint_every: 3, keep_checkpoints: 2}
    eval: {every: 0, batches: 1}
    sample: {every: 0, max_tokens: 4}
    """
}

/// A small image–text recipe of `kind` (transfusion or chameleon) over a random image tokenizer:
/// two documents per row, image-first documents and edit triplets (whose clean source spans carry
/// no diffusion loss), so that row shares split every kind of term.
func dataParallelImageTextRecipeText(_ kind: String, tokenizer: String, steps: Int) -> String {
    """
    name: dp-\(kind)
    seed: 3
    model: {kind: \(kind), preset: nano, dim: 32, layers: 2, heads: 2, image_tokenizer: \(tokenizer)}
    diffusion: {image_first: 0.3, caption_dropout: 0.1}
    data: {tokenizer_vocab: 300, seq_len: \(kind == "transfusion" ? 112 : 160), docs_per_row: 2, pool: 64, edit_fraction: 0.25}
    optimizer: {lr: 3.0e-3, warmup_steps: 2, schedule: constant}
    train: {steps: \(steps), batch_size: 4, grad_accum: 2, log_every: 1, checkpoint_every: 3, keep_checkpoints: 2}
    eval: {every: 0, batches: 1}
    sample: {every: 0, max_tokens: 4}
    """
}

/// A small VAE (or VQ) recipe on ShapesWorld images, constant LR after warm-up like the others.
func dataParallelTokenizerRecipeText(_ kind: String = "vae", steps: Int) -> String {
    """
    name: dp-\(kind)
    seed: 3
    model: {kind: \(kind)}
    data: {image_size: 32}
    tokenizer: {channels: 16, channel_multipliers: [1], patch_size: 4, downsample: 4, latent_channels: 4, groups: 4}
    optimizer: {lr: 2.0e-3, warmup_steps: 2, schedule: constant}
    train: {steps: \(steps), batch_size: 4, grad_accum: 2, log_every: 1, checkpoint_every: 3, keep_checkpoints: 2}
    eval: {every: 0, batches: 1}
    """
}

/// The MPI launchers the data-parallel tests start `fusion train` with, over loopback, and the
/// release `fusion` binary (built by `swift build -c release … --build-tests`).
enum MPIRun: CaseIterable {
    case openMPI, mpich

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fusion = root.appendingPathComponent(".build/release/fusion")

    /// Debian names the launchers mpirun.openmpi and mpiexec.mpich, with `mpirun` pointing at
    /// one of them; other installs have only the plain names, told apart by their --version.
    static let openMPILauncher = find("mpirun.openmpi") ?? find("mpirun", versionSays: "Open MPI")
    static let mpichLauncher = find("mpiexec.mpich") ?? find("mpiexec.hydra") ?? find("mpiexec", versionSays: "HYDRA")

    var launcher: URL? { self == .openMPI ? MPIRun.openMPILauncher : MPIRun.mpichLauncher }
    /// An installed launcher, MPICH first (what `make setup` installs).
    static var any: MPIRun? { [.mpich, .openMPI].first { $0.available } }
    var available: Bool { launcher != nil && FileManager.default.isExecutableFile(atPath: MPIRun.fusion.path) }
    /// How `fusion train` names the library it loaded under this launcher (MPICommunicator.library).
    var library: String { self == .openMPI ? "Open MPI: libmpi.so.40" : "MPICH ABI: " }

    static func find(_ name: String, versionSays marker: String? = nil) -> URL? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { URL(fileURLWithPath: String($0)).appendingPathComponent(name) }
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
        guard let path, let marker else { return path }
        let p = Process()
        p.executableURL = path
        p.arguments = ["--version"]
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        guard (try? p.run()) != nil else { return nil }
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return text.contains(marker) ? path : nil
    }

    /// Runs `fusion train ARGS` on `ranks` ranks with this launcher (each rank on `threads`
    /// threads, or as many as `fusion train` picks when nil; `env` added to the ranks'
    /// environment); returns its exit status and output.
    func run(ranks: Int, threads: Int? = 1, env extra: [String: String] = [:], _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = launcher!
        var env = ProcessInfo.processInfo.environment
        env["FUSION_THREADS"] = nil
        switch self {
        case .openMPI:
            p.arguments = ["-np", String(ranks), "--oversubscribe", "--bind-to", "none"]
                + (threads.map { ["-x", "FUSION_THREADS=\($0)"] } ?? [])
                + extra.keys.sorted().flatMap { ["-x", "\($0)=\(extra[$0]!)"] }
            env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
            env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"   // containers often forbid CMA
        case .mpich:
            // Hydra starts local ranks itself (-launcher fork: no ssh, even where ssh is its default).
            p.arguments = ["-n", String(ranks), "-launcher", "fork"]
                + (threads.map { ["-genv", "FUSION_THREADS", String($0)] } ?? [])
                + extra.keys.sorted().flatMap { ["-genv", $0, extra[$0]!] }
        }
        p.arguments! += [MPIRun.fusion.path, "train"] + args
        p.environment = env
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("mpirun-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        let h = try FileHandle(forWritingTo: out)
        p.standardOutput = h; p.standardError = h
        try p.run(); p.waitUntilExit(); try h.close()
        let text = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: out)
        return (p.terminationStatus, text)
    }

    /// `run`, failing the test with the output when it exits non-zero.
    func train(ranks: Int, threads: Int? = 1, _ args: [String]) throws -> String {
        let (status, text) = try run(ranks: ranks, threads: threads, args)
        try #require(status == 0, "\(launcher!.lastPathComponent) -n \(ranks) fusion train failed:\n\(text)")
        return text
    }
}

/// A pretend group of three (rank 0), for the checks made before any collective runs.
final class ThreeRanks: Communicator {
    var rank: Int { 0 }
    var size: Int { 3 }
    var localRanks: Int { 3 }
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingReduction { Done() }
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {}
    func barrier() {}
    func abort(code: Int32) -> Never { fatalError("abort \(code)") }
    func finalize() {}
    final class Done: PendingReduction { func test() -> Bool { true }; func wait() {} }
}

@Suite(.serialized) struct DataParallelTests {
    /// Rank shares of a micro-batch, weighted by their token counts, sum to the full gradient.
    @Test func rowSharesAddUpToTheFullBatchGradient() throws {
        let recipe = try Recipe.parse(dataParallelRecipeText(steps: 1), file: "dp.yaml")
        try expectSharesAddUp(try LMTask(recipe: recipe, run: scratchRun()), microBatch: 5, split: [0..<2, 2..<4])
    }

    /// Transfusion's shares — text cross-entropy over the whole micro-batch's targets, diffusion
    /// loss over its scored spans — add up to its loss, parts and gradient, for uneven splits too;
    /// the documents, timesteps and noise of a row are those it has in the whole micro-batch.
    @Test func transfusionRowSharesAddUpToTheFullBatchGradient() throws {
        let recipe = try Recipe.parse(dataParallelImageTextRecipeText("transfusion", tokenizer: try randomImageTokenizer(for: "transfusion"),
                                                                      steps: 1), file: "dp.yaml")
        let task = try TransfusionTask(recipe: recipe, run: scratchRun())
        let whole = try task.batch(task.world, firstRow: 12, rows: 4, rng: RNG(seed: 1), training: true)
        #expect(whole.documents.contains { $0.edit != nil } && whole.spanTargets[.image]!.scored != nil,
                "the batch should hold an edit's clean source span")
        for split in [[0..<2, 2..<4], [0..<1, 1..<4], [0..<3, 3..<4]] { try expectSharesAddUp(task, microBatch: 3, split: split) }
    }

    /// Chameleon's shares of its loss and of each reported part add up likewise.
    @Test func chameleonRowSharesAddUpToTheFullBatchGradient() throws {
        let recipe = try Recipe.parse(dataParallelImageTextRecipeText("chameleon", tokenizer: try randomImageTokenizer(for: "chameleon"),
                                                                      steps: 1), file: "dp.yaml")
        let task = try ChameleonTask(recipe: recipe, run: scratchRun())
        for split in [[0..<2, 2..<4], [0..<1, 1..<4]] { try expectSharesAddUp(task, microBatch: 3, split: split) }
    }

    /// A VAE's shares (pixel loss and KL, each a mean over its rows) add up likewise: a row's
    /// reparameterisation noise is its own, whichever rank draws it. A VQ tokenizer refuses to
    /// split, naming why (its quantiser's statistics need the whole batch).
    @Test func vaeRowSharesAddUpToTheFullBatchGradient() throws {
        let task = try ImageTokenizerTask(recipe: try Recipe.parse(dataParallelTokenizerRecipeText(steps: 1), file: "dp.yaml"))
        for split in [[0..<2, 2..<4], [0..<1, 1..<4]] { try expectSharesAddUp(task, microBatch: 3, split: split) }
        let vq = try ImageTokenizerTask(recipe: try Recipe.parse(dataParallelTokenizerRecipeText("vq", steps: 1), file: "dp.yaml"))
        #expect(throws: DataParallelError.notShardable("a VQ tokenizer outside a data-parallel run (its quantiser's EMA codebook and dead-code restarts need the whole batch's statistics)")) {
            try vq.loss(microBatch: 0, rows: 0..<2, rng: RNG(seed: 1))
        }
    }

    /// The rows of `split` (covering the micro-batch), weighted as DataParallel weights them, give
    /// the single-process loss, parts, counts and gradient of micro-batch `index`.
    func expectSharesAddUp(_ task: TrainingTask, microBatch index: Int, split: [Range<Int>]) throws {
        let params = task.model.namedParameters()
        task.model.zeroGrad()
        let full = try task.loss(microBatch: index, rng: RNG(seed: 1))
        full.total.backward()
        let expected = params.map { $0.1.grad!.scalars }
        task.model.zeroGrad()
        let shares = try split.map { try task.loss(microBatch: index, rows: $0, rng: RNG(seed: 1)) }
        let total = shares.map(\.meanOver).reduce(0, +)
        #expect(shares.map(\.tokens).reduce(0, +) == full.tokens && shares.map(\.examples).reduce(0, +) == full.examples)
        #expect(shares.compactMap(\.positions).reduce(0, +) == full.positions ?? 0)
        if let flops = full.flops { #expect(abs(shares.compactMap(\.flops).reduce(0, +) - flops) <= 1e-9 * flops) }
        var loss: Float = 0, parts: [String: Float] = [:]
        for s in shares {
            let w = s.isShare ? 1 : Float(s.meanOver) / Float(total)
            (s.total * w).backward()
            loss += s.total.item * w
            for (k, v) in s.parts { parts[k, default: 0] += v * w }
        }
        #expect(abs(loss - full.total.item) < 1e-5 * max(1, abs(full.total.item)), "loss: \(loss) from shares, \(full.total.item) whole")
        for (k, v) in full.parts where !(task is LMTask) {
            #expect(abs(parts[k]! - v) < 1e-5 * max(1, abs(v)), "\(k): \(parts[k]!) from shares, \(v) whole (split \(split))")
        }
        for ((name, p), e) in zip(params, expected) {
            let worst = zip(p.grad!.scalars, e).map { abs($0 - $1) }.max()!
            let scale = e.map(abs).max()!
            #expect(worst <= 1e-5 * max(scale, 1e-3), "gradient of \(name): max difference \(worst) (max |g| \(scale), split \(split))")
        }
    }

    /// The readiness hook reports every parameter once, with its gradient already final, and a
    /// reducer over one process leaves gradients as they are.
    @Test func backwardReportsFinalGradients() throws {
        let recipe = try Recipe.parse(dataParallelRecipeText(steps: 1), file: "dp.yaml")
        let task = try LMTask(recipe: recipe, run: scratchRun())
        let params = task.model.parameters()
        let reducer = GradientReducer(params: params, communicator: SingleProcess(), bucketBytes: 16 << 10)
        #expect(reducer.bucketCount > 3)
        task.model.zeroGrad()
        reducer.beginRound()
        var seen: [ObjectIdentifier: [Float]] = [:]
        try task.loss(microBatch: 0, rng: RNG(seed: 1)).total.backward { p in
            #expect(seen[ObjectIdentifier(p)] == nil, "a leaf was reported twice")
            seen[ObjectIdentifier(p)] = p.grad!.scalars
            reducer.gradientReady(p)
        }
        reducer.finish()
        #expect(seen.count == params.count)
        for p in params { #expect(seen[ObjectIdentifier(p)] == p.grad!.scalars) }
    }

    /// Launched by mpirun without a loadable libmpi: an error that says what to install.
    @Test func missingLibMPISaysWhatToInstall() throws {
        setenv("FUSION_MPI_LIBRARY", "/nonexistent/libmpi.so.40", 1)
        defer { unsetenv("FUSION_MPI_LIBRARY") }
        do {
            _ = try MPICommunicator()
            Issue.record("MPICommunicator loaded a library that does not exist")
        } catch let error as CollectiveError {
            // No launcher in this process's environment: both MPIs are named.
            #expect(error.description.contains("apt-get install -y libopenmpi-dev openmpi-bin"))
            #expect(error.description.contains("apt-get install -y mpich"))
            #expect(error.description.contains("/nonexistent/libmpi.so.40"))
        }
    }

    /// The launcher's own library is tried first (a library cannot join another's launcher), and
    /// its package is the one the error names.
    @Test func theLaunchersLibraryIsTriedFirst() {
        func with(_ vars: [String: String], _ body: () -> Void) {
            for (k, v) in vars { setenv(k, v, 1) }
            defer { for k in vars.keys { unsetenv(k) } }
            body()
        }
        with(["OMPI_COMM_WORLD_SIZE": "2", "PMIX_RANK": "0"]) {      // Open MPI's mpirun
            #expect(MPILibrary.candidates == ["libmpi.so.40", "libmpi.so"])
            #expect(MPILibrary.installAdvice.contains("openmpi-bin") && !MPILibrary.installAdvice.contains("mpich"))
            #expect(Collective.launcherRanks == 2)
        }
        with(["PMI_RANK": "1", "PMI_SIZE": "2", "MPI_LOCALNRANKS": "2"]) {   // MPICH's mpiexec (Hydra)
            #expect(MPILibrary.candidates.prefix(2) == ["libmpich.so.12", "libmpi.so.12"])
            #expect(MPILibrary.installAdvice.contains("apt-get install -y mpich") && !MPILibrary.installAdvice.contains("openmpi"))
            #expect(Collective.launchedByMPI && Collective.launcherRanks == 2)
        }
        with(["PMIX_RANK": "0"]) {                                    // srun --mpi=pmix: either, Open MPI first
            #expect(MPILibrary.candidates == ["libmpi.so.40", "libmpich.so.12", "libmpi.so.12", "libmpi.so"])
            #expect(Collective.launchedByMPI && Collective.launcherRanks == nil)
        }
    }

    @Test func batchNotDivisibleByRanksIsAnError() throws {
        let recipe = try Recipe.parse(dataParallelRecipeText(steps: 1), file: "dp.yaml")
        let run = scratchRun()
        let trainer = try Trainer(recipe: recipe, task: try LMTask(recipe: recipe, run: run), run: run, communicator: ThreeRanks())
        #expect(throws: DataParallelError.indivisibleBatch(batch: 4, ranks: 3)) { try trainer.train(fresh: true) }
    }

    /// Two ranks over loopback train the same curve as one process at the same global batch, and
    /// a 2-rank run resumed after 3 steps (train.steps extended 3 → 6) continues it: with Open MPI…
    @Test(.enabled(if: MPIRun.openMPI.available, "needs Open MPI's mpirun (apt-get install -y openmpi-bin libopenmpi-dev) and .build/release/fusion"))
    func openMPITwoRanksFollowTheSingleProcessCurveThroughAResume() throws {
        try twoRanksFollowTheSingleProcessCurveThroughAResume(.openMPI)
    }

    /// … and with MPICH.
    @Test(.enabled(if: MPIRun.mpich.available, "needs MPICH's mpiexec.mpich (apt-get install -y mpich) and .build/release/fusion"))
    func mpichTwoRanksFollowTheSingleProcessCurveThroughAResume() throws {
        try twoRanksFollowTheSingleProcessCurveThroughAResume(.mpich)
    }

    /// Two ranks train a Transfusion run (text and diffusion terms shared out, image-first and edit
    /// documents in the mixture) along the single process's curve, through a resume.
    @Test(.enabled(if: MPIRun.any != nil, "needs an MPI launcher (apt-get install -y mpich) and .build/release/fusion"))
    func twoRanksTrainTransfusionAlongTheSingleProcessCurve() throws {
        let vae = try randomImageTokenizer(for: "transfusion")
        try twoRanksFollowTheSingleProcessCurveThroughAResume(MPIRun.any!, keys: ["loss", "loss_text", "loss_image", "grad_norm", "flops"]) {
            dataParallelImageTextRecipeText("transfusion", tokenizer: vae, steps: $0)
        }
    }

    /// … and a Chameleon run.
    @Test(.enabled(if: MPIRun.any != nil, "needs an MPI launcher (apt-get install -y mpich) and .build/release/fusion"))
    func twoRanksTrainChameleonAlongTheSingleProcessCurve() throws {
        let vq = try randomImageTokenizer(for: "chameleon")
        try twoRanksFollowTheSingleProcessCurveThroughAResume(MPIRun.any!, keys: ["loss", "loss_text", "loss_image", "grad_norm", "flops"]) {
            dataParallelImageTextRecipeText("chameleon", tokenizer: vq, steps: $0)
        }
    }

    /// … and a VAR run (each rank keeps its rows' images and their code vectors).
    @Test(.enabled(if: MPIRun.any != nil, "needs an MPI launcher (apt-get install -y mpich) and .build/release/fusion"))
    func twoRanksTrainVARAlongTheSingleProcessCurve() throws {
        let msvq = try randomImageTokenizer(for: "var")
        try twoRanksFollowTheSingleProcessCurveThroughAResume(MPIRun.any!, keys: ["loss", "loss_text", "loss_image", "grad_norm", "flops"]) {
            dataParallelImageTextRecipeText("var", tokenizer: msvq, steps: $0).replacingOccurrences(of: "edit_fraction: 0.25", with: "edit_fraction: 0")
        }
    }

    /// … and a VAE run.
    @Test(.enabled(if: MPIRun.any != nil, "needs an MPI launcher (apt-get install -y mpich) and .build/release/fusion"))
    func twoRanksTrainAVAEAlongTheSingleProcessCurve() throws {
        try twoRanksFollowTheSingleProcessCurveThroughAResume(MPIRun.any!, keys: ["loss", "recon", "kl", "grad_norm", "flops"]) {
            dataParallelTokenizerRecipeText(steps: $0)
        }
    }

    /// … and a VQ run, its quantiser's EMA codebook and dead-code restarts summed over the ranks:
    /// with restarts after 2 idle forward passes, codes restart at most steps, so the restart
    /// vectors drawn over the whole batch are checked too (the final weights hold the codebook). (A resume resets the idle counters,
    /// which are not checkpointed; this run goes straight through.)
    @Test(.enabled(if: MPIRun.any != nil, "needs an MPI launcher (apt-get install -y mpich) and .build/release/fusion"))
    func twoRanksTrainAVQTokenizerAlongTheSingleProcessCurve() throws {
        try twoRanksFollowTheSingleProcessCurveThroughAResume(MPIRun.any!, keys: ["loss", "recon", "commit", "active_codes", "grad_norm"],
                                                              resumeAt: nil) {
            dataParallelTokenizerRecipeText("vq", steps: $0).replacingOccurrences(of: "groups: 4}", with: "groups: 4, restart_after_steps: 2}")
        }
    }

    /// Two ranks started on this machine count each other as local (MPI_Comm_split_type) and
    /// split its cores between them: with Open MPI…
    @Test(.enabled(if: MPIRun.openMPI.available, "needs Open MPI's mpirun (apt-get install -y openmpi-bin libopenmpi-dev) and .build/release/fusion"))
    func openMPITwoRanksShareThisMachine() throws { try twoRanksShareThisMachine(.openMPI) }

    /// … and with MPICH.
    @Test(.enabled(if: MPIRun.mpich.available, "needs MPICH's mpiexec.mpich (apt-get install -y mpich) and .build/release/fusion"))
    func mpichTwoRanksShareThisMachine() throws { try twoRanksShareThisMachine(.mpich) }

    /// Open MPI's library under MPICH's launcher initialises as a world of one; every rank
    /// would train the whole run alone. It stops instead, saying why.
    @Test(.enabled(if: MPIRun.mpich.available && MPIRun.openMPI.available, "needs both Open MPI and MPICH (apt-get install -y openmpi-bin mpich)"))
    func aLibraryThatIsNotTheLaunchersStops() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-dp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipeURL = dir.appendingPathComponent("dp.yaml")
        try dataParallelRecipeText(steps: 1).write(to: recipeURL, atomically: true, encoding: .utf8)
        let (status, output) = try MPIRun.mpich.run(ranks: 2, env: ["FUSION_MPI_LIBRARY": "libmpi.so.40"],
                                                    [recipeURL.path, "--runs", dir.path, "--name", "mismatch"])
        #expect(status != 0)
        #expect(output.contains("the launcher started 2 ranks but Open MPI: libmpi.so.40 sees a world of 1"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("mismatch").path))
    }

    func twoRanksShareThisMachine(_ mpi: MPIRun) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-dp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipeURL = dir.appendingPathComponent("dp.yaml")
        try dataParallelRecipeText(steps: 1).write(to: recipeURL, atomically: true, encoding: .utf8)
        // No FUSION_THREADS: each rank takes its share of the cores, which needs the local count.
        let out = try mpi.train(ranks: 2, threads: nil, [recipeURL.path, "--runs", dir.path, "--name", "local"])
        let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        #expect(out.contains("2 MPI ranks × \(threads) threads (2 on this machine; \(mpi.library)"), "\(out)")
    }

    /// `recipe(steps)` trained 6 steps by one process and, on 2 ranks, 3 steps then resumed to
    /// 6: the same metrics rows (`keys` within float rounding) and the same final weights.
    func twoRanksFollowTheSingleProcessCurveThroughAResume(_ mpi: MPIRun, keys: [String] = ["loss", "loss_text", "grad_norm", "lr"],
                                                           resumeAt: Int? = 3,
                                                           recipe text: (Int) -> String = { dataParallelRecipeText(steps: $0) }) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-dp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipeURL = dir.appendingPathComponent("dp.yaml")
        try text(6).write(to: recipeURL, atomically: true, encoding: .utf8)

        // One process, 6 steps straight.
        let single = RunDirectory(dir.appendingPathComponent("single"))
        _ = try mpi.train(ranks: 1, [recipeURL.path, "--runs", dir.path, "--name", "single"])

        // Two ranks: 3 steps, then the same run extended to 6 resumes from its step-3 checkpoint
        // (or 6 steps straight).
        let args = [recipeURL.path, "--runs", dir.path, "--name", "two"]
        let first = try mpi.train(ranks: 2, args + (resumeAt.map { ["train.steps=\($0)"] } ?? []))
        #expect(first.contains("2 MPI ranks × 1 threads (2 on this machine; \(mpi.library)"), "\(first)")
        if let resumeAt {
            let second = try mpi.train(ranks: 2, args + ["--resume-anyway"])   // the recipe's 6 steps, not the ones it ran
            #expect(second.contains("resuming two from step-0000000\(resumeAt)"))
        }

        let two = RunDirectory(dir.appendingPathComponent("two"))
        let rowsA = try MetricsLog.read(single.metricsURL).filter { $0["kind"] == nil }
        let rowsB = try MetricsLog.read(two.metricsURL).filter { $0["kind"] == nil }
        #expect(rowsB.compactMap { $0["step"] as? Int } == Array(1...6))
        for (a, b) in zip(rowsA, rowsB) {
            let step = a["step"] as! Int
            for key in ["tokens", "examples"] { #expect(a[key] as? Int == b[key] as? Int, "\(key) at step \(step)") }
            for key in keys {
                let x = try #require(a[key] as? Double, "\(key) at step \(step)"), y = b[key] as! Double
                #expect(abs(x - y) <= 1e-4 * max(1, abs(x)), "\(key) at step \(step): one process \(x), two ranks \(y)")
            }
        }
        // The 2-rank run's final weights are the single process's.
        let ckpt = try Checkpoint.read(two.checkpointURL(step: 6)), reference = try Checkpoint.read(single.checkpointURL(step: 6))
        #expect(ckpt.model.count == reference.model.count)
        for (name, p) in reference.model {
            let q = try #require(ckpt.model[name], "checkpoint lacks \(name)")
            let worst = zip(p.scalars, q.scalars).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-4, "weights of \(name) differ by \(worst)")
        }
    }
}
