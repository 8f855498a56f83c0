// The multimodal benchmarks, driving the library types training and sampling use:
//   transfusion  one training step of recipes/compare/transfusion-unet-tiny.yaml (Transfusion,
//                tiny decoder with QK-norm and z-loss, U-Net patches, 16 rows of 112 positions with
//                two caption–image documents each) on a batch the task's own pipeline packed
//   chameleon    one training step of recipes/compare/chameleon-tiny.yaml (VQ codes in the
//                stream, 16 rows of 208, causal, cross-entropy everywhere)
//   sample       4 text-to-image samples of 32×32 at 50 Euler steps with CFG 3, then VAE decode
//   vae          encode and decode of 64 ShapesWorld images with checkpoints/vae-shapes.safetensors
//   transfusion-dp  the transfusion step data-parallel under `mpirun -np N`, each rank computing
//                its rows of the micro-batch through the task as the Trainer does (see `make bench-mpi`)
// A step is what Trainer does: forward, backward, gradient clipping and AdamW. Twins:
// bench/torch_transfusion.py, torch_chameleon.py, torch_sample.py, torch_vae.py.
import Collective
import Data
import Diffusion
import Foundation
import Media
import Models
import NN
import Tensors
import Text
import Training

/// A scratch run folder for a recipe (its trained BPE tokenizer is kept there between runs).
func benchRun(_ recipe: Recipe) throws -> RunDirectory {
    let url = URL(fileURLWithPath: ".build/bench/" + recipe.name)
    let run = RunDirectory(url)
    try run.prepare(fresh: false)
    return run
}

/// The AdamW a Trainer builds for this recipe and model.
func recipeOptimizer(_ recipe: Recipe, _ model: Module) -> AdamW {
    let o = recipe.optimizer
    return AdamW(model.namedParameters(), lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay,
                 decay: defaultDecayNames(model))
}

/// The mean key-window length of a mask (keys attended per query).
func meanAttended(_ mask: AttentionMask) -> Double {
    Double(zip(mask.lo, mask.hi).map { Int($1 - $0) }.reduce(0, +)) / Double(max(mask.lo.count, 1))
}

/// Times a training step; prints and reports it with its memory figures.
func timeTrainingStep(_ name: String, config: String, steps: Int, flops: Double, model: Module, clip: Float,
                      optimizer: AdamW, loss: () -> Tensor) {
    var last: Float = 0
    let params = model.parameters()
    let (s, memory) = measuringMemory {
        time(warmup: 2, repeats: steps) {
            model.zeroGrad()
            let l = loss()
            l.backward()
            clipGradNorm(params, maxNorm: clip)
            optimizer.update()
            last = l.item
        }
    }
    print(String(format: "%@ %@  step %.1f ms  %.1f GFLOP/s  (%.2f GFLOP/step, peak tensors %.0f MiB, peak RSS %.0f MiB, loss %.3f)",
                 name, config, s * 1e3, flops / s / 1e9, flops / 1e9, memory["peak_alloc_mib"]!, memory["peak_rss_mib"]!, last))
    report(name, memory.merging(["ms": s * 1e3, "gflops": flops / s / 1e9, "flops": flops, "loss": Double(last)]) { $1 })
}

func ints(_ t: Tensor) -> [Int] { t.intScalars.map { Int($0) } }

// MARK: - Transfusion step

/// The sizes a PyTorch twin rebuilds a Transfusion model from.
func modelJSON(_ c: TransfusionConfig) -> [String: Any] {
    ["vocab": c.vocab, "dim": c.decoder.dim, "layers": c.decoder.layers, "heads": c.decoder.heads,
     "mlp_hidden": c.decoder.mlpHidden, "qk_norm": c.decoder.qkNorm, "latent_channels": c.latentChannels,
     "latent_size": c.latentSize, "patch_size": c.patchSize, "unet_channels": c.unetChannels,
     "timestep_scale": c.timestepScale]
}

