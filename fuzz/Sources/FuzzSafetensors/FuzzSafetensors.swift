// libFuzzer harness for the safetensors reader: any input must decode or throw, never trap.
// Not a round-trip test (NNTests cover encode/decode equality).
import Foundation
import NN

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Foundation.Data(UnsafeBufferPointer(start: data, count: size))
    _ = try? Safetensors.decode(bytes, name: "fuzz.safetensors")  // a thrown error is a handled input
    return 0
}
