// libFuzzer harness for the text-corpus reader (TextCorpus), through a per-process file in /dev/shm
// because the reader takes a path. The first byte picks the format (odd: JSONL) and the chunk size
// (1–64 bytes, so chunk boundaries fall everywhere); every chunk is read, each reading or throwing,
// never trapping; a plain-text file that is UTF-8 reads back whole, chunk by chunk.
import Data
import Foundation

private let base: String = {
    let dir = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return "\(dir)/fusion-fuzz-corpus-\(getpid())"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard size >= 1, let data else { return 0 }
    let head = data[0], bytes = Foundation.Data(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let path = base + (head & 1 == 1 ? ".jsonl" : ".txt")
    guard FileManager.default.createFile(atPath: path, contents: bytes) else { fatalError("cannot write \(path)") }
    defer { unlink(path) }
    guard let corpus = try? TextCorpus(paths: [path], chunkBytes: 1 + Int(head >> 1) % 64, heldOut: 0) else { return 0 }
    var text: [String] = [], failed = false
    for k in 0..<corpus.trainingChunks {
        if let docs = try? corpus.documents(corpus.trainingChunk(k)) { text += docs } else { failed = true }
    }
    if head & 1 == 0, !failed, let whole = String(data: bytes, encoding: .utf8) {
        precondition(text.joined() == whole, "plain-text chunks do not reassemble the file")
    }
    return 0
}