func benchTransfusion(steps: Int) throws {
    let recipe = try Recipe.load("recipes/compare/transfusion-unet-tiny.yaml")
    let task = try TransfusionTask(recipe: recipe, run: try benchRun(recipe))
    let model = task.transfusion, c = model.config
    let x = try task.benchmarkBatch(rng: RNG(seed: 7))
    let input = x.input
    let (b, t) = (input.ids.shape[0], input.ids.shape[1])
    let textRows = x.targets.intScalars.filter { $0 >= 0 }.count
    let flops = model.trainingFlops(tokens: b * t, attended: meanAttended(input.mask), textRows: textRows,
                                    spans: input.spans.mapValues(\.count))
    dump(modelJSON(c).merging(["batch": b, "seq": t, "ids": ints(input.ids), "targets": ints(x.targets),
          "lo": input.mask.lo.map { Int($0) }, "hi": input.mask.hi.map { Int($0) }, "positions": ints(input.positions),
          "span_starts": input.spans[.image]!.starts, "timesteps": input.spans[.image]!.timesteps, "images": input.count(.image),
          "loss_weight": recipe.diffusion.lossWeight, "z_loss": recipe.model.zLoss, "lr": recipe.optimizer.lr,
          "beta2": recipe.optimizer.beta2, "weight_decay": recipe.optimizer.weightDecay,
          "grad_clip": recipe.optimizer.gradClip, "flops": flops]) { $1 })
    let opt = recipeOptimizer(recipe, model)
    timeTrainingStep("transfusion-step",
                     config: "unet-tiny d=\(c.decoder.dim) L=\(c.decoder.layers) B=\(b) T=\(t) images=\(input.count(.image)) text-rows=\(textRows)",
                     steps: steps, flops: flops, model: model, clip: recipe.optimizer.gradClip, optimizer: opt) {
        model.loss(input, targets: x.targets, spanTargets: x.spanTargets, zLoss: recipe.model.zLoss).total
    }
}

/// The Transfusion step of `benchTransfusion` as the Trainer runs it under `mpirun -np N`: each rank
/// computes its rows of one global micro-batch (the task draws the whole micro-batch's documents,
/// timesteps and noise and keeps its rows), gradients are summed by the bucketed allreduce while
/// backward runs, then clipping and AdamW. With one rank it is the single-process step, batch
/// assembly included, so 1 → N compares like with like.
func benchTransfusionDataParallel(steps: Int) throws {
    let comm = try Collective.fromEnvironment()
    let recipe = try Recipe.load("recipes/compare/transfusion-unet-tiny.yaml")
    // Rank 0 prepares the scratch run (its BPE tokenizer file) before the others read it.
    var task: TransfusionTask? = nil
    if comm.rank == 0 { task = try TransfusionTask(recipe: recipe, run: try benchRun(recipe)) }
    comm.barrier()
    if comm.rank != 0 { task = try TransfusionTask(recipe: recipe, run: try benchRun(recipe)) }
    let b = recipe.train.batchSize
    precondition(b % comm.size == 0, "transfusion-dp: batch \(b) is not divisible by \(comm.size) ranks")
    let rows = (comm.rank * b / comm.size)..<((comm.rank + 1) * b / comm.size)
    let model = task!.model, params = model.parameters()
    let opt = recipeOptimizer(recipe, model)
    let reducer = GradientReducer(params: params, communicator: comm)
    var lastLoss: Float = 0, flops = 0.0
    let step = {
        model.zeroGrad()
        let r = try! task!.loss(microBatch: 0, rows: rows, rng: RNG(seed: 7))
        // A rank's rows come back as shares of the micro-batch's means; all of them, as the plain loss.
        precondition(r.isShare || rows.count == b, "transfusion-dp: the task's rows should be shares of the micro-batch's means")
        reducer.beginRound()
        r.total.backward(onLeafReady: reducer.gradientReady)
        reducer.finish()                                   // shares: the sum is the global loss's gradient
        clipGradNorm(params, maxNorm: recipe.optimizer.gradClip)
        opt.update()
        var l = [Double(r.total.item), r.flops ?? 0]; comm.allreduceSum(&l)
        lastLoss = Float(l[0]); flops = l[1]
    }
    let (s, wait) = timeRanks(comm, reducer, steps: steps, step)
    if comm.rank == 0 {
        print(String(format: "transfusion-step-dp ranks=%d threads/rank=%d unet-tiny B=%d (%d/rank)  step %.1f ms  %.1f GFLOP/s  (allreduce wait %.1f ms/step in %d buckets, loss %.3f)",
                     comm.size, Parallel.threads, b, rows.count, s * 1e3, flops / s / 1e9, wait * 1e3, reducer.bucketCount, lastLoss))
    }
    comm.finalize()
}

// MARK: - Chameleon step

