// The tokenizer as a Hugging Face `tokenizers` file (tokenizer.json), for models exported with
// `fusion export --format hf`. The same ids for the same text: a Split pre-tokenizer whose regex is
// WordSplitter's rule, then ByteLevel (GPT-2's byte → printable character map, no regex of its own),
// and a BPE model whose vocabulary is every id's bytes and whose merges are ours in rank order
// (both apply the lowest-ranked adjacent pair first, inside a word).
import Foundation

extension BPETokenizer {
    /// WordSplitter's words as a regex over characters: a whitespace run joins the run of one class
    /// after it (word: ASCII letters, digits and every non-ASCII character — all its UTF-8 bytes are
    /// ≥ 0x80; other: ASCII punctuation and control); trailing whitespace stands alone.
    static let huggingFaceSplit = #"[\x09-\x0D\x20]*(?:[^\x00-\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]+|[\x00-\x08\x0E-\x1F\x21-\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]+)|[\x09-\x0D\x20]+"#

    /// GPT-2's map from a byte to the printable character that stands for it in ByteLevel
    /// vocabularies: printable Latin-1 bytes stand for themselves, the rest take U+0100 onwards.
    static let byteCharacters: [Character] = {
        let printable = Set(Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF))
        var next = 0x100
        return (0..<256).map { b in
            if printable.contains(b) { return Character(Unicode.Scalar(UInt8(b))) }
            defer { next += 1 }
            return Character(Unicode.Scalar(UInt32(next))!)
        }
    }()

    /// Why this tokenizer has no Hugging Face form, or nil: two ids with the same bytes (a
    /// string-keyed vocabulary cannot tell them apart).
    public var huggingFaceProblem: String? {
        var seen: [[UInt8]: Int] = [:]
        for id in Int(Self.byteBase)..<vocabSize {
            if let first = seen[tokenBytes[id]] {
                return "tokens \(first) and \(id) are the same bytes (\(tokenBytes[id])); a Hugging Face vocabulary keys tokens by their text"
            }
            seen[tokenBytes[id]] = id
        }
        return nil
    }

    /// The tokenizer.json text: special tokens 0..<7 as added tokens, then bytes and merges.
    /// Special-token strings inside text (`<bos>`) become those tokens there, where Fusion's own
    /// encoder reads them as plain bytes; every other text encodes to the same ids.
    public func huggingFaceJSON() throws -> Foundation.Data {
        if let problem = huggingFaceProblem { throw TokenizerError.malformed(path: "tokenizer.json", reason: problem) }
        func text(_ id: Int) -> String { String(tokenBytes[id].map { Self.byteCharacters[Int($0)] }) }
        var vocab: [String: Int] = [:]
        for (id, name) in SpecialTokens.names.enumerated() { vocab[name] = id }
        for id in Int(Self.byteBase)..<vocabSize { vocab[text(id)] = id }
        let merges = self.merges.map { "\(text(Int($0.left))) \(text(Int($0.right)))" }
        let added: [[String: Any]] = SpecialTokens.names.enumerated().map { id, name in
            ["id": id, "content": name, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true]
        }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false]
        let object: [String: Any] = [
            "version": "1.0",
            "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": added,
            "normalizer": NSNull(),
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": Self.huggingFaceSplit], "behavior": "Isolated", "invert": false],
                byteLevel]],
            "post_processor": NSNull(),
            "decoder": byteLevel,
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
                      "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                      "vocab": vocab, "merges": merges] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }
}
