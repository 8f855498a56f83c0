// libFuzzer harness for the metadata.jsonl reader (rows only; files are not checked): parse or throw.
// Not a test of the folder dataset's image and audio loading.
import Data
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Foundation.Data(UnsafeBufferPointer(start: data, count: size))
    if let meta = try? FolderMetadata(folder: "fuzz", contents: bytes, checkFiles: false) {
        for pair in meta.pairs { precondition(pair.line >= 1 && !pair.fileName.isEmpty) }
    }
    return 0
}
