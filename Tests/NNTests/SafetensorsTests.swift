// Safetensors: round trips in every dtype, interop with Python's `safetensors` both ways, and
// clear errors (naming the file) for truncated and corrupt files.
import Foundation
import Models
import NN
import Tensors
import Testing

func scratchDir() -> URL {
    let d = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-tests-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
    return d
}

/// Runs python3 with `script`; nil when python3 or the `safetensors` package is unavailable.
func python(_ script: String) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return nil }
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { return nil }
    return String(data: out.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8)
}

@Suite struct SafetensorsTests {
    @Test func roundTripsEveryDType() throws {
        let dir = scratchDir()
        let x = Tensor([1.5, -2.25, 3.0e-3, 65504, 0], shape: [5])
        let ids = Tensor(ints: [1, -7, 1 << 30], shape: [3])
        for dt in [SafetensorsDType.f32, .f16, .bf16] {
            let url = dir.appendingPathComponent("t-\(dt.rawValue).safetensors")
            try Safetensors.write(["x": x, "ids": ids], metadata: ["k": "v"], dtype: dt, to: url)
            let (back, meta) = try Safetensors.read(url)
            #expect(meta == ["k": "v"])
            #expect(back["ids"]!.intScalars == ids.intScalars)
            let tol: Float = dt == .f32 ? 0 : dt == .f16 ? 2e-3 : 1e-2
            for (a, b) in zip(back["x"]!.scalars, x.scalars) { #expect(abs(a - b) <= tol * max(abs(b), 1)) }
        }
    }

    @Test func fusionFileLoadsInPythonAndBack() throws {
        let dir = scratchDir()
        let model = DecoderLM(vocab: 7, config: DecoderConfig(dim: 4, layers: 1, heads: 1), rng: RNG(seed: 1))
        let ours = dir.appendingPathComponent("ours.safetensors")
        try Safetensors.write(model.stateDict(), to: ours)
        let theirs = dir.appendingPathComponent("theirs.safetensors")
        let script = """
            from safetensors.numpy import load_file, save_file
            import numpy as np
            t = load_file("\(ours.path)")
            for k in sorted(t): print(k, list(t[k].shape))
            save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "i": np.array([5, 6], dtype=np.int64),
                       "h": np.array([0.5, -1], dtype=np.float16)}, "\(theirs.path)")
            """
        guard let listing = python(script) else {
            print("python3 with safetensors not available: interop check skipped"); return
        }
        let lines = listing.split(separator: "\n").map(String.init)
        #expect(lines.contains("decoder.blocks.0.attn.qkv.weight [12, 4]"))
        #expect(lines.count == model.namedParameters().count)
        let (back, _) = try Safetensors.read(theirs)
        #expect(back["w"]!.shape == [2, 3] && back["w"]!.scalars == [0, 1, 2, 3, 4, 5])
        #expect(back["i"]!.intScalars == [5, 6] && back["h"]!.scalars == [0.5, -1])
    }

    @Test func corruptFilesGiveClearErrors() throws {
        let dir = scratchDir()
        let url = dir.appendingPathComponent("good.safetensors")
        try Safetensors.write(["a": Tensor([1, 2, 3, 4])], to: url)
        let good = try Data(contentsOf: url)
        let cases: [(String, Data, String)] = [
            ("empty", Data(), "shorter than the 8-byte header"),
            ("truncated", good.prefix(good.count - 3), "outside the"),
            ("header too long", Data([0xFF, 0xFF, 0, 0, 0, 0, 0, 0]) + good.dropFirst(8), "exceeds the file"),
            ("garbage header", good.prefix(8) + Data(repeating: 0x41, count: good.count - 8), "not a JSON object"),
        ]
        for (name, data, expected) in cases {
            let f = dir.appendingPathComponent("\(name).safetensors")
            try data.write(to: f)
            do {
                _ = try Safetensors.read(f)
                Issue.record("\(name): no error")
            } catch {
                let msg = "\(error)"
                #expect(msg.contains(f.path) && msg.contains(expected), "\(name): \(msg)")
            }
        }
        // Shapes that disagree with the byte count.
        let bad = #"{"a":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}}"#.data(using: .utf8)!
        var file = Data(); withUnsafeBytes(of: UInt64(bad.count).littleEndian) { file.append(contentsOf: $0) }
        file += bad + Data(count: 16)
        #expect(throws: SafetensorsError.self) { try Safetensors.decode(file, name: "x") }
    }

    @Test func shapeWhoseByteCountOverflowsIsAnError() throws {
        // 2³⁰ × 2³⁰ elements fit in an Int, their 8-byte size does not: an error, not an overflow trap.
        let header = #"{"a":{"dtype":"I64","shape":[1073741824,1073741824],"data_offsets":[0,8]}}"#.data(using: .utf8)!
        var file = Data(); withUnsafeBytes(of: UInt64(header.count).littleEndian) { file.append(contentsOf: $0) }
        file += header + Data(count: 8)
        let error = #expect(throws: SafetensorsError.self) { try Safetensors.decode(file, name: "big.safetensors") }
        #expect("\(error!)".contains("needs more than \(Int.max) bytes, has 8"), "\(String(describing: error))")
    }

    @Test func loadingRejectsMismatches() throws {
        let a = Linear(3, 2, rng: RNG(seed: 1))
        #expect(throws: Module.LoadError.self) { try a.load(["weight": Tensor.zeros([2, 3])]) }
        #expect(throws: Module.LoadError.self) { try a.load(["weight": Tensor.zeros([3, 2]), "bias": Tensor.zeros([2])]) }
        #expect(throws: Module.LoadError.self) {
            try a.load(["weight": Tensor.zeros([2, 3]), "bias": Tensor.zeros([2]), "extra": Tensor.zeros([1])])
        }
        try a.load(["weight": Tensor.ones([2, 3]), "bias": Tensor.zeros([2])])
        #expect(a.weight.scalars == [1, 1, 1, 1, 1, 1])
    }
}
