// NPY: the header NumPy's format 1.0 asks for (magic, version, a padded dict), the values after it,
// and — where NumPy is installed — numpy.load reading the same shape, dtype and values.
import Foundation
import Testing
@testable import Media

@Suite struct NPYTests {
    /// The header dict and the payload of an .npy file's bytes.
    func parse(_ bytes: [UInt8]) -> (header: String, payload: [UInt8])? {
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8), bytes[6] == 1, bytes[7] == 0
        else { return nil }
        let length = Int(bytes[8]) | Int(bytes[9]) << 8
        return (String(decoding: bytes[10..<10 + length], as: UTF8.self), Array(bytes[(10 + length)...]))
    }

    @Test func headerIsPaddedAndTheValuesFollowIt() throws {
        let dir = temporaryDirectory()
        let values: [Float] = [0.5, -1, 2, 3.25, 0, 7]
        try NPY.write(values, shape: [1, 3, 2], to: dir + "/a.npy")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/a.npy")))
        let (header, payload) = try #require(parse(bytes))
        #expect((10 + header.utf8.count) % 64 == 0 && header.hasSuffix("\n"))
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 2), }"))
        #expect(payload.count == 24 && payload.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } == values)

        try NPY.write([Int32(4), 9, 511], shape: [3], to: dir + "/codes.npy")
        let codes = try #require(parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/codes.npy")))))
        #expect(codes.header.hasPrefix("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }"))
        #expect(codes.payload.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) } == [4, 9, 511])
    }

    static let numpyAvailable = Tools.which("python3").map { python in
        (try? Tools.run(python, ["-c", "import numpy"]))?.0 == 0
    } ?? false

    @Test(.enabled(if: numpyAvailable, "needs python3 with numpy"))
    func numpyLoadsWhatIsWritten() throws {
        let path = temporaryDirectory() + "/w.npy"
        try NPY.write([1.5, -2, 0.25, 8], shape: [2, 2], to: path)
        let script = "import numpy, sys; a = numpy.load(sys.argv[1]); print(a.dtype, a.shape, a.ravel().tolist())"
        let (status, output) = try Tools.run(Tools.which("python3")!, ["-c", script, path])
        #expect(status == 0 && output.trimmingCharacters(in: .whitespacesAndNewlines) == "float32 (2, 2) [1.5, -2.0, 0.25, 8.0]", "\(output)")
    }
}
