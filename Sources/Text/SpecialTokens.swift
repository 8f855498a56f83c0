// The reserved token ids (0..6) that frame documents and continuous spans in a mixed-modal
// sequence. Not a tokenizer: it only names the ids and their printable forms.

/// Reserved token ids shared by every tokenizer and model in Fusion.
///
/// Ids `0..<SpecialTokens.count` are reserved; a tokenizer's learned vocabulary starts at
/// `SpecialTokens.count`. A sequence reads `BOS text… BOI [image] EOI text… BOA [audio] EOA EOS`.
///
/// ```swift
/// let ids: [Int32] = [SpecialTokens.bos] + tokenizer.encode("a red circle") + [SpecialTokens.eos]
/// SpecialTokens.name(of: SpecialTokens.boi)  // "<boi>"
/// ```
public enum SpecialTokens {
    /// Beginning of a document.
    public static let bos: Int32 = 0
    /// End of a document.
    public static let eos: Int32 = 1
    /// Padding; also the placeholder id at the positions of a continuous span.
    public static let pad: Int32 = 2
    /// Beginning of an image span.
    public static let boi: Int32 = 3
    /// End of an image span.
    public static let eoi: Int32 = 4
    /// Beginning of an audio span.
    public static let boa: Int32 = 5
    /// End of an audio span.
    public static let eoa: Int32 = 6

    /// How many ids are reserved; the first learned token id.
    public static let count = 7

    /// Printable forms, indexed by id.
    public static let names: [String] = ["<bos>", "<eos>", "<pad>", "<boi>", "<eoi>", "<boa>", "<eoa>"]

    /// Whether `id` is one of the reserved ids.
    @inlinable
    public static func isSpecial(_ id: Int32) -> Bool { id >= 0 && id < Int32(count) }

    /// The printable form of a reserved id (`"<bos>"`, …), or nil for any other id.
    public static func name(of id: Int32) -> String? {
        isSpecial(id) ? names[Int(id)] : nil
    }

    /// The reserved id whose printable form is `name`, or nil.
    public static func id(named name: String) -> Int32? {
        names.firstIndex(of: name).map { Int32($0) }
    }
}
