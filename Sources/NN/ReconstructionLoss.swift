// Pixel reconstruction losses of the image tokenizers (mean absolute or mean squared error), and
// PSNR for reporting. Not perceptual or adversarial losses: ShapesWorld images do not need them.
import Foundation
import Tensors

/// Which pixel loss an autoencoder trains with.
public enum ReconstructionLoss: String, Codable, Sendable, CaseIterable {
    case l1, mse

    /// The mean loss between a reconstruction and its target, as a scalar tensor.
    public func callAsFunction(_ prediction: Tensor, _ target: Tensor) -> Tensor {
        switch self {
        case .l1: return l1Loss(prediction, target)
        case .mse: return Tensors.mse(prediction, target)
        }
    }
}

/// Mean of |pred − target| over all elements; both sides get gradients (sign(pred − target)/n,
/// 0 where they are equal).
///
/// ```swift
/// let loss = l1Loss(decoded, images)   // scalar
/// ```
public func l1Loss(_ pred: Tensor, _ target: Tensor) -> Tensor {
    precondition(pred.shape == target.shape, "l1Loss: shapes \(pred.shape) and \(target.shape) differ")
    let n = pred.count
    let diff = Tensor.empty(pred.shape)
    let pp = pred.data, pt = target.data, pd = diff.data
    for i in 0..<n { pd[i] = pp[i] - pt[i] }
    var total = 0.0
    var i = 0
    while i < n {  // Double accumulation over chunks
        var part: Float = 0
        for j in i..<min(i + 4096, n) { part += abs(pd[j]) }
        total += Double(part)
        i += 4096
    }
    let out = Tensor([Float(total / Double(max(n, 1)))], shape: [])
    let needP = pred.tracksGrad, needT = target.tracksGrad
    return out.recorded([pred, target]) { g in
        let s = g.item / Float(max(n, 1))
        let gp = Tensor.empty(diff.shape)
        let pd = diff.data, pg = gp.data
        for i in 0..<n { pg[i] = pd[i] > 0 ? s : (pd[i] < 0 ? -s : 0) }
        return [needP ? gp : nil, needT ? -gp : nil]
    }
}

/// Peak signal-to-noise ratio in dB of images in [0, 1]: 10·log10(1 / mean squared error), per
/// image (rows of `count / images` values). Reconstructions should be clamped to [0, 1] first.
public func psnr(_ reconstruction: [Float], _ reference: [Float], images: Int) -> [Double] {
    precondition(reconstruction.count == reference.count && images > 0 && reference.count % images == 0,
                 "psnr: \(reconstruction.count) vs \(reference.count) values for \(images) images")
    let per = reference.count / images
    return (0..<images).map { k in
        var se = 0.0
        for j in (k * per)..<((k + 1) * per) {
            let d = Double(reconstruction[j]) - Double(reference[j])
            se += d * d
        }
        return 10 * log10(1 / max(se / Double(per), 1e-12))
    }
}
