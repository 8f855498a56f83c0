// Classifier-free guidance in one place (DiT's `forward_with_cfg`): the mix of conditional and
// unconditional predictions, and denoisers that produce both. Not conditioning or prompt dropout.
import Foundation
import Tensors

/// Classifier-free guidance (Ho & Salimans 2022, eq. 6 with s = 1 + w):
/// uncond + s·(cond − uncond). Scale 1 returns `cond` and 0 returns `uncond`, exactly.
///
/// Every target (ε, v, velocity) is affine in x̂0 at fixed x_t with the same coefficients for
/// both branches, so guiding the raw prediction is the same as guiding ε̂ or x̂0.
///
/// ```swift
/// let eps = guided(cond: model(xt, t, prompt), uncond: model(xt, t, empty), scale: 5)
/// ```
public func guided(cond: Tensor, uncond: Tensor, scale: Float) -> Tensor {
    precondition(cond.shape == uncond.shape, "guided: cond \(cond.shape) vs uncond \(uncond.shape)")
    if scale == 1 { return cond }
    if scale == 0 { return uncond }
    // 1. the guidance direction cond − uncond
    // 2. uncond + s·direction                                                         (eq. 6)
    return uncond + (cond - uncond) * scale
}

/// A guided denoiser that calls `batched` once on the doubled batch: x_t (N, …) becomes
/// [x_t; x_t] (2N, …) with timesteps t + t, and `batched` must return the conditional
/// predictions in rows 0..<N and the unconditional ones in rows N..<2N.
///
/// ```swift
/// let model = guidedDenoiser(scale: 4) { xx, tt in network(xx, tt, context: [prompt; empty]) }
/// let x0 = DDIMSampler(diffusion).sample(shape: [1, 16, 8], rng: rng, model: model)
/// ```
public func guidedDenoiser(scale: Float, batched: @escaping Denoiser) -> Denoiser {
    return { xt, t in
        let n = xt.dim(0)
        let both = batched(concat([xt, xt], axis: 0), t + t)      // (2N, …)
        precondition(both.dim(0) == 2 * n, "guidedDenoiser: batched model returned \(both.shape) for 2×\(n) rows")
        let halves = both.split(axis: 0, sizes: [n, n])           // (N, …) each
        return guided(cond: halves[0], uncond: halves[1], scale: scale)
    }
}

/// A guided denoiser from two separate models (two calls per step; the unconditional one is
/// skipped at scale 1, the conditional one at scale 0).
public func guidedDenoiser(scale: Float, cond: @escaping Denoiser, uncond: @escaping Denoiser) -> Denoiser {
    return { xt, t in
        if scale == 1 { return cond(xt, t) }
        if scale == 0 { return uncond(xt, t) }
        return guided(cond: cond(xt, t), uncond: uncond(xt, t), scale: scale)
    }
}