func benchChameleon(steps: Int) throws {
    let recipe = try Recipe.load("recipes/compare/chameleon-tiny.yaml")
    let task = try ChameleonTask(recipe: recipe, run: try benchRun(recipe))
    let model = task.chameleon, c = model.config
    let x = try task.benchmarkBatch(rng: RNG(seed: 7))
    let (b, t) = (x.ids.shape[0], x.ids.shape[1])
    let flops = model.lm.trainingFlops(tokens: b * t, attended: meanAttended(x.mask))
    dump(["vocab": c.vocab, "text_vocab": c.textVocab, "dim": c.decoder.dim, "layers": c.decoder.layers,
          "heads": c.decoder.heads, "mlp_hidden": c.decoder.mlpHidden, "qk_norm": c.decoder.qkNorm, "batch": b, "seq": t,
          "ids": ints(x.ids), "targets": ints(x.targets), "lo": x.mask.lo.map { Int($0) }, "hi": x.mask.hi.map { Int($0) },
          "positions": ints(x.positions), "z_loss": recipe.model.zLoss, "lr": recipe.optimizer.lr,
          "beta2": recipe.optimizer.beta2, "weight_decay": recipe.optimizer.weightDecay,
          "grad_clip": recipe.optimizer.gradClip, "flops": flops])
    let opt = recipeOptimizer(recipe, model)
    timeTrainingStep("chameleon-step", config: "tiny d=\(c.decoder.dim) L=\(c.decoder.layers) B=\(b) T=\(t) V=\(c.vocab)",
                     steps: steps, flops: flops, model: model, clip: recipe.optimizer.gradClip, optimizer: opt) {
        model.loss(x.ids, targets: x.targets, mask: x.mask, positions: x.positions, zLoss: recipe.model.zLoss).total
    }
}

// MARK: - Sampling

func benchSample(repeats: Int) throws {
    let recipe = try Recipe.load("recipes/compare/transfusion-unet-tiny.yaml", overrides: ["diffusion.sample_steps=50"])
    let task = try TransfusionTask(recipe: recipe, run: try benchRun(recipe))
    let model = task.transfusion
    let prompt = [SpecialTokens.bos] + task.tokenizer.encode("a large red circle")
    var options = task.imageOptions
    options.steps = 50
    let count = 4
    dump(["model": modelJSON(model.config), "vae": task.vae.config.jsonObject, "prompt_length": prompt.count,
          "count": count, "steps": options.steps, "cfg": options.cfgScale])
    var pixels: Tensor? = nil
    let (s, memory) = measuringMemory {
        time(warmup: 1, repeats: repeats) {
            let z = model.sampleImages(prompt: prompt, count: count, options: options, rng: RNG(seed: 3))
            pixels = withoutGrad { task.vae.decode(z) }
        }
    }
    precondition(pixels?.shape == [count, 3, recipe.data.imageSize, recipe.data.imageSize])
    print(String(format: "sample-t2i unet-tiny %d images 32×32, %d euler steps, cfg %.0f  %.1f ms  (%.1f ms/step, peak RSS %.0f MiB)",
                 count, options.steps, options.cfgScale, s * 1e3, s * 1e3 / Double(options.steps), memory["peak_rss_mib"]!))
    report("sample-t2i", memory.merging(["ms": s * 1e3, "images": Double(count), "steps": Double(options.steps)]) { $1 })
}

// MARK: - VAE

func benchVAE(repeats: Int) throws {
    let vae = try ImageVAE.load(from: "checkpoints/vae-shapes.safetensors")
    let world = ShapesWorld(seed: 0)
    let n = 64, size = world.imageSize
    let images = imageBatch((0..<n).map { Image(width: size, height: size, channels: 3, pixels: world.example($0).pixels) })
    dump(["config": vae.config.jsonObject, "batch": n])
    var latents: Tensor? = nil
    let ((enc, dec), memory) = measuringMemory {
        (time(warmup: 1, repeats: repeats) { latents = withoutGrad { vae.encode(images) } },
         time(warmup: 1, repeats: repeats) { _ = withoutGrad { vae.decode(latents!) } })
    }
    let fe = Double(n) * vae.encoder.forwardFlops(height: size, width: size)
    let fd = Double(n) * vae.decoder.forwardFlops(height: size, width: size)
    print(String(format: "vae-encode %d×32×32  %.1f ms  %.0f images/s  %.1f GFLOP/s", n, enc * 1e3, Double(n) / enc, fe / enc / 1e9))
    print(String(format: "vae-decode %d×32×32  %.1f ms  %.0f images/s  %.1f GFLOP/s", n, dec * 1e3, Double(n) / dec, fd / dec / 1e9))
    report("vae-encode", memory.merging(["ms": enc * 1e3, "images_per_s": Double(n) / enc, "gflops": fe / enc / 1e9, "flops": fe]) { $1 })
    report("vae-decode", memory.merging(["ms": dec * 1e3, "images_per_s": Double(n) / dec, "gflops": fd / dec / 1e9, "flops": fd]) { $1 })
}

extension ImageVAE.Config {
    var jsonObject: Any { try! JSONSerialization.jsonObject(with: try! JSONEncoder().encode(self)) }
}
