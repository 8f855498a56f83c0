// The training pool's encodings (VAE latents, VQ codes) kept in the run folder beside the
// checkpoints, so a resumed run reads what it encoded instead of encoding it again: what "documents
// encoded once by the frozen tokenizer and cached in the run" means. One safetensors file per cache,
// written atomically at each checkpoint, read back at start when it was written for the same data.
// Not the in-memory caches themselves (each task's) nor how images are encoded.
import Foundation
import NN
import Tensors

/// Values that a cache file holds: Float latents or Int32 codes.
package protocol EncodedValue { static func tensor(_ values: [Self], shape: [Int]) -> Tensor; static func values(_ t: Tensor) -> [Self] }
extension Float: EncodedValue {
    package static func tensor(_ values: [Float], shape: [Int]) -> Tensor { Tensor(values, shape: shape) }
    package static func values(_ t: Tensor) -> [Float] { t.scalars }
}
extension Int32: EncodedValue {
    package static func tensor(_ values: [Int32], shape: [Int]) -> Tensor { Tensor(ints: values, shape: shape) }
    package static func values(_ t: Tensor) -> [Int32] { t.intScalars }
}

package enum EncodingCache {
    /// What the encodings depend on besides the run's own tokenizer copy: the data section and seed.
    package static func key(_ recipe: Recipe) -> String {
        let d = recipe.data
        return "\(d.source)|\(d.path ?? "")|\(d.imageSize)|\(d.heldOut)|\(d.pool)|\(recipe.seed)"
    }

    package static func url(_ name: String, run: RunDirectory) -> URL { run.url.appendingPathComponent("encoded-\(name).safetensors") }

    /// Whether a run folder's file `name` is one of these caches (training state, not part of a model).
    package static func isCacheFile(_ name: String) -> Bool { name.hasPrefix("encoded-") && name.hasSuffix(".safetensors") }

    /// Writes `cache` (index → `width` values) to the run, unless it holds no more entries than `written`.
    /// Returns the entries written.
    @discardableResult
    package static func save<T: EncodedValue>(_ cache: [Int: [T]], name: String, width: Int, recipe: Recipe, run: RunDirectory,
                                      written: Int) throws -> Int {
        guard cache.count > written else { return written }
        let keys = cache.keys.sorted()
        try Safetensors.write(["index": Tensor(ints: keys.map(Int32.init), shape: [keys.count]),
                               "values": T.tensor(keys.flatMap { cache[$0]! }, shape: [keys.count, width])],
                              metadata: ["key": key(recipe), "width": String(width)], to: url(name, run: run))
        return keys.count
    }

    /// The cache the run wrote for the same data and width, or empty (none, another data section, or
    /// an unreadable file: the encodings are made again).
    package static func load<T: EncodedValue>(_ name: String, width: Int, recipe: Recipe, run: RunDirectory) -> [Int: [T]] {
        guard let (tensors, metadata) = try? Safetensors.read(url(name, run: run)),
              metadata["key"] == key(recipe), metadata["width"] == String(width),
              let index = tensors["index"], let values = tensors["values"], values.count == index.count * width else { return [:] }
        let v = T.values(values)
        var cache: [Int: [T]] = [:]
        for (k, i) in index.intScalars.enumerated() { cache[Int(i)] = Array(v[(k * width)..<((k + 1) * width)]) }
        return cache
    }
}
