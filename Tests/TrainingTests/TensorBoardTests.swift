// TensorBoard event files: the TFRecord framing (CRC-32C known answer, every record's checksums),
// what a trained run's file holds (scalars per metrics row, the sample grid, the recipe), that a
// resume rebuilds it from metrics.jsonl (each step once), and — where the `tensorboard` Python
// package is installed — that TensorBoard's own reader loads it.
import Foundation
import Testing
import TestSupport
@testable import Models
@testable import Training

/// The events of a file, read back by this test's own decoder of the framing and the fields used.
struct ReadEvent {
    var step: Int64 = 0
    var fileVersion: String?
    /// (tag, kind) of each summary value: kind is "scalar", "image" or "text".
    var values: [(tag: String, kind: String, scalar: Float?, text: String?)] = []
}

enum EventFileReader {
    /// Splits `data` into records, checking both masked CRCs of each (a mismatch fails the test).
    static func records(_ data: Data) throws -> [Data] {
        var out: [Data] = [], at = data.startIndex
        while at < data.endIndex {
            let lengthBytes = data[at..<at + 8]
            let length = Int(lengthBytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            let lengthCRC = data[at + 8..<at + 12].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            try #require(lengthCRC == TensorBoardLog.maskedCRC(Data(lengthBytes)), "length CRC at \(at)")
            let payload = Data(data[at + 12..<at + 12 + length])
            let crc = data[at + 12 + length..<at + 16 + length].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
            try #require(crc == TensorBoardLog.maskedCRC(payload), "payload CRC at \(at)")
            out.append(payload)
            at += 16 + length
        }
        return out
    }

    /// Fields of a protobuf message: (field number, wire type, varint / fixed bits, bytes).
    static func fields(_ d: Data) -> [(Int, Int, UInt64, Data)] {
        var out: [(Int, Int, UInt64, Data)] = [], i = d.startIndex
        func varint() -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true { let b = d[i]; i += 1; v |= UInt64(b & 0x7F) << shift; if b < 0x80 { return v }; shift += 7 }
        }
        while i < d.endIndex {
            let key = varint(), field = Int(key >> 3), wire = Int(key & 7)
            switch wire {
            case 0: out.append((field, wire, varint(), Data()))
            case 1: out.append((field, wire, d[i..<i + 8].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }, Data())); i += 8
            case 5: out.append((field, wire, UInt64(d[i..<i + 4].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }), Data())); i += 4
            default: let n = Int(varint()); out.append((field, wire, 0, Data(d[i..<i + n]))); i += n
            }
        }
        return out
    }

    static func events(_ url: URL) throws -> [ReadEvent] {
        try records(Data(contentsOf: url)).map { payload in
            var e = ReadEvent()
            for (field, _, bits, bytes) in fields(payload) {
                switch field {
                case 2: e.step = Int64(bitPattern: bits)
                case 3: e.fileVersion = String(decoding: bytes, as: UTF8.self)
                case 5:
                    for (_, _, _, value) in fields(bytes) {
                        var tag = "", kind = "", scalar: Float?, text: String?
                        for (f, _, b, inner) in fields(value) {
                            switch f {
                            case 1: tag = String(decoding: inner, as: UTF8.self)
                            case 2: kind = "scalar"; scalar = Float(bitPattern: UInt32(b))
                            case 4: kind = "image"
                            case 8: kind = "text"; text = fields(inner).first { $0.0 == 8 }.map { String(decoding: $0.3, as: UTF8.self) }
                            default: break
                            }
                        }
                        e.values.append((tag, kind, scalar, text))
                    }
                default: break
                }
            }
            return e
        }
    }
}

@Suite(.serialized) struct TensorBoardTests {
    @Test func crc32cAndFramingMatchTheFormat() throws {
        #expect(TensorBoardLog.crc32c(Data("123456789".utf8)) == 0xE306_9283)   // the CRC-32C check value
        #expect(TensorBoardLog.crc32c(Data()) == 0)
        let record = TensorBoardLog.record(Event(wallTime: 1.5, step: 7, values: [.scalar(tag: "train/loss", 2.5)]))
        let events = try EventFileReader.records(record)
        #expect(events.count == 1)
        let fields = EventFileReader.fields(events[0])
        #expect(fields[0].0 == 1 && Double(bitPattern: fields[0].2) == 1.5)
        #expect(fields[1].0 == 2 && fields[1].2 == 7)
    }

