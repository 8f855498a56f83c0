// fusion-bench: the numbers `make bench` prints (through bench/run.py, which sets each beside its
// PyTorch twin). One benchmark per invocation, so each process's peak RSS is that benchmark's:
//   gemm          sgemm GFLOP/s at 256/512/1024: Fusion's split GEMM and OpenBLAS's own 2 threads
//   decoder       the reference decoder training step of DESIGN.md ("Performance")
//   transfusion   a Transfusion training step on ShapesWorld (recipes/compare/transfusion-unet-tiny.yaml)
//   chameleon     a Chameleon training step at the same size (recipes/compare/chameleon-tiny.yaml)
//   sample        4 text-to-image samples, 32×32, 50 Euler steps with CFG 3, decoded by the VAE
//   vae           VAE encode and decode of 64 ShapesWorld-sized images
//   decoder-dp    the reference step data-parallel, under `mpirun -np N` (see `make bench-mpi`)
//   transfusion-dp  the transfusion step data-parallel, likewise
// Flags: --steps=N timed repeats (median quoted), --dump=FILE writes the batch a twin replays,
// --precision=bf16 runs every matrix product in bf16 (MatmulPrecision; AVX512-BF16 CPUs).
// Every benchmark also prints one `BENCH {json}` line for the driver. FUSION_BENCH_LOCKSTEP=1 (set
// by bench/run.py) hands the timing of the repeats to the driver: see `time`.
import Foundation
import Tensors

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

/// Whether the driver says when each timed repeat runs (FUSION_BENCH_LOCKSTEP=1).
let lockstep = ProcessInfo.processInfo.environment["FUSION_BENCH_LOCKSTEP"] == "1"

/// Times `body` `repeats` times after `warmup` runs; returns the median seconds.
///
/// In lockstep, after the warm-up this prints `READY` and then runs one repeat for each `step` line
/// on stdin, answering `STEP <ms>`, until `done` (`repeats` is then the driver's to choose). bench/run.py
/// alternates the steps of Fusion and of its PyTorch twin, so each pair of steps runs under the
/// same load: on a shared machine whose speed drifts over seconds, separate runs do not.
func time(warmup: Int = 2, repeats: Int = 7, _ body: () -> Void) -> Double {
    for _ in 0..<warmup { body() }
    guard lockstep else { return median((0..<repeats).map { _ in let t = now(); body(); return now() - t }) }
    var times: [Double] = []
    print("READY"); fflush(stdout)
    while readLine() == "step" {
        let t = now(); body(); times.append(now() - t)
        print(String(format: "STEP %.3f", times.last! * 1e3)); fflush(stdout)
    }
    return times.isEmpty ? .nan : median(times)
}

/// Resident set size now (from /proc/self/statm) and the process's peak so far (getrusage), in MiB.
func residentMiB() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
          let pages = s.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}
func peakResidentMiB() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_maxrss) / 1024   // kilobytes on Linux
}

/// Runs `body` (a timed region) and returns its result with the region's memory figures: peak live
/// tensor bytes, the process's peak RSS, and that peak above the RSS before the region.
func measuringMemory<T>(_ body: () throws -> T) rethrows -> (T, memory: [String: Double]) {
    Allocator.shared.resetPeak()
    let before = residentMiB()
    let result = try body()
    let peak = peakResidentMiB()
    return (result, ["peak_alloc_mib": Double(Allocator.shared.peakLiveBytes) / 1_048_576, "peak_rss_mib": peak,
                     "step_rss_mib": max(0, peak - before)])
}

/// The machine-readable line bench/run.py reads.
func report(_ name: String, _ fields: [String: Any]) {
    var f = fields
    f["name"] = name
    f["threads"] = Parallel.threads
    f["precision"] = MatmulPrecision.current.rawValue
    f["blas"] = BLAS.cores.running
    let data = try! JSONSerialization.data(withJSONObject: f, options: [.sortedKeys])
    print("BENCH " + String(decoding: data, as: UTF8.self))
}

/// Writes `object` as JSON for a PyTorch twin (`--dump=FILE`).
func dump(_ object: [String: Any]) {
    guard let path = dumpPath else { return }
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    FileManager.default.createFile(atPath: path, contents: data)
}

let args = CommandLine.arguments.dropFirst()
let only = args.first { !$0.hasPrefix("-") }
let stepsArg = args.first { $0.hasPrefix("--steps=") }.flatMap { Int($0.dropFirst(8)) }
let dumpPath = args.first { $0.hasPrefix("--dump=") }.map { String($0.dropFirst(7)) }
let precisionArg = args.first { $0.hasPrefix("--precision=") }.map { String($0.dropFirst(12)) } ?? "fp32"
guard let precision = MatmulPrecision(rawValue: precisionArg), precision.isAvailable else {
    FileHandle.standardError.write(Data("fusion-bench: --precision=\(precisionArg): use fp32 or bf16 (bf16 needs AVX512-BF16)\n".utf8))
    exit(2)
}
print("threads=\(Parallel.threads) precision=\(precision.rawValue) \(BLAS.summary)")

do {
    try MatmulPrecision.with(precision) {
        switch only {
        case nil:
            benchGemm(); benchDecoder(steps: stepsArg ?? 10)
        case "gemm": benchGemm()
        case "gemm-shapes": benchGemmShapes()
        case "decoder": benchDecoder(steps: stepsArg ?? 10)
        case "decoder-dp": try benchDecoderDataParallel(steps: stepsArg ?? 10)
        case "transfusion": try benchTransfusion(steps: stepsArg ?? 10)
        case "transfusion-dp": try benchTransfusionDataParallel(steps: stepsArg ?? 10)
        case "chameleon": try benchChameleon(steps: stepsArg ?? 10)
        case "sample": try benchSample(repeats: stepsArg ?? 3)
        case "vae": try benchVAE(repeats: stepsArg ?? 5)
        case let other?:
            FileHandle.standardError.write(Data("fusion-bench: unknown benchmark '\(other)' (gemm, decoder, decoder-dp, transfusion, transfusion-dp, chameleon, sample, vae)\n".utf8))
            exit(2)
        }
    }
} catch {
    // A recipe or checkpoint the benchmark reads (paths are relative to the repository root).
    FileHandle.standardError.write(Data("fusion-bench: error: \(error)\n".utf8))
    exit(1)
}
