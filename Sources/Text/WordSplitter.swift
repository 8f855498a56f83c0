// Splits UTF-8 bytes into "words" so BPE merges never cross a word boundary. Not a regex
// pre-tokenizer: three byte classes and one rule, so it works on any bytes, valid UTF-8 or not.

/// Splits a byte string into words: whitespace attaches to the run that follows it
/// (`"a red  circle?"` → `"a"`, `" red"`, `"  circle"`, `"?"`).
///
/// Bytes fall into three classes: ASCII whitespace, ASCII punctuation/control, and word bytes
/// (ASCII letters and digits plus every byte ≥ 0x80, so multi-byte UTF-8 stays whole). A word
/// ends where the class changes, except that a whitespace run continues into the next run.
enum WordSplitter {
    enum ByteClass: UInt8 { case space, word, other }

    static let classes: [ByteClass] = (0..<256).map { b in
        switch b {
        case 0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D: return .space
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x80...0xFF: return .word
        default: return .other
        }
    }

    /// The word ranges of `bytes`, in order, covering every byte exactly once.
    static func words(_ bytes: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        guard !bytes.isEmpty else { return out }
        out.reserveCapacity(bytes.count / 4 + 1)
        var start = 0
        var previous = classes[Int(bytes[0])]
        for i in 1..<bytes.count {
            let c = classes[Int(bytes[i])]
            if c != previous && previous != .space {
                out.append(start..<i)
                start = i
            }
            previous = c
        }
        out.append(start..<bytes.count)
        return out
    }

    /// Convenience over an array.
    static func words(_ bytes: [UInt8]) -> [Range<Int>] {
        bytes.withUnsafeBufferPointer { words($0) }
    }
}