    static let recipe = """
        name: tb
        seed: 3
        model: {kind: transfusion, preset: nano, image_tokenizer: checkpoints/vae-shapes.safetensors, patch_size: 2}
        diffusion: {target: flow, sampler: euler, sample_steps: 2}
        data: {tokenizer_vocab: 300, seq_len: 64, pool: 64}
        optimizer: {lr: 1.0e-3, warmup_steps: 2}
        train: {steps: 4, batch_size: 2, log_every: 1, checkpoint_every: 2, threads: 1}
        eval: {every: 2, documents: 8, shapes_eval: 0}
        sample: {every: 2, prompts: [a red circle, two blue squares]}
        """

    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func aRunWritesScalarsSamplesAndItsRecipeAndAResumeRebuildsThem() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-tb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipe = dir.appendingPathComponent("tb.yaml")
        try Self.recipe.write(to: recipe, atomically: true, encoding: .utf8)
        let vae = FusionBinary.packageRoot.appendingPathComponent("checkpoints/vae-shapes.safetensors").path
        let train = ["train", recipe.path, "model.image_tokenizer=\(vae)", "--runs", "runs"]
        let first = try FusionBinary.run(train, in: dir)
        try #require(first.status == 0, "\(first.stderr)")
        let board = dir.appendingPathComponent("runs/tb/tensorboard")

        // A resume under more steps: still one event file, every step once.
        let more = try FusionBinary.run(train.map { $0 } + ["train.steps=6", "--resume-anyway"], in: dir)
        try #require(more.status == 0, "\(more.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: board.path).filter { $0.hasPrefix("events.out.tfevents.") }
        try #require(files.count == 1, "\(files)")
        let events = try EventFileReader.events(board.appendingPathComponent(files[0]))
        #expect(events.first?.fileVersion == "brain.Event:2")
        let lossSteps = events.filter { $0.values.contains { $0.tag == "train/loss" } }.map(\.step)
        #expect(lossSteps == [1, 2, 3, 4, 5, 6])
        let metrics = try MetricsLog.read(dir.appendingPathComponent("runs/tb/metrics.jsonl"))
        let loss = metrics.filter { $0["kind"] == nil }.compactMap { ($0["loss"] as? NSNumber)?.floatValue }
        let logged = events.compactMap { e in e.values.first { $0.tag == "train/loss" }?.scalar }
        #expect(logged == loss, "the scalars are metrics.jsonl's values")
        #expect(events.filter { $0.values.contains { $0.tag == "eval/loss" } }.map(\.step) == [2, 4, 6])
        #expect(events.filter { $0.values.contains { $0.tag == "samples" && $0.kind == "image" } }.map(\.step) == [2, 4, 6])
        let recipes = events.flatMap(\.values).filter { $0.tag == "recipe" }
        #expect(recipes.count == 1 && recipes[0].text?.contains("steps: 6") == true, "the recipe the run continued under")

        // TensorBoard's own reader, where installed.
        let script = """
            import json, sys
            try:
                from tensorboard.backend.event_processing import event_accumulator as ea
            except ImportError:
                print("SKIP"); sys.exit(0)
            acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.TENSORS: 0})
            acc.Reload()
            tags = acc.Tags()
            print(json.dumps({
                "loss": [[e.step, e.value] for e in acc.Scalars("train/loss")],
                "eval": [e.step for e in acc.Scalars("eval/loss")],
                "images": [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in acc.Images("samples")],
                "tensors": sorted(tags["tensors"]),
            }))
            """
        guard let (status, data, errText) = Python.run(script, [board.path]) else { print("python3 not available: TensorBoard read-back skipped"); return }
        let text = String(decoding: data, as: UTF8.self)
        try #require(status == 0, "tensorboard failed to read the events:\n\(errText)")
        if text.hasPrefix("SKIP") {
            print("the tensorboard Python package is not installed: TensorBoard read-back skipped"); return
        }
        let read = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
        let scalars = (read["loss"] as? [[Double]]) ?? []
        #expect(scalars.map { Int($0[0]) } == [1, 2, 3, 4, 5, 6])
        for (s, l) in zip(scalars, loss) { #expect(Float(s[1]) == l) }
        #expect(read["eval"] as? [Int] == [2, 4, 6])
        let images = (read["images"] as? [[Int]]) ?? []
        #expect(images.map { $0[0] } == [2, 4, 6] && images.allSatisfy { $0[1] > 0 && $0[2] > 0 && $0[3] > 100 }, "\(images)")
        #expect((read["tensors"] as? [String])?.contains("recipe") == true, "\(text)")
    }
}
