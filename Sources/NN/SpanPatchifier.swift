// The choice of layers that turn image latents into span positions and back (Transfusion's
// `model.patchifier`), named here so recipes can be typed by it. Not the layers themselves
// (Modalities/ImageSpans.swift: linear patches, PatchUNet).

/// How latents become span positions and back (Transfusion paper, Sec. 3.2).
public enum SpanPatchifier: String, Codable, Sendable, CaseIterable {
    /// A linear layer per p×p patch in, and one out.
    case linear
    /// Conv + U-Net down blocks (to the patch grid) in, up blocks with skips out.
    case unet
    /// The U-Net, plus a linear embedding of each raw latent patch added to its input rows: a
    /// direct path for what the U-Net's GroupNorms attenuate, such as a uniform background's
    /// level (docs/results/unet-patchifier). Not in the paper.
    case unetLinear = "unet_linear"

    /// Whether the latents pass through U-Net blocks.
    public var usesUNet: Bool { self != .linear }
}
