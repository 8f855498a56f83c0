// Documents of any source (Data.DocumentSource) as a Chameleon batch: each span turned into codes
// by its modality's discrete tokenizer, framed by its markers, everything causal and scored by
// cross-entropy except the codes of a condition span (a given, not an output).
import Data
import NN
import Tensors

/// A packed batch of documents as token ids for Chameleon.
public struct ChameleonBatch {
    /// Ids and targets (B, T); targets −1 where none.
    public var ids: Tensor
    public var targets: Tensor
    public var mask: AttentionMask
    /// RoPE positions (B·T).
    public var positions: Tensor
}

extension Chameleon {
    /// `rows` of documents, each row packed into `length` positions (documents masked apart, all
    /// causal). A span of modality m becomes `tokenize[m]`'s codes of its values (one code per
    /// position, in `0 ..< codebookSize`) between m's markers; the codes of a condition span are not
    /// predicted (their targets are −1), a generated span's are.
    public func batch(_ rows: [[Document]], length t: Int, tokenize: [Modality: ([Float]) -> [Int32]]) throws -> ChameleonBatch {
        var ids: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], docs: [[Int32]] = []
        for documents in rows {
            let seqs = try documents.map { document -> MixedSequence in
                var text: [Int32] = [], unscored: [Range<Int>] = []
                for piece in document.pieces {
                    switch piece {
                    case .text(let part): text += part
                    case .span(let m, let values, _, let role):
                        guard let range = config.codes(m), let codes = tokenize[m]?(values) else {
                            throw ChameleonBatchError.noCodes(m, document: document.index)
                        }
                        guard codes.count == range.length, codes.allSatisfy({ $0 >= 0 && Int($0) < range.codebookSize }) else {
                            throw ChameleonBatchError.badCodes(m, document: document.index, count: codes.count, expected: range.length)
                        }
                        // After BOS, position p predicts id p + 1: the opening id's position predicts the first code.
                        if role == .condition { unscored.append((text.count + 1)..<(text.count + 1 + codes.count)) }
                        text += tokens(m, codes: codes)
                    }
                }
                var seq = MixedSequence(segments: [.text(text)])
                for r in unscored { for p in r { seq.targets[p] = -1 } }
                return seq
            }
            let row = try pack(seqs, length: t)
            ids += row.tokens; targets += row.targets; positions += row.positions
            docs.append(row.documentIDs)
        }
        return ChameleonBatch(ids: Tensor(ints: ids, shape: [rows.count, t]), targets: Tensor(ints: targets, shape: [rows.count, t]),
                              mask: try AttentionMask(documents: docs, spans: docs.map { [Int32](repeating: -1, count: $0.count) }),
                              positions: Tensor(ints: positions))
    }
}

/// Why documents cannot become a Chameleon batch.
public enum ChameleonBatchError: Error, CustomStringConvertible {
    case noCodes(Modality, document: Int)
    case badCodes(Modality, document: Int, count: Int, expected: Int)

    public var description: String {
        switch self {
        case .noCodes(let m, let i):
            return "document \(i) has a \(m) span, but the model has no \(m) codes or no \(m) tokenizer was given"
        case .badCodes(let m, let i, let n, let l):
            return "document \(i): the \(m) tokenizer gave \(n) codes (expected \(l), each below the codebook size)"
        }
    }
}
