// libFuzzer harness for the tokenizer JSON reader: a file either fails to load with an error, or loads
// into a tokenizer that encodes and decodes text without trapping.
import Foundation
import Text

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Foundation.Data(UnsafeBufferPointer(start: data, count: size))
    guard let tokenizer = try? BPETokenizer.decode(bytes, name: "fuzz-tokenizer.json") else { return 0 }
    let text = "a large red circle above a small blue square"
    let ids = tokenizer.encode(text)
    precondition(tokenizer.decode(ids) == text, "a loaded tokenizer must round-trip text")
    return 0
}
