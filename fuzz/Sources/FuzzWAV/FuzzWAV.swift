// libFuzzer harness for AudioFile.read (libsndfile + the truncation check), through a per-process file
// in /dev/shm because the reader takes a path. Read or throw, never trap.
import Foundation
import Media

private let path: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return "\(dir)/fusion-fuzz-\(getpid()).wav"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Foundation.Data(UnsafeBufferPointer(start: data, count: size))
    guard FileManager.default.createFile(atPath: path, contents: bytes) else { fatalError("cannot write \(path)") }
    defer { unlink(path) }
    if let audio = try? AudioFile.read(path) {
        precondition(audio.sampleRate > 0)
        _ = try? AudioFile.read(path, sampleRate: 16_000)  // the resampling path too
    }
    return 0
}
