// NPY: NumPy's array file format (version 1.0), written for values that have no picture or sound of
// their own — the spans of a registered modality that `fusion generate` samples. `numpy.load` reads
// them. Float32 and Int32, little-endian, C order. Not a reader.
import Foundation

public enum NPY {
    /// The bytes of an .npy file holding `values` (row-major) in `shape`; `descr` is NumPy's dtype
    /// string ("<f4", "<i4").
    static func bytes(descr: String, shape: [Int], payload: [UInt8]) -> [UInt8] {
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
        // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, ending in \n.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = UInt16(header.utf8.count)
        return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(header.utf8) + payload
    }

    /// Writes float32 `values` in `shape` to `path` (atomically).
    public static func write(_ values: [Float], shape: [Int], to path: String) throws {
        try write(values, descr: "<f4", shape: shape, to: path)
    }

    /// Writes int32 `values` (codes) in `shape` to `path` (atomically).
    public static func write(_ values: [Int32], shape: [Int], to path: String) throws {
        try write(values, descr: "<i4", shape: shape, to: path)
    }

    private static func write<T>(_ values: [T], descr: String, shape: [Int], to path: String) throws {
        precondition(shape.reduce(1, *) == values.count, "NPY.write: \(values.count) values for shape \(shape)")
        let payload = values.withUnsafeBytes { Array($0) }   // every supported host is little-endian
        try AtomicFile.write(bytes(descr: descr, shape: shape, payload: payload), to: path)
    }
}
