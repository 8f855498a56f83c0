// The model configs a recipe's `tokenizer:` section (Training/RecipeTokenizer.swift) describes.
import Training

extension TokenizerSection {
    /// The ImageVAE this section describes for images of `imageChannels` channels (latent scale 1
    /// until calibrated).
    public func vaeConfig(imageChannels: Int = 3) -> ImageVAE.Config {
        ImageVAE.Config(channels: channels, channelMultipliers: channelMultipliers, patchSize: patchSize,
                        latentChannels: latentChannels, downsample: downsample, groups: groups, klWeight: klWeight,
                        reconstruction: reconstruction, imageChannels: imageChannels)
    }

    /// The VQTokenizer this section describes.
    public func vqConfig(imageChannels: Int = 3) -> VQTokenizer.Config {
        VQTokenizer.Config(channels: channels, channelMultipliers: channelMultipliers, patchSize: patchSize,
                           downsample: downsample, groups: groups, codebookSize: codebookSize, codeDim: codeDim,
                           commitmentWeight: commitmentWeight, ema: ema, emaDecay: emaDecay,
                           restartAfterSteps: restartAfterSteps, reconstruction: reconstruction,
                           imageChannels: imageChannels)
    }

    /// The MultiScaleVQTokenizer this section describes for square images of side `imageSize`:
    /// the VQ backbone and codebook with `scales` (default: ``TokenizerSection/defaultScales(grid:)``).
    public func msvqConfig(imageSize: Int, imageChannels: Int = 3) -> MultiScaleVQTokenizer.Config {
        MultiScaleVQTokenizer.Config(base: vqConfig(imageChannels: imageChannels),
                                     scales: scales ?? Self.defaultScales(grid: imageSize / downsample))
    }
}
