// libFuzzer harness for the PNG reader (chunk scan + libpng's simplified API): decode or throw, never trap.
// Not a fuzzer of libpng itself (it is not built with coverage here).
import Media

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let image = try? PNG.decode(bytes, name: "fuzz.png") {
        // Whatever decodes must be a consistent image.
        precondition(image.pixels.count == image.width * image.height * image.channels)
    }
    return 0
}
