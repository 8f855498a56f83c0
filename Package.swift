// swift-tools-version:6.0
// Fusion: unified any-to-any transformers (Transfusion-style) trained on a CPU.
import PackageDescription

/// Numeric targets are built for the machine they run on when FUSION_NATIVE is unset or 1
/// (AVX2/FMA on the x86-64 machines Fusion targets); FUSION_NATIVE=0 builds portable code.
let native = Context.environment["FUSION_NATIVE"] != "0"
/// Plain -O (not -Ounchecked): preconditions stay live, so shape and index errors are reported
/// instead of becoming undefined behaviour. Hot loops use unsafe pointers, so this costs little.
let fast: [SwiftSetting] =
    native ? [.unsafeFlags(["-Xcc", "-march=native", "-target-cpu", "native"])] : []

let package = Package(
    name: "Fusion",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fusion", targets: ["fusion"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "NN", targets: ["NN"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),
        .systemLibrary(
            name: "CPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        .systemLibrary(
            name: "CSndFile", pkgConfig: "sndfile",
            providers: [.apt(["libsndfile1-dev"]), .brew(["libsndfile"])]),
        // Plots: anti-aliased lines and measured font text (Evaluation's LinePlot).
        .systemLibrary(
            name: "CCairo", pkgConfig: "cairo",
            providers: [.apt(["libcairo2-dev"]), .brew(["cairo"])]),
        // The bf16 GEMM (AVX512-BF16 intrinsics, chosen per function at run time), always optimised, and
        // OpenBLAS's kernel choice on CPUs it does not recognise (looked up with dlsym).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])], linkerSettings: [.linkedLibrary("dl")]),
        .target(name: "Tensors", dependencies: ["CBLAS", "CKernels"], swiftSettings: fast),
        .target(name: "NN", dependencies: ["Tensors"], swiftSettings: fast),
        // Data-parallel collectives; Open MPI or MPICH is loaded at run time (dlopen), so no build dependency.
        .target(name: "Collective", dependencies: ["Tensors"], swiftSettings: fast),
        .target(name: "Media", dependencies: ["Tensors", "CPNG", "CSndFile"], swiftSettings: fast),
        .target(name: "Text", swiftSettings: fast),
        .target(name: "Data", dependencies: ["Tensors", "Media", "Text"], swiftSettings: fast),
        .target(name: "Diffusion", dependencies: ["Tensors"], swiftSettings: fast),
        .target(name: "Modalities", dependencies: ["Tensors", "NN", "Data"], swiftSettings: fast),
        .target(
            name: "Models",
            dependencies: ["Tensors", "NN", "Collective", "Media", "Text", "Data", "Diffusion", "Modalities", "Evaluation", "Training"],
            swiftSettings: fast),
        .target(name: "Evaluation", dependencies: ["Tensors", "NN", "Media", "Data", "CCairo"], swiftSettings: fast),
        .target(name: "Notebooks"),
        .target(
            name: "Training",
            dependencies: ["Tensors", "NN", "Collective", "Data", "Text", "Media", "Diffusion", "Evaluation", .product(name: "Yams", package: "Yams")],
            swiftSettings: fast),
        .executableTarget(
            name: "fusion",
            dependencies: [
                "Tensors", "NN", "Collective", "Media", "Text", "Data", "Models", "Training", "Evaluation", "Notebooks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: fast),
        .executableTarget(
            name: "fusion-bench",
            dependencies: ["CBLAS", "Tensors", "NN", "Collective", "Media", "Text", "Data", "Diffusion", "Modalities", "Models", "Training"],
            path: "bench/Sources",
            swiftSettings: fast),
        .target(name: "TestSupport", dependencies: ["Tensors"], path: "Tests/Support"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "DiffusionTests", dependencies: ["Diffusion", "TestSupport"]),
        .testTarget(name: "MediaTests", dependencies: ["Media", "Data"]),
        .testTarget(name: "TextTests", dependencies: ["Text", "Data"]),
        .testTarget(name: "DataTests", dependencies: ["Data"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Models", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Models", "Modalities", "Collective", "Diffusion", "TestSupport"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Modalities", "Training", "Diffusion", "Data", "TestSupport"]),
        .testTarget(name: "NotebooksTests", dependencies: ["Notebooks"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Data", "Media", "Tensors"]),
    ],
    swiftLanguageModes: [.v5]
)

/// libFuzzer harnesses (fuzz/Sources), added only when FUSION_FUZZ=1 so that ordinary builds and tests
/// never see them; `make fuzz` builds each as a dynamic library with -sanitize=fuzzer,address and
/// links it into an executable whose main comes from libFuzzer.
if Context.environment["FUSION_FUZZ"] == "1" {
    let harnesses: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzSafetensors", ["NN"]), ("FuzzPNG", ["Media"]), ("FuzzWAV", ["Media"]),
        ("FuzzMetadata", ["Data"]), ("FuzzTokenizer", ["Text"]), ("FuzzRecipe", ["Training"]), ("FuzzCorpus", ["Data"]),
    ]
    for h in harnesses {
        package.products.append(.library(name: h.name, type: .dynamic, targets: [h.name]))
        package.targets.append(.target(name: h.name, dependencies: h.dependencies, path: "fuzz/Sources/\(h.name)"))
    }
}
