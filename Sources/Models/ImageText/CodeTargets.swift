// What the token-stream families (Chameleon, VAR) share about their targets: text and code ids in
// one vocabulary, split by what the loss reports them as, and a data-parallel rank's share of a
// micro-batch's loss. Not the models and not the batches.
import Data
import Tensors
import Training

/// `targets` split by what the loss reports them as (−1 elsewhere): text first (below
/// `textVocab`, the ids that close spans left out — EOI, EOA and those of the model's other
/// `modalities`: Transfusion never predicts them, so every family's text part scores the same
/// targets), then each range of code ids in `codes`.
func splitTargets(_ targets: [Int32], textVocab: Int, codes: [Range<Int32>], modalities: [Modality] = []) -> [[Int32]] {
    let v = Int32(textVocab), closing = Set(([.image, .audio] + modalities).map(\.closing))
    func part(_ keep: (Int32) -> Bool) -> [Int32] { targets.map { $0 >= 0 && keep($0) ? $0 : -1 } }
    return [part { $0 < v && !closing.contains($0) }] + codes.map { range in part { range.contains($0) } }
}

/// A rank's share of a micro-batch's cross-entropy: `total` over the rank's targets `kept`,
/// weighted by their share of the micro-batch's targets `whole`, and each part (named by `names`,
/// in `split`'s order; absent parts stay absent) by its own targets' share, so the ranks' shares
/// add up to the micro-batch's loss and parts.
func rankShare(total: Tensor, parts: [String: Float], names: [String], kept: [Int32], whole: [Int32],
               split: ([Int32]) -> [[Int32]]) -> (total: Tensor, parts: [String: Float]) {
    func count(_ t: [Int32]) -> Int { t.lazy.filter { $0 >= 0 }.count }
    let local = split(kept).map(count), all = split(whole).map(count)
    var parts = parts
    for (k, name) in names.enumerated() where parts[name] != nil {
        parts[name] = local[k] == 0 ? 0 : parts[name]! * Float(local[k]) / Float(all[k])
    }
    let (mine, every) = (count(kept), count(whole))
    return (total * (mine == 0 ? 0 : Float(mine) / Float(every)), parts)
}
